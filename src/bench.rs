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
}

const SELLER: (&str, &str) = ("上海示例贸易有限公司", "91310000MA1FL2AB09");
const BUYER: (&str, &str) = ("深圳示例便利店", "92440300MA5DXY7K3W");

pub async fn run(command: BenchCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let BenchCommand::ChannelIssue { count, latency_ms, in_flight } = command;
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
