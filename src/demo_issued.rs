//! The demo's stage of issued invoices and the exception loop (seeds 000–002): a bill that
//! needs approval waits in 暂存 until it is submitted and approved; another fails at the bureau,
//! has its seller's bank and address edited and is issued again by hand with the edit — read
//! back from what the sandbox received — then is found by its bill number and its PDF
//! downloaded under a name template.

use std::path::PathBuf;

use fapiao_channel::sandbox::{FaultPlan, Sandbox};
use fapiao_schemas::invoice_file::NameTemplate;
use fapiao_schemas::params::SIM_ISSUE_APPROVAL;
use fapiao_schemas::{ImportKind, TaxNo};
use fapiao_usecases::import::ImportRequest;
use fapiao_usecases::invoices::{self, DownloadRequest, Pick};
use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::pending::{self, ApprovalStep, PendingFilter, SellerEdit};
use fapiao_usecases::{self as usecases, Actor, App, quiet};
use serde_json::json;

/// The business system whose bills need approval in the demo (`sim_issue_approval`).
const SYSTEM: &str = "ERP-APPROVAL";
const ADDRESS: &str = "上海市浦东新区示例路1号 021-12345678";
const BANK: &str = "招商银行上海分行 6225880000000001";

pub async fn stage(
    app: &App,
    sandbox: &Sandbox,
    seller: &TaxNo,
    home: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let actor = Actor::Demo;
    usecases::params::set(app, &actor, SIM_ISSUE_APPROVAL, SYSTEM, "1").await?;
    // Bills of their own each run (the demo runs again on the same database): one from the
    // business system that needs approval, one from another that fails at the bureau.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%3f");
    let (approval_bill, bill) = (format!("DEMO-AP-{stamp}"), format!("DEMO-EX-{stamp}"));
    let csv = home.join(format!("demo-{stamp}.csv"));
    let line = |bill: &str, system: &str| {
        format!(
            "{bill},{date},{seller},深圳示例科技有限公司,92440300MA5DXY7K3W,数电普票,*信息技术服务*软件维护,3040201000000000000,1,1000,1000.00,6%,60.00,1060.00,正常,否,{system}\n",
            date = chrono::Utc::now().date_naive(),
            seller = seller.as_str()
        )
    };
    std::fs::write(
        &csv,
        format!(
            "单据编号,单据日期,销方税号,购方名称,购方税号,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计,行性质,自动开票,业务系统编码\n{}{}",
            line(&approval_bill, SYSTEM),
            line(&bill, "ERP1")
        ),
    )?;
    usecases::import::file(app, &actor, &csv, ImportRequest::new(ImportKind::Applications), &|_| {}).await?;
    std::fs::remove_file(&csv)?;

    // Pushed: the first waits in 暂存, not issued, until it is submitted and approved.
    let held = issuing::issue(app, &actor, &Selection::Bills(vec![approval_bill.clone()]), &quiet).await?;
    let held_id =
        *held.pushed.pending_ids.first().ok_or_else(|| anyhow::anyhow!("the demo bill was not pushed"))?;
    let before = pending::list(app, &PendingFilter::default()).await?.into_iter().find(|p| p.id == held_id);
    let held_state = before.map(|p| p.approval_state.to_string()).unwrap_or_default();
    let submitted = pending::approval(app, &actor, &[held_id], &ApprovalStep::Submit).await?;
    let approved = pending::approval(app, &actor, &[held_id], &ApprovalStep::Approve).await?;
    let after = issuing::issue(app, &actor, &Selection::Bills(vec![approval_bill.clone()]), &quiet).await?;
    let approved_status = after.invoices.first().map(|o| o.status_zh).unwrap_or_default();

    // The other is issued while the bureau is under repair: 开票失败.
    sandbox.world().dice.set_plan(FaultPlan::parse("repairing@ALLE.INVOICE.OPEN=1")?);
    let failed = issuing::issue(app, &actor, &Selection::Bills(vec![bill.clone()]), &quiet).await?;
    sandbox.world().dice.set_plan(FaultPlan::none());
    let first = failed.invoices.first().ok_or_else(|| anyhow::anyhow!("the demo bill was not issued"))?;
    let (id, failure) = (first.pending_id, first.message.clone().unwrap_or_default());

    // 开票异常处理: the seller's address and bank corrected, issued again now by hand.
    let edit = SellerEdit { address_phone: Some(ADDRESS.into()), bank_account: Some(BANK.into()) };
    pending::edit(app, &actor, id, &edit).await?;
    let again = pending::issue(app, &actor, &[id], &quiet).await?;
    let outcome = again.report.issued.first().cloned();
    let serial = outcome.as_ref().and_then(|o| o.serial_no.clone()).unwrap_or_default();
    let received = sandbox
        .world()
        .opened(&serial)
        .map(|b| (b.seller_address_and_tel.clone(), b.seller_bank_and_account.clone()))
        .unwrap_or_default();

    // Found by its bill number; its PDF downloaded under a name template.
    let found = invoices::of_bill(app, &bill).await?;
    let request = DownloadRequest {
        pick: Pick::Bills(vec![bill.clone()]),
        format: None,
        name: NameTemplate::parse("{发票号码}_{购方名称}")?,
        out: home.join("invoices"),
        scope: None,
    };
    let downloaded = invoices::download(app, &actor, &request).await?;
    Ok(json!({
        "bill": bill,
        "pending_id": id,
        "approval": {
            "bill": approval_bill,
            "held": held_state,
            "while_held": held.invoices.first().map(|o| o.status_zh).unwrap_or_default(),
            "submitted": submitted[0].message,
            "approved": approved[0].message,
            "then": approved_status,
        },
        "failure": failure,
        "reissued_by_hand": outcome.map(|o| json!({ "status": o.status_zh, "invoice_num": o.invoice_num, "serial_no": o.serial_no })),
        "sandbox_received": { "seller_address_and_tel": received.0, "seller_bank_and_account": received.1 },
        "edit_reached_the_invoice": received == (ADDRESS.to_string(), BANK.to_string()),
        "found_by_bill": found.iter().map(|r| json!({ "invoice_num": r.invoice_num, "total": r.total, "buyer": r.buyer_name })).collect::<Vec<_>>(),
        "downloaded": downloaded.written.iter().map(|w| downloaded.out.join(&w.file)).collect::<Vec<PathBuf>>(),
    }))
}

pub fn print(s: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    println!("[6] issued invoices, approval and the exception loop");
    println!(
        "    approval (sim_issue_approval {SYSTEM} = 1), bill {}: pushed as {} and left {}; {}; {}; then {}",
        text(&s["approval"]["bill"]),
        text(&s["approval"]["held"]),
        text(&s["approval"]["while_held"]),
        text(&s["approval"]["submitted"]),
        text(&s["approval"]["approved"]),
        text(&s["approval"]["then"])
    );
    println!("    bill {} issued: 开票失败 — {}", text(&s["bill"]), text(&s["failure"]));
    println!(
        "    edited seller address/bank, issued by hand (pending issue): {} {}",
        text(&s["reissued_by_hand"]["status"]),
        text(&s["reissued_by_hand"]["invoice_num"])
    );
    println!(
        "    the sandbox received: {} / {} (edit reached the invoice: {})",
        text(&s["sandbox_received"]["seller_address_and_tel"]),
        text(&s["sandbox_received"]["seller_bank_and_account"]),
        s["edit_reached_the_invoice"]
    );
    for f in s["found_by_bill"].as_array().into_iter().flatten() {
        println!(
            "    found by bill: invoice {} total {} buyer {}",
            text(&f["invoice_num"]),
            text(&f["total"]),
            text(&f["buyer"])
        );
    }
    for d in s["downloaded"].as_array().into_iter().flatten() {
        println!("    PDF downloaded: {}", text(d));
    }
}
