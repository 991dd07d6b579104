//! `/red-flush` (issue 19, 发票红冲): one issued invoice at a time, by amount (empty: all that
//! remains) with a reason; a preview first (`red-flush --dry-run`: the amount rule's answer —
//! its refusal verbatim, e.g. 剩余可红冲金额不足 —, the red lines, the remaining amount before and
//! after), then the red-flush itself (`red-flush --invoice`). Finance and admin; a scoped user
//! only their enterprises' invoices. Lists, lines and forms stay on the CLI for now.

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
use crate::pages::{Me, blank, internal, require_to_change};

type St = State<Arc<Console>>;

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/red-flush", get(form).post(submit))
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
}

fn page(
    v: &Viewer,
    status: StatusCode,
    f: RedFlushForm,
    error: Option<String>,
    preview: Option<PreviewView>,
    result: Option<String>,
) -> Response {
    let page = RedFlushPage {
        me: Me::of(v),
        num: f.num,
        amount: f.amount,
        reason: f.reason,
        error,
        preview,
        result,
    };
    (status, page).into_response()
}

#[derive(Deserialize, Default)]
pub struct FormQuery {
    num: Option<String>,
}

pub async fn form(State(_c): St, v: Viewer, Query(q): Query<FormQuery>) -> Response {
    if let Err(r) = v.require(Perm::Invoicing) {
        return r;
    }
    let f = RedFlushForm { num: blank(q.num).unwrap_or_default(), ..RedFlushForm::default() };
    page(&v, StatusCode::OK, f, None, None, None)
}

fn state_words(state: &str) -> &'static str {
    match state {
        "refused" => "拒绝",
        "waiting" => "等待确认单/信息表",
        "issuing" => "红字发票开具中",
        "succeeded" => "红冲成功",
        "failed" => "开票失败",
        "ended" => "已终止",
        _ => "未知",
    }
}

fn money(d: Option<rust_decimal::Decimal>) -> String {
    d.map(|d| d.round_dp(2).to_string()).unwrap_or_else(|| "—".into())
}

/// `POST /red-flush` (`num`, `amount`, `reason`, `action` = preview | run).
pub async fn submit(State(c): St, v: Viewer, Form(f): Form<RedFlushForm>) -> Response {
    let num = f.num.trim().to_string();
    let action = if f.action == "run" { "red_flush.invoice" } else { "red_flush.preview" };
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, action, &num).await {
        return r;
    }
    let bad = |m: String, f: RedFlushForm| page(&v, StatusCode::UNPROCESSABLE_ENTITY, f, Some(m), None, None);
    if num.is_empty() {
        return bad("请填写发票号码".into(), f);
    }
    // The invoice must be one the user sees.
    let seller = match invoices::show(&c.app, &num, None).await {
        Ok(d) if v.user.sees(&d.invoice.seller_tax_no) => d.invoice.seller_tax_no,
        Ok(_) => return bad(format!("发票{num}不存在或不在您负责的企业范围内"), f),
        Err(e) if e.kind() != ErrorKind::Internal => return bad(e.to_string(), f),
        Err(e) => return internal(e),
    };
    let amount = match blank(Some(f.amount.clone())) {
        None => None,
        Some(a) => match Money::parse_plain(&a) {
            Ok(m) => Some(m),
            Err(e) => return bad(format!("红冲金额不正确：{e}"), f),
        },
    };
    let request = Request {
        invoice_num: num.clone(),
        amount,
        reason: blank(Some(f.reason.clone())),
        ..Request::default()
    };
    if f.action != "run" {
        return match red_flush::preview(&c.app, std::slice::from_ref(&request)).await {
            Ok(p) => {
                let Some(p) = p.into_iter().next() else { return internal("no preview") };
                let ok = p.state.as_str() == "waiting";
                let view = PreviewView {
                    ok,
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
                };
                let status = if ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
                page(&v, status, f, None, Some(view), None)
            }
            Err(e) if e.kind() != ErrorKind::Internal => bad(e.to_string(), f),
            Err(e) => internal(e),
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
                    state_words(o.state.as_str()),
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
    let entry = Entry {
        actor: &v.actor,
        action,
        target: &num,
        outcome: if failed { Outcome::Refused } else { Outcome::Ok },
        detail: &detail,
        tax_nos: &tax_nos,
    };
    match &result {
        Ok(_) => audit::record(&c.app.pool, entry).await,
        Err(_) => audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await,
    }
    match result {
        Ok(_) => page(
            &v,
            if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK },
            f,
            None,
            None,
            Some(detail),
        ),
        Err(e) if e.kind() != ErrorKind::Internal => bad(e.to_string(), f),
        Err(e) => internal(e),
    }
}
