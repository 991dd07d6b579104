//! 开票异常处理 (seed 000): pending invoices and what a person does with the failed ones —
//! return their lines to the application, delete them, edit the seller's fields. The channel is
//! asked about an invoice's serial before anything changes, so an invoice it did issue is
//! recorded, never returned.

use fapiao_invoicing::exceptions;

pub use fapiao_invoicing::exceptions::{ApprovalStep, ItemResult, PendingDetail, PendingFilter, PendingRow};
pub use fapiao_invoicing::issue::IssueOutcome;
pub use fapiao_invoicing::reissue::ChosenReport;

use crate::{Actor, App, Error, Result};

/// Pending invoices (待开发票) matching the filter (status in English or 未开票 … 开票成功), a page
/// of them with the filter's `after`/`limit`.
pub async fn list(app: &App, filter: &PendingFilter) -> Result<Vec<PendingRow>> {
    Ok(exceptions::list(&app.invoicing(), filter).await?)
}

/// The ids of every pending invoice matching the filter (what "all matching" acts on).
pub async fn matching_ids(app: &App, filter: &PendingFilter) -> Result<Vec<i64>> {
    Ok(exceptions::matching_ids(&app.invoicing(), filter).await?)
}

/// 上查: one pending invoice with the application lines it came from, and its history.
pub async fn show(app: &App, id: i64) -> Result<PendingDetail> {
    Ok(exceptions::show(&app.invoicing(), id).await?)
}

/// 开票 on chosen invoices (未开票 or 开票失败): a person decided, so no fragment or repair time
/// holds them back; a failed one's old serial is asked about first (never issued twice).
pub async fn issue(
    app: &App,
    actor: &Actor,
    ids: &[i64],
    progress: crate::Progress<'_, IssueOutcome>,
) -> Result<IssueChosenReport> {
    tracing::info!(actor = %actor, ?ids, "issue chosen pending invoices");
    let inv = app.invoicing();
    let report = fapiao_invoicing::reissue::issue_chosen(&inv, ids, progress).await?;
    let callbacks = fapiao_invoicing::callbacks::deliver(&inv).await?;
    Ok(IssueChosenReport { report, callbacks })
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct IssueChosenReport {
    #[serde(flatten)]
    pub report: ChosenReport,
    pub callbacks: fapiao_invoicing::callbacks::DeliveryReport,
}

/// 返回开票申请单: per id, returned or refused with the reason.
pub async fn return_to_application(
    app: &App,
    actor: &Actor,
    ids: &[i64],
    reason: &str,
) -> Result<Vec<ItemResult>> {
    if reason.trim().is_empty() {
        return Err(Error::bad_input("USAGE", "a return needs --reason (the ERP is told it)"));
    }
    tracing::info!(actor = %actor, ?ids, "return pending invoices to their applications");
    Ok(exceptions::return_to_application(&app.invoicing(), ids, reason.trim()).await?)
}

/// Delete failed pending invoices: per id, deleted or refused with the reason.
pub async fn delete(app: &App, actor: &Actor, ids: &[i64]) -> Result<Vec<ItemResult>> {
    tracing::info!(actor = %actor, ?ids, "delete pending invoices");
    Ok(exceptions::delete(&app.invoicing(), ids).await?)
}

/// The seller's fields a person may change on a pending invoice.
#[derive(Clone, Debug, Default)]
pub struct SellerEdit {
    /// 销方地址电话.
    pub address_phone: Option<String>,
    /// 销方开户行及账号.
    pub bank_account: Option<String>,
}

/// Change the seller's address/phone and/or bank (暂存 or 无需审批, not with the channel).
pub async fn edit(app: &App, actor: &Actor, id: i64, edit: &SellerEdit) -> Result<()> {
    if edit.address_phone.is_none() && edit.bank_account.is_none() {
        return Err(Error::bad_input("USAGE", "give --seller-address-phone and/or --seller-bank-account"));
    }
    tracing::info!(actor = %actor, id, "edit pending invoice");
    let inv = app.invoicing();
    Ok(exceptions::edit(&inv, id, edit.address_phone.as_deref(), edit.bank_account.as_deref()).await?)
}

/// 审批: submit (暂存 → 已提交), approve (已提交 → 已审核) or reject (已提交 → 暂存, with the
/// reason); per id, done or refused with why. Who and when go into each invoice's history.
pub async fn approval(app: &App, actor: &Actor, ids: &[i64], step: &ApprovalStep) -> Result<Vec<ItemResult>> {
    if let ApprovalStep::Reject { reason } = step
        && reason.trim().is_empty()
    {
        return Err(Error::bad_input("USAGE", "a rejection needs --reason"));
    }
    tracing::info!(actor = %actor, ?ids, ?step, "approval step");
    Ok(exceptions::approval(&app.invoicing(), ids, step, &actor.to_string()).await?)
}

/// One issuing attempt (a serial number sent to the channel) of a pending invoice.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub serial_no: String,
    pub attempt: i32,
    /// sending, accepted, lost, refused, succeeded, failed, never_accepted.
    pub outcome: String,
    pub message: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub settled_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The attempts (serials) of one pending invoice, in order.
pub async fn attempts(app: &App, id: i64) -> Result<Vec<AttemptRow>> {
    Ok(sqlx::query_as(
        "SELECT serial_no, attempt, outcome, message, started_at, settled_at
           FROM issue_attempt WHERE pending_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await?)
}

/// A callback (按单回调) to the ERP of one of a pending invoice's bills.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct BillCallback {
    pub id: i64,
    pub bill_no: String,
    pub interface_code: String,
    /// pending, succeeded, failed.
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The callbacks of the bills a pending invoice carries, oldest first.
pub async fn callbacks(app: &App, id: i64) -> Result<Vec<BillCallback>> {
    Ok(sqlx::query_as(
        "SELECT c.id, c.bill_no, c.interface_code, c.state, c.attempts, c.last_error, c.created_at
           FROM callback c WHERE c.bill_no IN (SELECT bill_no FROM pending_bill WHERE pending_id = $1)
          ORDER BY c.id",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await?)
}
