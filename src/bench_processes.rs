//! `fapiao bench issue-processes`: issuing scaled by processes. For each process count, a fresh
//! scratch database gets the same pushed pending invoices, and that many `fapiao issue --all`
//! processes issue them side by side against one in-process sandbox with latency. Printed:
//! seconds, invoices per second, the speed-up over one process, and whether the sandbox's own
//! ledger shows every invoice issued exactly once.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fapiao_channel::codes::IssueStatus;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig};
use serde_json::json;

use crate::Context;
use crate::exit::Outcome;

const SELLER: &str = "91310000MA1FL2AB09";
const BUYER: &str = "92440300MA5DXY7K3W";

pub async fn issue_processes(
    ctx: &Context,
    processes: &[usize],
    lines: usize,
    latency_ms: u64,
    concurrency: u32,
) -> anyhow::Result<Outcome> {
    let dir = std::env::temp_dir().join(format!("fapiao-bench-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("applications.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(&file, "PROC", lines, SELLER, BUYER, &[])?;
    let mut rounds = Vec::new();
    for &p in processes {
        rounds.push(round(ctx, &file, p, latency_ms, concurrency).await?);
    }
    std::fs::remove_dir_all(&dir).ok();
    let one = rounds.iter().find(|r| r.processes == 1).map(|r| r.per_second);
    if ctx.json {
        let list: Vec<_> = rounds
            .iter()
            .map(|r| {
                json!({ "processes": r.processes, "invoices": r.invoices, "seconds": r.seconds,
                        "per_second": r.per_second, "speedup": one.map(|o| r.per_second / o),
                        "issued_once": r.issued_once })
            })
            .collect();
        crate::output::json(
            &json!({ "latency_ms": latency_ms, "concurrency": concurrency, "rounds": list }),
        )?;
    } else {
        println!(
            "issuing by processes, {latency_ms} ms channel latency, {concurrency} invoices driven at once per process, the same pushed invoices each round:"
        );
        for r in &rounds {
            println!(
                "  {} process(es): {} invoices in {:.2} s = {:.1} /s{}; every invoice issued exactly once: {}",
                r.processes,
                r.invoices,
                r.seconds,
                r.per_second,
                one.map(|o| format!(", {:.2}× one process", r.per_second / o)).unwrap_or_default(),
                r.issued_once
            );
        }
    }
    Ok(if rounds.iter().all(|r| r.issued_once) { Outcome::Done } else { Outcome::SomeRejected })
}

struct Round {
    processes: usize,
    invoices: i64,
    seconds: f64,
    per_second: f64,
    issued_once: bool,
}

async fn round(
    ctx: &Context,
    file: &std::path::Path,
    processes: usize,
    latency_ms: u64,
    concurrency: u32,
) -> anyhow::Result<Round> {
    let scratch =
        crate::bench::scratch_with_seller(ctx, &format!("fapiao_bench_procs{processes}"), SELLER).await?;
    let buyer = fapiao_schemas::enterprise::Enterprise {
        tax_no: fapiao_schemas::TaxNo::parse(BUYER)?,
        name: "基准购方".into(),
        taxpayer_kind: fapiao_schemas::enterprise::TaxpayerKind::General,
        etax_account: "bench-buyer".into(),
        channel: fapiao_schemas::enterprise::Channel::Etax,
    };
    fapiao_store::enterprises::insert(&scratch.pool, &buyer).await?;
    let options = fapiao_pipelines::import::ImportOptions {
        kind: fapiao_schemas::ImportKind::Applications,
        ..Default::default()
    };
    fapiao_pipelines::import::import(&scratch.pool, file, &options, &|_| {}).await?;
    let sandbox_config = SandboxConfig {
        faults: FaultPlan::parse(&format!("latency={latency_ms}ms"))?,
        issue_delay: Duration::ZERO,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(sandbox_config, "127.0.0.1:0").await?;
    let app = fapiao_usecases::App::on(scratch.pool.clone(), &ctx.settings);
    let inv = fapiao_invoicing::Invoicing::new(app.pool.clone(), app.channel.clone(), app.settings.clone());
    fapiao_invoicing::push::push(&inv, &fapiao_invoicing::push::Selection::All).await?;
    let invoices: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pending_invoice").fetch_one(&scratch.pool).await?;

    let base = sandbox.base_url();
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..processes {
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["issue", "--all", "--json"])
            .env("DATABASE_URL", &scratch.url)
            .env_remove("FAPIAO_CONFIG")
            .env("RUST_LOG", "warn")
            .env("FAPIAO__CHANNEL__BASE_URL", &base)
            .env("FAPIAO__CALLBACKS__URL", format!("{base}/erp/callback/{{system}}"))
            .env("FAPIAO__INVOICING__SETTLE_POLL_MS", "20")
            .env("FAPIAO__INVOICING__ISSUE_CONCURRENCY", concurrency.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    for child in children {
        let out = child.wait_with_output().await?;
        if !out.status.success() && out.status.code() != Some(1) {
            anyhow::bail!("fapiao issue failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    // Every pending invoice issued once by the sandbox's own ledger, and each one ours.
    let attempts: Vec<(i64, String)> =
        sqlx::query_as("SELECT pending_id, serial_no FROM issue_attempt").fetch_all(&scratch.pool).await?;
    let mut per: BTreeMap<i64, usize> = BTreeMap::new();
    {
        let world = sandbox.world();
        for (id, serial) in &attempts {
            let ok = world.outcome(serial).is_some_and(|r| r.issue_status == IssueStatus::Succeeded);
            *per.entry(*id).or_default() += usize::from(ok);
        }
    }
    let issued_once = per.len() as i64 == invoices && per.values().all(|n| *n == 1);
    scratch.drop().await?;
    Ok(Round { processes, invoices, seconds, per_second: invoices as f64 / seconds, issued_once })
}
