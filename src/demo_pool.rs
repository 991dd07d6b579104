//! Demo, after the sync jobs (stage [3]): a receiving-side user works with the pool — a document
//! uses part of an invoice, a second document asking for more than is left is refused verbatim,
//! and with a reimbursement period set, an invoice older than that is refused verbatim
//! (合规性校验). Each document runs once per demo run (its own number), so the demo runs again.

use fapiao_schemas::params::RIM_COMPLIANCE_REIMBURSE_DAYS;
use fapiao_usecases::pool::{self, InvoiceRef, PoolFilter};
use fapiao_usecases::{self as usecases, Actor, App};
use rust_decimal::Decimal;
use serde_json::json;

pub async fn stage(app: &App) -> anyhow::Result<serde_json::Value> {
    let actor = Actor::Demo;
    let filter = PoolFilter {
        deductible: Some(true),
        status: Some("normal".into()),
        limit: 50,
        ..PoolFilter::default()
    };
    // An invoice no earlier demo run used up: the most available one.
    let rows = pool::list(app, &filter).await?;
    let mut best = None;
    for row in rows.iter().cloned() {
        let d = pool::show(app, &row.invoice_num, Some(&row.invoice_code), Some(&row.tax_no)).await?;
        if d.available > Decimal::ONE && best.as_ref().is_none_or(|(_, a)| d.available > *a) {
            best = Some((row, d.available));
        }
    }
    let Some((row, available)) = best else { return Ok(json!({ "skipped": "no pool invoice left to use" })) };
    let at = InvoiceRef {
        invoice_num: &row.invoice_num,
        invoice_code: Some(&row.invoice_code),
        tax_no: Some(&row.tax_no),
    };
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f");
    let half = (available / Decimal::TWO).round_dp(2);
    let used = pool::use_invoice(app, &actor, at, &format!("BX-{stamp}"), Some("记-0001"), half).await?;
    let over = pool::use_invoice(app, &actor, at, &format!("FK-{stamp}"), None, available).await.unwrap_err();
    // 报销期限 of one day: the oldest invoice of the sync (three or more days before today —
    // the sync's day is at most today) is past it, in any time zone.
    let oldest = rows.last().expect("the best came from these");
    let old = InvoiceRef {
        invoice_num: &oldest.invoice_num,
        invoice_code: Some(&oldest.invoice_code),
        tax_no: Some(&oldest.tax_no),
    };
    usecases::params::set(app, &actor, RIM_COMPLIANCE_REIMBURSE_DAYS, &oldest.tax_no, "1").await?;
    let late = pool::use_invoice(app, &actor, old, &format!("BX2-{stamp}"), None, Decimal::new(1, 2)).await;
    usecases::params::unset(app, &actor, RIM_COMPLIANCE_REIMBURSE_DAYS, &oldest.tax_no).await?;
    Ok(json!({
        "invoice": row.invoice_num, "available": available, "oldest": oldest.invoice_num, "date": oldest.invoice_date,
        "used": used.amount, "over_use_refused": over.to_string(),
        "past_period_refused": late.err().map(|e| e.to_string()),
    }))
}

pub fn print(r: &serde_json::Value) {
    if let Some(why) = r["skipped"].as_str() {
        println!("    pool use: skipped ({why})");
        return;
    }
    println!(
        "    pool use: document BX-… uses {} of invoice {} ({} available)",
        r["used"].as_str().unwrap_or("?"),
        r["invoice"].as_str().unwrap_or("?"),
        r["available"].as_str().unwrap_or("?")
    );
    println!("    another document asks for all it had: {}", r["over_use_refused"].as_str().unwrap_or("?"));
    println!(
        "    with a 1-day reimbursement period (rim_compliance_reimburse_days), invoice {} of {}: {}",
        r["oldest"].as_str().unwrap_or("?"),
        r["date"].as_str().unwrap_or("?"),
        r["past_period_refused"].as_str().unwrap_or("not refused")
    );
}
