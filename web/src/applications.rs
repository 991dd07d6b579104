//! `/applications` (issue 19, 开票申请单): applications with their state and open lines as
//! `fapiao apply list` (state, seller, bill number); finance withdraws one never pushed
//! (`fapiao apply withdraw`). Auditors read; a scoped user sees and withdraws their enterprises'
//! bills only.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use fapiao_usecases::applications::{self, ApplicationFilter};
use fapiao_usecases::audit::{self, Entry, Outcome};
use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::{ErrorKind, quiet};
use serde::Deserialize;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{Me, blank, error_page, internal, require_to_change};

type St = State<Arc<Console>>;

/// Applications per page (keyset: the next page starts after the last bill shown).
const PAGE: i64 = 50;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/applications", get(list))
        .route("/applications/withdraw", post(withdraw))
        .route("/applications/issue", post(issue))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    state: Option<String>,
    seller: Option<String>,
    bill: Option<String>,
    /// The last bill of the previous page.
    after: Option<String>,
}

impl ListQuery {
    /// The filter (state, seller, part of the bill number) in the viewer's scope.
    pub fn filter(&self, v: &Viewer) -> ApplicationFilter {
        ApplicationFilter {
            state: blank(self.state.clone()),
            seller_tax_no: blank(self.seller.clone()),
            bill: blank(self.bill.clone()),
            scope: v.scope().map(|s| s.to_vec()),
            ..ApplicationFilter::default()
        }
    }

    /// The filter as a query string (for the next page and "all matching").
    pub fn query(&self) -> String {
        [("state", &self.state), ("seller", &self.seller), ("bill", &self.bill)]
            .iter()
            .filter_map(|(k, v)| blank((*v).clone()).map(|v| (k, v)))
            .map(|(k, v)| {
                format!("{k}={}", form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub struct ApplicationView {
    pub bill: String,
    pub state: String,
    pub source: String,
    pub seller: String,
    pub buyer: String,
    pub kind: &'static str,
    pub lines: i64,
    pub open_lines: i64,
    pub total: String,
    pub withdrawable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    me: Me,
    can_withdraw: bool,
    q_state: String,
    q_seller: String,
    q_bill: String,
    matched: usize,
    rows: Vec<ApplicationView>,
    next: Option<String>,
    query: String,
    message: Option<String>,
}

async fn page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    q: ListQuery,
    message: Option<String>,
) -> Response {
    let filter = ApplicationFilter { after: blank(q.after.clone()), limit: Some(PAGE), ..q.filter(v) };
    let rows = match applications::page(&c.app, &filter).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let query = q.query();
    let next = match rows.last() {
        Some(last) if rows.len() as i64 == PAGE => {
            let sep = if query.is_empty() { "" } else { "&" };
            let after = form_urlencoded::byte_serialize(last.bill_no.as_bytes()).collect::<String>();
            Some(format!("/applications?{query}{sep}after={after}"))
        }
        _ => None,
    };
    let (state, seller, bill) = (filter.state, filter.seller_tax_no, filter.bill);
    let page = ApplicationsPage {
        me: Me::of(v),
        can_withdraw: v.may(Perm::Invoicing),
        matched: rows.len(),
        next,
        query,
        rows: rows
            .iter()
            .map(|a| {
                let state = a.state.to_string();
                ApplicationView {
                    withdrawable: state == "received" || state == "returned",
                    bill: a.bill_no.clone(),
                    state,
                    source: a.source.to_string(),
                    seller: a.seller_tax_no.clone(),
                    buyer: a.buyer_name.clone(),
                    kind: a.invoice_kind.label_zh(),
                    lines: a.lines,
                    open_lines: a.open_lines,
                    total: a.total.round_dp(2).to_string(),
                }
            })
            .collect(),
        q_state: state.unwrap_or_default(),
        q_seller: seller.unwrap_or_default(),
        q_bill: bill.unwrap_or_default(),
        message,
    };
    (status, page).into_response()
}

pub async fn list(State(c): St, v: Viewer, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    page(&c, &v, StatusCode::OK, q, None).await
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    bill: String,
}

/// `POST /applications/withdraw` (`bill`): 撤回 a bill never pushed (or returned).
pub async fn withdraw(State(c): St, v: Viewer, Form(f): Form<WithdrawForm>) -> Response {
    let bill = f.bill.trim().to_string();
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, "application.withdraw", &bill).await {
        return r;
    }
    let rows = match applications::page(&c.app, &by_number(std::slice::from_ref(&bill))).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let Some(seller) = rows.iter().find(|a| a.bill_no == bill).map(|a| a.seller_tax_no.clone()) else {
        return error_page(StatusCode::NOT_FOUND, "没有这张开票申请单");
    };
    if !v.user.sees(&seller) {
        let detail = format!("开票申请单{bill}不在您负责的企业范围内");
        fapiao_usecases::tasks::refused(&c.app, &v.actor, "application.withdraw", &bill, &detail, &[]).await;
        return error_page(StatusCode::FORBIDDEN, &detail);
    }
    let result = applications::withdraw(&c.app, &v.actor, &bill).await;
    let tax_nos = vec![seller];
    let entry = Entry {
        actor: &v.actor,
        action: "application.withdraw",
        target: &bill,
        outcome: Outcome::Ok,
        detail: "已撤回",
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(()) => {
            page(&c, &v, StatusCode::OK, ListQuery::default(), Some(format!("开票申请单{bill}已撤回"))).await
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::Refused | ErrorKind::BadInput | ErrorKind::NotFound | ErrorKind::Conflict
            ) =>
        {
            page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, ListQuery::default(), Some(e.to_string())).await
        }
        Err(e) => internal(e),
    }
}

/// `POST /applications/issue` (`bill` repeated): the issuing pass over the chosen bills — pushed
/// into pending invoices (merged and split by the rules) and issued (`fapiao issue --bill`); the
/// list again with each invoice's state (开票成功 with its number, or why not).
pub async fn issue(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let bills: Vec<String> = fields
        .iter()
        .filter(|(f, b)| f == "bill" && !b.trim().is_empty())
        .map(|(_, b)| b.trim().to_string())
        .collect();
    let target = bills.join(",");
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, "application.issue", &target).await {
        return r;
    }
    if bills.is_empty() {
        return page(
            &c,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            ListQuery::default(),
            Some("请先勾选开票申请单".into()),
        )
        .await;
    }
    let rows = match applications::page(&c.app, &by_number(&bills)).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut tax_nos = Vec::new();
    for bill in &bills {
        match rows.iter().find(|a| &a.bill_no == bill) {
            Some(a) if v.user.sees(&a.seller_tax_no) => tax_nos.push(a.seller_tax_no.clone()),
            _ => {
                let detail = format!("开票申请单{bill}不存在或不在您负责的企业范围内");
                fapiao_usecases::tasks::refused(&c.app, &v.actor, "application.issue", &target, &detail, &[])
                    .await;
                return error_page(StatusCode::FORBIDDEN, &detail);
            }
        }
    }
    tax_nos.sort();
    tax_nos.dedup();
    let result = issuing::issue(&c.app, &v.actor, &Selection::Bills(bills.clone()), &quiet).await;
    let detail = match &result {
        Ok(r) => r
            .invoices
            .iter()
            .map(|o| match &o.invoice_num {
                Some(n) => format!("待开发票{}：{}，发票号码{n}", o.pending_id, o.status_zh),
                None => format!(
                    "待开发票{}：{}{}",
                    o.pending_id,
                    o.status_zh,
                    o.message.clone().map(|m| format!("（{m}）")).unwrap_or_default()
                ),
            })
            .chain(r.pushed.refused.iter().map(|x| format!("单据{}未推送：{}", x.bill_no, x.message)))
            .collect::<Vec<_>>()
            .join("；"),
        Err(_) => String::new(),
    };
    let entry = Entry {
        actor: &v.actor,
        action: "application.issue",
        target: &target,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(r) => {
            let message = if r.invoices.is_empty() && r.pushed.refused.is_empty() {
                "没有可开票的内容".to_string()
            } else {
                detail
            };
            page(&c, &v, StatusCode::OK, ListQuery::default(), Some(message)).await
        }
        Err(e) if e.kind() != ErrorKind::Internal => {
            page(&c, &v, status_of(e.kind()), ListQuery::default(), Some(e.to_string())).await
        }
        Err(e) => internal(e),
    }
}

/// Exactly these bills (to find their sellers before acting on them).
fn by_number(bills: &[String]) -> ApplicationFilter {
    ApplicationFilter { bill_nos: Some(bills.to_vec()), ..ApplicationFilter::default() }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
