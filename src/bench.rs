//! `fapiao bench …`: benchmarks that print their figure next to the bound it is compared with,
//! measured in the same run. Run them with `--release`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig, sample_invoice};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_schemas::Money;
use serde_json::json;

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Issue COUNT invoices against an in-process sandbox with injected latency; the bound is
    /// in-flight limit ÷ latency (requests per second if every slot were always busy).
    ChannelIssue {
        #[arg(long, default_value_t = 5000)]
        count: usize,
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// Requests in flight (default: channel.max_in_flight from config).
        #[arg(long)]
        in_flight: Option<usize>,
    },
    /// Move ROWS staged headers into the pool with deal-task (key_element_check = 0) in a scratch
    /// database; the floor is one hand-written INSERT … SELECT … ON CONFLICT DO NOTHING of the
    /// same rows into a table like the pool, timed in the same run.
    DealTask {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        /// Staged rows per deal-task batch (default: jobs.deal_batch_size).
        #[arg(long)]
        batch: Option<u32>,
    },
}

const SELLER: (&str, &str) = ("上海示例贸易有限公司", "91310000MA1FL2AB09");
const BUYER: (&str, &str) = ("深圳示例便利店", "92440300MA5DXY7K3W");

pub async fn run(command: BenchCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    match command {
        BenchCommand::ChannelIssue { count, latency_ms, in_flight } => channel_issue(ctx, count, latency_ms, in_flight).await,
        BenchCommand::DealTask { rows, batch } => deal_task(ctx, rows, batch).await,
    }
}

async fn deal_task(ctx: &Context, rows: i64, batch: Option<u32>) -> anyhow::Result<Outcome> {
    let batch = batch.unwrap_or(ctx.settings.jobs.deal_batch_size);
    use fapiao_jobs::{JobContext, Registry, runner, synthetic};
    let scratch = fapiao_store::Scratch::create(&ctx.settings, &format!("fapiao_bench_{}", std::process::id())).await?;
    let pool = scratch.pool.clone();
    fapiao_store::params::set(&pool, "rim_config", "key_element_check", "0").await?;
    let staged_started = Instant::now();
    synthetic::stage(&pool, "91310000MA1FL2AB09", 0, rows).await?;
    sqlx::query("VACUUM ANALYZE download_staging").execute(&pool).await?;
    let stage_secs = staged_started.elapsed().as_secs_f64();

    // The floor: the same rows, one statement, into a table shaped like the pool.
    sqlx::query("CREATE TABLE pool_floor (LIKE invoice_pool INCLUDING ALL)").execute(&pool).await?;
    let floor_started = Instant::now();
    sqlx::query(
        "INSERT INTO pool_floor (tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no,
             buyer_name, amount, tax, total, check_code, status, invoice_property, blockchain, special_business, source,
             verified, deductible, signed, staging_id)
         SELECT tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no, buyer_name,
                amount, tax, total, check_code, status, invoice_property, blockchain, special_business, 'tax_bureau',
                false, true, false, id
         FROM download_staging ON CONFLICT DO NOTHING",
    )
    .execute(&pool)
    .await?;
    let floor_secs = floor_started.elapsed().as_secs_f64();
    sqlx::query("CHECKPOINT").execute(&pool).await?;

    let mut settings = ctx.settings.clone();
    settings.jobs.deal_batch_size = batch;
    let registry = Registry::from_settings(&settings)?;
    let channel = Arc::new(ChannelClient::new(ClientConfig::from_settings(&settings.channel)));
    let jc = JobContext::new(pool.clone(), channel, settings, format!("bench:{}", std::process::id()));
    let started = Instant::now();
    let (_, outcome) = runner::run_now(&jc, registry.get("deal-task")?, None, &fapiao_jobs::metrics::Metrics::default()).await?;
    let deal_secs = started.elapsed().as_secs_f64();
    let pooled: i64 = sqlx::query_scalar("SELECT count(*) FROM invoice_pool").fetch_one(&pool).await?;
    scratch.drop().await?;
    let ratio = deal_secs / floor_secs;
    if ctx.json {
        output::json(&json!({ "rows": rows, "batch": batch, "stage_seconds": stage_secs, "floor_seconds": floor_secs,
            "deal_task_seconds": deal_secs, "ratio": ratio, "pooled": pooled, "run_state": outcome.state }))?;
    } else {
        println!("deal-task: {rows} staged rows, batches of {batch} (staged in {stage_secs:.1} s, not timed)");
        println!("  floor (INSERT … SELECT … ON CONFLICT DO NOTHING): {floor_secs:.2} s");
        println!("  deal-task run ({}): {deal_secs:.2} s, {pooled} rows pooled", outcome.state);
        println!("  ratio: {ratio:.2}  (target ≤ 2.0)");
    }
    Ok(Outcome::Done)
}

async fn channel_issue(ctx: &Context, count: usize, latency_ms: u64, in_flight: Option<usize>) -> anyhow::Result<Outcome> {
    let in_flight = in_flight.unwrap_or(ctx.settings.channel.max_in_flight as usize);
    let sandbox_config = SandboxConfig {
        faults: FaultPlan::parse(&format!("latency={latency_ms}ms"))?,
        issue_delay: Duration::ZERO,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(sandbox_config, "127.0.0.1:0").await?;
    let mut config = ClientConfig::from_settings(&ctx.settings.channel);
    config.base_url = sandbox.base_url();
    config.max_in_flight = in_flight;
    let client = Arc::new(ChannelClient::new(config));
    client.access_token().await?; // the token round trip is not part of the figure

    let amount = Money::from_cents(10_000);
    let started = Instant::now();
    let mut issues = tokio::task::JoinSet::new();
    for n in 0..count {
        let client = client.clone();
        issues.spawn(async move {
            let serial = format!("BENCH-{n:06}");
            client.issue(&sample_invoice(&serial, "digital_ordinary", SELLER, BUYER, amount)).await.map(|_| ())
        });
    }
    let mut failed = 0;
    while let Some(r) = issues.join_next().await {
        failed += usize::from(!matches!(r, Ok(Ok(()))));
    }
    let issue_secs = started.elapsed().as_secs_f64();

    let settle_started = Instant::now();
    let mut queries = tokio::task::JoinSet::new();
    for n in 0..count {
        let client = client.clone();
        queries.spawn(async move { client.query_issue(&format!("BENCH-{n:06}"), SELLER.1).await.map(|r| r.issue_status == "1") });
    }
    let mut succeeded = 0;
    while let Some(r) = queries.join_next().await {
        succeeded += usize::from(matches!(r, Ok(Ok(true))));
    }
    let settle_secs = settle_started.elapsed().as_secs_f64();

    let throughput = count as f64 / issue_secs;
    let bound = in_flight as f64 / (latency_ms as f64 / 1000.0);
    let ratio = throughput / bound;
    if ctx.json {
        output::json(&json!({
            "count": count, "latency_ms": latency_ms, "in_flight": in_flight,
            "issue_seconds": issue_secs, "throughput_per_s": throughput, "bound_per_s": bound, "ratio": ratio,
            "issue_failures": failed, "settle_seconds": settle_secs, "issued_ok": succeeded,
        }))?;
    } else {
        println!("channel-issue: {count} invoices, {latency_ms} ms injected latency, {in_flight} in flight");
        println!("  issue calls:   {issue_secs:.2} s  →  {throughput:.0} /s  (failures: {failed})");
        println!("  bound:         {bound:.0} /s  (in-flight ÷ latency)");
        println!("  ratio:         {ratio:.2}  (target ≥ 0.70)");
        println!("  settle by query: {settle_secs:.2} s, {succeeded}/{count} 开票成功");
    }
    Ok(Outcome::Done)
}
