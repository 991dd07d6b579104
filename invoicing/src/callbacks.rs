//! 按单回调: when every invoice of a bill is final, its ERP is told — once per distinct result
//! (the `fingerprint` of the bill's invoice states) — at the URL configured for its business
//! system. Every attempt is logged (发票回调日志); failures are retried with exponential backoff
//! up to `callbacks.max_attempts`, then marked failed until `fapiao callbacks retry`.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use fapiao_schemas::{BillState, CallbackState, PendingStatus, RedFlushState};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::{Invoicing, InvoicingError, Result};

/// Enqueue the callback of each of these bills whose invoices are all final, in the caller's
/// transaction (the one that made them final, so a crash cannot lose it). Returns how many new
/// callbacks were enqueued (a result already enqueued is not enqueued again).
pub(crate) async fn enqueue(db: &mut PgConnection, bills: &[String]) -> sqlx::Result<usize> {
    let mut added = 0;
    for bill in bills {
        let Some((system, body, fingerprint)) = bill_result(db, bill).await? else { continue };
        added += insert(db, bill, "INVOICE.OPEN", &fingerprint, system, &body).await?;
    }
    Ok(added)
}

/// 退回: the bills of a returned pending invoice hear of it with the reason — `returnCode`
/// "9999" on `INVOICE.OPEN`, as a failed issue is told, with the bill's state `returned` and
/// `returnReason` in the data — in the caller's transaction, once per return.
pub(crate) async fn enqueue_returned(
    db: &mut PgConnection,
    pending_id: i64,
    bills: &[String],
    reason: &str,
) -> sqlx::Result<usize> {
    let mut added = 0;
    for bill in bills {
        let system: Option<String> =
            sqlx::query_scalar("SELECT business_system_code FROM application WHERE bill_no = $1")
                .bind(bill)
                .fetch_one(&mut *db)
                .await?;
        let system = system.filter(|s| !s.is_empty());
        let body = json!({
            "returnCode": "9999",
            "returnMsg": format!("开票申请已退回：{reason}"),
            "interfaceCode": "INVOICE.OPEN",
            "data": { "billNo": bill, "businessSystemCode": system, "billState": "returned", "returnReason": reason, "invoices": [] },
        });
        added += insert(db, bill, "INVOICE.OPEN", &format!("returned:{pending_id}"), system, &body).await?;
    }
    Ok(added)
}

/// 按单回调 on receipt (seed 001: 开票接收到开票请求时触发): each bill a business system pushed
/// was received, in the push's own transaction; delivered like every callback.
pub async fn enqueue_received(db: &mut PgConnection, bills: &[String], system: &str) -> sqlx::Result<usize> {
    let mut added = 0;
    for bill in bills {
        let body = json!({
            "returnCode": "0",
            "returnMsg": "开票申请单已接收",
            "interfaceCode": "BILL.PUSH",
            "data": { "billNo": bill, "businessSystemCode": system, "billState": "received", "invoices": [] },
        });
        added += insert(db, bill, "BILL.PUSH", "received", Some(system.to_string()), &body).await?;
    }
    Ok(added)
}

/// Enqueue one callback; a result already enqueued for the bill (same fingerprint) is not.
async fn insert(
    db: &mut PgConnection,
    bill: &str,
    interface: &str,
    fingerprint: &str,
    system: Option<String>,
    body: &Value,
) -> sqlx::Result<usize> {
    let n = sqlx::query(
        "INSERT INTO callback (bill_no, interface_code, fingerprint, business_system, body) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (bill_no, fingerprint) DO NOTHING",
    )
    .bind(bill)
    .bind(interface)
    .bind(fingerprint)
    .bind(system)
    .bind(body)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n as usize)
}

/// One invoice of a callback body: the pending invoice's status, serial, error and figures and
/// the issued invoice's number, date and files.
#[derive(sqlx::FromRow)]
struct InvoiceResult {
    status: PendingStatus,
    serial_no: Option<String>,
    error_message: Option<String>,
    amount: Decimal,
    tax: Decimal,
    total: Decimal,
    invoice_code: Option<String>,
    invoice_num: Option<String>,
    invoice_date: Option<NaiveDate>,
    issued_at: Option<DateTime<Utc>>,
    invoice_file_url: Option<String>,
    ofd_file_url: Option<String>,
    xml_file_url: Option<String>,
}

impl InvoiceResult {
    fn ok(&self) -> bool {
        self.status == PendingStatus::Succeeded
    }

    fn json(&self) -> Value {
        let ok = self.ok();
        json!({
            "serialNo": self.serial_no,
            "invoiceStatus": if ok { "1" } else { "2" },
            "invoiceStatusName": self.status.label_zh(),
            "invoiceCode": self.invoice_code.clone().unwrap_or_default(),
            "invoiceNum": self.invoice_num.clone().unwrap_or_default(),
            "invoiceDate": self.invoice_date,
            "issueTime": self.issued_at.map(|t| t.to_rfc3339()),
            "invoiceAmount": money(self.amount),
            "totalTaxAmount": money(self.tax),
            "totalAmount": money(self.total),
            "invoiceFileUrl": self.invoice_file_url.clone().unwrap_or_default(),
            "ofdFileUrl": self.ofd_file_url.clone().unwrap_or_default(),
            "xmlFileUrl": self.xml_file_url.clone().unwrap_or_default(),
            "message": if ok { None } else { self.error_message.clone() },
        })
    }
}

/// Money as decimal text with two decimals.
fn money(d: Decimal) -> String {
    d.round_dp(2).to_string()
}

/// A red invoice with what its callback says of the blue one.
#[derive(sqlx::FromRow)]
struct RedResult {
    #[sqlx(flatten)]
    invoice: InvoiceResult,
    red_reason: Option<String>,
    blue_code: String,
    blue_num: String,
    red_flush_state: RedFlushState,
    remaining: Decimal,
    blue_pending: i64,
}

/// A red invoice became final: the bills of its blue invoice hear of it (`INVOICE.RED`), once
/// per result, in the caller's transaction. Nothing for a blue pending invoice.
pub(crate) async fn enqueue_red(db: &mut PgConnection, red_pending: i64) -> sqlx::Result<usize> {
    let row: Option<RedResult> = sqlx::query_as(
        "SELECT p.status, p.serial_no, p.error_message, p.red_reason, p.amount, p.tax, p.total,
                i.invoice_code, i.invoice_num, i.invoice_date, i.issued_at, i.invoice_file_url, i.ofd_file_url, i.xml_file_url,
                b.invoice_code AS blue_code, b.invoice_num AS blue_num, b.red_flush_state, b.remaining, b.pending_id AS blue_pending
           FROM pending_invoice p
           JOIN issued_invoice b ON b.id = p.blue_invoice_id
           LEFT JOIN issued_invoice i ON i.pending_id = p.id
          WHERE p.id = $1 AND p.invoice_property = 1",
    )
    .bind(red_pending)
    .fetch_optional(&mut *db)
    .await?;
    let Some(r) = row else { return Ok(0) };
    let st = r.invoice.status;
    let ok = r.invoice.ok();
    let message = r.invoice.error_message.clone();
    let bills: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT a.bill_no, a.business_system_code FROM pending_bill pb JOIN application a ON a.bill_no = pb.bill_no WHERE pb.pending_id = $1 ORDER BY a.bill_no",
    )
    .bind(r.blue_pending)
    .fetch_all(&mut *db)
    .await?;
    let mut red = r.invoice.json();
    red["redReason"] = json!(r.red_reason);
    let mut added = 0;
    for (bill, system) in bills {
        let body = json!({
            "returnCode": if ok { "0" } else { "9999" },
            "returnMsg": if ok { "红冲成功".to_string() } else { format!("红冲失败：{}", message.clone().unwrap_or_default()) },
            "interfaceCode": "INVOICE.RED",
            "data": {
                "billNo": bill,
                "businessSystemCode": system.clone().filter(|s| !s.is_empty()),
                "originalInvoiceCode": r.blue_code,
                "originalInvoiceNum": r.blue_num,
                "redFlushState": r.red_flush_state,
                "remainingAmount": money(r.remaining),
                "invoices": [red],
            }
        });
        added += insert(db, &bill, "INVOICE.RED", &format!("red:{red_pending}:{st}"), system, &body).await?;
    }
    Ok(added)
}

/// Where a bill's callback goes: its business system's own URL (系统管理 → 业务系统列表, set
/// with `fapiao system set-callback`), else `callbacks.url` with its system code.
fn url_for(inv: &Invoicing, system: Option<&str>, own_url: Option<&str>) -> String {
    if let Some(url) = own_url.filter(|u| !u.is_empty()) {
        return url.to_string();
    }
    let system = system.filter(|s| !s.is_empty()).unwrap_or(&inv.settings.channel.business_system_code);
    inv.settings.callbacks.url.replace("{system}", system)
}

/// The documented callback body of a bill whose invoices are all final, with its system code
/// and fingerprint; `None` while any is not.
async fn bill_result(
    db: &mut PgConnection,
    bill: &str,
) -> sqlx::Result<Option<(Option<String>, Value, String)>> {
    let head: Option<BillHead> = sqlx::query_as(
        "SELECT a.business_system_code, a.state,
                (SELECT sum(amount) FROM application_line WHERE bill_no = a.bill_no) AS amount,
                (SELECT sum(tax) FROM application_line WHERE bill_no = a.bill_no) AS tax
           FROM application a WHERE a.bill_no = $1",
    )
    .bind(bill)
    .fetch_optional(&mut *db)
    .await?;
    let Some(head) = head else { return Ok(None) };
    if !matches!(head.state, BillState::Issued | BillState::PartiallyIssued | BillState::Pushed) {
        return Ok(None);
    }
    let rows: Vec<BillInvoice> = sqlx::query_as(
        "SELECT p.id, p.status, p.serial_no, p.error_message, p.amount, p.tax, p.total,
                i.invoice_code, i.invoice_num, i.invoice_date, i.issued_at, i.invoice_file_url, i.ofd_file_url, i.xml_file_url,
                (SELECT coalesce(sum(pl.amount), 0) FROM pending_line pl WHERE pl.pending_id = p.id AND pl.bill_no = $1) AS bill_amount,
                (SELECT coalesce(sum(pl.tax), 0) FROM pending_line pl WHERE pl.pending_id = p.id AND pl.bill_no = $1) AS bill_tax
           FROM pending_bill pb
           JOIN pending_invoice p ON p.id = pb.pending_id AND p.deleted_at IS NULL AND p.released_at IS NULL AND p.invoice_property = 0
           LEFT JOIN issued_invoice i ON i.pending_id = p.id
          WHERE pb.bill_no = $1
          ORDER BY p.id",
    )
    .bind(bill)
    .fetch_all(&mut *db)
    .await?;
    if rows.is_empty() || rows.iter().any(|r| !r.invoice.status.is_final()) {
        return Ok(None);
    }
    let mut fingerprint = Vec::new();
    let mut failures = Vec::new();
    let invoices: Vec<Value> = rows
        .iter()
        .map(|r| {
            let i = &r.invoice;
            fingerprint.push(format!("{}:{}:{}", r.id, i.status, i.invoice_num.clone().unwrap_or_default()));
            if !i.ok() {
                failures.push(i.error_message.clone().unwrap_or_default());
            }
            let mut invoice = i.json();
            invoice["billAmount"] = json!(money(r.bill_amount));
            invoice["billTaxAmount"] = json!(money(r.bill_tax));
            invoice
        })
        .collect();
    let system = head.business_system_code.filter(|s| !s.is_empty());
    let amount: Decimal = head.amount.unwrap_or_default();
    let tax: Decimal = head.tax.unwrap_or_default();
    let body = json!({
        "returnCode": if failures.is_empty() { "0" } else { "9999" },
        "returnMsg": if failures.is_empty() { "开票成功".to_string() } else { format!("开票失败：{}", failures.join("；")) },
        "interfaceCode": "INVOICE.OPEN",
        "data": {
            "billNo": bill,
            "businessSystemCode": system,
            "billAmount": amount.round_dp(2).to_string(),
            "billTaxAmount": tax.round_dp(2).to_string(),
            "billTotalAmount": (amount + tax).round_dp(2).to_string(),
            "invoices": invoices,
        }
    });
    Ok(Some((system, body, fingerprint.join(","))))
}

/// A bill as `bill_result` reads it: its state and the sums of its lines.
#[derive(sqlx::FromRow)]
struct BillHead {
    business_system_code: Option<String>,
    state: BillState,
    amount: Option<Decimal>,
    tax: Option<Decimal>,
}

/// One blue invoice of a bill, with the bill's share of it.
#[derive(sqlx::FromRow)]
struct BillInvoice {
    id: i64,
    #[sqlx(flatten)]
    invoice: InvoiceResult,
    bill_amount: Decimal,
    bill_tax: Decimal,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DeliveryReport {
    pub attempted: usize,
    pub succeeded: usize,
    /// Failed this time, to be retried later.
    pub retrying: usize,
    /// Failed for the last allowed time.
    pub gave_up: usize,
}

/// Deliver every callback that is due, once each.
pub async fn deliver(inv: &Invoicing) -> Result<DeliveryReport> {
    let cfg = &inv.settings.callbacks;
    // Claimed for a while, so that another process delivering at the same time skips them.
    let due: Vec<Due> = sqlx::query_as(
        "UPDATE callback SET next_attempt_at = now() + interval '5 minutes'
          WHERE id IN (SELECT id FROM callback WHERE state = 'pending' AND next_attempt_at <= now()
                        ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 500)
          RETURNING id, business_system, body, attempts,
                    (SELECT s.callback_url FROM business_system s WHERE s.code = callback.business_system) AS own_url",
    )
    .fetch_all(&inv.pool)
    .await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .build()
        .map_err(InvoicingError::Http)?;
    let results: Vec<Result<bool>> = futures_util::stream::iter(due)
        .map(|r| {
            let client = client.clone();
            async move {
                let id = r.id;
                let url = url_for(inv, r.business_system.as_deref(), r.own_url.as_deref());
                let attempts = r.attempts + 1;
                let (http_status, response, ok) = post(&client, &url, &r.body).await;
                let mut tx = inv.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO callback_log (callback_id, attempt, url, http_status, response, ok)
                     VALUES ($1, (SELECT count(*) + 1 FROM callback_log WHERE callback_id = $1), $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(&url)
                .bind(http_status)
                .bind(&response)
                .bind(ok)
                .execute(&mut *tx)
                .await?;
                let backoff = (cfg.backoff_base_secs.saturating_mul(1u64 << (attempts - 1).clamp(0, 20) as u32)).min(cfg.backoff_max_secs);
                let state = if ok {
                    CallbackState::Succeeded
                } else if attempts as u32 >= cfg.max_attempts {
                    CallbackState::Failed
                } else {
                    CallbackState::Pending
                };
                sqlx::query(
                    "UPDATE callback SET state = $2, attempts = $3, last_error = $4,
                            next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1",
                )
                .bind(id)
                .bind(state)
                .bind(attempts)
                .bind((!ok).then_some(&response))
                .bind(backoff as f64)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(ok)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut report = DeliveryReport::default();
    for r in results {
        report.attempted += 1;
        if r? {
            report.succeeded += 1;
        }
    }
    let (retrying, gave_up): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'pending' AND attempts > 0), count(*) FILTER (WHERE state = 'failed') FROM callback",
    )
    .fetch_one(&inv.pool)
    .await?;
    report.retrying = retrying as usize;
    report.gave_up = gave_up as usize;
    Ok(report)
}

/// A callback claimed for delivery.
#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    business_system: Option<String>,
    body: Value,
    attempts: i32,
    /// The business system's own callback URL, if it has one.
    own_url: Option<String>,
}

/// One POST; success is a 2xx answer whose body says `{"success": true}`.
async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (Option<i32>, String, bool) {
    match client.post(url).json(body).send().await {
        Ok(resp) => {
            let code = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let said_success = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("success").and_then(Value::as_bool))
                == Some(true);
            (Some(code.as_u16() as i32), text.chars().take(2000).collect(), code.is_success() && said_success)
        }
        Err(e) => (None, e.without_url().to_string(), false),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CallbackRow {
    pub id: i64,
    pub bill_no: String,
    pub interface_code: String,
    pub state: CallbackState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub url: String,
    pub return_code: String,
}

pub async fn list(inv: &Invoicing, failed_only: bool) -> Result<Vec<CallbackRow>> {
    select(inv, failed_only, None).await
}

/// The callbacks of these bills (an invoice's, for `invoices show`).
pub async fn of_bills(inv: &Invoicing, bills: &[String]) -> Result<Vec<CallbackRow>> {
    select(inv, false, Some(bills)).await
}

async fn select(inv: &Invoicing, failed_only: bool, bills: Option<&[String]>) -> Result<Vec<CallbackRow>> {
    let rows: Vec<ListedCallback> = sqlx::query_as(
        "SELECT id, bill_no, interface_code, state, attempts, next_attempt_at, last_error, business_system, body->>'returnCode' AS return_code,
                (SELECT s.callback_url FROM business_system s WHERE s.code = callback.business_system) AS own_url
           FROM callback WHERE (NOT $1 OR state = 'failed') AND ($2::text[] IS NULL OR bill_no = ANY($2)) ORDER BY id",
    )
    .bind(failed_only)
    .bind(bills)
    .fetch_all(&inv.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CallbackRow {
            url: url_for(inv, r.business_system.as_deref(), r.own_url.as_deref()),
            id: r.id,
            bill_no: r.bill_no,
            interface_code: r.interface_code,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            return_code: r.return_code.unwrap_or_default(),
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ListedCallback {
    id: i64,
    bill_no: String,
    interface_code: String,
    state: CallbackState,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    business_system: Option<String>,
    return_code: Option<String>,
    own_url: Option<String>,
}

/// Failed callbacks (all, or these ids) start over with a fresh allowance of attempts, due now.
/// Ids named must be failed callbacks: an unknown id is `CALLBACK_NOT_FOUND`, one in another state
/// `CALLBACK_NOT_FAILED`, and then nothing starts over (checked under the rows' locks).
pub async fn retry(inv: &Invoicing, ids: &[i64]) -> Result<u64> {
    let mut tx = inv.pool.begin().await?;
    if !ids.is_empty() {
        let found: Vec<(i64, CallbackState)> =
            sqlx::query_as("SELECT id, state FROM callback WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?;
        let unknown: Vec<String> =
            ids.iter().filter(|id| !found.iter().any(|(f, _)| f == *id)).map(i64::to_string).collect();
        if !unknown.is_empty() {
            return Err(InvoicingError::not_found(
                "CALLBACK_NOT_FOUND",
                format!("回调{}不存在 (no such callback)", unknown.join("、")),
            ));
        }
        let not_failed: Vec<String> = found
            .iter()
            .filter(|(_, state)| *state != CallbackState::Failed)
            .map(|(id, state)| format!("{id} ({state})"))
            .collect();
        if !not_failed.is_empty() {
            return Err(InvoicingError::Invalid {
                code: "CALLBACK_NOT_FAILED",
                message: format!(
                    "只能重试失败的回调：{} (only failed callbacks are retried)",
                    not_failed.join("、")
                ),
            });
        }
    }
    let n = sqlx::query(
        "UPDATE callback SET state = 'pending', attempts = 0, next_attempt_at = now()
          WHERE state = 'failed' AND (cardinality($1::bigint[]) = 0 OR id = ANY($1))",
    )
    .bind(ids)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n)
}
