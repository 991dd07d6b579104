//! Demo, after the sync jobs (stage [3]): a receiving-side user works with the pool — a document
//! uses part of an invoice, a second document asking for more than is left is refused verbatim,
//! and with a reimbursement period set, an invoice older than that is refused verbatim
//! (合规性校验). Each document runs once per demo run (its own number), so the demo runs again.
//! Then 抵扣类勾选: two deductible invoices of the general taxpayer selected for the tax period
//! the channel reports, as an asynchronous batch polled to its end (what deduct-poll does), and
//! the small-scale taxpayer's selection refused verbatim.

use std::time::Duration;

use fapiao_schemas::SelectAction;
use fapiao_schemas::enterprise::TaxpayerKind;
use fapiao_schemas::params::RIM_COMPLIANCE_REIMBURSE_DAYS;
use fapiao_usecases::pool::{self, InvoiceRef, PoolFilter};
use fapiao_usecases::{self as usecases, Actor, App, deduct};
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

/// Select up to two deductible, unselected invoices of the general taxpayer (asynchronously, as
/// by default), poll the batch to its end; a small-scale taxpayer's selection is refused.
pub async fn selection(
    app: &App,
    enterprises: &[fapiao_schemas::enterprise::Enterprise],
) -> anyhow::Result<serde_json::Value> {
    let actor = Actor::Demo;
    let mut out = serde_json::Map::new();
    for e in enterprises {
        let filter = PoolFilter {
            tax_no: Some(e.tax_no.as_str().to_string()),
            selected: Some(false),
            limit: 50,
            ..PoolFilter::default()
        };
        let rows = pool::list(app, &filter).await?;
        let pick: Vec<String> = rows
            .iter()
            .filter(|r| {
                e.taxpayer_kind == TaxpayerKind::SmallScale
                    || (r.deductible
                        && r.status == "normal"
                        && r.select_state == fapiao_schemas::SelectState::Unselected)
            })
            .take(2)
            .map(|r| r.invoice_num.clone())
            .collect();
        if pick.is_empty() {
            continue;
        }
        let req = deduct::Request {
            action: SelectAction::Select,
            numbers: pick.clone(),
            tax_no: Some(e.tax_no.as_str().to_string()),
            period: None,
        };
        match deduct::submit(app, &actor, &req).await {
            Ok(sent) => {
                let mut batch = sent[0].batch.clone();
                for _ in 0..50 {
                    if !batch.state.is_open() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    deduct::poll(app, &actor).await?;
                    batch = deduct::batches(app, Some(&batch.tax_no), false, 1).await?.remove(0);
                }
                out.insert(
                    "selected".into(),
                    json!({ "enterprise": e.name, "invoices": pick, "batch": batch, "first_state": sent[0].batch.state,
                            "period_fixed": sent[0].period_fixed }),
                );
            }
            Err(refused) => {
                out.insert(
                    "refused".into(),
                    json!({ "enterprise": e.name, "code": refused.code(), "message": refused.to_string() }),
                );
            }
        }
    }
    Ok(serde_json::Value::Object(out))
}

pub fn print_selection(r: &serde_json::Value) {
    let s = &r["selected"];
    if s.is_object() {
        let b = &s["batch"];
        println!(
            "    抵扣类勾选 for {}: invoices {} → batch {} for 所属期 {}{} ({} first, polled to {}): {} succeeded, {} failed",
            s["enterprise"].as_str().unwrap_or("?"),
            s["invoices"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            b["batch_no"].as_str().unwrap_or("?"),
            b["period"].as_str().unwrap_or("?"),
            if s["period_fixed"].as_bool() == Some(true) { "（税局确定）" } else { "" },
            s["first_state"].as_str().unwrap_or("?"),
            b["state"].as_str().unwrap_or("?"),
            b["succeeded"],
            b["failed"]
        );
    } else {
        println!("    抵扣类勾选: no deductible invoice left unselected");
    }
    if let Some(why) = r["refused"]["message"].as_str() {
        println!("    {} selects too: {why}", r["refused"]["enterprise"].as_str().unwrap_or("?"));
    }
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
