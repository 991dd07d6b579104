//! `/red-flush` (issue 19, 发票红冲): blue invoices to pick from (the issued list with what remains
//! to red-flush), and one invoice at a time by amount (empty: all that remains) with a reason; a
//! preview first (`red-flush --dry-run`: the amount rule's answer — its refusal verbatim, e.g.
//! 剩余可红冲金额不足 —, the red lines, the remaining amount before and after), then the red-flush
//! itself (`red-flush --invoice`). By lines: `red_flush_lines`; a list and the forms and sheets:
//! `red_flush_docs`. Finance and admin; a scoped user only their enterprises' invoices.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use fapiao_schemas::money::Money;
use fapiao_usecases::audit::{self, Entry, Outcome};
use fapiao_usecases::red_flush::{self, Request};
use fapiao_usecases::{ErrorKind, invoices, quiet};
use serde::Deserialize;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{Me, blank, error_page, internal, require_to_change};

type St = State<Arc<Console>>;

pub fn routes(console: &Console) -> Router<Arc<Console>> {
    Router::new()
        .route("/red-flush", get(form).post(submit))
        .merge(crate::red_flush_lines::routes())
        .merge(crate::red_flush_docs::routes(console))
}

/// Blue invoices offered to pick from per search.
const PICKS: i64 = 50;

/// A blue invoice to pick: what remains, and the links to red-flush it by amount or by lines.
pub struct PickView {
    pub num: String,
    pub date: String,
    pub seller: String,
    pub buyer: String,
    pub total: String,
    pub remaining: String,
    pub open: bool,
}

#[derive(Deserialize, Default)]
pub struct RedFlushForm {
    #[serde(default)]
    num: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    action: String,
}

pub struct PreviewView {
    pub ok: bool,
    pub message: String,
    pub requested: String,
    pub reason: String,
    pub before: String,
    pub after: String,
    pub lines: Vec<(i32, String, String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "red_flush.html")]
struct RedFlushPage {
    me: Me,
    num: String,
    amount: String,
    reason: String,
    error: Option<String>,
    preview: Option<PreviewView>,
    result: Option<String>,
    q_num: String,
    q_buyer: String,
    picks: Vec<PickView>,
}

pub struct Shown {
    pub error: Option<String>,
    pub preview: Option<PreviewView>,
    pub result: Option<String>,
}

async fn page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    f: RedFlushForm,
    pick: PickQuery,
    shown: Shown,
) -> Response {
    let filter = invoices::Filter {
        invoice_num: blank(pick.q_num.clone()),
        buyer: blank(pick.q_buyer.clone()),
        colour: Some(invoices::Colour::Blue),
        scope: v.scope().map(|s| s.to_vec()),
        limit: PICKS,
        ..invoices::Filter::default()
    };
    let picks = match invoices::list(&c.app, &filter).await {
        Ok(rows) => rows
            .iter()
            .map(|i| PickView {
                num: i.invoice_num.clone(),
                date: i.invoice_date.to_string(),
                seller: i.seller_tax_no.clone(),
                buyer: i.buyer_name.clone(),
                total: i.total.round_dp(2).to_string(),
                remaining: i.remaining.round_dp(2).to_string(),
                open: i.remaining > rust_decimal::Decimal::ZERO,
            })
            .collect(),
        Err(e) => return internal(e),
    };
    let page = RedFlushPage {
        me: Me::of(v),
        num: f.num,
        amount: f.amount,
        reason: f.reason,
        error: shown.error,
        preview: shown.preview,
        result: shown.result,
        q_num: pick.q_num.unwrap_or_default(),
        q_buyer: pick.q_buyer.unwrap_or_default(),
        picks,
    };
    (status, page).into_response()
}

#[derive(Deserialize, Default)]
pub struct FormQuery {
    num: Option<String>,
    #[serde(flatten)]
    pick: PickQuery,
}

/// The search of the blue invoices to pick from.
#[derive(Deserialize, Default)]
pub struct PickQuery {
    q_num: Option<String>,
    q_buyer: Option<String>,
}

pub async fn form(State(c): St, v: Viewer, Query(q): Query<FormQuery>) -> Response {
    if let Err(r) = v.require(Perm::Invoicing) {
        return r;
    }
    let f = RedFlushForm { num: blank(q.num).unwrap_or_default(), ..RedFlushForm::default() };
    page(&c, &v, StatusCode::OK, f, q.pick, Shown { error: None, preview: None, result: None }).await
}

fn money(d: Option<rust_decimal::Decimal>) -> String {
    d.map(|d| d.round_dp(2).to_string()).unwrap_or_else(|| "—".into())
}

/// `POST /red-flush` (`num`, `amount`, `reason`, `action` = preview | run).
pub async fn submit(State(c): St, v: Viewer, Form(f): Form<RedFlushForm>) -> Response {
    let num = f.num.trim().to_string();
    let run = f.action == "run";
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, action_of(run), &num).await {
        return r;
    }
    let amount = match blank(Some(f.amount.clone())) {
        None => Ok(None),
        Some(a) => Money::parse_plain(&a).map(Some).map_err(|e| format!("红冲金额不正确：{e}")),
    };
    let request = amount.map(|amount| Request {
        invoice_num: num.clone(),
        amount,
        reason: blank(Some(f.reason.clone())),
        ..Request::default()
    });
    let (status, shown) = match request {
        Ok(request) => match preview_or_run(&c, &v, run, request).await {
            Ok(done) => done,
            Err(r) => return r,
        },
        Err(m) => (StatusCode::UNPROCESSABLE_ENTITY, Shown::error(m)),
    };
    page(&c, &v, status, f, PickQuery::default(), shown).await
}

/// The audit action of a preview or a run.
pub fn action_of(run: bool) -> &'static str {
    if run { "red_flush.invoice" } else { "red_flush.preview" }
}

impl Shown {
    pub fn error(message: String) -> Shown {
        Shown { error: Some(message), preview: None, result: None }
    }
}

/// Preview one request (`red-flush --dry-run`) or run it (`red-flush --invoice`, audited), for an
/// invoice the user sees; what the page shows, and its status (422 for a refusal).
pub async fn preview_or_run(
    c: &Console,
    v: &Viewer,
    run: bool,
    request: Request,
) -> Result<(StatusCode, Shown), Response> {
    let refused = |m: String| Ok((StatusCode::UNPROCESSABLE_ENTITY, Shown::error(m)));
    let num = request.invoice_num.clone();
    if num.is_empty() {
        return refused("请填写发票号码".into());
    }
    // The invoice must be one the user sees: another enterprise's is refused (403, audited) as if
    // unknown.
    let seller = match invoices::show(&c.app, &num, None).await {
        Ok(d) if v.user.sees(&d.invoice.seller_tax_no) => d.invoice.seller_tax_no,
        Ok(_) => {
            let detail = format!("发票{num}不存在或不在您负责的企业范围内");
            fapiao_usecases::tasks::refused(&c.app, &v.actor, action_of(run), &num, &detail, &[]).await;
            return Err(error_page(StatusCode::FORBIDDEN, &detail));
        }
        Err(e) if e.kind() != ErrorKind::Internal => return refused(e.to_string()),
        Err(e) => return Err(internal(e)),
    };
    if !run {
        return match red_flush::preview(&c.app, std::slice::from_ref(&request)).await {
            Ok(p) => {
                let Some(p) = p.into_iter().next() else { return Err(internal("no preview")) };
                let view = PreviewView::of(&p);
                let status = if view.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
                Ok((status, Shown { error: None, preview: Some(view), result: None }))
            }
            Err(e) if e.kind() != ErrorKind::Internal => refused(e.to_string()),
            Err(e) => Err(internal(e)),
        };
    }
    let result = red_flush::invoices(&c.app, &v.actor, std::slice::from_ref(&request), &quiet).await;
    let detail = match &result {
        Ok(r) => r
            .results
            .iter()
            .map(|l| {
                let o = &l.outcome;
                let red = o.red_invoice_num.clone().map(|n| format!("，红字发票{n}")).unwrap_or_default();
                format!(
                    "{}：{}{}{}",
                    o.invoice_num,
                    red_flush::state_zh(o.state),
                    o.message.clone().map(|m| format!("（{m}）")).unwrap_or_default(),
                    red
                )
            })
            .collect::<Vec<_>>()
            .join("；"),
        Err(_) => String::new(),
    };
    let tax_nos = vec![seller];
    let failed = matches!(&result, Ok(r) if r.failed > 0);
    let by_lines = if request.lines.is_empty() { "" } else { "（按明细行）" };
    let audited = format!("{detail}{by_lines}");
    let entry = Entry {
        actor: &v.actor,
        action: action_of(true),
        target: &num,
        outcome: if failed { Outcome::Refused } else { Outcome::Ok },
        detail: &audited,
        tax_nos: &tax_nos,
    };
    match &result {
        Ok(_) => audit::record(&c.app.pool, entry).await,
        Err(_) => audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await,
    }
    match result {
        Ok(_) => {
            let status = if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            Ok((status, Shown { error: None, preview: None, result: Some(detail) }))
        }
        Err(e) if e.kind() != ErrorKind::Internal => refused(e.to_string()),
        Err(e) => Err(internal(e)),
    }
}

impl PreviewView {
    fn of(p: &red_flush::Preview) -> PreviewView {
        PreviewView {
            ok: p.state.as_str() == "waiting",
            message: p.message.clone().unwrap_or_default(),
            requested: money(p.requested),
            reason: p.reason.clone(),
            before: money(p.remaining_before),
            after: money(p.remaining_after),
            lines: p
                .lines
                .iter()
                .map(|l| {
                    (
                        l.seq,
                        l.goods_name.clone(),
                        l.amount.round_dp(2).to_string(),
                        l.tax.round_dp(2).to_string(),
                    )
                })
                .collect(),
        }
    }
}
