//! Issuing pending invoices through the channel, never twice.
//!
//! One pending invoice moves: 未开票 → (serial stored, attempt row written, committed) 已提交 →
//! call → 开票中 → query until final → 开票成功 / 开票失败. Every step is committed before the
//! next call, so a run killed anywhere is finished by the next one: 已提交 and 开票中 invoices are
//! settled by querying their serial; a serial the channel never saw is sent again *as is*.

use fapiao_channel::ChannelError;
use fapiao_channel::codes::{IssueStatus, error as code};
use fapiao_channel::error::Disposition;
use fapiao_channel::wire::{InvoiceLine, IssueResult, LinePolicy, OpenInvoice};
use fapiao_schemas::{AttemptOutcome, InvoiceKind, PendingStatus};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{Invoicing, Result, record};

/// Sends of one invoice within one run (a serial the channel never accepted is sent again).
const MAX_SENDS_PER_RUN: usize = 3;

/// Where one pending invoice stands after a run.
#[derive(Clone, Debug, Serialize)]
pub struct IssueOutcome {
    pub pending_id: i64,
    pub bills: Vec<String>,
    pub serial_no: Option<String>,
    pub status: PendingStatus,
    pub status_zh: &'static str,
    pub invoice_code: Option<String>,
    pub invoice_num: Option<String>,
    pub total: Decimal,
    pub message: Option<String>,
}

/// Pending invoices a run should drive: every 未开票 blue invoice that may be issued (已审核 or
/// 无需审批; only those of 自动开票 bills when `auto_only`), plus every 已提交/开票中 one (left by
/// an earlier run, or still at the channel).
pub async fn candidates(inv: &Invoicing, auto_only: bool) -> Result<Vec<i64>> {
    let ids = sqlx::query_scalar(
        "SELECT id FROM pending_invoice
          WHERE deleted_at IS NULL AND invoice_property = 0
            AND (status IN ('submitted', 'issuing')
                 OR (status = 'not_issued' AND (auto_issue OR NOT $1) AND approval_state IN ('已审核', '无需审批')))
          ORDER BY id",
    )
    .bind(auto_only)
    .fetch_all(&inv.pool)
    .await?;
    Ok(ids)
}

/// The unfinished (未开票 / 已提交 / 开票中) blue pending invoices of these bills.
pub async fn candidates_of_bills(inv: &Invoicing, bills: &[String]) -> Result<Vec<i64>> {
    let ids = sqlx::query_scalar(
        "SELECT DISTINCT p.id FROM pending_invoice p JOIN pending_bill b ON b.pending_id = p.id
          WHERE b.bill_no = ANY($1) AND p.deleted_at IS NULL AND p.invoice_property = 0
            AND p.status IN ('not_issued', 'submitted', 'issuing')
          ORDER BY p.id",
    )
    .bind(bills)
    .fetch_all(&inv.pool)
    .await?;
    Ok(ids)
}

/// Drive each pending invoice as far as it goes now, `invoicing.issue_concurrency` at a time;
/// `progress` hears of each as it ends. (Callbacks were enqueued as bills became final.)
pub async fn issue(
    inv: &Invoicing,
    ids: &[i64],
    progress: &(dyn Fn(&IssueOutcome) + Send + Sync),
) -> Result<Vec<IssueOutcome>> {
    let concurrency = inv.settings.invoicing.issue_concurrency as usize;
    // Each pass starts at a place of its own in the list and wraps round: several processes
    // given the same candidates then work apart, instead of all queueing at the front behind
    // each other's drive locks. (Outcomes are sorted below; the order of driving is free.)
    let start = pass_start(ids.len());
    let order: Vec<i64> = ids[start..].iter().chain(&ids[..start]).copied().collect();
    let mut outcomes: Vec<IssueOutcome> = futures_util::stream::iter(order)
        .map(|id| async move {
            drive(inv, id).await?;
            let outcome = outcome(inv, id).await?;
            progress(&outcome);
            Ok::<_, crate::InvoicingError>(outcome)
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    outcomes.sort_by_key(|o| o.pending_id);
    Ok(outcomes)
}

/// Where a pass begins in a list of `len` candidates: anywhere, differently in each process.
fn pass_start(len: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    if len == 0 {
        return 0;
    }
    // A randomly keyed hasher: a new key per process and per pass, no extra dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() % len as u64) as usize
}

#[derive(Debug, sqlx::FromRow)]
struct Current {
    status: PendingStatus,
    serial_no: Option<String>,
    seller_tax_no: String,
}

async fn current(inv: &Invoicing, id: i64) -> Result<Current> {
    sqlx::query_as(
        "SELECT status, serial_no, seller_tax_no FROM pending_invoice WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&inv.pool)
    .await?
    .ok_or_else(|| crate::InvoicingError::not_found("PENDING_NOT_FOUND", format!("待开发票{id}不存在")))
}

/// Take one pending invoice as far as it goes now — unless another worker (another process, a
/// second pass beside this one) is driving it: then it is left to that one, and this pass
/// reports it as it stands. Two workers on one invoice would settle each other's call in
/// flight.
pub(crate) async fn drive(inv: &Invoicing, id: i64) -> Result<()> {
    // Done already (by another process walking the same list): one read, no lock.
    if current(inv, id).await?.status.is_final() {
        return Ok(());
    }
    let Some(hold) = inv.hold(id).await? else { return Ok(()) };
    let driven = drive_held(inv, id).await;
    // Ends the transaction, and with it the lock (so does a drop or a dead connection).
    hold.rollback().await?;
    driven
}

async fn drive_held(inv: &Invoicing, id: i64) -> Result<()> {
    for _ in 0..MAX_SENDS_PER_RUN {
        let cur = current(inv, id).await?;
        match cur.status {
            PendingStatus::NotIssued => {
                let Some(serial) = claim(inv, id, cur.serial_no.as_deref()).await? else { return Ok(()) };
                if !send(inv, id, &serial).await? {
                    return Ok(());
                }
            }
            PendingStatus::Submitted | PendingStatus::Issuing => {
                let serial = cur.serial_no.expect("a submitted invoice has a serial");
                match settle(inv, id, &serial, &cur.seller_tax_no).await? {
                    Settled::NeverAccepted => continue,
                    Settled::Final | Settled::Pending => return Ok(()),
                }
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// 未开票 → 已提交 with the serial to send, stored and committed before any call. A serial the
/// channel never accepted is kept; otherwise a new attempt gets a new one. `None` when another
/// worker claimed it first or holds it now.
async fn claim(inv: &Invoicing, id: i64, kept: Option<&str>) -> Result<Option<String>> {
    let mut tx = inv.pool.begin().await?;
    // The invoice first, skipped when another worker holds it: two passes over the same
    // candidates (a second process, `fapiao issue` beside the auto-issue job) would otherwise
    // both number an attempt and one would fail on the other's serial.
    let free: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM pending_invoice WHERE id = $1 AND status = 'not_issued' FOR UPDATE SKIP LOCKED",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if free.is_none() {
        return Ok(None);
    }
    let serial = match kept {
        Some(s) => {
            sqlx::query("UPDATE issue_attempt SET outcome = $2, started_at = clock_timestamp(), settled_at = NULL WHERE serial_no = $1")
                .bind(s)
                .bind(AttemptOutcome::Sending)
                .execute(&mut *tx)
                .await?;
            s.to_string()
        }
        None => {
            let (install, attempt): (String, i32) = sqlx::query_as(
                "SELECT (SELECT id FROM installation), coalesce(max(attempt), 0) + 1 FROM issue_attempt WHERE pending_id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let serial = format!("FP{install}-{id}-{attempt}");
            sqlx::query("INSERT INTO issue_attempt (serial_no, pending_id, attempt) VALUES ($1, $2, $3)")
                .bind(&serial)
                .bind(id)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
            serial
        }
    };
    // Never an invoice still waiting for approval, however it was chosen.
    let claimed = sqlx::query("UPDATE pending_invoice SET status = 'submitted', serial_no = $2, updated_at = now()
                                WHERE id = $1 AND status = 'not_issued' AND approval_state IN ('已审核', '无需审批')")
        .bind(id)
        .bind(&serial)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if claimed == 0 {
        return Ok(None); // rolled back: someone else is on it
    }
    record::event(&mut tx, id, "submitted", Some(&serial)).await?;
    tx.commit().await?;
    Ok(Some(serial))
}

/// Make the issuing call. `true` when the serial should now be settled by query.
async fn send(inv: &Invoicing, id: i64, serial: &str) -> Result<bool> {
    let red: bool = sqlx::query_scalar("SELECT invoice_property = 1 FROM pending_invoice WHERE id = $1")
        .bind(id)
        .fetch_one(&inv.pool)
        .await?;
    let answer = if red {
        inv.channel.red_invoice(&crate::redflush::red_body(inv, id, serial).await?).await
    } else {
        inv.channel.issue(&open_invoice(inv, id, serial).await?).await
    };
    let mut tx = inv.pool.begin().await?;
    let settle_next = match answer {
        Ok(_) => {
            record::settle_attempt(&mut tx, serial, AttemptOutcome::Accepted, None).await?;
            record::set_status(&mut tx, id, PendingStatus::Issuing, None).await?;
            true
        }
        Err(e) => match sent_disposition(&e) {
            // The channel may have it: ask, never resend blindly.
            SendFailure::Unknown => {
                record::settle_attempt(&mut tx, serial, AttemptOutcome::Lost, Some(&e.to_string())).await?;
                record::event(&mut tx, id, "answer_lost", Some(&e.to_string())).await?;
                true
            }
            // The channel answered no without taking it: the serial stays for the next run.
            SendFailure::NotTaken => {
                record::settle_attempt(&mut tx, serial, AttemptOutcome::NeverAccepted, Some(&e.to_string()))
                    .await?;
                record::set_status(&mut tx, id, PendingStatus::NotIssued, Some(&channel_message(&e))).await?;
                false
            }
            SendFailure::Refused => {
                record::failed(&mut tx, id, serial, AttemptOutcome::Refused, &channel_message(&e)).await?;
                false
            }
        },
    };
    tx.commit().await?;
    Ok(settle_next)
}

enum SendFailure {
    Unknown,
    NotTaken,
    Refused,
}

/// What a failed issuing call means for the serial.
fn sent_disposition(e: &ChannelError) -> SendFailure {
    if e.api_code() == Some(code::DUPLICATE_SERIAL) {
        return SendFailure::Unknown; // an earlier send of this serial got through
    }
    match (e, e.disposition()) {
        (ChannelError::Http { .. }, _) => SendFailure::Unknown, // a 5xx may hide work done
        (_, Disposition::UnknownOutcome) => SendFailure::Unknown,
        (_, Disposition::Retry | Disposition::RetryAfter(_)) => SendFailure::NotTaken,
        (_, Disposition::NeverRetry | Disposition::BadInput) => SendFailure::Refused,
    }
}

/// The text a user sees for a channel error: the channel's own message when it gave one.
fn channel_message(e: &ChannelError) -> String {
    match e {
        ChannelError::Api { code, message, .. } => format!("{message}（{code}）"),
        other => other.to_string(),
    }
}

pub(crate) enum Settled {
    /// 开票成功 or 开票失败, recorded.
    Final,
    /// Still 开票中, or the channel could not be asked: a later run goes on.
    Pending,
    /// The channel has no such serial: it never accepted it; it may be sent again as is.
    NeverAccepted,
}

/// Ask the channel about `serial` (polling while 开票中) and record what it says.
pub(crate) async fn settle(inv: &Invoicing, id: i64, serial: &str, seller: &str) -> Result<Settled> {
    let answer = inv.wait_final(serial, seller).await;
    let mut tx = inv.pool.begin().await?;
    let settled = match answer {
        Ok(r) => record_answer(&mut tx, id, &r).await?,
        Err(e) if e.api_code() == Some(code::NOT_FOUND) => {
            record::settle_attempt(&mut tx, serial, AttemptOutcome::NeverAccepted, None).await?;
            record::set_status(&mut tx, id, PendingStatus::NotIssued, None).await?;
            Settled::NeverAccepted
        }
        Err(e) => {
            tracing::warn!(pending_id = id, serial, error = %e, "could not settle by query; a later run asks again");
            Settled::Pending
        }
    };
    tx.commit().await?;
    Ok(settled)
}

pub(crate) async fn record_answer(db: &mut sqlx::PgConnection, id: i64, r: &IssueResult) -> Result<Settled> {
    Ok(match r.issue_status {
        IssueStatus::Succeeded => {
            record::succeeded(db, id, r).await?;
            Settled::Final
        }
        IssueStatus::Failed => {
            record::failed(db, id, &r.serial_no, AttemptOutcome::Failed, &r.issue_message).await?;
            Settled::Final
        }
        IssueStatus::Issuing => {
            record::set_status(db, id, PendingStatus::Issuing, None).await?;
            Settled::Pending
        }
    })
}

/// The head of an `ALLE.INVOICE.OPEN` body.
#[derive(sqlx::FromRow)]
struct OpenHead {
    invoice_kind: InvoiceKind,
    invoice_property: i16,
    seller_name: String,
    seller_tax_no: String,
    buyer_name: String,
    buyer_tax_no: Option<String>,
    remark: Option<String>,
    seller_address_phone: Option<String>,
    seller_bank_account: Option<String>,
}

/// 开票人, 收款人, 复核人 of an invoice about to be sent.
pub(crate) struct Issuers {
    pub drawer: String,
    pub payee: String,
    pub reviewer: String,
}

/// The issuers its bills ask for (`bill_issuer`: a receipt code's drawer, payee and reviewer),
/// else the seller's (`enterprise issuers`), else the configured drawer; kept on the pending
/// invoice as sent — blue and red alike.
pub(crate) async fn issuers(inv: &Invoicing, pending_id: i64) -> Result<Issuers> {
    let (drawer, payee, reviewer): (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "UPDATE pending_invoice p
            SET drawer = coalesce(b.drawer, i.drawer, $2),
                payee = CASE WHEN b.drawer IS NULL THEN i.payee ELSE b.payee END,
                reviewer = CASE WHEN b.drawer IS NULL THEN i.reviewer ELSE b.reviewer END
           FROM pending_invoice q
           LEFT JOIN enterprise_issuer i ON i.tax_no = q.seller_tax_no
           LEFT JOIN LATERAL (SELECT bi.drawer, bi.payee, bi.reviewer
                                FROM pending_bill pb JOIN bill_issuer bi ON bi.bill_no = pb.bill_no
                               WHERE pb.pending_id = q.id ORDER BY pb.bill_no LIMIT 1) b ON true
          WHERE p.id = $1 AND q.id = p.id
         RETURNING p.drawer, p.payee, p.reviewer",
    )
    .bind(pending_id)
    .bind(&inv.settings.invoicing.drawer)
    .fetch_one(&inv.pool)
    .await?;
    Ok(Issuers {
        drawer: drawer.unwrap_or_default(),
        payee: payee.unwrap_or_default(),
        reviewer: reviewer.unwrap_or_default(),
    })
}

/// A pending line as it goes to the channel.
#[derive(sqlx::FromRow)]
struct OpenLine {
    seq: i32,
    #[sqlx(flatten)]
    goods: crate::Goods,
}

/// The `ALLE.INVOICE.OPEN` body of a pending invoice.
async fn open_invoice(inv: &Invoicing, id: i64, serial: &str) -> Result<OpenInvoice> {
    let head: OpenHead = sqlx::query_as(
        "SELECT p.invoice_kind, p.invoice_property, e.name AS seller_name, p.seller_tax_no, p.buyer_name, p.buyer_tax_no, p.remark,
                p.seller_address_phone, p.seller_bank_account
           FROM pending_invoice p JOIN enterprise e ON e.tax_no = p.seller_tax_no WHERE p.id = $1",
    )
    .bind(id)
    .fetch_one(&inv.pool)
    .await?;
    let lines: Vec<OpenLine> = sqlx::query_as(
        "SELECT seq, line_property, goods_name, revenue_code, specification, unit, quantity, price, amount, tax_rate, tax,
                privilege_flag, privilege_content, zero_rate_mark
           FROM pending_line WHERE pending_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&inv.pool)
    .await?;
    let money = |d: Decimal| fapiao_schemas::Money::exact(d).expect("stored at scale 2");
    let Issuers { drawer, payee, reviewer } = issuers(inv, id).await?;
    Ok(OpenInvoice {
        serial_no: serial.to_string(),
        invoice_kind: head.invoice_kind,
        invoice_property: head.invoice_property as u8,
        seller_name: head.seller_name,
        seller_taxpayer_id: head.seller_tax_no,
        buyer_name: head.buyer_name,
        buyer_taxpayer_id: head.buyer_tax_no.unwrap_or_default(),
        // What a person set in 开票异常处理 (pending edit) goes on the invoice.
        seller_address_and_tel: head.seller_address_phone.unwrap_or_default(),
        seller_bank_and_account: head.seller_bank_account.unwrap_or_default(),
        drawer,
        payee,
        reviewer,
        remark: head.remark.unwrap_or_default(),
        invoice_detail: lines
            .into_iter()
            .map(|l| InvoiceLine {
                seq: l.seq as u32,
                line_property: l.goods.line_property.wire(),
                goods_name: l.goods.goods_name,
                revenue_code: l.goods.revenue_code,
                specification: l.goods.specification.unwrap_or_default(),
                units: l.goods.unit.unwrap_or_default(),
                quantity: l.goods.quantity.map(|d| d.normalize()),
                price: l.goods.price.map(|d| d.normalize()),
                amount: money(l.goods.amount),
                tax_rate: l.goods.tax_rate.normalize(),
                tax_amount: money(l.goods.tax),
                policy: LinePolicy::of(
                    l.goods.privilege_flag,
                    l.goods.privilege_content,
                    l.goods.zero_rate_mark,
                ),
            })
            .collect(),
    })
}

/// One pending invoice as `outcome` reads it.
#[derive(sqlx::FromRow)]
struct OutcomeRow {
    serial_no: Option<String>,
    status: PendingStatus,
    error_message: Option<String>,
    total: Decimal,
    invoice_code: Option<String>,
    invoice_num: Option<String>,
    bills: Vec<String>,
}

/// The state of one pending invoice, as reported.
pub async fn outcome(inv: &Invoicing, id: i64) -> Result<IssueOutcome> {
    let r: OutcomeRow = sqlx::query_as(
        "SELECT p.serial_no, p.status, p.error_message, p.total, i.invoice_code, i.invoice_num,
                ARRAY(SELECT bill_no FROM pending_bill b WHERE b.pending_id = p.id ORDER BY bill_no) AS bills
           FROM pending_invoice p LEFT JOIN issued_invoice i ON i.pending_id = p.id WHERE p.id = $1",
    )
    .bind(id)
    .fetch_one(&inv.pool)
    .await?;
    Ok(IssueOutcome {
        pending_id: id,
        bills: r.bills,
        serial_no: r.serial_no,
        status_zh: r.status.label_zh(),
        message: if r.status == PendingStatus::Succeeded { None } else { r.error_message },
        status: r.status,
        invoice_code: r.invoice_code,
        invoice_num: r.invoice_num,
        total: r.total,
    })
}
