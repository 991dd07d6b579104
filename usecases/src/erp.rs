//! The inbound ERP API's use cases (issue 17, seed 001): BILL.PUSH (开票申请单生成及开票),
//! BILL.WITHDRAW (撤回), BILL.INVOICE.QUERY (开票申请单发票查询), and the request log. The HTTP
//! surface (`fapiao-api`) decodes the envelope and calls these; nothing here knows HTTP.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use fapiao_pipelines::import::erp::{self, BillProblem, CheckedBill, ErpBill};
use fapiao_schemas::DataSource;
use fapiao_schemas::messages::{NO_RECORD, NOT_IN_TENANT_CODE, not_in_tenant};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::systems::Caller;
use crate::{Actor, App, Error, Result, applications, invoices};

/// Per-bill codes of a push answer (the row problems carry the importer's own codes).
pub mod code {
    pub const ACCEPTED: &str = "0";
    /// The same bill number from the same system with a different body.
    pub const BILL_CHANGED: &str = "BILL_CHANGED";
    /// One bill number twice in one request.
    pub const BILL_REPEATED: &str = "BILL_REPEATED_IN_REQUEST";
}

/// A bill as received: its parsed fields and the SHA-256 of its canonical JSON (what "the same
/// body" means for idempotency).
#[derive(Clone, Debug)]
pub struct PushedBill {
    pub bill: ErpBill,
    pub body_hash: String,
}

/// The synchronous answer for one bill (推单状态).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillAnswer {
    pub bill_no: String,
    pub success: bool,
    pub error_code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<AnswerProblem>,
}

/// One problem as the answer shows it: the line (from 1; absent: the bill's header), the field
/// as the ERP named it, the importer's code and message.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerProblem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub field: String,
    pub code: String,
    pub message: String,
}

fn accepted(bill_no: &str) -> BillAnswer {
    BillAnswer {
        bill_no: bill_no.to_string(),
        success: true,
        error_code: code::ACCEPTED.into(),
        message: "推单成功".into(),
        problems: Vec::new(),
    }
}

fn refused(
    bill_no: &str,
    problems: Vec<BillProblem>,
    wire_name: &(dyn Fn(&str) -> String + Sync),
) -> BillAnswer {
    let first = problems.first().cloned().expect("a refusal has a problem");
    let at = first.line.map(|l| format!("第{l}行：")).unwrap_or_default();
    BillAnswer {
        bill_no: bill_no.to_string(),
        success: false,
        error_code: first.code.clone(),
        message: format!("{at}{}", first.message),
        problems: problems
            .into_iter()
            .map(|p| AnswerProblem {
                line: p.line,
                field: wire_name(&p.field),
                code: p.code,
                message: p.message,
            })
            .collect(),
    }
}

fn one_problem(code: &str, field: &str, message: String) -> Vec<BillProblem> {
    vec![BillProblem { line: None, field: field.into(), code: code.into(), message }]
}

/// BILL.PUSH: every bill checked by the importer's rules and landed all or nothing, in one
/// transaction with its idempotency key `(system, bill number)`. The same bill again from the
/// same system is answered with its first answer and changes nothing; under the same number a
/// changed body is refused (`BILL_CHANGED`). Refused bills leave no key: a corrected bill may
/// come again. `wire_name` turns a template field into the ERP's field name for the answer.
pub async fn push(
    app: &App,
    actor: &Actor,
    caller: &Caller,
    bills: Vec<PushedBill>,
    wire_name: &(dyn Fn(&str) -> String + Sync),
) -> Result<Vec<BillAnswer>> {
    let mut answers: Vec<Option<BillAnswer>> = vec![None; bills.len()];
    let mut checked: Vec<CheckedBill> = Vec::with_capacity(bills.len());
    let mut seen = HashSet::new();
    for (i, b) in bills.iter().enumerate() {
        let mut c = erp::check(&b.bill);
        if !seen.insert(b.bill.bill_no.clone()) {
            c.problems = one_problem(
                code::BILL_REPEATED,
                "bill_no",
                format!("单据编号{}在本次请求中重复", b.bill.bill_no),
            );
            answers[i] = Some(refused(&b.bill.bill_no, c.problems.clone(), wire_name));
        }
        checked.push(c);
    }

    let mut tx = app.pool.begin().await?;
    // Keys of the bills that passed the row rules, in bill-number order (two pushes that share
    // bills lock them in the same order: no deadlock). A conflicting key waits for the other
    // push to commit or roll back.
    let mut order: Vec<usize> =
        (0..bills.len()).filter(|&i| answers[i].is_none() && checked[i].problems.is_empty()).collect();
    order.sort_by(|&a, &b| bills[a].bill.bill_no.cmp(&bills[b].bill.bill_no));
    let first_answer = |i: usize| serde_json::to_value(accepted(&bills[i].bill.bill_no)).expect("plain JSON");
    let fresh: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO erp_bill (system_code, bill_no, body_hash, answer)
         SELECT $1, b, h, a FROM unnest($2::text[], $3::text[], $4::jsonb[]) AS u(b, h, a)
         ON CONFLICT (system_code, bill_no) DO NOTHING RETURNING bill_no",
    )
    .bind(&caller.code)
    .bind(order.iter().map(|&i| bills[i].bill.bill_no.clone()).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| bills[i].body_hash.clone()).collect::<Vec<_>>())
    .bind(order.iter().map(|&i| first_answer(i)).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();

    // Bills this system pushed before: the first answer, or refused when the body changed.
    let earlier: HashMap<String, (String, serde_json::Value)> = sqlx::query_as(
        "SELECT bill_no, body_hash, answer FROM erp_bill WHERE system_code = $1 AND bill_no = ANY($2)",
    )
    .bind(&caller.code)
    .bind(bills.iter().map(|b| b.bill.bill_no.clone()).filter(|b| !fresh.contains(b)).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(b, h, a): (String, String, serde_json::Value)| (b, (h, a)))
    .collect();
    for (i, b) in bills.iter().enumerate() {
        if answers[i].is_some() || fresh.contains(&b.bill.bill_no) {
            continue;
        }
        if let Some((hash, answer)) = earlier.get(&b.bill.bill_no) {
            answers[i] = Some(if *hash == b.body_hash {
                serde_json::from_value(answer.clone())
                    .map_err(|e| Error::bad_input("ANSWER", e.to_string()))?
            } else {
                refused(
                    &b.bill.bill_no,
                    one_problem(
                        code::BILL_CHANGED,
                        "bill_no",
                        format!("单据编号{}已推送，内容不同；修改单据请先撤回再推送", b.bill.bill_no),
                    ),
                    wire_name,
                )
            });
        } else if !checked[i].problems.is_empty() {
            answers[i] = Some(refused(&b.bill.bill_no, checked[i].problems.clone(), wire_name));
        }
    }

    // The fresh bills land (or are refused by the checks against the data: their keys go).
    let mut landing: Vec<CheckedBill> = checked.into_iter().filter(|c| fresh.contains(&c.bill_no)).collect();
    let tenant_id = app.settings.channel.tenant_id.clone();
    let who = erp::Lander {
        source: DataSource::DirectApi,
        system_code: Some(&caller.code),
        allowed_sellers: &caller.tax_nos,
        tenant_id: &tenant_id,
    };
    erp::land(&mut tx, &who, &mut landing).await?;
    let dropped: Vec<String> =
        landing.iter().filter(|c| !c.problems.is_empty()).map(|c| c.bill_no.clone()).collect();
    if !dropped.is_empty() {
        sqlx::query("DELETE FROM erp_bill WHERE system_code = $1 AND bill_no = ANY($2)")
            .bind(&caller.code)
            .bind(&dropped)
            .execute(&mut *tx)
            .await?;
    }
    // A system that asks to hear of receipt: a callback per bill that landed, with the bills.
    let on_receipt: bool =
        sqlx::query_scalar("SELECT callback_on_receipt FROM business_system WHERE code = $1")
            .bind(&caller.code)
            .fetch_one(&mut *tx)
            .await?;
    if on_receipt {
        let received: Vec<String> =
            landing.iter().filter(|c| c.problems.is_empty()).map(|c| c.bill_no.clone()).collect();
        fapiao_invoicing::callbacks::enqueue_received(&mut tx, &received, &caller.code).await?;
    }
    tx.commit().await?;

    let landed: HashMap<String, CheckedBill> = landing.into_iter().map(|c| (c.bill_no.clone(), c)).collect();
    let answers: Vec<BillAnswer> = answers
        .into_iter()
        .zip(&bills)
        .map(|(a, b)| match a {
            Some(a) => a,
            None => match landed.get(&b.bill.bill_no) {
                Some(c) if !c.problems.is_empty() => refused(&c.bill_no, c.problems.clone(), wire_name),
                _ => accepted(&b.bill.bill_no),
            },
        })
        .collect();
    let ok = answers.iter().filter(|a| a.success).count();
    tracing::info!(actor = %actor, bills = answers.len(), accepted = ok, "BILL.PUSH");
    Ok(answers)
}

/// A bill this system may see: its own, of one of its sellers; else 9404 无记录 (a withdrawn or
/// unknown bill and another system's bill look the same).
async fn own_bill(app: &App, caller: &Caller, bill_no: &str, seller: &str) -> Result<()> {
    if !caller.tax_nos.iter().any(|t| t == seller) {
        return Err(Error::Refused {
            code: NOT_IN_TENANT_CODE,
            message: not_in_tenant(seller, &app.settings.channel.tenant_id),
        });
    }
    let mine: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM application WHERE bill_no = $1 AND seller_tax_no = $2 AND business_system_code = $3)",
    )
    .bind(bill_no)
    .bind(seller)
    .bind(&caller.code)
    .fetch_one(&app.pool)
    .await?;
    if !mine {
        return Err(Error::NotFound { code: "BILL_NOT_FOUND", message: NO_RECORD.into() });
    }
    Ok(())
}

/// BILL.WITHDRAW: the bill is gone if not pushed yet (the withdraw use case); its idempotency
/// key goes too, so the same number may be pushed again.
pub async fn withdraw(app: &App, actor: &Actor, caller: &Caller, bill_no: &str, seller: &str) -> Result<()> {
    own_bill(app, caller, bill_no, seller).await?;
    applications::withdraw(app, actor, bill_no).await?;
    sqlx::query("DELETE FROM erp_bill WHERE system_code = $1 AND bill_no = $2")
        .bind(&caller.code)
        .bind(bill_no)
        .execute(&app.pool)
        .await?;
    Ok(())
}

/// One invoice of a bill, as BILL.INVOICE.QUERY answers it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillInvoice {
    pub invoice_code: String,
    pub invoice_num: String,
    pub invoice_date: NaiveDate,
    pub invoice_type: String,
    /// 0 blue, 1 red.
    pub invoice_property: u8,
    pub invoice_status: fapiao_schemas::InvoiceStatus,
    pub total_amount: Decimal,
    pub total_tax: Decimal,
    pub total_amount_with_tax: Decimal,
    /// What can still be red-flushed (blue invoices).
    pub can_red_amount: Decimal,
    pub serial_no: String,
    pub invoice_file_url: String,
    pub ofd_file_url: String,
    pub xml_file_url: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillInvoices {
    pub bill_no: String,
    pub invoice_list: Vec<BillInvoice>,
}

/// BILL.INVOICE.QUERY: a bill's invoices (the `apply show` use case), for its own system only.
pub async fn query(app: &App, caller: &Caller, bill_no: &str, seller: &str) -> Result<BillInvoices> {
    own_bill(app, caller, bill_no, seller).await?;
    let rows = invoices::of_bill(app, bill_no).await?;
    Ok(BillInvoices {
        bill_no: bill_no.to_string(),
        invoice_list: rows
            .into_iter()
            .map(|r| BillInvoice {
                invoice_code: r.invoice_code,
                invoice_num: r.invoice_num,
                invoice_date: r.invoice_date,
                invoice_type: r.invoice_kind.as_str().to_string(),
                invoice_property: r.red as u8,
                invoice_status: r.status,
                total_amount: r.amount,
                total_tax: r.tax,
                total_amount_with_tax: r.total,
                can_red_amount: r.remaining,
                serial_no: r.serial_no,
                invoice_file_url: r.invoice_file_url.unwrap_or_default(),
                ofd_file_url: r.ofd_file_url.unwrap_or_default(),
                xml_file_url: r.xml_file_url.unwrap_or_default(),
            })
            .collect(),
    })
}

/// One call of the API, for the request log (never a token, secret or body).
#[derive(Clone, Debug, Default)]
pub struct LogEntry {
    pub system_code: Option<String>,
    pub interface_code: String,
    pub request_id: Option<String>,
    pub bills: u32,
    pub accepted: u32,
    pub refused: u32,
    pub outcome: String,
    pub message: String,
    pub duration_ms: u32,
    pub remote: Option<String>,
}

/// Record a call. A failure to log is logged, not raised: the call itself was answered.
pub async fn log(app: &App, e: &LogEntry) {
    let done = sqlx::query(
        "INSERT INTO api_request_log (system_code, interface_code, request_id, bills, accepted, refused, outcome, message, duration_ms, remote)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&e.system_code)
    .bind(&e.interface_code)
    .bind(&e.request_id)
    .bind(e.bills as i32)
    .bind(e.accepted as i32)
    .bind(e.refused as i32)
    .bind(&e.outcome)
    .bind(&e.message)
    .bind(e.duration_ms as i32)
    .bind(&e.remote)
    .execute(&app.pool)
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "api request log not written");
    }
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct LogRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub system_code: Option<String>,
    pub interface_code: String,
    pub request_id: Option<String>,
    pub bills: i32,
    pub accepted: i32,
    pub refused: i32,
    pub outcome: String,
    pub message: String,
    pub duration_ms: i32,
    pub remote: Option<String>,
}

/// `fapiao api log`: the newest calls first, optionally of one system.
pub async fn log_rows(app: &App, system: Option<&str>, limit: i64) -> Result<Vec<LogRow>> {
    Ok(sqlx::query_as(
        "SELECT id, at, system_code, interface_code, request_id, bills, accepted, refused, outcome, message, duration_ms, remote
           FROM api_request_log WHERE $1::text IS NULL OR system_code = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(system)
    .bind(limit)
    .fetch_all(&app.pool)
    .await?)
}
