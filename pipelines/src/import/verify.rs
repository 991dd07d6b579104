//! Pool imports verify each invoice through the channel unless `rim_config_need_check` = 0
//! (seed 004 excel导入全票池), and charge billing units per the rules of seed 004.

use std::sync::Arc;

use chrono::NaiveDate;
use fapiao_channel::codes::error as code;
use fapiao_channel::{ChannelClient, ChannelError};
use fapiao_schemas::Money;
use fapiao_schemas::billing_units::{self, Call, Charged, Collection, Source};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::{ImportError, Problem};

/// Verifications in flight at once (the client bounds requests further).
const CONCURRENCY: usize = 8;

#[derive(sqlx::FromRow)]
struct Candidate {
    row_no: i32,
    invoice_code: Option<String>,
    invoice_num: String,
    invoice_date: NaiveDate,
    invoice_kind: String,
    amount: Decimal,
    total: Decimal,
}

/// Verify every row not already refused; failures become problems on their rows. Marks the
/// verified rows in the staging table with what the bureau returned — its lines and the
/// deductibility rule's answer on them, which the merge lands. 该应用查验权限过期 stops the import.
pub async fn verify_rows(
    db: &mut PgConnection,
    channel: &Arc<ChannelClient>,
    refused: &[i32],
    problems: &mut Vec<Problem>,
) -> Result<(), ImportError> {
    let candidates: Vec<Candidate> = sqlx::query_as(
        "SELECT row_no, invoice_code, invoice_num, invoice_date::date, invoice_kind, amount::numeric, total::numeric
         FROM import_stage WHERE NOT (row_no = ANY($1)) AND invoice_num IS NOT NULL AND invoice_date IS NOT NULL
             AND amount IS NOT NULL AND total IS NOT NULL AND invoice_kind IS NOT NULL ORDER BY row_no",
    )
    .bind(refused)
    .fetch_all(&mut *db)
    .await?;
    let mut verified = Vec::new();
    for chunk in candidates.chunks(CONCURRENCY) {
        let mut calls = tokio::task::JoinSet::new();
        for c in chunk {
            let channel = channel.clone();
            // 数电 invoices are verified by 价税合计, others by 不含税金额.
            let key = if c.invoice_kind.starts_with("digital") { c.total } else { c.amount };
            let (row, code_, num, date) =
                (c.row_no, c.invoice_code.clone().unwrap_or_default(), c.invoice_num.clone(), c.invoice_date);
            calls.spawn(async move { (row, channel.verify(&code_, &num, date, Money::round(key)).await) });
        }
        while let Some(joined) = calls.join_next().await {
            let (row, result) = joined.map_err(|e| ImportError::Report(e.to_string()))?;
            match result {
                Ok(v) => verified.push((row, v)),
                Err(e) if e.api_code() == Some(code::VERIFY_PERMISSION_EXPIRED) => {
                    return Err(ImportError::Channel(e));
                }
                Err(e) => problems.push(Problem {
                    row: row as u32,
                    column: "发票号码".into(),
                    code: "VERIFY_FAILED".into(),
                    message: verify_message(&e),
                }),
            }
        }
    }
    let rows: Vec<i32> = verified.iter().map(|(r, _)| *r).collect();
    let lines: Vec<serde_json::Value> =
        verified.iter().map(|(_, v)| serde_json::to_value(&v.lines).expect("lines serialize")).collect();
    let reasons: Vec<Option<&str>> = verified.iter().map(|(_, v)| v.not_deductible()).collect();
    sqlx::query(
        "UPDATE import_stage s SET verified = true, verified_lines = v.lines, verified_reason = v.reason
           FROM unnest($1::int[], $2::jsonb[], $3::text[]) AS v(row_no, lines, reason) WHERE s.row_no = v.row_no",
    )
    .bind(&rows)
    .bind(&lines)
    .bind(&reasons)
    .execute(&mut *db)
    .await?;
    Ok(())
}

fn verify_message(e: &ChannelError) -> String {
    match e {
        ChannelError::Api { message, .. } => format!("查验失败：{message}"),
        other => format!("查验失败：{other}"),
    }
}

/// Charge the verified invoices that entered the pool (`source` Collected: verification is
/// charged once per invoice per tenant; rejected rows and failed calls are not charged).
pub async fn charge_units(db: &mut PgConnection) -> Result<Decimal, ImportError> {
    let rows: Vec<(String, String, Option<bool>, Option<bool>)> = sqlx::query_as(
        "SELECT coalesce(s.invoice_code, ''), s.invoice_num, b.recognition_charged, b.verification_charged
         FROM import_stage s LEFT JOIN billing_unit b ON b.invoice_code = coalesce(s.invoice_code, '') AND b.invoice_num = s.invoice_num
         WHERE s.verified AND NOT s.rejected",
    )
    .fetch_all(&mut *db)
    .await?;
    let mut total = Decimal::ZERO;
    for (invoice_code, invoice_num, recognition, verification) in rows {
        let before = Charged {
            recognition: recognition.unwrap_or(false),
            verification: verification.unwrap_or(false),
        };
        let collection = Collection {
            source: Source::Collected,
            recognition: Call::NotCalled,
            verification: Call::Succeeded,
            entered_pool: true,
        };
        let (units, after) = billing_units::charge(before, collection);
        if units.is_zero() {
            continue;
        }
        total += units;
        sqlx::query(
            "INSERT INTO billing_unit (invoice_code, invoice_num, recognition_charged, verification_charged, units)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (invoice_code, invoice_num) DO UPDATE SET recognition_charged = EXCLUDED.recognition_charged,
                 verification_charged = EXCLUDED.verification_charged, units = billing_unit.units + EXCLUDED.units, updated_at = now()",
        )
        .bind(&invoice_code)
        .bind(&invoice_num)
        .bind(after.recognition)
        .bind(after.verification)
        .bind(units)
        .execute(&mut *db)
        .await?;
    }
    Ok(total)
}
