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
    /// Issue the same pushed invoices with 1, 2, 4 … `fapiao issue --all` processes side by side
    /// against one in-process sandbox with latency (a fresh scratch database per round); prints
    /// throughput per process count and whether every invoice was issued exactly once.
    IssueProcesses {
        /// Process counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        processes: Vec<usize>,
        /// Lines of the generated applications workbook (about five per bill).
        #[arg(long, default_value_t = 2000)]
        lines: usize,
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// Invoices each process drives at once (`invoicing.issue_concurrency`; default: the
        /// configuration's). Small values keep each process I/O-bound, where processes add speed.
        #[arg(long)]
        concurrency: Option<u32>,
    },
    /// Generate an applications workbook of LINES lines, then time (a) the floor — calamine's
    /// streaming reader + COPY of the same rows as CSV — and (b) `import --kind applications`, each
    /// with its peak memory (the process's high-water mark, reset between the two).
    ///
    /// Then the decompression-bomb-like workbooks (a few hundred KB inflating to BOMB_MIB MiB):
    /// one padded with blank rows within the limits, imported; one whose single cell is the whole
    /// size, refused (CELL_TOO_LONG); the padded one again with `import.max_inflated_mib` below
    /// its size, refused (FILE_PART_TOO_LARGE) — each with its peak memory.
    Import {
        #[arg(long, default_value_t = 200_000)]
        lines: usize,
        /// Inflated size of the bomb-like workbooks' sheet, MiB (0: skip them).
        #[arg(long, default_value_t = 300)]
        bomb_mib: u64,
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
    /// Export ROWS pool invoices (one day, one enterprise) with `export reconciliation` in a
    /// scratch database; the floor is `COPY (SELECT …) TO STDOUT` of the same pool ledger as CSV
    /// plus zipping it, timed in the same run.
    Export {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
    },
    /// The web console with ROWS job_run rows, ROWS issued invoices (with their pending invoices,
    /// and ROWS/50 failed ones besides) and ROWS pool invoices in a scratch database: p50/p95 of
    /// `/runs` (first page, a filtered page, a page deep in the ledger), `/`, `/pending`,
    /// `/invoices` and `/pool`, each request through the whole router in-process (session lookup,
    /// use case, template); the floor is the same page's use cases (its list query, same page
    /// size) alone, timed in the same run. Target: p95 ≤ 3 × the floor's p95. Then the growth of
    /// the process's memory while an UPLOAD_MIB MiB workbook streams through `POST /imports`
    /// (target < 64 MiB).
    Console {
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        /// Requests per page.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Size of the streamed upload, MiB (0: skip it).
        #[arg(long, default_value_t = 100)]
        upload_mib: u64,
    },
    /// Consumers submitting titles for CODES printed receipt codes through the `/r` pages (the
    /// console's Router in-process, CSRF and all), CONCURRENCY at once, against an in-process
    /// sandbox with LATENCY_MS injected latency; submits/s to 开票成功, p50/p95 from submit to
    /// 开票成功, the ratio to the channel-issue bound (in-flight ÷ latency) and to the raw
    /// channel-issue rate measured on the same sandbox; exit 1 unless every receipt got exactly
    /// one invoice by the sandbox's ledger.
    Receipt {
        #[arg(long, default_value_t = 500)]
        codes: usize,
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// BILL.PUSH of LINES lines (5 a bill) through the ERP API on a real listener, BILLS_PER_REQUEST
    /// bills a request, IN_FLIGHT at once, in a scratch database; bills/s and p50/p95 per request
    /// against the floor (COPY of the same lines as CSV). Target: ratio ≥ 0.5.
    ApiPush {
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
        #[arg(long, default_value_t = 500)]
        bills_per_request: usize,
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
    },
}

const SELLER: (&str, &str) = ("上海示例贸易有限公司", "91310000MA1FL2AB09");
const BUYER: (&str, &str) = ("深圳示例便利店", "92440300MA5DXY7K3W");

pub async fn run(command: BenchCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    match command {
        BenchCommand::ChannelIssue { count, latency_ms, in_flight } => {
            channel_issue(ctx, count, latency_ms, in_flight).await
        }
        BenchCommand::DealTask { rows, batch } => deal_task(ctx, rows, batch).await,
        BenchCommand::Import { lines, bomb_mib } => import(ctx, lines, bomb_mib).await,
        BenchCommand::Export { rows } => export(ctx, rows).await,
        BenchCommand::IssueProcesses { processes, lines, latency_ms, concurrency } => {
            let concurrency = concurrency.unwrap_or(ctx.settings.invoicing.issue_concurrency);
            crate::bench_processes::issue_processes(ctx, &processes, lines, latency_ms, concurrency).await
        }
        BenchCommand::Console { rows, requests, upload_mib } => {
            console(ctx, rows, requests, upload_mib).await
        }
        BenchCommand::ApiPush { lines, bills_per_request, in_flight } => {
            crate::bench_api::api_push(ctx, lines, bills_per_request, in_flight).await
        }
        BenchCommand::Receipt { codes, latency_ms, concurrency } => {
            crate::bench_receipt::receipt(ctx, codes, latency_ms, concurrency).await
        }
    }
}

/// Peak resident memory of this process since the last reset, in MiB (Linux).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Reset the peak (writing 5 to clear_refs resets VmHWM to the current RSS). First the
/// allocator hands back what it keeps of freed memory, so what the previous step freed does not
/// count as the next one's.
pub(crate) fn reset_peak() {
    mi_collect(true);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

// The global allocator (see main.rs); libmimalloc-sys links the symbol.
unsafe extern "C" {
    safe fn mi_collect(force: bool);
}

/// A scratch database (dropped with it) holding one enterprise, `seller`, to issue or import for.
pub(crate) async fn scratch_with_seller(
    ctx: &Context,
    prefix: &str,
    seller: &str,
) -> anyhow::Result<fapiao_store::Scratch> {
    let scratch =
        fapiao_store::Scratch::create(&ctx.settings, &format!("{prefix}_{}", std::process::id())).await?;
    let enterprise = fapiao_schemas::enterprise::Enterprise {
        tax_no: fapiao_schemas::TaxNo::parse(seller)?,
        name: "基准企业".into(),
        taxpayer_kind: fapiao_schemas::enterprise::TaxpayerKind::General,
        etax_account: "bench".into(),
        channel: fapiao_schemas::enterprise::Channel::Etax,
    };
    fapiao_store::enterprises::insert(&scratch.pool, &enterprise).await?;
    Ok(scratch)
}

async fn import(ctx: &Context, lines: usize, bomb_mib: u64) -> anyhow::Result<Outcome> {
    use fapiao_pipelines::import::{self, ImportOptions, floor, sample};
    const SELLER: &str = "91310000MA1FL2AB09";
    let dir = std::env::temp_dir().join(format!("fapiao-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("applications.xlsx");
    let generated = Instant::now();
    sample::write_xlsx(&file, "BENCH", lines, SELLER, "92440300MA5DXY7K3W", &[])?;
    let generate_secs = generated.elapsed().as_secs_f64();
    let size_mib = std::fs::metadata(&file)?.len() as f64 / 1048576.0;

    let scratch = scratch_with_seller(ctx, "fapiao_bench", SELLER).await?;
    let pool = scratch.pool.clone();

    reset_peak();
    let base_mib = peak_mib();
    let started = Instant::now();
    let floor_rows = floor::read_and_copy(&pool, &file).await.map_err(anyhow::Error::msg)?;
    let floor_secs = started.elapsed().as_secs_f64();
    let floor_mib = peak_mib();

    reset_peak();
    let started = Instant::now();
    let summary = import::import(
        &pool,
        &file,
        &ImportOptions { kind: import::ImportKind::Applications, ..ImportOptions::default() },
        &|_| {},
    )
    .await?;
    let import_secs = started.elapsed().as_secs_f64();
    let import_mib = peak_mib();
    let limits = import::ReadLimits::from_settings(&ctx.settings.import);
    let bombs = if bomb_mib > 0 { import_bombs(&pool, &dir, bomb_mib, limits).await? } else { Vec::new() };
    scratch.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    let ratio = import_secs / floor_secs;
    if ctx.json {
        output::json(&json!({ "lines": lines, "file_mib": size_mib, "generate_seconds": generate_secs,
            "floor_seconds": floor_secs, "floor_rows": floor_rows, "floor_peak_mib": floor_mib,
            "import_seconds": import_secs, "import_peak_mib": import_mib, "process_base_mib": base_mib,
            "ratio": ratio, "accepted": summary.accepted, "problems": summary.problems.len(),
            "bombs": bombs.iter().map(|b| json!({ "workbook": b.name, "file_kib": b.file_kib,
                "inflated_mib": bomb_mib, "seconds": b.seconds, "peak_mib": b.peak_mib, "outcome": b.outcome }))
                .collect::<Vec<_>>() }))?;
    } else {
        println!(
            "import: {lines} application lines, {size_mib:.1} MiB xlsx (generated in {generate_secs:.1} s, not timed)"
        );
        println!(
            "  floor (calamine streaming read + COPY as CSV): {floor_secs:.2} s, peak {floor_mib:.0} MiB"
        );
        println!(
            "  fapiao import --kind applications:              {import_secs:.2} s, peak {import_mib:.0} MiB ({} accepted, {} problems)",
            summary.accepted,
            summary.problems.len()
        );
        println!(
            "  ratio: {ratio:.2}  (target ≤ 1.0, peak ≤ 128 MiB — round 2; process baseline {base_mib:.0} MiB)"
        );
        for b in &bombs {
            println!(
                "  bomb {:<46} {:>5.0} KiB → {bomb_mib} MiB inflated: {:.2} s, peak {:.0} MiB — {}",
                b.name, b.file_kib, b.seconds, b.peak_mib, b.outcome
            );
        }
        if !bombs.is_empty() {
            println!(
                "  (limits: import.max_inflated_mib = {}, max_cell_chars = {}, max_shared_strings_mib = {}; peak target ≤ 256 MiB)",
                limits.max_inflated_bytes >> 20,
                limits.max_cell_chars,
                limits.max_shared_strings_bytes >> 20
            );
        }
    }
    Ok(Outcome::Done)
}

/// One decompression-bomb-like workbook's import.
struct BombRun {
    name: &'static str,
    file_kib: f64,
    seconds: f64,
    peak_mib: f64,
    outcome: String,
}

/// Import the bomb-like workbooks of `inflated_mib` MiB one after the other, each with its peak
/// memory (reset between).
async fn import_bombs(
    pool: &sqlx::PgPool,
    dir: &std::path::Path,
    inflated_mib: u64,
    limits: fapiao_pipelines::import::ReadLimits,
) -> anyhow::Result<Vec<BombRun>> {
    use fapiao_pipelines::import::sample::{self, Bomb};
    use fapiao_pipelines::import::{self, ImportOptions};
    let smaller = import::ReadLimits { max_inflated_bytes: (inflated_mib << 20) / 2, ..limits };
    let runs = [
        ("padded, within the limits", Bomb::Padded, limits),
        ("one cell of it all", Bomb::OneCell, limits),
        ("padded, max_inflated_mib at half its size", Bomb::Padded, smaller),
    ];
    let mut out = Vec::new();
    for (i, (name, bomb, limits)) in runs.into_iter().enumerate() {
        let file = dir.join(format!("bomb-{i}.xlsx"));
        sample::write_bomb_xlsx(&file, bomb, inflated_mib, &format!("BOMB{i}"), 10, SELLER.1, BUYER.1)?;
        let file_kib = std::fs::metadata(&file)?.len() as f64 / 1024.0;
        reset_peak();
        let started = Instant::now();
        let options =
            ImportOptions { kind: import::ImportKind::Applications, limits, ..ImportOptions::default() };
        let outcome = match import::import(pool, &file, &options, &|_| {}).await {
            Ok(s) => format!("{} ({} lines accepted, {} problems)", s.outcome, s.accepted, s.problems.len()),
            Err(import::ImportError::Read(e)) => format!("refused {}", e.code()),
            Err(e) => return Err(e.into()),
        };
        out.push(BombRun {
            name,
            file_kib,
            seconds: started.elapsed().as_secs_f64(),
            peak_mib: peak_mib(),
            outcome,
        });
        let _ = std::fs::remove_file(&file);
    }
    Ok(out)
}

async fn deal_task(ctx: &Context, rows: i64, batch: Option<u32>) -> anyhow::Result<Outcome> {
    let batch = batch.unwrap_or(ctx.settings.jobs.deal_batch_size);
    use fapiao_jobs::{JobContext, Registry, runner, synthetic};
    let scratch =
        fapiao_store::Scratch::create(&ctx.settings, &format!("fapiao_bench_{}", std::process::id())).await?;
    let pool = scratch.pool.clone();
    fapiao_store::params::set(&pool, "rim_config", "key_element_check", "0").await?;
    let staged_started = Instant::now();
    synthetic::stage(&pool, "91310000MA1FL2AB09", 0, rows).await?;
    sqlx::query("VACUUM ANALYZE download_staging").execute(&pool).await?;
    let stage_secs = staged_started.elapsed().as_secs_f64();

    // The floor: the same rows, one statement, into a table shaped like the pool. Both timed
    // parts start from the same state: a checkpoint just taken, and the other's table gone (the
    // floor's table filled the shared buffers the deal-task then had to evict).
    sqlx::query("CREATE TABLE pool_floor (LIKE invoice_pool INCLUDING ALL)").execute(&pool).await?;
    sqlx::query("CHECKPOINT").execute(&pool).await?;
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
    sqlx::query("DROP TABLE pool_floor").execute(&pool).await?;
    sqlx::query("CHECKPOINT").execute(&pool).await?;

    let mut settings = ctx.settings.clone();
    settings.jobs.deal_batch_size = batch;
    let registry = Registry::from_settings(&settings)?;
    let channel = Arc::new(ChannelClient::new(ClientConfig::from_settings(&settings.channel)));
    let jc = JobContext::new(pool.clone(), channel, settings, format!("bench:{}", std::process::id()));
    let started = Instant::now();
    let (_, outcome) =
        runner::run_now(&jc, registry.get("deal-task")?, None, &fapiao_jobs::metrics::Metrics::default())
            .await?;
    let deal_secs = started.elapsed().as_secs_f64();
    let pooled: i64 = sqlx::query_scalar("SELECT count(*) FROM invoice_pool").fetch_one(&pool).await?;
    scratch.drop().await?;
    let ratio = deal_secs / floor_secs;
    if ctx.json {
        output::json(
            &json!({ "rows": rows, "batch": batch, "stage_seconds": stage_secs, "floor_seconds": floor_secs,
            "deal_task_seconds": deal_secs, "ratio": ratio, "pooled": pooled, "run_state": outcome.state }),
        )?;
    } else {
        println!(
            "deal-task: {rows} staged rows, batches of {batch} (staged in {stage_secs:.1} s, not timed)"
        );
        println!("  floor (INSERT … SELECT … ON CONFLICT DO NOTHING): {floor_secs:.2} s");
        println!("  deal-task run ({}): {deal_secs:.2} s, {pooled} rows pooled", outcome.state);
        println!("  ratio: {ratio:.2}  (target ≤ 1.5 in every run — round 2)");
    }
    Ok(Outcome::Done)
}

/// How a round of raw issue calls went.
pub(crate) struct IssueRound {
    pub seconds: f64,
    pub failed: usize,
}

/// `count` invoices (serials PREFIX-000000 …) issued at once through `client` (its in-flight
/// limit bounds them): how long the calls took and how many failed.
pub(crate) async fn channel_issue_round(
    client: &Arc<ChannelClient>,
    count: usize,
    prefix: &str,
) -> IssueRound {
    let amount = Money::from_cents(10_000);
    let started = Instant::now();
    let mut issues = tokio::task::JoinSet::new();
    for n in 0..count {
        let client = client.clone();
        let serial = format!("{prefix}-{n:06}");
        issues.spawn(async move {
            client
                .issue(&sample_invoice(&serial, "digital_ordinary", SELLER, BUYER, amount))
                .await
                .map(|_| ())
        });
    }
    let mut failed = 0;
    while let Some(r) = issues.join_next().await {
        failed += usize::from(!matches!(r, Ok(Ok(()))));
    }
    IssueRound { seconds: started.elapsed().as_secs_f64(), failed }
}

async fn channel_issue(
    ctx: &Context,
    count: usize,
    latency_ms: u64,
    in_flight: Option<usize>,
) -> anyhow::Result<Outcome> {
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

    let IssueRound { seconds: issue_secs, failed } = channel_issue_round(&client, count, "BENCH").await;

    let settle_started = Instant::now();
    let mut queries = tokio::task::JoinSet::new();
    for n in 0..count {
        let client = client.clone();
        queries.spawn(async move {
            client
                .query_issue(&format!("BENCH-{n:06}"), SELLER.1)
                .await
                .map(|r| r.issue_status == fapiao_channel::codes::IssueStatus::Succeeded)
        });
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
        println!("  ratio:         {ratio:.2}  (target ≥ 0.90, also at 64 in flight — round 2)");
        println!("  settle by query: {settle_secs:.2} s, {succeeded}/{count} 开票成功");
    }
    Ok(Outcome::Done)
}

async fn export(ctx: &Context, rows: i64) -> anyhow::Result<Outcome> {
    use fapiao_export::{ExportOptions, floor};
    let scratch = fapiao_store::Scratch::create(&ctx.settings, "fapiao_bench_export").await?;
    let pool = scratch.pool.clone();
    let staged = Instant::now();
    sqlx::query(
        "INSERT INTO invoice_pool (tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no, buyer_name,
                                   amount, tax, total, status, invoice_property, source, verified, deductible, signed)
         SELECT '92440300MA5DXY7K3W', '', lpad(n::text, 20, '0'), 'digital_ordinary', DATE '2026-11-01', '供应商' || (n % 1000),
                '91110000600037341L', '深圳示例便利店', 100.00 + (n % 1000), 13.00, 113.00 + (n % 1000), 'normal', 0, 'tax_bureau', true, n % 3 = 0, false
           FROM generate_series(1, $1) n",
    )
    .bind(rows)
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE invoice_pool").execute(&pool).await?;
    let stage_secs = staged.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join(format!("fapiao-bench-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("valid date");
    let options = ExportOptions {
        from: day,
        to: day,
        tax_nos: Vec::new(),
        out: dir.join("recon.zip"),
        time_zone: ctx.settings.time_zone(),
    };

    let started = Instant::now();
    let csv_bytes = floor::floor(&pool, &options, &dir.join("floor.zip")).await?;
    let floor_secs = started.elapsed().as_secs_f64();
    reset_peak();
    let started = Instant::now();
    let steps = std::sync::Mutex::new(Vec::<(String, f64)>::new());
    let report = fapiao_export::export(&pool, &options, &|step| {
        steps.lock().expect("not poisoned").push((step.to_string(), started.elapsed().as_secs_f64()))
    })
    .await?;
    let export_secs = started.elapsed().as_secs_f64();
    let steps = steps.into_inner().expect("not poisoned");
    let peak = peak_mib();
    let zip_mib = std::fs::metadata(&report.path)?.len() as f64 / 1048576.0;
    let floor_mib = std::fs::metadata(dir.join("floor.zip"))?.len() as f64 / 1048576.0;
    let _ = std::fs::remove_dir_all(&dir);
    scratch.drop().await?;
    let ratio = export_secs / floor_secs;
    if ctx.json {
        output::json(
            &json!({ "rows": rows, "stage_seconds": stage_secs, "floor_seconds": floor_secs, "floor_csv_bytes": csv_bytes,
            "export_seconds": export_secs, "ratio": ratio, "peak_mib": peak, "zip_mib": zip_mib, "floor_zip_mib": floor_mib }),
        )?;
    } else {
        println!("export: {rows} pool invoices (inserted in {stage_secs:.1} s, not timed)");
        println!(
            "  floor (COPY of the pool ledger to CSV, {:.0} MiB, zipped to {floor_mib:.1} MiB): {floor_secs:.2} s",
            csv_bytes as f64 / 1048576.0
        );
        println!(
            "  export reconciliation (all ledgers, summary, checks, xlsx + CSV + manifest, {zip_mib:.1} MiB zip): {export_secs:.2} s, peak {peak:.0} MiB"
        );
        println!("  ratio: {ratio:.2}  (target ≤ 2.0, peak ≤ 256 MiB — round 2)");
        let marks: Vec<String> = steps.iter().map(|(s, t)| format!("{s} @ {t:.1} s")).collect();
        println!("  steps: {}", marks.join(", "));
    }
    Ok(Outcome::Done)
}

/// p50 and p95 of `samples` (seconds), in milliseconds.
pub(crate) fn p50_p95(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1] * 1000.0;
    (at(0.50), at(0.95))
}

async fn console(ctx: &Context, rows: i64, requests: usize, upload_mib: u64) -> anyhow::Result<Outcome> {
    use fapiao_jobs::ledger::{RunFilter, RunState};
    use fapiao_jobs::{JobContext, Registry, control};
    use fapiao_usecases::{Actor, App, dashboard, invoices, pending, pool, sessions, users};
    use fapiao_web::page_sizes;

    use crate::bench_console::{measure, stage_lists, upload_memory};

    let scratch = scratch_with_seller(ctx, "fapiao_bench_console", SELLER.1).await?;
    let pool = scratch.pool.clone();
    let staged = Instant::now();
    // Seven jobs, one run a minute each going back; one in five failed, most skipped or idle.
    sqlx::query(
        "INSERT INTO job_run (job, scheduled_for, trigger, state, started_at, finished_at, rows_read, error, reason)
         SELECT (ARRAY['apply-cache','download-apply','fetch','deal-task','auto-issue','auto-reissue','red-flush-poll','deduct-poll'])[1 + n % 8],
                t, CASE WHEN n % 50 = 0 THEN 'manual' ELSE 'schedule' END,
                CASE WHEN n % 5 = 0 THEN 'failed' WHEN n % 5 = 1 THEN 'succeeded' ELSE 'skipped' END,
                t, t + interval '2 seconds', CASE WHEN n % 5 = 1 THEN n % 100 ELSE 0 END,
                CASE WHEN n % 5 = 0 THEN 'channel: timeout' END, CASE WHEN n % 5 > 1 THEN 'nothing due' END
           FROM generate_series(1, $1) n, LATERAL (SELECT now() - (n / 7) * interval '1 minute' AS t) s",
    )
    .bind(rows)
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE job_run").execute(&pool).await?;
    stage_lists(&pool, SELLER.1, rows).await?;
    let stage_secs = staged.elapsed().as_secs_f64();

    let app = App::on(pool.clone(), &ctx.settings);
    let password = users::random_password();
    users::add(&app, &Actor::Demo, "bench", users::Role::Admin, &[], &password).await?;
    let jc = JobContext::new(pool.clone(), app.channel.clone(), ctx.settings.clone(), "bench".into());
    let registry = Registry::from_settings(&ctx.settings)?;
    let files = std::env::temp_dir().join(format!("fapiao-bench-console-{}", std::process::id()));
    let mut console = fapiao_web::Console::new(app.clone(), jc.clone(), registry.clone());
    console.root = files.clone();
    let router = fapiao_web::router(Arc::new(console));
    let user = users::login(&app, "bench", &password, "bench").await?;
    let cookie = format!("fapiao_session={}", sessions::create(&app, &user, "bench").await?);

    // A page deep in the ledger: the keyset cursor of the run 90% of the way back.
    let deep: (chrono::DateTime<chrono::Utc>, i64) = sqlx::query_as(
        "SELECT scheduled_for, id FROM job_run ORDER BY scheduled_for DESC, id DESC OFFSET $1 LIMIT 1",
    )
    .bind(rows * 9 / 10)
    .fetch_one(&pool)
    .await?;
    let deep_query = format!("/runs?before={}_{}", deep.0.timestamp_micros(), deep.1);
    let failed =
        RunFilter { job: Some("fetch".into()), state: Some(RunState::Failed), ..RunFilter::default() };
    let runs: Vec<(&str, String, RunFilter)> = vec![
        ("/runs", "/runs".into(), RunFilter::default()),
        ("/runs?job=fetch&state=failed", "/runs?job=fetch&state=failed".into(), failed),
        ("/runs (90% deep)", deep_query, RunFilter { before: Some(deep), ..RunFilter::default() }),
        (
            "/runs?hide_idle=1",
            "/runs?hide_idle=1".into(),
            RunFilter { hide_idle: true, ..RunFilter::default() },
        ),
    ];
    let mut results = Vec::new();
    let jc = &jc;
    for (name, uri, filter) in &runs {
        let floor =
            move || async move { control::runs(jc, filter, 51).await.map(|_| ()).map_err(Into::into) };
        results.push(measure(&router, &cookie, name, uri, requests, floor).await?);
    }
    let (app, registry) = (&app, &registry);
    let floor = move || async move {
        control::overview(jc, registry).await?;
        dashboard::dashboard(app, None).await?;
        Ok(())
    };
    results.push(measure(&router, &cookie, "/", "/", requests, floor).await?);
    // The lists of part 2, as an admin (all enterprises) sees them: the first page of each, and
    // the failed pending invoices (one in 51).
    let pending_page = |status: Option<&str>| pending::PendingFilter {
        status: status.map(str::to_string),
        limit: Some(page_sizes::PENDING),
        ..pending::PendingFilter::default()
    };
    let lists: [(&str, pending::PendingFilter); 2] =
        [("/pending", pending_page(None)), ("/pending?status=failed", pending_page(Some("failed")))];
    for (uri, filter) in &lists {
        let floor = move || async move { pending::list(app, filter).await.map(|_| ()).map_err(Into::into) };
        results.push(measure(&router, &cookie, uri, uri, requests, floor).await?);
    }
    let issued = invoices::Filter { limit: page_sizes::INVOICES, ..invoices::Filter::default() };
    let floor = || async { invoices::list(app, &issued).await.map(|_| ()).map_err(Into::into) };
    results.push(measure(&router, &cookie, "/invoices", "/invoices", requests, floor).await?);
    let pooled = pool::PoolFilter { limit: page_sizes::POOL, ..pool::PoolFilter::default() };
    let floor = || async { pool::list(app, &pooled).await.map(|_| ()).map_err(Into::into) };
    results.push(measure(&router, &cookie, "/pool", "/pool", requests, floor).await?);

    let upload = if upload_mib > 0 {
        Some(upload_memory(&router, &cookie, &pool, &files.join("uploads"), upload_mib).await?)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&files);
    scratch.drop().await?;
    let upload_json = upload.as_ref().map(|u| {
        json!({ "mib": u.mib, "rss_growth_mib": u.rss_growth_mib, "hwm_growth_mib": u.hwm_growth_mib,
                "stored_bytes": u.stored_bytes })
    });
    if ctx.json {
        output::json(
            &json!({ "rows": rows, "requests": requests, "stage_seconds": stage_secs, "pages": results,
            "upload": upload_json }),
        )?;
    } else {
        println!(
            "console: {rows} job_run rows, {rows} issued invoices (+{} failed pending), {rows} pool invoices (inserted in {stage_secs:.1} s, not timed), {requests} requests per page after 10 warm-up",
            rows / 50
        );
        println!(
            "  {:<32} {:>9} {:>9} {:>11} {:>11} {:>8}",
            "page", "p50 ms", "p95 ms", "floor p50", "floor p95", "ratio"
        );
        for r in &results {
            let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
            println!(
                "  {:<32} {:>9.2} {:>9.2} {:>11.2} {:>11.2} {:>8.2}",
                r["page"].as_str().unwrap_or(""),
                f("p50_ms"),
                f("p95_ms"),
                f("floor_p50_ms"),
                f("floor_p95_ms"),
                f("ratio_p95")
            );
        }
        println!("  target: p95 ≤ 3 × the floor's p95 (the same page's SQL through its use cases alone)");
        if let Some(u) = &upload {
            println!(
                "  upload of {} MiB through POST /imports: RSS peak grew {:.1} MiB, VmHWM grew {:.1} MiB ({} bytes on disk; target < 64 MiB)",
                u.mib, u.rss_growth_mib, u.hwm_growth_mib, u.stored_bytes
            );
        }
    }
    Ok(Outcome::Done)
}
