//! `fapiao bench receipt` (issue 20): consumers submitting titles for printed receipt codes through
//! the same path the `/r` page takes — the console's Router in-process (CSRF cookie and field,
//! the page's handler, `receipts::submit`, the issuing pass) — against an in-process sandbox as
//! the channel with injected latency. Prints submits per second to 开票成功, p50/p95 from submit
//! to 开票成功, and the ratio to the channel-issue bound (in-flight ÷ latency) and to the raw
//! channel-issue rate measured on the same sandbox in the same run. Every receipt must have
//! exactly one invoice by the sandbox's ledger (exit 1 if not).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_schemas::InvoiceKind;
use fapiao_usecases::receipts::{self, Delivery, SettingsRequest};
use fapiao_usecases::{Actor, App, invoices};
use serde_json::json;
use tower::ServiceExt;

use crate::bench::{channel_issue_round, p50_p95, scratch_with_seller};
use crate::exit::Outcome;
use crate::{Context, output};

const SELLER: &str = "91310000MA1FL2AB09";

/// One consumer's page: the form's CSRF token (cookie and hidden field) for a link.
struct Opened {
    query: String,
    csrf: String,
}

pub async fn receipt(
    ctx: &Context,
    codes: usize,
    latency_ms: u64,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(codes > 0 && concurrency > 0, "--codes and --concurrency must be at least 1");
    let scratch = scratch_with_seller(ctx, "fapiao_bench_receipt", SELLER).await?;
    let sandbox_config = SandboxConfig {
        faults: FaultPlan::parse(&format!("latency={latency_ms}ms"))?,
        issue_delay: Duration::ZERO,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(sandbox_config, "127.0.0.1:0").await?;
    let mut settings = ctx.settings.clone();
    settings.channel.base_url = sandbox.base_url();
    // Every consumer here comes from one address: the per-address limit would refuse them.
    settings.receipt.per_address_per_minute = 0;
    let in_flight = settings.channel.max_in_flight as usize;
    let app = App::on(scratch.pool.clone(), &settings);
    app.channel.access_token().await?; // the token round trip is not part of the figure

    let staged = Instant::now();
    let links = make_codes(&app, codes).await?;
    let jobs = fapiao_jobs::JobContext::new(
        scratch.pool.clone(),
        app.channel.clone(),
        settings.clone(),
        "bench".into(),
    );
    let registry = fapiao_jobs::Registry::from_settings(&settings)?;
    let router = fapiao_web::router(Arc::new(fapiao_web::Console::new(app.clone(), jobs, registry)));
    let mut opened = Vec::with_capacity(codes);
    for link in &links {
        opened.push(open(&router, link).await?);
    }
    let stage_secs = staged.elapsed().as_secs_f64();

    // The timed part: K consumers at once, each submitting the next title until all are in.
    let opened = Arc::new(opened);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut consumers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (router, opened, next) = (router.clone(), opened.clone(), next.clone());
        consumers.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(o) = opened.get(i) else { break };
                let t = Instant::now();
                let ok = submit(&router, o, i).await;
                out.push((t.elapsed().as_secs_f64(), ok));
            }
            out
        });
    }
    let mut samples = Vec::with_capacity(codes);
    let mut refused = 0;
    while let Some(r) = consumers.join_next().await {
        for (secs, ok) in r? {
            samples.push(secs);
            refused += usize::from(!ok);
        }
    }
    let submit_secs = started.elapsed().as_secs_f64();

    let ledger = check_ledger(&app, &sandbox, codes).await?;
    // The raw channel on the same sandbox, as `bench channel-issue` measures it.
    let mut config = ClientConfig::from_settings(&settings.channel);
    config.max_in_flight = in_flight;
    let client = Arc::new(ChannelClient::new(config));
    client.access_token().await?;
    let raw = channel_issue_round(&client, codes, "BENCH-RAW").await;
    scratch.drop().await?;

    let throughput = codes as f64 / submit_secs;
    let bound = in_flight as f64 / (latency_ms.max(1) as f64 / 1000.0);
    let raw_rate = codes as f64 / raw.seconds;
    let (p50, p95) = p50_p95(samples);
    let once = ledger.problems.is_empty() && refused == 0;
    if ctx.json {
        output::json(&json!({
            "codes": codes, "latency_ms": latency_ms, "concurrency": concurrency, "in_flight": in_flight,
            "settle_poll_ms": settings.invoicing.settle_poll_ms, "stage_seconds": stage_secs,
            "submit_seconds": submit_secs, "submits_per_s": throughput, "p50_ms": p50, "p95_ms": p95,
            "bound_per_s": bound, "ratio_to_bound": throughput / bound,
            "channel_issue_per_s": raw_rate, "channel_issue_failures": raw.failed, "ratio_to_channel_issue": throughput / raw_rate,
            "not_succeeded": refused, "invoices_in_sandbox": ledger.invoices, "one_invoice_per_receipt": once,
            "problems": ledger.problems,
        }))?;
    } else {
        println!(
            "receipt: {codes} printed codes, {concurrency} consumers at once, {latency_ms} ms injected channel latency, {in_flight} in flight, settle poll {} ms (codes made and pages opened in {stage_secs:.1} s, not timed)",
            settings.invoicing.settle_poll_ms
        );
        println!(
            "  submits to 开票成功: {submit_secs:.2} s  →  {throughput:.1} /s  (not 开票成功: {refused})"
        );
        println!("  submit → 开票成功:   p50 {p50:.0} ms, p95 {p95:.0} ms");
        println!(
            "  bound:               {bound:.0} /s (in-flight ÷ latency)  →  ratio {:.3}",
            throughput / bound
        );
        println!(
            "  channel-issue here:  {raw_rate:.0} /s ({codes} raw issue calls, {} failed)  →  ratio {:.3}",
            raw.failed,
            throughput / raw_rate
        );
        println!(
            "  ledger: {} receipts, {} invoices in the sandbox — {}",
            codes,
            ledger.invoices,
            if once { "every receipt exactly one invoice" } else { "NOT one invoice per receipt" }
        );
        for p in ledger.problems.iter().take(10) {
            println!("    {p}");
        }
    }
    if !once {
        anyhow::bail!(
            "not every receipt got exactly one invoice ({} problems, {refused} submits without 开票成功)",
            ledger.problems.len()
        );
    }
    Ok(Outcome::Done)
}

/// Settings, one goods item and `n` printed receipt codes (two lines, one a discount); their links.
async fn make_codes(app: &App, n: usize) -> anyhow::Result<Vec<String>> {
    let actor = Actor::cli();
    receipts::set_settings(
        app,
        &actor,
        &SettingsRequest {
            tax_no: SELLER.into(),
            kinds: vec![InvoiceKind::DigitalOrdinary],
            default_kind: None,
            validity_minutes: 1440,
            base_url: "http://127.0.0.1".into(),
            delivery: Delivery::Email,
            mode1: false,
            mode2: false,
            order_query_url: None,
            kingdee_compat: false,
            kingdee_key: None,
        },
    )
    .await?;
    let goods = receipts::add_goods(app, &actor, &crate::demo_receipt::latte(SELLER)).await?;
    let mut links = Vec::with_capacity(n);
    for i in 0..n {
        let req =
            crate::demo_receipt::two_lattes_less_five(SELLER, &format!("BENCH-{i:06}"), goods, "收银员");
        let id = receipts::add(app, &actor, &req, Utc::now()).await?;
        links.push(receipts::show(app, id).await?.link);
    }
    Ok(links)
}

/// GET the link as a phone does: the form, and its CSRF cookie.
async fn open(router: &axum::Router, link: &str) -> anyhow::Result<Opened> {
    let query = link.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
    let res = router.clone().oneshot(Request::get(format!("/r?{query}")).body(Body::empty())?).await?;
    anyhow::ensure!(res.status() == StatusCode::OK, "opening a link: {}", res.status());
    let csrf = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| anyhow::anyhow!("the form set no CSRF cookie"))?;
    Ok(Opened { query, csrf })
}

/// POST the title (个人); true when the answer is the 开票成功 page.
async fn submit(router: &axum::Router, o: &Opened, i: usize) -> bool {
    let form = form_encoded(&[
        ("link", o.query.as_str()),
        ("csrf", o.csrf.as_str()),
        ("kind", InvoiceKind::DigitalOrdinary.as_str()),
        ("title_type", "person"),
        ("name", &format!("消费者{i}")),
    ]);
    let req = Request::post("/r")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("receipt_csrf={}", o.csrf))
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form));
    let Ok(req) = req else { return false };
    let Ok(res) = router.clone().oneshot(req).await;
    if res.status() != StatusCode::OK {
        return false;
    }
    let Ok(body) = axum::body::to_bytes(res.into_body(), 1 << 20).await else { return false };
    String::from_utf8_lossy(&body).contains("开票成功")
}

/// `application/x-www-form-urlencoded`: every byte but the unreserved ones percent-encoded.
fn form_encoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// What the ledgers say about the receipts' invoices.
struct Ledger {
    invoices: usize,
    problems: Vec<String>,
}

/// Each receipt's bill has exactly one blue invoice in the database, its serial was accepted
/// once by the sandbox and succeeded there, and the sandbox holds no other invoice.
async fn check_ledger(app: &App, sandbox: &Sandbox, codes: usize) -> anyhow::Result<Ledger> {
    let mut problems = Vec::new();
    let mut serials = Vec::with_capacity(codes);
    for i in 0..codes {
        let bill = receipts::bill_no_of(SELLER, &format!("BENCH-{i:06}"));
        let blue: Vec<_> = invoices::of_bill(app, &bill).await?.into_iter().filter(|r| !r.red).collect();
        match blue.as_slice() {
            [one] => serials.push(one.serial_no.clone()),
            other => problems.push(format!("{bill}: {} invoices", other.len())),
        }
    }
    let world = sandbox.world();
    for s in &serials {
        let succeeded =
            world.outcome(s).is_some_and(|r| r.issue_status == fapiao_channel::codes::IssueStatus::Succeeded);
        if world.accepted(s) != 1 || !succeeded {
            problems.push(format!("serial {s}: accepted {} times, succeeded {succeeded}", world.accepted(s)));
        }
    }
    let invoices = world.issued_count();
    if invoices != codes {
        problems.push(format!("the sandbox holds {invoices} invoices for {codes} receipts"));
    }
    Ok(Ledger { invoices, problems })
}
