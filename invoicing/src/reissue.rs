//! 自动重开: failed pending invoices — blue and red — whose message contains a
//! `sim_auto_issue_config` fragment are issued again — not before a "请<time>后再试" time in the message, at most
//! `invoicing.max_reissues` times each. The old serial is asked about first: a serial the
//! channel never saw is sent again as is; a new serial is taken only when the channel confirms
//! the old one failed; one it reports issued is recorded, not reissued.

use chrono::{DateTime, Utc};
use fapiao_channel::codes::{IssueStatus, error as code};
use fapiao_schemas::params::SIM_AUTO_ISSUE_CONFIG;
use fapiao_schemas::{ApprovalState, Coded, Money, PendingStatus, red_flush};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::issue::{IssueOutcome, record_answer};
use crate::redflush::HOLDING;
use crate::{Invoicing, InvoicingError, Result};

#[derive(Clone, Debug, Serialize)]
pub struct ReissueItem {
    pub pending_id: i64,
    pub bills: Vec<String>,
    /// For a red invoice: the number of the blue invoice it red-flushes.
    pub red_of: Option<String>,
    /// The serial of the failed attempt.
    pub serial_no: Option<String>,
    pub message: Option<String>,
    /// Why it was skipped or left alone; the new state when reissued.
    pub reason: String,
    /// After the reissue: the serial used and the state reached.
    pub outcome: Option<IssueOutcome>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ReissueReport {
    pub dry_run: bool,
    /// Reissued (or, in a dry run, would be) and issued or still with the channel.
    pub reissued: Vec<ReissueItem>,
    /// Matching, but not now: before their time, over the limit, or the channel said otherwise.
    pub skipped: Vec<ReissueItem>,
    /// Reissued and failed again.
    pub still_failing: Vec<ReissueItem>,
    /// Failures no fragment matches: left for a person (开票异常处理).
    pub left_alone: Vec<ReissueItem>,
}

pub async fn reissue(
    inv: &Invoicing,
    now: DateTime<Utc>,
    dry_run: bool,
    progress: &(dyn Fn(&IssueOutcome) + Send + Sync),
) -> Result<ReissueReport> {
    reissue_some(inv, now, dry_run, None, progress).await
}

/// `reissue` aimed at chosen invoices (`fapiao reissue --id …`), under the same rules; one that
/// is not 开票失败 is reported as skipped, an id that names nothing refuses the whole request.
pub async fn reissue_some(
    inv: &Invoicing,
    now: DateTime<Utc>,
    dry_run: bool,
    only: Option<&[i64]>,
    progress: &(dyn Fn(&IssueOutcome) + Send + Sync),
) -> Result<ReissueReport> {
    let mut not_failed = Vec::new();
    if let Some(ids) = only {
        for (id, status) in statuses(inv, ids).await? {
            if status != PendingStatus::Failed {
                not_failed.push(ReissueItem {
                    pending_id: id,
                    bills: Vec::new(),
                    red_of: None,
                    serial_no: None,
                    message: None,
                    reason: format!("只有开票失败的发票可以重开，该发票为{}", status.label_zh()),
                    outcome: None,
                });
            }
        }
    }
    let fragments: Vec<String> = fapiao_store::params::family(&inv.pool, SIM_AUTO_ISSUE_CONFIG)
        .await
        .map_err(InvoicingError::Param)?
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| !v.trim().is_empty())
        .collect();
    let rows: Vec<Failed> = sqlx::query_as(
        "SELECT p.id, p.serial_no, p.seller_tax_no, p.error_message, p.retry_not_before, p.reissue_count,
                ARRAY(SELECT bill_no FROM pending_bill b WHERE b.pending_id = p.id ORDER BY bill_no) AS bills,
                (SELECT b.invoice_num FROM issued_invoice b WHERE b.id = p.blue_invoice_id) AS red_of
           FROM pending_invoice p WHERE p.deleted_at IS NULL AND p.status = 'failed'
            AND ($1::bigint[] IS NULL OR p.id = ANY($1)) ORDER BY p.id",
    )
    .bind(only)
    .fetch_all(&inv.pool)
    .await?;
    let max = inv.settings.invoicing.max_reissues as i32;
    let mut report = ReissueReport { dry_run, skipped: not_failed, ..ReissueReport::default() };
    let mut chosen: Vec<ReissueItem> = Vec::new();
    for r in rows {
        let mut item = ReissueItem {
            pending_id: r.id,
            bills: r.bills,
            red_of: r.red_of,
            serial_no: r.serial_no,
            message: r.error_message.clone(),
            reason: String::new(),
            outcome: None,
        };
        let text = r.error_message.unwrap_or_default();
        let Some(fragment) = fragments.iter().find(|f| text.contains(f.as_str())) else {
            item.reason = "错误信息不含任何自动重开配置（sim_auto_issue_config）片段，留待人工处理".into();
            report.left_alone.push(item);
            continue;
        };
        let count = r.reissue_count;
        if count >= max {
            item.reason = format!("已重开{count}次，达到上限{max}次");
            report.skipped.push(item);
            continue;
        }
        if let Some(at) = r.retry_not_before.filter(|at| *at > now) {
            let local = at.with_timezone(&chrono_tz::Asia::Shanghai);
            item.reason = format!("未到可重开时间：请{}后再试", local.format("%Y-%m-%d %H:%M"));
            report.skipped.push(item);
            continue;
        }
        if dry_run {
            item.reason = format!("将重开（匹配“{fragment}”）");
            report.reissued.push(item);
            continue;
        }
        match reopen(inv, item.pending_id, item.serial_no.as_deref(), &r.seller_tax_no).await? {
            Ok(how) => {
                item.reason = how;
                chosen.push(item);
            }
            Err(why) => {
                item.reason = why;
                report.skipped.push(item);
            }
        }
    }
    let ids: Vec<i64> = chosen.iter().map(|i| i.pending_id).collect();
    let outcomes = crate::issue::issue(inv, &ids, progress).await?;
    for (mut item, outcome) in chosen.into_iter().zip(outcomes) {
        let failed = outcome.status == PendingStatus::Failed;
        item.outcome = Some(outcome);
        if failed {
            report.still_failing.push(item);
        } else {
            report.reissued.push(item);
        }
    }
    Ok(report)
}

/// A failed pending invoice as `reissue` reads it.
#[derive(sqlx::FromRow)]
struct Failed {
    id: i64,
    serial_no: Option<String>,
    seller_tax_no: String,
    error_message: Option<String>,
    retry_not_before: Option<DateTime<Utc>>,
    reissue_count: i32,
    bills: Vec<String>,
    red_of: Option<String>,
}

/// Put a failed invoice back to 未开票 for reissue, deciding its serial by what the channel says
/// of the old one. `Err(reason)` when it must not be reissued now.
async fn reopen(
    inv: &Invoicing,
    id: i64,
    serial: Option<&str>,
    seller: &str,
) -> Result<std::result::Result<String, String>> {
    let keep_serial = match serial {
        None => false,
        Some(s) => match inv.channel.query_issue(s, seller).await {
            Ok(r) if r.issue_status == IssueStatus::Failed => false,
            Ok(r) if r.issue_status == IssueStatus::Succeeded => {
                let mut tx = inv.pool.begin().await?;
                record_answer(&mut tx, id, &r).await?;
                tx.commit().await?;
                return Ok(Err(format!(
                    "渠道显示已开票成功（{}{}），已更新状态，未重开",
                    r.invoice_code, r.invoice_num
                )));
            }
            Ok(_) => return Ok(Err("渠道显示仍在开票中，未重开".into())),
            Err(e) if e.api_code() == Some(code::NOT_FOUND) => true,
            Err(e) => return Ok(Err(format!("无法向渠道确认原流水号的结果，未重开：{e}"))),
        },
    };
    let mut tx = inv.pool.begin().await?;
    if let Some(refusal) = red_amount_taken(&mut tx, id).await? {
        return Ok(Err(refusal));
    }
    let n = sqlx::query(
        "UPDATE pending_invoice
            SET status = 'not_issued', serial_no = CASE WHEN $2 THEN serial_no END, reissue_count = reissue_count + 1,
                retry_not_before = NULL, updated_at = now()
          WHERE id = $1 AND status = 'failed'",
    )
    .bind(id)
    .bind(keep_serial)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(Err("状态刚刚发生了变化，未重开".into()));
    }
    let how = if keep_serial {
        "渠道未受理原流水号，以原流水号重开"
    } else {
        "渠道确认原流水号开票失败，以新流水号重开"
    };
    crate::record::event(&mut tx, id, "reissue", Some(how)).await?;
    // A red invoice's request is issuing again (its red invoice decides how it ends).
    sqlx::query(
        "UPDATE red_flush SET state = 'issuing', code = NULL, message = NULL, updated_at = now()
          WHERE pending_id = $1 AND state = 'failed'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(how.to_string()))
}

/// A failed red invoice reserves nothing of its blue invoice (a red-flush requested since may
/// have taken the amount), so before it is issued again the amount rule is asked once more,
/// under a lock on the blue invoice as red-flush requests are. `Some(reason)` when it no
/// longer fits; `None` for a blue invoice or a red one that fits.
async fn red_amount_taken(tx: &mut sqlx::PgConnection, id: i64) -> Result<Option<String>> {
    let row: Option<(Decimal, Decimal, Decimal)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT abs(p.total), b.remaining,
                (SELECT coalesce(sum(abs(r.total)), 0) FROM pending_invoice r
                  WHERE r.blue_invoice_id = b.id AND {HOLDING} AND r.id <> p.id)
           FROM pending_invoice p JOIN issued_invoice b ON b.id = p.blue_invoice_id
          WHERE p.id = $1 AND p.invoice_property = 1
            FOR UPDATE OF b"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((own, remaining, reserved)) = row else { return Ok(None) };
    let money = |d: Decimal| Money::exact(d).expect("stored at scale 2");
    let left = red_flush::remaining(money(remaining), Money::ZERO, money(reserved));
    Ok(red_flush::check_amount(money(own), left)
        .err()
        .map(|e| format!("{}（{}，剩余{left}），未重开", e.message_zh(), e.code())))
}

/// The status of each id; an id that names no live pending invoice is `PENDING_NOT_FOUND`.
async fn statuses(inv: &Invoicing, ids: &[i64]) -> Result<Vec<(i64, PendingStatus)>> {
    let found: Vec<(i64, PendingStatus)> = sqlx::query_as(
        "SELECT id, status FROM pending_invoice WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id",
    )
    .bind(ids)
    .fetch_all(&inv.pool)
    .await?;
    if let Some(missing) = ids.iter().find(|id| !found.iter().any(|(f, _)| f == *id)) {
        return Err(InvoicingError::not_found("PENDING_NOT_FOUND", format!("待开发票{missing}不存在")));
    }
    Ok(found)
}

/// What 开票 on chosen invoices did: issued (or still with the channel), and refused with why.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChosenReport {
    pub issued: Vec<IssueOutcome>,
    pub refused: Vec<ReissueItem>,
}

/// 开票 on chosen pending invoices (开票异常处理): a person decided, so neither the fragments of
/// `sim_auto_issue_config` nor a repair time hold them back — but a failed one's old serial is
/// still asked about first, exactly as auto-reissue does, so nothing is issued twice. Only
/// 未开票 and 开票失败 invoices go.
pub async fn issue_chosen(
    inv: &Invoicing,
    ids: &[i64],
    progress: &(dyn Fn(&IssueOutcome) + Send + Sync),
) -> Result<ChosenReport> {
    let mut report = ChosenReport::default();
    let mut go = Vec::new();
    for (id, status) in statuses(inv, ids).await? {
        let approval: ApprovalState =
            sqlx::query_scalar("SELECT approval_state FROM pending_invoice WHERE id = $1")
                .bind(id)
                .fetch_one(&inv.pool)
                .await?;
        let refuse = |reason: String| ReissueItem {
            pending_id: id,
            bills: Vec::new(),
            red_of: None,
            serial_no: None,
            message: None,
            reason,
            outcome: None,
        };
        if !approval.may_issue() {
            report.refused.push(refuse(format!("发票审批状态为{approval}，审核通过后才能开票")));
            continue;
        }
        match status {
            PendingStatus::NotIssued => go.push(id),
            PendingStatus::Failed => {
                let (serial, seller): (Option<String>, String) =
                    sqlx::query_as("SELECT serial_no, seller_tax_no FROM pending_invoice WHERE id = $1")
                        .bind(id)
                        .fetch_one(&inv.pool)
                        .await?;
                match reopen(inv, id, serial.as_deref(), &seller).await? {
                    Ok(_) => go.push(id),
                    Err(why) => report.refused.push(refuse(why)),
                }
            }
            other => report
                .refused
                .push(refuse(format!("只有未开票或开票失败的发票可以开票，该发票为{}", other.label_zh()))),
        }
    }
    report.issued = crate::issue::issue(inv, &go, progress).await?;
    Ok(report)
}
