//! `/receipts/stats` (issue 20, 小票码统计): per enterprise and day, receipt codes made, receipts
//! scanned, invoiced and the invoiced amount — the use case `fapiao receipt stats` calls. Finance
//! and auditors (and admin) read it in their tenant scope; a scoped user never sees another
//! enterprise's figures. Read-only.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{NaiveDate, Utc};
use fapiao_usecases::receipts::{self, StatsRow};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::Console;
use crate::auth::{OutOfScope, Perm, Viewer};
use crate::pages::{Me, blank, internal};

type St = State<Arc<Console>>;

/// Days shown when no range is given (ending today).
const DEFAULT_DAYS: i64 = 30;
/// The longest range one page shows.
const MAX_DAYS: i64 = 366;

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/receipts/stats", get(stats))
}

#[derive(Deserialize, Default)]
pub struct StatsQuery {
    tax_no: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "receipt_stats.html")]
struct StatsPage {
    me: Me,
    q_tax_no: String,
    q_from: String,
    q_to: String,
    error: Option<String>,
    rows: Vec<StatsRow>,
    codes: i64,
    scanned: i64,
    invoiced: i64,
    amount: Decimal,
}

pub async fn stats(State(c): St, v: Viewer, Query(q): Query<StatsQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewReceiptStats) {
        return r;
    }
    let today = Utc::now().with_timezone(&c.tz).date_naive();
    let day = |s: &Option<String>| s.as_deref().map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"));
    let (tax_no, from_text, to_text) = (blank(q.tax_no), blank(q.from), blank(q.to));
    let mut error = None;
    let mut status = StatusCode::OK;
    let (from, to) = match (day(&from_text), day(&to_text)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            error = Some("日期格式应为 YYYY-MM-DD".to_string());
            (today, today)
        }
        (f, t) => {
            let to = t.and_then(Result::ok).unwrap_or(today);
            (f.and_then(Result::ok).unwrap_or(to - chrono::Duration::days(DEFAULT_DAYS - 1)), to)
        }
    };
    if error.is_none() && (from > to || (to - from).num_days() >= MAX_DAYS) {
        error = Some(format!("日期范围应为开始不晚于结束、最长{MAX_DAYS}天"));
    }
    if error.is_some() {
        status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    let asked = v.enterprises_asked(tax_no.as_deref()).unwrap_or_else(|_| {
        error = Some(OutOfScope::MESSAGE.into());
        status = StatusCode::FORBIDDEN;
        Vec::new()
    });
    let mut rows = Vec::new();
    if error.is_none() {
        for t in asked {
            match receipts::stats(&c.app, t.as_deref(), from, to).await {
                Ok(r) => rows.extend(r),
                Err(e) => return internal(e),
            }
        }
    }
    rows.sort_by(|a, b| (&a.tax_no, a.day).cmp(&(&b.tax_no, b.day)));
    let page = StatsPage {
        me: Me::of(&v),
        q_tax_no: tax_no.unwrap_or_default(),
        q_from: from_text.unwrap_or_else(|| from.to_string()),
        q_to: to_text.unwrap_or_else(|| to.to_string()),
        error,
        codes: rows.iter().map(|r| r.codes).sum(),
        scanned: rows.iter().map(|r| r.scanned).sum(),
        invoiced: rows.iter().map(|r| r.invoiced).sum(),
        amount: rows.iter().map(|r| r.invoiced_total).sum(),
        rows,
    };
    (status, page).into_response()
}
