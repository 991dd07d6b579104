//! 作废 (seed 002, 发票状态 正常、作废、作废中): a paper tax-control invoice of the month with no
//! red invoice is voided through the channel. 作废中 is stored before the channel is asked (as a
//! serial number is before issuing), so a crash or a lost answer leaves a state that asking
//! again settles — the void call is idempotent by invoice. Once 作废, its bills' lines are open
//! again (like a full red-flush), so they may be invoiced anew.

use std::time::Duration;

use fapiao_channel::ChannelError;
use fapiao_channel::error::Disposition;
use fapiao_channel::wire::VoidInvoice;
use fapiao_schemas::{InvoiceStatus, RedFlushState};
use serde::Serialize;

use crate::redflush::HOLDING;
use crate::{Invoicing, InvoicingError, Result, issued, record};

/// Where a void stands after asking.
#[derive(Clone, Debug, Serialize)]
pub struct VoidOutcome {
    pub invoice_num: String,
    pub invoice_code: String,
    pub status: InvoiceStatus,
    /// Why it is still 作废中 (the channel not reached, or the bureau not done yet).
    pub message: Option<String>,
}

/// Void one invoice; an invoice already 作废中 is asked about again (nothing is sent twice that
/// the channel would act on twice).
pub async fn void(
    inv: &Invoicing,
    invoice_num: &str,
    invoice_code: Option<&str>,
    reason: &str,
) -> Result<VoidOutcome> {
    let found = issued::find(inv, invoice_num, invoice_code).await?;
    let refuse = |message: String| Err(InvoicingError::refused("INVOICE_NOT_VOIDABLE", message));
    match found.status {
        InvoiceStatus::Voided => return refuse(format!("发票{invoice_num}已作废")),
        InvoiceStatus::Voiding => {}
        InvoiceStatus::Normal => {
            if found.red {
                return refuse("红字发票不能作废".into());
            }
            if !found.invoice_kind.is_voidable() {
                return refuse(format!("{}不能作废，请开具红字发票", found.invoice_kind.label_zh()));
            }
            if found.red_flush_state != RedFlushState::None {
                return refuse("已开具红字发票的发票不能作废".into());
            }
            mark_voiding(inv, found.id, reason).await?;
        }
    }
    let ask = VoidInvoice {
        seller_taxpayer_id: found.seller_tax_no.clone(),
        invoice_code: found.invoice_code.clone(),
        invoice_num: found.invoice_num.clone(),
        reason: reason.to_string(),
    };
    let s = &inv.settings.invoicing;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(s.settle_within_secs);
    let outcome = |status, message: Option<String>| VoidOutcome {
        invoice_num: found.invoice_num.clone(),
        invoice_code: found.invoice_code.clone(),
        status,
        message,
    };
    loop {
        match inv.channel.void(&ask).await {
            Ok(state) if state.void_state == "voided" => {
                voided(inv, found.id).await?;
                return Ok(outcome(InvoiceStatus::Voided, None));
            }
            Ok(_) if tokio::time::Instant::now() >= deadline => {
                return Ok(outcome(
                    InvoiceStatus::Voiding,
                    Some("税局处理中，稍后再次作废以确认结果".into()),
                ));
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(s.settle_poll_ms)).await,
            Err(e) if matches!(e.disposition(), Disposition::BadInput | Disposition::NeverRetry) => {
                // The channel said no: the invoice is as it was.
                back_to_normal(inv, found.id, &e).await?;
                let message = match &e {
                    ChannelError::Api { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                return Err(InvoicingError::refused("INVOICE_VOID_REFUSED", message));
            }
            Err(e) => {
                return Ok(outcome(
                    InvoiceStatus::Voiding,
                    Some(format!("未能向渠道确认作废结果，稍后再次作废以确认：{e}")),
                ));
            }
        }
    }
}

/// 正常 → 作废中, unless a red pending invoice holds part of it (checked under the row lock).
async fn mark_voiding(inv: &Invoicing, id: i64, reason: &str) -> Result<()> {
    let mut tx = inv.pool.begin().await?;
    let held: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM pending_invoice r WHERE r.blue_invoice_id = $1 AND {HOLDING})"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if held {
        return Err(InvoicingError::refused("INVOICE_NOT_VOIDABLE", "该发票有待开的红字发票，不能作废"));
    }
    let pending: Option<i64> = sqlx::query_scalar(
        "UPDATE issued_invoice SET status = '作废中', void_reason = $2 WHERE id = $1 AND status = '正常' RETURNING pending_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(pending) = pending else {
        return Err(InvoicingError::refused("PENDING_CHANGED", "发票状态刚刚发生了变化，请重试"));
    };
    record::event(&mut tx, pending, "voiding", Some(reason)).await?;
    tx.commit().await?;
    Ok(())
}

/// 作废中 → 作废: its bills' lines are open again.
async fn voided(inv: &Invoicing, id: i64) -> Result<()> {
    let mut tx = inv.pool.begin().await?;
    let pending: Option<i64> = sqlx::query_scalar(
        "UPDATE issued_invoice SET status = '作废', voided_at = now() WHERE id = $1 AND status = '作废中' RETURNING pending_id",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(pending) = pending {
        record::release(&mut tx, pending, "voided", "发票已作废：开票申请单明细可重新推送开票").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// 作废中 → 正常: the channel refused.
async fn back_to_normal(inv: &Invoicing, id: i64, e: &ChannelError) -> Result<()> {
    let mut tx = inv.pool.begin().await?;
    let pending: Option<i64> = sqlx::query_scalar(
        "UPDATE issued_invoice SET status = '正常', void_reason = NULL WHERE id = $1 AND status = '作废中' RETURNING pending_id",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(pending) = pending {
        record::event(&mut tx, pending, "void_refused", Some(&e.to_string())).await?;
    }
    tx.commit().await?;
    Ok(())
}
