//! The web console (issue 18, part 1): server-rendered Chinese pages over the use cases.
//!
//! * Every page and action goes through `fapiao_usecases` or `fapiao_jobs::control`; no handler
//!   holds SQL.
//! * Users log in with a form; the session is a random token in an HttpOnly, SameSite=Strict
//!   cookie (Secure with `http.secure_cookies`), kept in PostgreSQL by `fapiao_usecases::sessions`
//!   (its SHA-256 only). A small store of our own rather than tower-sessions: the published
//!   sqlx store needs sqlx 0.8, and ours is three queries with idle and absolute expiry in SQL.
//! * Role and tenant scope are checked on the server in every handler (`auth::Perm`); a button
//!   the user may not press is not rendered, and the request is refused with 403 if sent.
//! * State-changing requests from another site are refused (`guard::cross_site`: the browser's
//!   Sec-Fetch-Site, else Origin against Host); every response carries a CSP without inline
//!   script, X-Frame-Options DENY and, for pages, Cache-Control no-store (`guard::headers`).
//! * htmx 2.0.4 is vendored (`static/htmx.min.js`, sha384
//!   HGfztofotfshcF7+8n44JQL2oJmowVChPTg48S+jvZoztPfvwD79OC/LTtG6dMp+) and served from here;
//!   every page also works without it.

// Handlers return `Result<_, Response>` to refuse early (403, 404): axum's idiom; a Response is
// large, and boxing it on every refusal buys nothing here.
#![allow(clippy::result_large_err)]

mod applications;
mod auth;
mod bulk;
mod callbacks;
mod exports;
mod files;
mod guard;
mod imports;
mod invoices;
mod pages;
mod pending;
mod pool;
mod receipt;
mod receipt_stats;
mod red_flush;
mod red_flush_docs;
mod red_flush_lines;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use chrono_tz::Tz;
use fapiao_jobs::{JobContext, Registry};
use fapiao_usecases::App;
use tokio_util::sync::CancellationToken;

pub use auth::Perm;

/// Rows per page of the lists `fapiao bench console` measures (their floors ask for as many).
pub mod page_sizes {
    pub use crate::invoices::LIMIT as INVOICES;
    pub use crate::pending::PAGE as PENDING;
    pub use crate::pool::LIMIT as POOL;
}

/// What every handler works with.
pub struct Console {
    pub app: App,
    pub jobs: JobContext,
    pub registry: Registry,
    pub tz: Tz,
    /// Where uploads and exports are written: `$FAPIAO_HOME/console` (`uploads/`, `exports/`).
    pub root: PathBuf,
    /// Imports and exports running in this process, and how far they are.
    pub running: files::Running,
}

impl Console {
    pub fn new(app: App, jobs: JobContext, registry: Registry) -> Console {
        let tz = app.settings.time_zone();
        Console { app, jobs, registry, tz, root: files::default_root(), running: files::Running::default() }
    }

    fn secure_cookies(&self) -> bool {
        self.app.settings.http.secure_cookies
    }
}

/// Every route of the console.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/healthz", get(pages::healthz))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/", get(pages::dashboard))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{job}/pause", post(pages::pause))
        .route("/jobs/{job}/resume", post(pages::resume))
        .route("/jobs/{job}/run", post(pages::run_now))
        .route("/sync/retry", post(pages::sync_retry))
        .route("/sync/reset-start", post(pages::sync_reset_start))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run_detail))
        .route("/params", get(pages::params).post(pages::set_param))
        .route("/audit", get(pages::audit))
        .merge(imports::routes(&console))
        .merge(exports::routes())
        .merge(pending::routes())
        .merge(callbacks::routes())
        .merge(invoices::routes())
        .merge(pool::routes())
        .merge(applications::routes())
        .merge(red_flush::routes(&console))
        .merge(bulk::routes())
        .merge(receipt_stats::routes())
        .route("/static/htmx.min.js", get(pages::htmx))
        .route("/static/console.css", get(pages::css))
        .merge(receipt::routes(console.app.clone()))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(guard::cross_site))
        .layer(axum::middleware::from_fn(guard::headers))
        .with_state(console)
}

/// Serve the console on `listener` until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let app = router(console).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await }).await
}
