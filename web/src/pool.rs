//! `/pool` (issue 19, 全票池): input invoices as `fapiao pool list` (receiving enterprise, seller,
//! verified, deductible, dates) and one whole as `fapiao pool show` (lines, the documents using
//! it, what is free, its log). Read-only; a scoped user sees their enterprises' invoices only.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use fapiao_usecases::ErrorKind;
use fapiao_usecases::pool::{self, PoolFilter, PoolRow};
use serde::Deserialize;

use crate::Console;
use crate::auth::{OutOfScope, Perm, Viewer};
use crate::pages::{Me, blank, error_page, internal};
use crate::view::{opt_time, time};

type St = State<Arc<Console>>;

pub const LIMIT: i64 = 200;

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/pool", get(list)).route("/pool/{num}", get(show))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    tax_no: Option<String>,
    seller: Option<String>,
    verified: Option<String>,
    deductible: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub struct PoolView {
    pub tax_no: String,
    pub num: String,
    pub code: String,
    pub kind: String,
    pub date: String,
    pub seller: String,
    pub total: String,
    pub status: String,
    pub source: &'static str,
    pub verified: bool,
    pub deductible: bool,
    pub reason: String,
}

impl PoolView {
    fn of(p: &PoolRow) -> PoolView {
        PoolView {
            tax_no: p.tax_no.clone(),
            num: p.invoice_num.clone(),
            code: p.invoice_code.clone(),
            kind: p.invoice_kind.clone(),
            date: p.invoice_date.to_string(),
            seller: format!("{}（{}）", p.seller_name, p.seller_tax_no),
            total: p.total.round_dp(2).to_string(),
            status: p.status.clone(),
            source: if p.source == "import" { "导入" } else { "税局下载" },
            verified: p.verified,
            deductible: p.deductible,
            reason: p.deductible_reason.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pool.html")]
struct PoolPage {
    me: Me,
    q_tax_no: String,
    q_seller: String,
    q_verified: String,
    q_deductible: String,
    q_from: String,
    q_to: String,
    error: Option<String>,
    rows: Vec<PoolView>,
    limit: i64,
}

fn flag(s: &Option<String>) -> Option<bool> {
    match s.as_deref() {
        Some("1") => Some(true),
        Some("0") => Some(false),
        _ => None,
    }
}

pub async fn list(State(c): St, v: Viewer, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    let (tax_no, seller, from, to) = (blank(q.tax_no), blank(q.seller), blank(q.from), blank(q.to));
    let (verified, deductible) = (blank(q.verified), blank(q.deductible));
    let mut bad = None;
    let mut day = |s: &Option<String>| match s.as_deref().map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d")) {
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            bad = Some("日期格式应为 YYYY-MM-DD".to_string());
            None
        }
        None => None,
    };
    let base = PoolFilter {
        tax_no: None,
        seller: seller.clone(),
        verified: flag(&verified),
        deductible: flag(&deductible),
        from: day(&from),
        to: day(&to),
        limit: LIMIT,
        ..PoolFilter::default()
    };
    // The receiving enterprises to ask about.
    let asked = v.enterprises_asked(tax_no.as_deref()).unwrap_or_else(|_| {
        bad = Some(OutOfScope::MESSAGE.into());
        Vec::new()
    });
    let mut rows = Vec::new();
    if bad.is_none() {
        for t in asked {
            match pool::list(&c.app, &PoolFilter { tax_no: t, ..base.clone() }).await {
                Ok(r) => rows.extend(r),
                Err(e) => return internal(e),
            }
        }
    }
    rows.sort_by(|a, b| (b.invoice_date, &b.invoice_num).cmp(&(a.invoice_date, &a.invoice_num)));
    rows.truncate(LIMIT as usize);
    let status = if bad.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = PoolPage {
        me: Me::of(&v),
        q_tax_no: tax_no.unwrap_or_default(),
        q_seller: seller.unwrap_or_default(),
        q_verified: verified.unwrap_or_default(),
        q_deductible: deductible.unwrap_or_default(),
        q_from: from.unwrap_or_default(),
        q_to: to.unwrap_or_default(),
        error: bad,
        rows: rows.iter().map(PoolView::of).collect(),
        limit: LIMIT,
    };
    (status, page).into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "pool_invoice.html")]
struct PoolInvoicePage {
    me: Me,
    p: PoolView,
    available: String,
    lines: Vec<(i32, String, String, String, String, String)>,
    uses: Vec<(String, String, String, String, String)>,
    log: Vec<(String, String, String)>,
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    code: Option<String>,
    tax_no: Option<String>,
}

pub async fn show(State(c): St, v: Viewer, Path(num): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    let missing = || error_page(StatusCode::NOT_FOUND, "全票池中没有这张发票");
    let (code, tax_no) = (blank(q.code), blank(q.tax_no));
    let d = match pool::show(&c.app, &num, code.as_deref(), tax_no.as_deref()).await {
        Ok(d) if v.user.sees(&d.invoice.tax_no) => d,
        Ok(_) => return missing(),
        Err(e) if e.kind() == ErrorKind::NotFound => return missing(),
        Err(e) if matches!(e.kind(), ErrorKind::BadInput | ErrorKind::Conflict) => {
            return error_page(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string());
        }
        Err(e) => return internal(e),
    };
    PoolInvoicePage {
        me: Me::of(&v),
        available: d.available.round_dp(2).to_string(),
        lines: d
            .lines
            .iter()
            .map(|l| {
                (
                    l.seq,
                    l.goods_name.clone(),
                    l.amount.round_dp(2).to_string(),
                    l.tax_rate.to_string(),
                    l.tax.round_dp(2).to_string(),
                    l.business_type.clone(),
                )
            })
            .collect(),
        uses: d
            .uses
            .iter()
            .map(|u| {
                (
                    u.document_no.clone(),
                    u.voucher_no.clone().unwrap_or_default(),
                    u.amount.round_dp(2).to_string(),
                    time(&u.used_at, c.tz),
                    opt_time(u.released_at.as_ref(), c.tz),
                )
            })
            .collect(),
        log: d.log.iter().map(|l| (time(&l.at, c.tz), l.event.clone(), l.detail.clone())).collect(),
        p: PoolView::of(&d.invoice),
    }
    .into_response()
}
