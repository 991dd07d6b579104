//! `fapiao demo`: the main job on the embedded default. Each stage of the product adds its
//! part here, so that one command shows the whole flow.

use chrono::NaiveDate;
use fapiao_schemas::enterprise::{Channel, Enterprise, SyncScheme, TaxpayerKind};
use fapiao_schemas::params::{INPUTOUT_DAYS, RIM_CONFIG, SYNC_HIS};
use fapiao_schemas::{ImportKind, PendingStatus, TaxNo};
use fapiao_store::{Database, Origin, params};
use serde_json::json;

use std::sync::Arc;
use std::time::Duration;

use fapiao_channel::sandbox::{Sandbox, SandboxConfig, sample_invoice};
use fapiao_channel::{ChannelClient, ClientConfig};

use fapiao_usecases::export::ReconciliationRequest;
use fapiao_usecases::import::ImportRequest;
use fapiao_usecases::issuing::{self, DeliveryReport, Selection};
use fapiao_usecases::{self as usecases, Actor, App, quiet};

use crate::exit::Outcome;
use crate::{Context, enterprise, output, scheme};

/// Two sample enterprises sharing one e-tax account (so downloads for them are serialized):
/// a general taxpayer on 乐企 and a small-scale taxpayer on 电子税局.
fn sample_enterprises() -> Vec<Enterprise> {
    let tax_no = |s: &str| TaxNo::parse(s).expect("sample tax numbers carry valid check characters");
    vec![
        Enterprise {
            tax_no: tax_no("91310000MA1FL2AB09"),
            name: "上海示例贸易有限公司".into(),
            taxpayer_kind: TaxpayerKind::General,
            etax_account: "demo-etax-01".into(),
            channel: Channel::Leqi,
        },
        Enterprise {
            tax_no: tax_no("92440300MA5DXY7K3W"),
            name: "深圳示例便利店".into(),
            taxpayer_kind: TaxpayerKind::SmallScale,
            etax_account: "demo-etax-01".into(),
            channel: Channel::Etax,
        },
    ]
}

fn sample_schemes(enterprises: &[Enterprise]) -> Vec<SyncScheme> {
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date");
    enterprises
        .iter()
        .enumerate()
        .map(|(i, e)| SyncScheme {
            code: format!("DEMO-{:02}", i + 1),
            tax_no: e.tax_no.clone(),
            start_date: start,
            active: true,
            verify_changed: false,
        })
        .collect()
}

#[derive(clap::Args, Default)]
pub struct DemoArgs {
    /// After the demo, keep the web console up (console only, no job workers: the demo's sandbox
    /// is gone) and print its URL and a new admin password.
    #[arg(long)]
    serve: bool,
    /// Where the console listens (default `[http] listen`, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", requires = "serve")]
    http: Option<std::net::SocketAddr>,
}

pub async fn run(args: DemoArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let outcome = demo(ctx).await?;
    if !args.serve {
        return Ok(outcome);
    }
    // Stage 9 — the console: an admin with a random password, printed once.
    let app = App::open(&ctx.settings).await?;
    let password = usecases::users::random_password();
    usecases::users::set_admin(&app, &Actor::Demo, "admin", &password).await?;
    let addr = args.http.or(ctx.settings.http.listen).unwrap_or_else(|| ([127, 0, 0, 1], 8080).into());
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::jobs_cmd::cancel_on_signals(cancel.clone());
    let (jc, registry) = crate::jobs_cmd::job_context(ctx, cancel).await?;
    println!("[9] console");
    let console = crate::jobs_cmd::start_console(addr, &jc, &registry).await?;
    println!(
        "  log in as admin with password {password}  (shown once; `fapiao user passwd admin --password-stdin` changes it)"
    );
    println!("  console only, no job workers; Ctrl-C stops it");
    console.await??;
    Ok(outcome)
}

async fn demo(ctx: &Context) -> anyhow::Result<Outcome> {
    // Stage 1 — foundation: database, schema, enterprises, sync schemes, parameters.
    let db = Database::open(&ctx.settings).await?;
    let migrations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&db.pool).await?;
    let enterprise_list = sample_enterprises();
    let scheme_list = sample_schemes(&enterprise_list);
    let foundation = App::on(db.pool.clone(), &ctx.settings);
    usecases::tenant::upsert(&foundation, &Actor::Demo, &enterprise_list, &scheme_list).await?;
    let sync = params::value(&db.pool, RIM_CONFIG, SYNC_HIS).await?;
    let days = params::value(&db.pool, RIM_CONFIG, INPUTOUT_DAYS).await?;
    let day_rule = fapiao_schemas::params::DownloadDays::from_param(days.as_deref());

    let (where_, url) = match &db.origin {
        Origin::External { url } => ("DATABASE_URL".to_string(), url.clone()),
        Origin::Embedded { url, started } => (
            format!("embedded cluster ({})", if *started { "started now" } else { "already running" }),
            url.clone(),
        ),
    };
    // Stage 2 — channel: the sandbox in-process, one token round trip, one issued invoice.
    let sandbox = Sandbox::start(
        SandboxConfig {
            app_id: ctx.settings.channel.app_id.clone(),
            app_secret: ctx.settings.channel.app_secret.expose().to_string(),
            issue_delay: Duration::from_millis(300),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let mut client_config = ClientConfig::from_settings(&ctx.settings.channel);
    client_config.base_url = sandbox.base_url();
    client_config.codec = fapiao_channel::codec::Codec::Base64;
    let client = Arc::new(ChannelClient::new(client_config));
    let channel = channel_stage(&sandbox, &client, &enterprise_list).await?;

    // Stage 3 — sync jobs: the four jobs once, for the latest day whose day-of-month % 3 == 0.
    let jobs = jobs_stage(ctx, &db, client.clone()).await?;

    // Stages 4–8 go through the use cases, as the CLI and the jobs do; callbacks go to the sandbox's ERP.
    let app = demo_app(ctx, &db, &sandbox, client.clone());

    // Stage 3, continued — the pool in use: a document uses an invoice; over-use and an invoice
    // past the reimbursement period are refused verbatim.
    let pool_use = crate::demo_pool::stage(&app).await?;
    let selection = crate::demo_pool::selection(&app, &enterprise_list).await?;

    // Stage 4 — Excel import: a generated applications workbook with three bad lines.
    let import = import_stage(&app, &enterprise_list).await?;
    let batch = import["batch_id"].as_i64();

    // Stage 5 — invoicing: the imported bills issued with faults injected, then auto-reissue.
    let invoicing = invoicing_stage(&app, &sandbox, batch).await?;

    // Stage 6 — issued invoices and the exception loop: approval, a failure edited and issued by hand, found by bill, PDF.
    let issued = crate::demo_issued::stage(&app, &sandbox, &enterprise_list[0].tax_no, &demo_home()?).await?;

    // Stage 7 — red-flush: one invoice of each track.
    let red_flush = crate::demo_red_flush::stage(&app, &sandbox, &enterprise_list, batch).await?;

    // Stage 8 — reconciliation export of this month.
    let export = export_stage(&app, ctx).await?;

    // Stage 8b — ERP push: bills through the ERP API, issued by the auto-issue pass, queried, called back.
    let erp_push = crate::demo_erp::stage(&app, &sandbox, &enterprise_list[0].tax_no).await?;

    // Stage 8c — a receipt code (动态小票码): its link, and a consumer's title issued at once.
    let receipt_code = crate::demo_receipt::stage(&app, &enterprise_list[0].tax_no).await?;

    let report = json!({
        "database": { "origin": where_, "url": url, "migrations_applied": migrations },
        "enterprises": enterprise_list,
        "schemes": scheme_list,
        "parameters": { "rim_config_sync_his": sync, "download_days": day_rule.to_string() },
        "channel": channel,
        "jobs": jobs,
        "pool_use": pool_use,
        "selection": selection,
        "import": import,
        "invoicing": invoicing,
        "issued_invoices": issued,
        "red_flush": red_flush,
        "export": export,
        "erp_push": erp_push,
        "receipt_code": receipt_code,
    });
    if ctx.json {
        output::json(&report)?;
    } else {
        print_text(&report, &enterprise_list, &scheme_list)?;
    }
    Ok(Outcome::Done)
}

fn print_text(
    r: &serde_json::Value,
    enterprises: &[Enterprise],
    schemes: &[SyncScheme],
) -> anyhow::Result<()> {
    println!("== fapiao demo ==");
    println!("[1] foundation");
    println!("    database: {}", r["database"]["origin"].as_str().unwrap_or("?"));
    println!("    url:      {}", r["database"]["url"].as_str().unwrap_or("?"));
    println!("    schema:   {} migration(s) applied", r["database"]["migrations_applied"]);
    println!("    enterprises (upserted):");
    enterprise::print(enterprises, false)?;
    println!("    sync schemes (upserted):");
    scheme::print(schemes, false)?;
    println!(
        "    sync jobs switch rim_config_sync_his = {}",
        r["parameters"]["rim_config_sync_his"].as_str().unwrap_or("?")
    );
    println!("    download-apply runs on: {}", r["parameters"]["download_days"].as_str().unwrap_or("?"));
    println!("[2] channel (sandbox at {})", r["channel"]["sandbox"].as_str().unwrap_or("?"));
    println!(
        "    token:    obtained (valid {} s); ALLE.ACCOUNT.CHECK {} → etaxAccountType {}",
        r["channel"]["token_valid_secs"],
        r["channel"]["seller"].as_str().unwrap_or("?"),
        r["channel"]["etax_account_type"]
    );
    println!(
        "    issue:    ALLE.INVOICE.OPEN serialNo {} accepted; first query: {}",
        r["channel"]["serial_no"].as_str().unwrap_or("?"),
        r["channel"]["first_status"].as_str().unwrap_or("?")
    );
    println!(
        "    result:   {} invoice {} total {} ({})",
        r["channel"]["final_status"].as_str().unwrap_or("?"),
        r["channel"]["invoice_num"].as_str().unwrap_or("?"),
        r["channel"]["total"].as_str().unwrap_or("?"),
        r["channel"]["pdf"].as_str().unwrap_or("?")
    );
    println!(
        "[3] sync jobs for {} (day-of-month % 3 == 0), against the sandbox",
        r["jobs"]["date"].as_str().unwrap_or("?")
    );
    for run in r["jobs"]["runs"].as_array().into_iter().flatten() {
        println!(
            "    {:<15} run {:<4} {:<9} read {:<5} written {:<5} rejected {:<3} {}",
            run["job"].as_str().unwrap_or(""),
            run["run_id"],
            run["state"].as_str().unwrap_or(""),
            run["read"],
            run["written"],
            run["rejected"],
            run["reason"].as_str().unwrap_or("")
        );
    }
    println!(
        "    pool: {} invoices ({} verified, {} deductible); staging: {}",
        r["jobs"]["pool"]["total"],
        r["jobs"]["pool"]["verified"],
        r["jobs"]["pool"]["deductible"],
        r["jobs"]["staging"]
    );
    crate::demo_pool::print(&r["pool_use"]);
    crate::demo_pool::print_selection(&r["selection"]);
    println!(
        "[4] import of a generated applications workbook ({}), --accept-valid",
        r["import"]["file"].as_str().unwrap_or("?")
    );
    println!(
        "    batch {} : rows read {}, bills {}, accepted {}, rejected {}",
        r["import"]["batch_id"],
        r["import"]["rows_read"],
        r["import"]["bills"],
        r["import"]["accepted"],
        r["import"]["rejected"]
    );
    for p in r["import"]["problems"].as_array().into_iter().flatten() {
        println!(
            "    row {}  {}  [{}] {}",
            p["row"],
            p["column"].as_str().unwrap_or(""),
            p["code"].as_str().unwrap_or(""),
            p["message"].as_str().unwrap_or("")
        );
    }
    let inv = &r["invoicing"];
    println!(
        "[5] invoicing of the imported bills against the sandbox, faults: {}",
        inv["faults"].as_str().unwrap_or("")
    );
    println!(
        "    pushed {} bills into {} pending invoices (limits per kind; split/merge)",
        inv["bills"], inv["pending"]
    );
    println!(
        "    first pass: 开票成功 {}, 开票失败 {} ({} 局端内部错误…修复中, {} others); {} lost answers settled by query",
        inv["first_pass"]["succeeded"],
        inv["first_pass"]["failed"],
        inv["first_pass"]["repairing"],
        inv["first_pass"]["other_failures"],
        inv["first_pass"]["answers_lost"]
    );
    println!(
        "    auto-reissue (sim_auto_issue_config = 局端内部错误，该开票请求修复中): reissued {}, skipped {}, still failing {}, left alone {}",
        inv["reissue"]["reissued"],
        inv["reissue"]["skipped"],
        inv["reissue"]["still_failing"],
        inv["reissue"]["left_alone"]
    );
    println!("    every invoice issued exactly once by the sandbox's own ledger: {}", inv["issued_once"]);
    println!(
        "    callbacks: sent {}, succeeded {}; the sandbox ERP received {} ({} with returnCode 0; the others reported a failure that was then reissued)",
        inv["callbacks"]["attempted"],
        inv["callbacks"]["succeeded"],
        inv["erp_received"],
        inv["erp_received_ok"]
    );
    println!("    e.g. {}", inv["erp_sample"].as_str().unwrap_or("-"));
    crate::demo_issued::print(&r["issued_invoices"]);
    println!(
        "[7] red-flush, one invoice of each track (issued for the purpose: 税控普票, 税控专票, 数电专票, a 税控专票 on a red info sheet entered by hand, and a 数电普票 from [5])"
    );
    for r in r["red_flush"]["results"].as_array().into_iter().flatten() {
        println!(
            "    {:<22} {:<18} {:>9} reason {}  {:<10} {}",
            r["kind"].as_str().unwrap_or(""),
            r["track"].as_str().unwrap_or(""),
            r["requested"].as_str().unwrap_or(""),
            r["reason"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or(""),
            r["path"].as_str().unwrap_or("")
        );
    }
    println!("    blue invoices after: {}", r["red_flush"]["blue_states"]);
    println!(
        "    INVOICE.RED callbacks sent {}, succeeded {}",
        r["red_flush"]["callbacks"]["attempted"], r["red_flush"]["callbacks"]["succeeded"]
    );
    let e = &r["export"];
    println!(
        "[8] reconciliation export {} … {}: {}",
        e["from"].as_str().unwrap_or(""),
        e["to"].as_str().unwrap_or(""),
        e["path"].as_str().unwrap_or("")
    );
    println!("    rows: {}", e["row_counts"]);
    for c in e["checks"].as_array().into_iter().flatten() {
        println!(
            "    check {:<28} {}",
            c["name"].as_str().unwrap_or(""),
            if c["ok"] == true { "ok".to_string() } else { format!("FAILED: {}", c["examples"]) }
        );
    }
    crate::demo_erp::print(r);
    crate::demo_receipt::print(r);
    println!("done.");
    Ok(())
}

/// Where the demo writes files: `$FAPIAO_HOME` (default `.fapiao`), made if missing — with a
/// DATABASE_URL given, nothing else creates it on a fresh machine.
pub(crate) fn demo_home() -> std::io::Result<std::path::PathBuf> {
    let home = std::env::var_os("FAPIAO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(".fapiao"));
    std::fs::create_dir_all(&home)?;
    Ok(home)
}

async fn export_stage(app: &App, ctx: &Context) -> anyhow::Result<serde_json::Value> {
    use chrono::Datelike;
    let tz = ctx.settings.time_zone();
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let from = today.with_day(1).expect("day 1 exists");
    let home = demo_home()?;
    std::fs::create_dir_all(home.join("exports"))?;
    let out = home.join("exports").join(format!("reconciliation-{}.zip", today.format("%Y%m")));
    let request = ReconciliationRequest { from, to: today, tax_nos: Vec::new(), out };
    let report = usecases::export::reconciliation(app, &Actor::Demo, request, &|_| {}).await?;
    Ok(json!({ "from": from.to_string(), "to": today.to_string(), "path": report.path.display().to_string(),
        "row_counts": report.manifest.row_counts, "checks": report.manifest.checks }))
}

/// The use cases' context for stages 5–6: callbacks go to the sandbox's ERP, settling polls fast.
fn demo_app(ctx: &Context, db: &Database, sandbox: &Sandbox, client: Arc<ChannelClient>) -> App {
    let mut settings = ctx.settings.clone();
    settings.callbacks.url = format!("{}/erp/callback/{{system}}", sandbox.base_url());
    settings.invoicing.settle_poll_ms = 50;
    App::new(db.pool.clone(), client, Arc::new(settings))
}

async fn invoicing_stage(
    app: &App,
    sandbox: &Sandbox,
    batch: Option<i64>,
) -> anyhow::Result<serde_json::Value> {
    use fapiao_channel::sandbox::FaultPlan;
    use fapiao_schemas::messages::BUREAU_REPAIRING_PREFIX;
    use fapiao_schemas::params::SIM_AUTO_ISSUE_CONFIG;
    usecases::params::set(app, &Actor::Demo, SIM_AUTO_ISSUE_CONFIG, "repairing", BUREAU_REPAIRING_PREFIX)
        .await?;
    let faults = "drop@ALLE.INVOICE.OPEN=0.2,repairing@ALLE.INVOICE.OPEN=0.2";
    {
        let mut world = sandbox.world();
        world.dice.set_plan(FaultPlan::parse(faults)?);
        // The repair time in the message is "now" (to the minute), so the reissue below may go at once.
        world.config.repair_after = Duration::ZERO;
    }
    let bills: Vec<String> =
        sqlx::query_scalar("SELECT bill_no FROM application WHERE batch_id = $1 ORDER BY bill_no")
            .bind(batch)
            .fetch_all(&app.pool)
            .await?;
    let first = issuing::issue(app, &Actor::Demo, &Selection::Bills(bills), &quiet).await?;
    let pushed = &first.pushed;
    sandbox.world().dice.set_plan(FaultPlan::none());
    let repairing = first
        .invoices
        .iter()
        .filter(|o| o.status == PendingStatus::Failed)
        .filter(|o| o.message.as_deref().unwrap_or("").starts_with(BUREAU_REPAIRING_PREFIX))
        .count();
    let lost: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pending_event WHERE event = 'answer_lost' AND pending_id = ANY($1)",
    )
    .bind(&pushed.pending_ids)
    .fetch_one(&app.pool)
    .await?;
    let reissued = issuing::reissue(app, &Actor::Demo, chrono::Utc::now(), false, None, &quiet).await?;
    let report = &reissued.report;
    let delivered = [Some(&first.callbacks), reissued.callbacks.as_ref()].into_iter().flatten().fold(
        DeliveryReport::default(),
        |sum, d| DeliveryReport {
            attempted: sum.attempted + d.attempted,
            succeeded: sum.succeeded + d.succeeded,
            retrying: sum.retrying + d.retrying,
            gave_up: sum.gave_up + d.gave_up,
        },
    );
    // The sandbox's own ledger: exactly one succeeded serial per pending invoice.
    let attempts: Vec<(i64, String)> =
        sqlx::query_as("SELECT pending_id, serial_no FROM issue_attempt WHERE pending_id = ANY($1)")
            .bind(&pushed.pending_ids)
            .fetch_all(&app.pool)
            .await?;
    let mut per: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    {
        let world = sandbox.world();
        for (id, serial) in &attempts {
            *per.entry(*id).or_default() += usize::from(
                world
                    .outcome(serial)
                    .is_some_and(|r| r.issue_status == fapiao_channel::codes::IssueStatus::Succeeded),
            );
        }
    }
    let erp = sandbox.world().erp.received.clone();
    let succeeded_callbacks = erp
        .iter()
        .filter(|c| c["body"]["returnCode"] == "0" && c["body"]["interfaceCode"] == "INVOICE.OPEN")
        .count();
    let sample = erp.iter().rev().find(|c| c["body"]["returnCode"] == "0").map(|c| {
        let d = &c["body"]["data"];
        format!(
            "{} → {}: returnCode {}, {} invoice(s), bill total {}",
            d["billNo"].as_str().unwrap_or(""),
            c["system"].as_str().unwrap_or(""),
            c["body"]["returnCode"].as_str().unwrap_or(""),
            d["invoices"].as_array().map_or(0, Vec::len),
            d["billTotalAmount"].as_str().unwrap_or("")
        )
    });
    Ok(json!({
        "faults": faults,
        "bills": pushed.bills.len(),
        "pending": pushed.pending_ids.len(),
        "first_pass": { "succeeded": first.invoices.len() - first.failed, "failed": first.failed,
            "repairing": repairing, "other_failures": first.failed - repairing, "answers_lost": lost },
        "reissue": { "reissued": report.reissued.len(), "skipped": report.skipped.len(), "still_failing": report.still_failing.len(),
            "left_alone": report.left_alone.len() },
        "issued_once": per.len() == pushed.pending_ids.len() && per.values().all(|n| *n == 1),
        "callbacks": delivered,
        "erp_received": erp.len(),
        "erp_received_ok": succeeded_callbacks,
        "erp_sample": sample,
    }))
}

/// Take a token, check the seller's account, issue one invoice from the first sample
/// enterprise to the second and query it until it is final.
async fn channel_stage(
    sandbox: &Sandbox,
    client: &ChannelClient,
    enterprises: &[Enterprise],
) -> anyhow::Result<serde_json::Value> {
    let (seller, buyer) = (&enterprises[0], &enterprises[1]);
    client.access_token().await?;
    let account = client.account_check(seller.tax_no.as_str()).await?;
    // The lifetime the sandbox grants; the token itself is a secret and never printed.
    let token_valid_secs = sandbox.world().config.token_ttl.as_secs();

    let serial = format!("DEMO-{}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"));
    let invoice = sample_invoice(
        &serial,
        "digital_ordinary",
        (&seller.name, seller.tax_no.as_str()),
        (&buyer.name, buyer.tax_no.as_str()),
        fapiao_schemas::Money::from_cents(12_345),
    );
    client.issue(&invoice).await?;
    let first = client.query_issue(&serial, seller.tax_no.as_str()).await?;
    let done = client
        .wait_final(&serial, seller.tax_no.as_str(), Duration::from_millis(100), Duration::from_secs(10))
        .await?;
    Ok(json!({
        "sandbox": sandbox.base_url(),
        "seller": seller.tax_no,
        "token_valid_secs": token_valid_secs,
        "etax_account_type": account.etax_account_type,
        "serial_no": serial,
        "first_status": first.issue_status.label_zh(),
        "final_status": done.issue_status.label_zh(),
        "invoice_num": done.invoice_num,
        "total": done.total_amount.to_string(),
        "pdf": done.invoice_file_url,
    }))
}

async fn jobs_stage(
    ctx: &Context,
    db: &Database,
    client: Arc<ChannelClient>,
) -> anyhow::Result<serde_json::Value> {
    use chrono::Datelike;
    use fapiao_jobs::{JobContext, Registry, control};
    let tz = ctx.settings.time_zone();
    let mut date = chrono::Utc::now().with_timezone(&tz).date_naive();
    while !date.day().is_multiple_of(3) {
        date = date.pred_opt().expect("a day before");
    }
    let jc = JobContext::new(
        db.pool.clone(),
        client,
        ctx.settings.clone(),
        format!("demo:{}", std::process::id()),
    );
    let registry = Registry::from_settings(&ctx.settings)?;
    let metrics = fapiao_jobs::metrics::Metrics::default();
    let mut runs = Vec::new();
    for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
        let run = control::run_now(&jc, &registry, &Actor::Demo, job, Some(date), &metrics).await?;
        let o = run.outcome;
        runs.push(json!({ "job": job, "run_id": run.run_id, "state": o.state, "read": o.rows_read, "written": o.rows_written,
            "rejected": o.rows_rejected, "reason": o.reason.or(o.error) }));
    }
    let (total, verified, deductible): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE verified), count(*) FILTER (WHERE deductible) FROM invoice_pool",
    )
    .fetch_one(&db.pool)
    .await?;
    let staging: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM download_staging GROUP BY state ORDER BY state")
            .fetch_all(&db.pool)
            .await?;
    let staging: serde_json::Map<String, serde_json::Value> =
        staging.into_iter().map(|(s, n)| (s, json!(n))).collect();
    Ok(
        json!({ "date": date.to_string(), "runs": runs, "pool": { "total": total, "verified": verified, "deductible": deductible },
        "staging": staging }),
    )
}

async fn import_stage(app: &App, enterprises: &[Enterprise]) -> anyhow::Result<serde_json::Value> {
    use fapiao_pipelines::import::sample;
    let dir = std::env::temp_dir().join(format!("fapiao-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("applications.xlsx");
    // A fresh bill-number prefix each run, so a second demo imports a new file.
    let prefix = format!("DEMO{}{}-", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"), std::process::id());
    sample::write_xlsx(
        &file,
        &prefix,
        200,
        enterprises[0].tax_no.as_str(),
        enterprises[1].tax_no.as_str(),
        &[17, 88, 150],
    )?;
    let request = ImportRequest { accept_valid: true, ..ImportRequest::new(ImportKind::Applications) };
    let summary = usecases::import::file(app, &Actor::Demo, &file, request, &|_| {}).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut value = serde_json::to_value(&summary)?;
    value["file"] = json!("applications.xlsx (200 lines, 3 with a wrong tax)");
    Ok(value)
}
