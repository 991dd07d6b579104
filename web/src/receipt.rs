//! The consumer pages of receipt codes (动态小票码开票, issue 20): a phone opens the link printed
//! in a receipt's QR code — no login, no script — and gets an invoice.
//!
//! * `GET /r?…` verifies the link (`fapiao_usecases::receipts::open`) and shows the form, the
//!   invoice when the receipt has one, or a refusal page that says why.
//! * `POST /r` submits the title (`receipts::submit`): issued at once, one invoice per receipt.
//! * `GET /r/receipt.css` the page's style (the CSP allows no inline style).
//!
//! Abuse: a double-submit CSRF token (an HttpOnly SameSite=Strict cookie and a hidden field that
//! must match) besides the console's cross-site check; `Cache-Control: no-store` and
//! `Referrer-Policy: no-referrer` on every answer (the link is a bearer credential); requests per
//! minute per link and per client address (`[receipt]`); the full link is never logged.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::Utc;
use fapiao_schemas::receipt_link::LinkRefusal;
use fapiao_usecases::receipts::{self, Opened, ReceiptResult, ReceiptView, Refusal, Title, TitleType};
use fapiao_usecases::{Actor, App};
use serde::Deserialize;

const CSRF_COOKIE: &str = "receipt_csrf";

/// What the consumer pages work with.
struct Pages {
    app: App,
    limits: Mutex<Limits>,
}

/// Fixed windows of a minute, from each key's first request (per process).
#[derive(Default)]
struct Limits {
    windows: HashMap<u64, (Instant, u32)>,
}

impl Limits {
    /// Count a request of `key`; false when it is over `per_minute` (0: no limit).
    fn allow(&mut self, key: u64, per_minute: u32, now: Instant) -> bool {
        if per_minute == 0 {
            return true;
        }
        if self.windows.len() > 100_000 {
            self.windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let w = self.windows.entry(key).or_insert((now, 0));
        if now.duration_since(w.0) >= Duration::from_secs(60) {
            *w = (now, 0);
        }
        w.1 += 1;
        w.1 <= per_minute
    }
}

fn key_of(kind: &str, value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (kind, value).hash(&mut h);
    h.finish()
}

/// The consumer routes, for the console's router (one `merge`).
pub fn routes<S: Clone + Send + Sync + 'static>(app: App) -> Router<S> {
    let pages = Arc::new(Pages { app, limits: Mutex::new(Limits::default()) });
    Router::new().route("/r", get(open).post(submit)).route("/r/receipt.css", get(css)).with_state(pages)
}

/// The client's address as the server saw it.
struct Peer(String);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Peer(ip.unwrap_or_else(|| "local".into())))
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "receipt_form.html")]
struct FormPage {
    view: ReceiptView,
    link: String,
    csrf: String,
    kind: String,
    person: bool,
    name: String,
    tax_no: String,
    address_phone: String,
    bank_account: String,
    email: String,
    phone: String,
    errors: Vec<(&'static str, String)>,
}

impl FormPage {
    fn error_of(&self, field: &str) -> String {
        self.errors
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("；")
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "receipt_result.html")]
struct ResultPage {
    result: ReceiptResult,
}

#[derive(Template, WebTemplate)]
#[template(path = "receipt_refused.html")]
struct RefusedPage {
    code: &'static str,
    message: String,
}

/// Every answer of these pages: never stored, never a referrer (the link is a credential).
fn private(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

fn refusal_page(r: LinkRefusal) -> Response {
    let status = match r {
        LinkRefusal::Unknown | LinkRefusal::UnknownOrder => StatusCode::NOT_FOUND,
        LinkRefusal::Tampered => StatusCode::FORBIDDEN,
        LinkRefusal::Expired | LinkRefusal::Disabled => StatusCode::GONE,
        LinkRefusal::AmountDiffers => StatusCode::CONFLICT,
    };
    private((status, RefusedPage { code: r.code(), message: r.message_zh().into() }).into_response())
}

fn failure_page(status: StatusCode, code: &'static str, message: String) -> Response {
    private((status, RefusedPage { code, message }).into_response())
}

fn internal(e: fapiao_usecases::Error) -> Response {
    tracing::error!(error = %e, code = e.code(), "receipt page failed");
    if e.kind() == fapiao_usecases::ErrorKind::Refused {
        return failure_page(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string());
    }
    failure_page(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "系统繁忙，请稍后再试".into())
}

impl Pages {
    /// Count the request against its link and its address; the refusal page when over.
    fn limited(&self, link: &str, peer: &str) -> Option<Response> {
        let cfg = &self.app.settings.receipt;
        let now = Instant::now();
        let mut l = self.limits.lock().expect("receipt limits lock");
        let by_link = l.allow(key_of("link", link), cfg.per_link_per_minute, now);
        let by_peer = l.allow(key_of("peer", peer), cfg.per_address_per_minute, now);
        if by_link && by_peer {
            return None;
        }
        tracing::warn!(by_link, by_peer, "receipt page rate-limited");
        let page =
            failure_page(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "请求过于频繁，请稍后再试".into());
        Some(page)
    }
}

/// 128 random bits, hex: the double-submit CSRF token.
fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn form_page(page: FormPage, status: StatusCode, secure: bool) -> Response {
    let cookie = format!(
        "{CSRF_COOKIE}={}; Path=/r; HttpOnly; SameSite=Strict{}",
        page.csrf,
        if secure { "; Secure" } else { "" }
    );
    let mut res = (status, page).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    private(res)
}

async fn open(State(p): State<Arc<Pages>>, Peer(peer): Peer, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    if let Some(r) = p.limited(&query, &peer) {
        return r;
    }
    match receipts::open(&p.app, &query, Utc::now()).await {
        Ok(Ok(Opened::Form(view))) => {
            let page = FormPage {
                kind: view.kinds.first().map(|k| k.as_str().to_string()).unwrap_or_default(),
                view,
                link: query,
                csrf: new_token(),
                person: true,
                name: String::new(),
                tax_no: String::new(),
                address_phone: String::new(),
                bank_account: String::new(),
                email: String::new(),
                phone: String::new(),
                errors: Vec::new(),
            };
            form_page(page, StatusCode::OK, p.app.settings.http.secure_cookies)
        }
        Ok(Ok(Opened::Invoiced(result))) => private(ResultPage { result: *result }.into_response()),
        Ok(Err(r)) => refusal_page(r),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct SubmitForm {
    #[serde(default)]
    link: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    title_type: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tax_no: String,
    #[serde(default)]
    address_phone: String,
    #[serde(default)]
    bank_account: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

async fn submit(
    State(p): State<Arc<Pages>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(f): Form<SubmitForm>,
) -> Response {
    if let Some(r) = p.limited(&f.link, &peer) {
        return r;
    }
    let cookie = csrf_cookie(&headers);
    let token_ok = !f.csrf.is_empty()
        && cookie.as_deref().is_some_and(|c| {
            c.len() == f.csrf.len() && c.bytes().zip(f.csrf.bytes()).fold(0, |a, (x, y)| a | (x ^ y)) == 0
        });
    if !token_ok {
        tracing::warn!("receipt submit refused: CSRF token missing or different");
        return failure_page(StatusCode::FORBIDDEN, "CSRF", "页面已失效，请重新扫码后提交".into());
    }
    let title = Title {
        kind: f.kind.clone(),
        title_type: if f.title_type == "company" { TitleType::Company } else { TitleType::Person },
        name: f.name.clone(),
        tax_no: f.tax_no.clone(),
        address_phone: f.address_phone.clone(),
        bank_account: f.bank_account.clone(),
        email: f.email.clone(),
        phone: f.phone.clone(),
    };
    let actor = Actor::Consumer { from: peer };
    match receipts::submit(&p.app, &actor, &f.link, &title, Utc::now()).await {
        Ok(Ok(result)) => private(ResultPage { result }.into_response()),
        Ok(Err(Refusal::Link(r))) => refusal_page(r),
        Ok(Err(Refusal::Form(view, errors))) => {
            let page = FormPage {
                view: *view,
                link: f.link,
                csrf: f.csrf,
                kind: f.kind,
                person: title.title_type == TitleType::Person,
                name: f.name,
                tax_no: f.tax_no,
                address_phone: f.address_phone,
                bank_account: f.bank_account,
                email: f.email,
                phone: f.phone,
                errors,
            };
            form_page(page, StatusCode::UNPROCESSABLE_ENTITY, p.app.settings.http.secure_cookies)
        }
        Err(e) => internal(e),
    }
}

async fn css() -> Response {
    let mut res = include_str!("../static/receipt.css").into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_count_then_refuses_until_a_minute_passed() {
        let mut l = Limits::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.allow(1, 3, t0));
        }
        assert!(!l.allow(1, 3, t0 + Duration::from_secs(59)));
        assert!(l.allow(2, 3, t0), "another key has its own window");
        assert!(l.allow(1, 3, t0 + Duration::from_secs(60)));
        assert!(l.allow(1, 0, t0), "0: no limit");
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
