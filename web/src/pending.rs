//! `/pending` (issue 19, 开票异常处理 of seed 000): pending invoices with the filters of
//! `fapiao pending list` (status, seller, source, dates, error text); finance issues chosen ones,
//! returns them to their applications with a reason, or deletes failed ones; `/pending/{id}` is
//! one invoice with its lines, history, attempts (serials) and its bills' callbacks. Auditors
//! read; a scoped user sees and acts on their enterprises' invoices only.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::NaiveDate;
use fapiao_usecases::audit::{self, Entry, Outcome};
use fapiao_usecases::issuing;
use fapiao_usecases::pending::{self, ApprovalStep, ItemResult, PendingFilter, PendingRow};
use fapiao_usecases::{ErrorKind, quiet};
use serde::Deserialize;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{Me, blank, error_page, internal, require_to_change};
use crate::view::{self, opt_time, time};

type St = State<Arc<Console>>;

/// Invoices per page (keyset: the next page starts after the last id shown).
pub const PAGE: i64 = 50;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/pending", get(list))
        .route("/pending/{id}", get(show))
        .route("/pending/act", post(act))
        .route("/pending/reissue", get(reissue_preview).post(reissue_run))
        .route("/pending/{id}/edit", post(edit))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    status: Option<String>,
    seller: Option<String>,
    source: Option<String>,
    from: Option<String>,
    to: Option<String>,
    error: Option<String>,
    /// The last id of the previous page.
    after: Option<String>,
}

pub struct PendingView {
    pub id: i64,
    pub bills: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub source: String,
    pub approval: String,
    pub seller: String,
    pub buyer: String,
    pub kind: String,
    pub total: String,
    pub error: String,
    pub reissues: i32,
    pub created: String,
}

impl PendingView {
    fn of(p: &PendingRow, tz: chrono_tz::Tz) -> PendingView {
        let status = p.status.as_str();
        PendingView {
            id: p.id,
            bills: p.bills.join("、"),
            status: view::pending_status(status),
            status_class: match status {
                "failed" => "failed",
                "succeeded" => "succeeded",
                _ => "running",
            },
            source: p.data_source.to_string(),
            approval: p.approval_state.to_string(),
            seller: p.seller_tax_no.clone(),
            buyer: p.buyer_name.clone(),
            kind: p.invoice_kind.label_zh().to_string(),
            total: p.total.round_dp(2).to_string(),
            error: p.error_message.clone().unwrap_or_default(),
            reissues: p.reissue_count,
            created: time(&p.created_at, tz),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pending.html")]
struct PendingPage {
    me: Me,
    can_act: bool,
    q: ListQueryView,
    error: Option<String>,
    rows: Vec<PendingView>,
    matched: usize,
    /// The link to the next page (the filter and the last id shown), when there is one.
    next: Option<String>,
    results: Vec<ItemResult>,
}

#[derive(Default)]
pub struct ListQueryView {
    pub status: String,
    pub seller: String,
    pub source: String,
    pub from: String,
    pub to: String,
    pub error: String,
}

impl ListQueryView {
    /// The filter as a query string (for the next page and "all matching").
    pub fn query(&self) -> String {
        let pairs = [
            ("status", &self.status),
            ("seller", &self.seller),
            ("source", &self.source),
            ("from", &self.from),
            ("to", &self.to),
            ("error", &self.error),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                format!("{k}={}", form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The filter a query asks for, in the viewer's scope; or why it does not parse.
pub fn filter_of(q: &ListQueryView, v: &Viewer) -> Result<PendingFilter, String> {
    let day = |s: &str| -> Result<Option<NaiveDate>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| "日期格式应为 YYYY-MM-DD".to_string())
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(PendingFilter {
        status: some(&q.status),
        seller_tax_no: some(&q.seller),
        source: match q.source.as_str() {
            "" => None,
            s => Some(s.parse().map_err(|_| "数据来源不正确".to_string())?),
        },
        from: day(&q.from)?,
        to: day(&q.to)?,
        error: some(&q.error),
        scope: v.scope().map(|s| s.to_vec()),
        ..PendingFilter::default()
    })
}

impl ListQuery {
    pub fn view(self) -> ListQueryView {
        ListQueryView {
            status: blank(self.status).unwrap_or_default(),
            seller: blank(self.seller).unwrap_or_default(),
            source: blank(self.source).unwrap_or_default(),
            from: blank(self.from).unwrap_or_default(),
            to: blank(self.to).unwrap_or_default(),
            error: blank(self.error).unwrap_or_default(),
        }
    }
}

async fn pending_page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    q: ListQuery,
    error: Option<String>,
    results: Vec<ItemResult>,
) -> Response {
    let after = blank(q.after.clone()).and_then(|a| a.parse::<i64>().ok());
    let q = q.view();
    let mut bad = error;
    let rows = match filter_of(&q, v) {
        Err(e) => {
            bad = Some(e);
            Vec::new()
        }
        Ok(filter) => {
            let filter = PendingFilter { after, limit: Some(PAGE), ..filter };
            match pending::list(&c.app, &filter).await {
                Ok(rows) => rows,
                Err(e) if e.kind() == ErrorKind::BadInput => {
                    bad = Some(e.to_string());
                    Vec::new()
                }
                Err(e) => return internal(e),
            }
        }
    };
    let status =
        if bad.is_some() && status == StatusCode::OK { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    let next = match rows.last() {
        Some(last) if rows.len() as i64 == PAGE => {
            let filter = q.query();
            let sep = if filter.is_empty() { "" } else { "&" };
            Some(format!("/pending?{filter}{sep}after={}", last.id))
        }
        _ => None,
    };
    let page = PendingPage {
        me: Me::of(v),
        can_act: v.may(Perm::Invoicing),
        matched: rows.len(),
        rows: rows.iter().map(|p| PendingView::of(p, c.tz)).collect(),
        next,
        q,
        error: bad,
        results,
    };
    (status, page).into_response()
}

pub async fn list(State(c): St, v: Viewer, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    pending_page(&c, &v, StatusCode::OK, q, None, Vec::new()).await
}

pub struct LineView {
    pub seq: i32,
    pub goods: String,
    pub amount: String,
    pub tax: String,
    pub bill: String,
}

pub struct AttemptView {
    pub serial: String,
    pub attempt: i32,
    pub outcome: String,
    pub message: String,
    pub started: String,
    pub settled: String,
}

pub struct CallbackView {
    pub id: i64,
    pub bill: String,
    pub interface: String,
    pub state: String,
    pub attempts: i32,
    pub error: String,
    pub created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pending_detail.html")]
struct DetailPage {
    me: Me,
    can_edit: bool,
    message: Option<String>,
    p: PendingView,
    serial: String,
    lines: Vec<LineView>,
    events: Vec<(String, String, String)>,
    attempts: Vec<AttemptView>,
    callbacks: Vec<CallbackView>,
}

pub async fn show(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    detail_page(&c, &v, StatusCode::OK, &id, None).await
}

async fn detail_page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    id: &str,
    message: Option<String>,
) -> Response {
    let missing = || error_page(StatusCode::NOT_FOUND, "没有这张待开发票");
    let Ok(id) = id.parse::<i64>() else { return missing() };
    let d = match pending::show(&c.app, id).await {
        Ok(d) if v.user.sees(&d.pending.seller_tax_no) => d,
        Ok(_) => return missing(),
        Err(e) if e.kind() == ErrorKind::NotFound => return missing(),
        Err(e) => return internal(e),
    };
    let (attempts, callbacks) =
        match (pending::attempts(&c.app, id).await, pending::callbacks(&c.app, id).await) {
            (Ok(a), Ok(cb)) => (a, cb),
            (Err(e), _) | (_, Err(e)) => return internal(e),
        };
    let page = DetailPage {
        me: Me::of(v),
        can_edit: v.may(Perm::Invoicing),
        message,
        serial: d.pending.serial_no.clone().unwrap_or_else(|| "—".into()),
        p: PendingView::of(&d.pending, c.tz),
        lines: d
            .lines
            .iter()
            .map(|l| LineView {
                seq: l.seq,
                goods: l.goods_name.clone(),
                amount: l.amount.round_dp(2).to_string(),
                tax: l.tax.round_dp(2).to_string(),
                bill: match (&l.bill_no, l.bill_line_no) {
                    (Some(b), Some(n)) => format!("{b} 第{n}行"),
                    (Some(b), None) => b.clone(),
                    _ => "—".into(),
                },
            })
            .collect(),
        events: d
            .events
            .iter()
            .map(|e| (time(&e.at, c.tz), e.event.clone(), e.detail.clone().unwrap_or_default()))
            .collect(),
        attempts: attempts
            .iter()
            .map(|a| AttemptView {
                serial: a.serial_no.clone(),
                attempt: a.attempt,
                outcome: a.outcome.clone(),
                message: a.message.clone().unwrap_or_default(),
                started: time(&a.started_at, c.tz),
                settled: opt_time(a.settled_at.as_ref(), c.tz),
            })
            .collect(),
        callbacks: callbacks
            .iter()
            .map(|cb| CallbackView {
                id: cb.id,
                bill: cb.bill_no.clone(),
                interface: cb.interface_code.clone(),
                state: cb.state.clone(),
                attempts: cb.attempts,
                error: cb.last_error.clone().unwrap_or_default(),
                created: time(&cb.created_at, c.tz),
            })
            .collect(),
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
pub struct EditForm {
    #[serde(default)]
    address_phone: String,
    #[serde(default)]
    bank_account: String,
}

/// `POST /pending/{id}/edit` (`address_phone`, `bank_account`; an empty one stays as it is): the
/// seller's fields of a pending invoice not yet with the channel (`fapiao pending edit`).
pub async fn edit(State(c): St, v: Viewer, Path(id): Path<String>, Form(f): Form<EditForm>) -> Response {
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, "pending.edit", &id).await {
        return r;
    }
    let missing = || error_page(StatusCode::NOT_FOUND, "没有这张待开发票");
    let Ok(n) = id.parse::<i64>() else { return missing() };
    let seller = match pending::show(&c.app, n).await {
        Ok(d) if v.user.sees(&d.pending.seller_tax_no) => d.pending.seller_tax_no,
        Ok(_) => return missing(),
        Err(e) if e.kind() == ErrorKind::NotFound => return missing(),
        Err(e) => return internal(e),
    };
    let change = pending::SellerEdit {
        address_phone: blank(Some(f.address_phone)),
        bank_account: blank(Some(f.bank_account)),
    };
    if change.address_phone.is_none() && change.bank_account.is_none() {
        return detail_page(
            &c,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            &id,
            Some("请填写销方地址电话或开户行及账号".into()),
        )
        .await;
    }
    let result = pending::edit(&c.app, &v.actor, n, &change).await;
    let detail = [("地址电话", &change.address_phone), ("开户行及账号", &change.bank_account)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}：{v}")))
        .collect::<Vec<_>>()
        .join("；");
    let tax_nos = vec![seller];
    let entry = Entry {
        actor: &v.actor,
        action: "pending.edit",
        target: &id,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(()) => detail_page(&c, &v, StatusCode::OK, &id, Some("已修改销方信息".into())).await,
        Err(e) if e.kind() != ErrorKind::Internal => {
            let status =
                StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            detail_page(&c, &v, status, &id, Some(e.to_string())).await
        }
        Err(e) => internal(e),
    }
}

/// `POST /pending/act` (fields `action` = issue | return | delete, `id` repeated, `reason` for a
/// return): the chosen invoices, each in the user's scope; the list again with each one's result.
pub async fn act(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let field =
        |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let action = field("action");
    let audit_action = format!("pending.{action}");
    let ids: Vec<i64> =
        fields.iter().filter(|(f, _)| f == "id").filter_map(|(_, v)| v.trim().parse().ok()).collect();
    let target: String = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, &audit_action, &target).await {
        return r;
    }
    let again = |message: String| {
        let (c, v) = (&c, &v);
        async move {
            pending_page(
                c,
                v,
                StatusCode::UNPROCESSABLE_ENTITY,
                ListQuery::default(),
                Some(message),
                Vec::new(),
            )
            .await
        }
    };
    if ids.is_empty() {
        return again("请先勾选待开发票".into()).await;
    }
    // Every chosen invoice must be one the user sees: one outside the scope refuses the request.
    let mut tax_nos = Vec::new();
    for id in &ids {
        match pending::show(&c.app, *id).await {
            Ok(d) if v.user.sees(&d.pending.seller_tax_no) => tax_nos.push(d.pending.seller_tax_no),
            Ok(_) | Err(_) => {
                let detail = format!("待开发票{id}不存在或不在您负责的企业范围内");
                fapiao_usecases::tasks::refused(&c.app, &v.actor, &audit_action, &target, &detail, &[]).await;
                return error_page(StatusCode::FORBIDDEN, &detail);
            }
        }
    }
    tax_nos.sort();
    tax_nos.dedup();
    let results: fapiao_usecases::Result<Vec<ItemResult>> = match action.as_str() {
        "issue" => pending::issue(&c.app, &v.actor, &ids, &quiet).await.map(|r| {
            let mut out: Vec<ItemResult> = r
                .report
                .issued
                .iter()
                .map(|o| ItemResult {
                    id: o.pending_id,
                    ok: o.status.as_str() == "succeeded",
                    code: None,
                    message: match (&o.invoice_num, &o.message) {
                        (Some(n), _) => format!("{}，发票号码{n}", o.status_zh),
                        (None, Some(m)) => format!("{}：{m}", o.status_zh),
                        (None, None) => o.status_zh.to_string(),
                    },
                })
                .collect();
            out.extend(r.report.refused.iter().map(|x| ItemResult {
                id: x.pending_id,
                ok: false,
                code: None,
                message: x.reason.clone(),
            }));
            out
        }),
        "return" => {
            let reason = field("reason");
            if reason.is_empty() {
                return again("退回须填写原因".into()).await;
            }
            pending::return_to_application(&c.app, &v.actor, &ids, &reason).await
        }
        "delete" => pending::delete(&c.app, &v.actor, &ids).await,
        "submit" => pending::approval(&c.app, &v.actor, &ids, &ApprovalStep::Submit).await,
        "approve" => pending::approval(&c.app, &v.actor, &ids, &ApprovalStep::Approve).await,
        "reject" => {
            let reason = field("reason");
            if reason.is_empty() {
                return again("驳回须填写原因".into()).await;
            }
            pending::approval(&c.app, &v.actor, &ids, &ApprovalStep::Reject { reason }).await
        }
        _ => return again("未知操作".into()).await,
    };
    let detail = match &results {
        Ok(items) => items
            .iter()
            .map(|i| {
                format!(
                    "{}：{}{}",
                    i.id,
                    if i.ok { "成功" } else { "拒绝" },
                    if i.message.is_empty() { String::new() } else { format!("（{}）", i.message) }
                )
            })
            .collect::<Vec<_>>()
            .join("；"),
        Err(_) => String::new(),
    };
    let outcome = match &results {
        Ok(items) if items.iter().all(|i| i.ok) => Outcome::Ok,
        _ => Outcome::Refused,
    };
    let entry = Entry {
        actor: &v.actor,
        action: &audit_action,
        target: &target,
        outcome,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    match &results {
        // Each item's own outcome: refused when any of them was.
        Ok(_) => audit::record(&c.app.pool, entry).await,
        Err(_) => audit::record_result(&c.app.pool, entry, &results, |e| e.kind()).await,
    }
    match results {
        Ok(items) => pending_page(&c, &v, StatusCode::OK, ListQuery::default(), None, items).await,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::BadInput | ErrorKind::Refused | ErrorKind::NotFound | ErrorKind::Conflict
            ) =>
        {
            again(e.to_string()).await
        }
        Err(e) => internal(e),
    }
}

pub struct ReissueView {
    pub id: i64,
    pub bills: String,
    pub message: String,
    pub reason: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "reissue.html")]
struct ReissuePage {
    me: Me,
    dry_run: bool,
    reissued: Vec<ReissueView>,
    skipped: Vec<ReissueView>,
    still_failing: Vec<ReissueView>,
    left_alone: Vec<ReissueView>,
}

fn reissue_views(items: &[issuing::ReissueItem]) -> Vec<ReissueView> {
    items
        .iter()
        .map(|i| ReissueView {
            id: i.pending_id,
            bills: i.bills.join("、"),
            message: i.message.clone().unwrap_or_default(),
            reason: i.reason.clone(),
        })
        .collect()
}

/// The failed invoices a scoped user may have reissued (all, `None`, for users who see all).
async fn reissue_scope(c: &Console, v: &Viewer) -> Result<Option<Vec<i64>>, Response> {
    if v.scope().is_none() {
        return Ok(None);
    }
    let filter = PendingFilter {
        status: Some("failed".into()),
        scope: v.scope().map(|s| s.to_vec()),
        ..PendingFilter::default()
    };
    Ok(Some(pending::matching_ids(&c.app, &filter).await.map_err(internal)?))
}

/// `GET /pending/reissue`: 自动重开 as a dry run — what would go now, what waits and why, what no
/// fragment matches — with the button to run it on exactly those.
pub async fn reissue_preview(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::Invoicing) {
        return r;
    }
    let only = match reissue_scope(&c, &v).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let now = chrono::Utc::now();
    match issuing::reissue(&c.app, &v.actor, now, true, only.as_deref(), &quiet).await {
        Ok(r) => ReissuePage {
            me: Me::of(&v),
            dry_run: true,
            reissued: reissue_views(&r.report.reissued),
            skipped: reissue_views(&r.report.skipped),
            still_failing: reissue_views(&r.report.still_failing),
            left_alone: reissue_views(&r.report.left_alone),
        }
        .into_response(),
        Err(e) => internal(e),
    }
}

/// `POST /pending/reissue` (`id` repeated: the previewed ones): 自动重开 on those, under the same
/// rules (each in the user's scope); the report.
pub async fn reissue_run(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let ids: Vec<i64> =
        fields.iter().filter(|(f, _)| f == "id").filter_map(|(_, v)| v.trim().parse().ok()).collect();
    let target: String = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, "pending.reissue", &target).await {
        return r;
    }
    let allowed = match reissue_scope(&c, &v).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Some(allowed) = &allowed
        && let Some(id) = ids.iter().find(|id| !allowed.contains(id))
    {
        let detail = format!("待开发票{id}不存在或不在您负责的企业范围内");
        fapiao_usecases::tasks::refused(&c.app, &v.actor, "pending.reissue", &target, &detail, &[]).await;
        return error_page(StatusCode::FORBIDDEN, &detail);
    }
    if ids.is_empty() {
        return pending_page(
            &c,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
            ListQuery::default(),
            Some("没有可重开的发票".into()),
            Vec::new(),
        )
        .await;
    }
    let result = issuing::reissue(&c.app, &v.actor, chrono::Utc::now(), false, Some(&ids), &quiet).await;
    let detail = match &result {
        Ok(r) => format!(
            "重开{}张，仍失败{}张，暂缓{}张",
            r.report.reissued.len(),
            r.report.still_failing.len(),
            r.report.skipped.len()
        ),
        Err(_) => String::new(),
    };
    let tax_nos: Vec<String> = v.scope().map(|s| s.to_vec()).unwrap_or_default();
    let entry = Entry {
        actor: &v.actor,
        action: "pending.reissue",
        target: &target,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(r) => ReissuePage {
            me: Me::of(&v),
            dry_run: false,
            reissued: reissue_views(&r.report.reissued),
            skipped: reissue_views(&r.report.skipped),
            still_failing: reissue_views(&r.report.still_failing),
            left_alone: reissue_views(&r.report.left_alone),
        }
        .into_response(),
        Err(e) => internal(e),
    }
}
