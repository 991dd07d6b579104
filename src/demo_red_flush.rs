//! Demo stage [7]: red-flush one invoice of each track — 税控普票 directly, 税控专票 on a red info
//! sheet applied for, 数电专票 on a confirmation form the buyer confirms, a 数电普票 partially —
//! and a 税控专票 on a red info sheet entered by hand (手工新增红字信息表编号: the sheet was
//! applied for elsewhere, here by the sandbox playing the buyer).

use std::time::Duration;

use fapiao_channel::codes::interface as i;
use fapiao_channel::sandbox::Sandbox;
use fapiao_channel::wire::{RedInfoApply, RedInfoRef, RedInfoSheet};
use fapiao_schemas::enterprise::Enterprise;
use fapiao_schemas::{ImportKind, Money};
use fapiao_usecases::import::ImportRequest;
use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::{self as usecases, Actor, App, quiet};
use serde_json::json;

pub async fn stage(
    app: &App,
    sandbox: &Sandbox,
    enterprises: &[Enterprise],
    stage4_batch: Option<i64>,
) -> anyhow::Result<serde_json::Value> {
    use fapiao_usecases::red_flush::{self, Request};
    // Four bills of the other kinds, imported and issued now; the second 税控专票 is red-flushed on
    // a sheet entered by hand.
    let prefix = format!("RF{}{}-", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"), std::process::id());
    let (seller, buyer) = (enterprises[0].tax_no.as_str(), enterprises[1].tax_no.as_str());
    let mut csv = String::from(
        "单据编号,单据日期,销方税号,购方名称,购方税号,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计\n",
    );
    for (n, kind) in ["增值税普通发票", "增值税专用发票", "数电专票", "增值税专用发票"].iter().enumerate()
    {
        csv.push_str(&format!("{prefix}{n},2026-11-01,{seller},{},{buyer},{kind},*信息技术服务*软件维护,3040201000000000000,2,500,1000.00,6%,60.00,1060.00\n", enterprises[1].name));
    }
    let dir = std::env::temp_dir().join(format!("fapiao-demo-rf-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("bills.csv");
    std::fs::write(&file, csv)?;
    let request = ImportRequest::new(ImportKind::Applications);
    usecases::import::file(app, &Actor::Demo, &file, request, &|_| {}).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let bills: Vec<String> = (0..4).map(|n| format!("{prefix}{n}")).collect();
    let issued = issuing::issue(app, &Actor::Demo, &Selection::Bills(bills), &quiet).await?;
    let mut numbers: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.invoice_kind, i.invoice_num FROM issued_invoice i WHERE i.pending_id = ANY($1) ORDER BY i.pending_id",
    )
    .bind(&issued.pushed.pending_ids)
    .fetch_all(&app.pool)
    .await?;
    // And one 数电普票 from stage 5, partially (销售折让).
    let ordinary: Option<(String, String)> = sqlx::query_as(
        "SELECT i.invoice_kind, i.invoice_num FROM issued_invoice i JOIN pending_bill b ON b.pending_id = i.pending_id
           JOIN application a ON a.bill_no = b.bill_no WHERE a.batch_id = $1 AND i.red_flush_state = 'none' ORDER BY i.id LIMIT 1",
    )
    .bind(stage4_batch)
    .fetch_optional(&app.pool)
    .await?;
    numbers.extend(ordinary);
    const BY_HAND: usize = 3;
    let sheet_no = sheet_applied_elsewhere(app, sandbox, seller, &numbers[BY_HAND].1).await?;
    let requests: Vec<Request> = numbers
        .iter()
        .enumerate()
        .map(|(i, (kind, num))| Request {
            invoice_num: num.clone(),
            amount: (kind == "digital_ordinary").then(|| fapiao_schemas::Money::from_cents(1_000)),
            reason: Some(if kind == "digital_ordinary" { "04" } else { "01" }.into()),
            red_info_no: (i == BY_HAND).then(|| sheet_no.clone()),
            ..Request::default()
        })
        .collect();
    let first = red_flush::invoices(app, &Actor::Demo, &requests, &quiet).await?.results;
    // The 数电专票's form waits for the buyer (02); the buyer (played by the sandbox) confirms.
    let first: Vec<_> = first.into_iter().map(|l| l.outcome).collect();
    let mut path: Vec<String> = first.iter().map(|o| o.state.to_string()).collect();
    path[BY_HAND] = format!("红字信息表 {sheet_no} entered by hand → ");
    for (i, o) in first.iter().enumerate() {
        if let (true, Some(uuid)) = (o.state == fapiao_schemas::RedFlushRequestState::Waiting, &o.document_id)
        {
            let _ = sandbox.world().counterparty(uuid, "confirm");
            path[i] = "waiting (02 销方录入待购方确认) → buyer confirms (04) → ".to_string();
        }
    }
    red_flush::poll(app, &Actor::Demo).await?;
    // The bills' ERPs hear of the red invoices (INVOICE.RED).
    let red_callbacks = usecases::callbacks::deliver(app, &Actor::Demo).await?;
    let mut results = Vec::new();
    for (i, ((kind, _), o)) in numbers.iter().zip(&first).enumerate() {
        let now = red_flush::request(app, o.red_flush_id.expect("stored")).await?;
        let mut p = path[i].clone();
        if !p.ends_with("→ ") {
            p.clear();
        }
        p.push_str(&format!(
            "{}{}",
            now.state,
            now.red_invoice_num.map(|n| format!(" red invoice {n}")).unwrap_or_default()
        ));
        results.push(
            json!({ "kind": kind, "track": now.track, "requested": now.requested, "reason": now.reason,
            "state": now.state, "path": p }),
        );
    }
    let states: Vec<(String, String)> = sqlx::query_as(
        "SELECT invoice_num, red_flush_state FROM issued_invoice WHERE invoice_num = ANY($1) ORDER BY id",
    )
    .bind(numbers.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>())
    .fetch_all(&app.pool)
    .await?;
    let blue_states: Vec<String> = states.iter().map(|(n, s)| format!("{n}: {s}")).collect();
    Ok(json!({ "results": results, "blue_states": blue_states.join(", "), "callbacks": red_callbacks }))
}

/// The buyer (played by the sandbox) applies for a red info sheet against `invoice_num` and the
/// bureau approves it: the number a finance user would then type in.
async fn sheet_applied_elsewhere(
    app: &App,
    sandbox: &Sandbox,
    seller: &str,
    invoice_num: &str,
) -> anyhow::Result<String> {
    let (code, amount, tax): (String, rust_decimal::Decimal, rust_decimal::Decimal) =
        sqlx::query_as("SELECT invoice_code, amount, tax FROM issued_invoice WHERE invoice_num = $1")
            .bind(invoice_num)
            .fetch_one(&app.pool)
            .await?;
    let apply = RedInfoApply {
        order_no: format!("BUYER-{invoice_num}"),
        seller_taxpayer_id: seller.into(),
        invoice_code: code,
        invoice_num: invoice_num.into(),
        red_reason: "01".into(),
        amount: Money::exact(-amount)?,
        tax_amount: Money::exact(-tax)?,
    };
    let call = |op: &str, body: String| -> anyhow::Result<RedInfoSheet> {
        let answer = sandbox.world().dispatch(op, &body, std::time::Instant::now());
        Ok(serde_json::from_str(&answer.map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?)?)
    };
    let sheet = call(i::RED_INFO_APPLY, serde_json::to_string(&apply)?)?;
    let query = serde_json::to_string(&RedInfoRef { sheet_id: sheet.sheet_id })?;
    loop {
        let now = call(i::RED_INFO_QUERY, query.clone())?;
        if now.state == "approved" {
            return Ok(now.red_info_bill_no);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
