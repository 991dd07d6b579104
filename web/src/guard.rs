//! Middleware on every response and request: security headers, and the cross-site check.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::pages::error_page;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// CSP without inline script, no framing, no sniffing; pages (everything but the static files)
/// are never stored by a cache.
pub async fn headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The receipt pages say no-referrer themselves (their links are credentials).
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    let cache = if is_static { "public, max-age=3600" } else { "no-store" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

/// Whether a state-changing request comes from this site. Browsers send Sec-Fetch-Site (the
/// strongest signal: `same-origin`, or `none` for a user typing the address); older ones send
/// Origin, which must name the Host asked. A request with neither is not from a browser
/// page (a script with its own cookie) and passes.
pub fn same_site(method: &Method, headers: &axum::http::HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        return !host.is_empty() && origin_host == host;
    }
    true
}

/// Refuse (403) a POST/PUT/DELETE sent from another site, before any handler runs.
pub async fn cross_site(req: Request, next: Next) -> Response {
    if !same_site(req.method(), req.headers()) {
        tracing::warn!(
            method = %req.method(),
            path = req.uri().path(),
            origin = ?req.headers().get(header::ORIGIN),
            site = ?req.headers().get("sec-fetch-site"),
            "refused: cross-site request"
        );
        return error_page(StatusCode::FORBIDDEN, "跨站请求被拒绝");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn only_same_site_posts_pass() {
        let post = Method::POST;
        assert!(same_site(&Method::GET, &h(&[("sec-fetch-site", "cross-site")])));
        assert!(same_site(&post, &h(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_site(&post, &h(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_site(&post, &h(&[("sec-fetch-site", "same-site")])));
        assert!(same_site(&post, &h(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")])));
        assert!(!same_site(&post, &h(&[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!same_site(&post, &h(&[("origin", "null"), ("host", "127.0.0.1:8080")])));
        assert!(same_site(&post, &h(&[])));
    }
}
