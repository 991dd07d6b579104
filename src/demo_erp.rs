//! The demo's "ERP push" stage (issue 17): a business system pushes bills through the ERP API the
//! way an ERP would (the sandbox's ERP client over real HTTP), pushes them again (the same
//! answers, nothing new), the auto-issue pass issues them against the sandbox, the ERP asks for a
//! bill's invoices, and the callbacks reach the system's own URL.

use std::sync::Arc;

use fapiao_channel::sandbox::Sandbox;
use fapiao_channel::sandbox::erp_client::{ErpClient, ErpCredentials, sample_bills};
use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::systems::{self, NewSystem};
use fapiao_usecases::{Actor, App};
use serde_json::{Value, json};

const SYSTEM: &str = "DEMO-ERP";

pub async fn stage(app: &App, sandbox: &Sandbox, seller: &fapiao_schemas::TaxNo) -> anyhow::Result<Value> {
    // A second demo on the same database finds the system: a new secret instead.
    let exists = systems::list(app).await?.iter().any(|s| s.code == SYSTEM);
    let creds = if exists {
        systems::rotate_secret(app, &Actor::Demo, SYSTEM).await?
    } else {
        let new = NewSystem {
            code: SYSTEM.into(),
            name: "演示ERP".into(),
            callback_url: None,
            tax_nos: vec![seller.clone()],
            aes: true,
        };
        systems::add(app, &Actor::Demo, &new).await?
    };
    let own_url = format!("{}/erp/callback/{SYSTEM}-own", sandbox.base_url());
    systems::set_callback(app, &Actor::Demo, SYSTEM, Some(&own_url)).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let router = fapiao_api::router(Arc::new(fapiao_api::Api::new(app.clone())));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let erp = ErpClient::new(&ErpCredentials {
        base_url: base_url.clone(),
        app_id: creds.app_id,
        app_secret: creds.app_secret,
        account_id: creds.account_id,
        system_code: SYSTEM.into(),
        data_password: creds.data_password,
    });
    let prefix = format!("ERP{}", chrono::Utc::now().format("%y%m%d%H%M%S"));
    let bills = sample_bills(&prefix, seller.as_str(), "深圳示例便利店", 3, 2, true);
    let answers = erp.push(&bills).await?;
    let resent_same = erp.push(&bills).await? == answers;
    let received_before = sandbox.world().erp.received.len();
    let issued = issuing::issue(app, &Actor::Demo, &Selection::AutoIssue, &|_| {}).await?;
    let first = format!("{prefix}-000001");
    let found = erp.query(&first, seller.as_str()).await?;
    server.abort();
    let callbacks_at_own_url = sandbox.world().erp.received[received_before..]
        .iter()
        .filter(|r| r["system"] == format!("{SYSTEM}-own"))
        .count();
    Ok(json!({
        "api": base_url, "system": SYSTEM, "bills": answers.len(), "resent_same_answers": resent_same,
        "issued": issued.succeeded, "failed": issued.failed,
        "queried_bill": first, "invoices": found.first().map(|b| b["invoiceList"].clone()),
        "callbacks_at_own_url": callbacks_at_own_url, "own_url": own_url,
    }))
}

pub fn print(r: &Value) {
    let e = &r["erp_push"];
    println!(
        "[8b] ERP push ({} at {}, data AES-GCM)",
        e["system"].as_str().unwrap_or(""),
        e["api"].as_str().unwrap_or("")
    );
    println!(
        "    BILL.PUSH {} bills (自动开票) accepted; pushed again: {}",
        e["bills"],
        if e["resent_same_answers"] == true { "the same answers, nothing new" } else { "DIFFERENT ANSWERS" }
    );
    println!("    auto-issue pass: {} issued, {} failed", e["issued"], e["failed"]);
    for i in e["invoices"].as_array().into_iter().flatten() {
        println!(
            "    BILL.INVOICE.QUERY {}: invoice {} {} {}",
            e["queried_bill"].as_str().unwrap_or(""),
            i["invoiceNum"].as_str().unwrap_or(""),
            i["totalAmountWithTax"].as_str().unwrap_or(""),
            i["invoiceFileUrl"].as_str().unwrap_or("")
        );
    }
    println!("    callbacks received at the system's own URL: {}", e["callbacks_at_own_url"]);
}
