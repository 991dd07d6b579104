//! 开票异常处理: list pending invoices, return them to their application, delete failed ones,
//! edit the seller's address/phone/bank.
//!
//! Returning or deleting an invoice the channel may have issued would let it be issued again, so
//! both first ask the channel about its serial: 开票中 is asked again; only a confirmed failure
//! (or a serial the channel never saw) lets it go.

use chrono::{DateTime, NaiveDate, Utc};
use fapiao_channel::codes::{IssueStatus, error as code};
use fapiao_schemas::{ApprovalState, DataSource, InvoiceKind, PendingStatus};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{Invoicing, InvoicingError, Result, record};

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PendingRow {
    pub id: i64,
    pub bills: Vec<String>,
    pub status: PendingStatus,
    /// `status.label_zh()`.
    #[sqlx(skip)]
    pub status_zh: &'static str,
    /// 数据来源.
    pub data_source: DataSource,
    pub approval_state: ApprovalState,
    pub serial_no: Option<String>,
    pub seller_tax_no: String,
    pub buyer_name: String,
    pub invoice_kind: InvoiceKind,
    pub total: Decimal,
    pub error_message: Option<String>,
    pub retry_not_before: Option<DateTime<Utc>>,
    pub reissue_count: i32,
    /// The issued invoice's file (PDF), once there is one.
    pub invoice_file_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which pending invoices to list; every field narrows, `None` does not.
#[derive(Clone, Debug, Default)]
pub struct PendingFilter {
    /// A status's name or label (`failed` or 开票失败, …).
    pub status: Option<String>,
    pub seller_tax_no: Option<String>,
    pub source: Option<DataSource>,
    /// Created on or after / on or before (dates in `general.time_zone`).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Part of the error message.
    pub error: Option<String>,
    /// Only these sellers (a console user's tenant scope); `None`: all.
    pub scope: Option<Vec<String>>,
    /// Keyset page: only invoices after this id (the last id of the previous page).
    pub after: Option<i64>,
    /// At most this many (a page); `None`: every match (the CLI).
    pub limit: Option<i64>,
}

/// The matching conditions, shared by the list, its count and its ids ($1–$7, $8 the scope).
const MATCHING: &str = "p.deleted_at IS NULL AND ($1::text IS NULL OR p.status = $1)
            AND ($2::text IS NULL OR p.seller_tax_no = $2) AND ($3::text IS NULL OR p.data_source = $3)
            AND ($4::date IS NULL OR (p.created_at AT TIME ZONE $7)::date >= $4)
            AND ($5::date IS NULL OR (p.created_at AT TIME ZONE $7)::date <= $5)
            AND ($6::text IS NULL OR strpos(p.error_message, $6) > 0)
            AND ($8::text[] IS NULL OR p.seller_tax_no = ANY($8))";

impl PendingFilter {
    fn status(&self) -> Result<Option<PendingStatus>> {
        let wanted = self.status.as_deref().map(|s| {
            PendingStatus::from_name_or_label(s).ok_or_else(|| InvoicingError::Invalid {
                code: "STATUS_UNKNOWN",
                message: format!("unknown status {s:?}: not_issued, submitted, issuing, failed, succeeded"),
            })
        });
        wanted.transpose()
    }

    /// `sql` with the filter's parameters $1–$8 bound.
    fn bind<'q, O>(
        &'q self,
        sql: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
        status: Option<PendingStatus>,
        tz: &'q str,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        sql.bind(status)
            .bind(&self.seller_tax_no)
            .bind(self.source)
            .bind(self.from)
            .bind(self.to)
            .bind(&self.error)
            .bind(tz)
            .bind(&self.scope)
    }
}

/// Live pending invoices matching `filter`, oldest first; a page of them with `after`/`limit`
/// (the primary key serves the order; `pending_invoice_status_id` and `pending_invoice_seller_id`
/// a status or seller filter). Not a prepared statement kept for reuse: PostgreSQL plans an
/// unnamed one with the values bound, so the filters left out (`$n IS NULL`) fold away.
pub async fn list(inv: &Invoicing, filter: &PendingFilter) -> Result<Vec<PendingRow>> {
    let status = filter.status()?;
    let tz = inv.settings.time_zone().name();
    // The same order either way (one status); said with the status first, it is the order of
    // `pending_invoice_status_id`. The file is looked up per row shown: a join let the planner merge with every issued invoice up to the page's first
    // id (200 ms for the failed ones, all recent, at 1M rows).
    let order = if status.is_some() { "p.status, p.id" } else { "p.id" };
    let sql = format!(
        "SELECT p.*, (SELECT i.invoice_file_url FROM issued_invoice i WHERE i.pending_id = p.id) AS invoice_file_url,
                ARRAY(SELECT bill_no FROM pending_bill b WHERE b.pending_id = p.id ORDER BY bill_no) AS bills
           FROM pending_invoice p
          WHERE {MATCHING} AND ($9::bigint IS NULL OR p.id > $9)
          ORDER BY {order} LIMIT $10"
    );
    let mut rows: Vec<PendingRow> = filter
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(sql)), status, tz)
        .bind(filter.after)
        .bind(filter.limit)
        .persistent(false)
        .fetch_all(&inv.pool)
        .await?;
    for r in &mut rows {
        r.status_zh = r.status.label_zh();
    }
    Ok(rows)
}

/// The ids of every live pending invoice matching `filter` (its page fields ignored), in order:
/// what "all matching" acts on, and how many that is.
pub async fn matching_ids(inv: &Invoicing, filter: &PendingFilter) -> Result<Vec<i64>> {
    let status = filter.status()?;
    let tz = inv.settings.time_zone().name();
    let sql = format!("SELECT p.id FROM pending_invoice p WHERE {MATCHING} ORDER BY p.id");
    let ids: Vec<(i64,)> = filter
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(sql)), status, tz)
        .persistent(false)
        .fetch_all(&inv.pool)
        .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// 上查: a pending invoice's lines with the application lines they came from, and its history.
#[derive(Clone, Debug, Serialize)]
pub struct PendingDetail {
    pub pending: PendingRow,
    pub lines: Vec<SourceLine>,
    pub events: Vec<EventRow>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct SourceLine {
    pub seq: i32,
    pub goods_name: String,
    pub amount: Decimal,
    pub tax: Decimal,
    /// The application line (开票申请单明细) it came from; none for a red invoice's lines.
    pub bill_no: Option<String>,
    pub bill_line_no: Option<i32>,
    pub bill_date: Option<NaiveDate>,
    pub bill_source: Option<DataSource>,
    pub bill_line_amount: Option<Decimal>,
    pub bill_line_total: Option<Decimal>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub event: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

pub async fn show(inv: &Invoicing, id: i64) -> Result<PendingDetail> {
    let mut rows: Vec<PendingRow> = sqlx::query_as(
        "SELECT p.*, i.invoice_file_url,
                ARRAY(SELECT bill_no FROM pending_bill b WHERE b.pending_id = p.id ORDER BY bill_no) AS bills
           FROM pending_invoice p LEFT JOIN issued_invoice i ON i.pending_id = p.id
          WHERE p.id = $1 AND p.deleted_at IS NULL",
    )
    .bind(id)
    .fetch_all(&inv.pool)
    .await?;
    let mut pending = rows
        .pop()
        .ok_or_else(|| InvoicingError::not_found("PENDING_NOT_FOUND", format!("待开发票{id}不存在")))?;
    pending.status_zh = pending.status.label_zh();
    let lines = sqlx::query_as(
        "SELECT pl.seq, pl.goods_name, pl.amount, pl.tax, pl.bill_no, pl.bill_line_no, a.bill_date, a.source AS bill_source,
                al.amount AS bill_line_amount, al.total AS bill_line_total
           FROM pending_line pl
           LEFT JOIN application_line al ON al.bill_no = pl.bill_no AND al.line_no = pl.bill_line_no
           LEFT JOIN application a ON a.bill_no = pl.bill_no
          WHERE pl.pending_id = $1 ORDER BY pl.seq",
    )
    .bind(id)
    .fetch_all(&inv.pool)
    .await?;
    let events =
        sqlx::query_as("SELECT event, detail, at FROM pending_event WHERE pending_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&inv.pool)
            .await?;
    Ok(PendingDetail { pending, lines, events })
}

/// What happened to one id of a batch operation.
#[derive(Clone, Debug, Serialize)]
pub struct ItemResult {
    pub id: i64,
    pub ok: bool,
    pub code: Option<String>,
    pub message: String,
}

impl ItemResult {
    fn ok(id: i64, message: impl Into<String>) -> ItemResult {
        ItemResult { id, ok: true, code: None, message: message.into() }
    }
    pub(crate) fn refused(id: i64, e: InvoicingError) -> ItemResult {
        use fapiao_schemas::Coded;
        ItemResult { id, ok: false, code: Some(e.code().to_string()), message: e.to_string() }
    }
}

/// 返回开票申请单 (退回): only 未开票 and 开票失败 (confirmed by the channel); the invoice's lines
/// are open on their application again, and each of its bills' ERP hears of it with the reason
/// (a callback with returnCode 9999, in the same transaction).
pub async fn return_to_application(inv: &Invoicing, ids: &[i64], reason: &str) -> Result<Vec<ItemResult>> {
    let mut out = Vec::new();
    let allowed = [PendingStatus::NotIssued, PendingStatus::Failed];
    for &id in ids {
        out.push(match release(inv, id, &allowed, Release::Returned { reason }).await {
            Ok(()) => ItemResult::ok(id, "已返回开票申请单"),
            Err(e) if e.is_about_the_item() => ItemResult::refused(id, e),
            Err(e) => return Err(e),
        });
    }
    Ok(out)
}

/// Delete failed (abnormal) pending invoices; their lines are open on their application again.
pub async fn delete(inv: &Invoicing, ids: &[i64]) -> Result<Vec<ItemResult>> {
    let mut out = Vec::new();
    for &id in ids {
        out.push(match release(inv, id, &[PendingStatus::Failed], Release::Deleted).await {
            Ok(()) => ItemResult::ok(id, "已删除"),
            Err(e) if e.is_about_the_item() => ItemResult::refused(id, e),
            Err(e) => return Err(e),
        });
    }
    Ok(out)
}

/// How a pending invoice is taken out.
#[derive(Clone, Copy)]
enum Release<'a> {
    Returned { reason: &'a str },
    Deleted,
}

/// Take a pending invoice out (return or delete) once its status allows and the channel confirms.
async fn release(inv: &Invoicing, id: i64, allowed: &[PendingStatus], how: Release<'_>) -> Result<()> {
    let event = match how {
        Release::Returned { .. } => "returned",
        Release::Deleted => "deleted",
    };
    let (st, serial, seller): (PendingStatus, Option<String>, String) = sqlx::query_as(
        "SELECT status, serial_no, seller_tax_no FROM pending_invoice WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&inv.pool)
    .await?
    .ok_or_else(|| InvoicingError::not_found("PENDING_NOT_FOUND", format!("待开发票{id}不存在")))?;
    if !allowed.contains(&st) {
        let names: Vec<&str> = allowed.iter().map(|s| s.label_zh()).collect();
        return Err(InvoicingError::refused(
            "PENDING_STATE",
            format!(
                "只有{}的发票可以{}，该发票为{}",
                names.join("、"),
                if event == "deleted" { "删除" } else { "返回开票申请单" },
                st.label_zh()
            ),
        ));
    }
    if let Some(serial) = serial {
        confirm_not_issued(inv, id, &serial, &seller).await?;
    }
    let mut tx = inv.pool.begin().await?;
    let taken = sqlx::query("UPDATE pending_invoice SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL AND status = $2")
        .bind(id)
        .bind(st)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if taken == 0 {
        return Err(InvoicingError::refused(
            "PENDING_CHANGED",
            format!("待开发票{id}的状态刚刚发生了变化，请重试"),
        ));
    }
    let reason = match how {
        Release::Returned { reason } => Some(reason),
        Release::Deleted => None,
    };
    record::event(&mut tx, id, event, reason).await?;
    let bills = record::bills_of(&mut tx, id).await?;
    record::refresh_bill_states(&mut tx, &bills).await?;
    if let Some(reason) = reason {
        crate::callbacks::enqueue_returned(&mut tx, id, &bills, reason).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Refuse unless the channel confirms `serial` failed or never saw it. An issued one is
/// recorded on the way (our books were behind the channel).
async fn confirm_not_issued(inv: &Invoicing, id: i64, serial: &str, seller: &str) -> Result<()> {
    let answer = inv.wait_final(serial, seller).await;
    match answer {
        Ok(r) if r.issue_status == IssueStatus::Failed => Ok(()),
        Ok(r) if r.issue_status == IssueStatus::Succeeded => {
            let mut tx = inv.pool.begin().await?;
            record::succeeded(&mut tx, id, &r).await?;
            tx.commit().await?;
            Err(InvoicingError::refused(
                "PENDING_ACTUALLY_ISSUED",
                format!(
                    "渠道显示该发票已开票成功（发票号码{}{}），不能返回或删除；已更新为开票成功",
                    r.invoice_code, r.invoice_num
                ),
            ))
        }
        Ok(_) => {
            Err(InvoicingError::refused("PENDING_STILL_ISSUING", "渠道显示该发票仍在开票中，请稍后再试"))
        }
        Err(e) if e.api_code() == Some(code::NOT_FOUND) => Ok(()),
        Err(e) => Err(InvoicingError::Unconfirmed(e)),
    }
}

/// Seller address/phone and bank, for pending invoices in 暂存 or 无需审批 that are not with
/// the channel (other fields change only by returning to the application).
pub async fn edit(
    inv: &Invoicing,
    id: i64,
    address_phone: Option<&str>,
    bank_account: Option<&str>,
) -> Result<()> {
    let mut tx = inv.pool.begin().await?;
    let (st, approval): (PendingStatus, ApprovalState) = sqlx::query_as(
        "SELECT status, approval_state FROM pending_invoice WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| InvoicingError::not_found("PENDING_NOT_FOUND", format!("待开发票{id}不存在")))?;
    if !matches!(approval, ApprovalState::Draft | ApprovalState::NotRequired) {
        return Err(InvoicingError::refused(
            "PENDING_NOT_EDITABLE",
            format!("只有暂存或无需审批状态的发票可以修改，该发票为{approval}"),
        ));
    }
    if st != PendingStatus::NotIssued && st != PendingStatus::Failed {
        return Err(InvoicingError::refused(
            "PENDING_NOT_EDITABLE",
            format!("{}的发票不能修改", st.label_zh()),
        ));
    }
    sqlx::query(
        "UPDATE pending_invoice SET seller_address_phone = coalesce($2, seller_address_phone),
                seller_bank_account = coalesce($3, seller_bank_account), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(address_phone)
    .bind(bank_account)
    .execute(&mut *tx)
    .await?;
    let detail = format!(
        "销方地址电话={} 销方开户行及账号={}",
        address_phone.unwrap_or("(不变)"),
        bank_account.unwrap_or("(不变)")
    );
    record::event(&mut tx, id, "edited", Some(&detail)).await?;
    tx.commit().await?;
    Ok(())
}

/// A step of approval (审批) a person takes on a pending invoice.
#[derive(Clone, Debug)]
pub enum ApprovalStep {
    /// 提交: 暂存 → 已提交.
    Submit,
    /// 审核: 已提交 → 已审核.
    Approve,
    /// 驳回: 已提交 → 暂存, with the reason.
    Reject { reason: String },
}

impl ApprovalStep {
    fn transition(&self) -> (ApprovalState, ApprovalState, &'static str) {
        match self {
            ApprovalStep::Submit => (ApprovalState::Draft, ApprovalState::Submitted, "提交"),
            ApprovalStep::Approve => (ApprovalState::Submitted, ApprovalState::Approved, "审核"),
            ApprovalStep::Reject { .. } => (ApprovalState::Submitted, ApprovalState::Draft, "驳回"),
        }
    }
}

/// Take `step` on each id (one transaction each); who took it and when go into its history.
pub async fn approval(
    inv: &Invoicing,
    ids: &[i64],
    step: &ApprovalStep,
    who: &str,
) -> Result<Vec<ItemResult>> {
    let (from, to, verb) = step.transition();
    let mut out = Vec::new();
    for &id in ids {
        let mut tx = inv.pool.begin().await?;
        let current: Option<(PendingStatus, ApprovalState)> = sqlx::query_as(
            "SELECT status, approval_state FROM pending_invoice WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let refusal = match current {
            None => Some(InvoicingError::not_found("PENDING_NOT_FOUND", format!("待开发票{id}不存在"))),
            Some((st, _)) if !matches!(st, PendingStatus::NotIssued | PendingStatus::Failed) => {
                Some(InvoicingError::refused(
                    "PENDING_APPROVAL_STATE",
                    format!("{}的发票不能{verb}", st.label_zh()),
                ))
            }
            Some((_, state)) if state != from => Some(InvoicingError::refused(
                "PENDING_APPROVAL_STATE",
                format!("只有{from}的发票可以{verb}，该发票为{state}"),
            )),
            Some(_) => None,
        };
        if let Some(e) = refusal {
            out.push(ItemResult::refused(id, e));
            continue;
        }
        sqlx::query("UPDATE pending_invoice SET approval_state = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        let detail = match step {
            ApprovalStep::Reject { reason } => format!("{who}：{from}→{to}，驳回原因：{reason}"),
            _ => format!("{who}：{from}→{to}"),
        };
        record::event(&mut tx, id, "approval", Some(&detail)).await?;
        tx.commit().await?;
        out.push(ItemResult::ok(id, format!("{verb}：{from}→{to}")));
    }
    Ok(out)
}
