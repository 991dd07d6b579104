//! `fapiao jobs list|run|pause|resume|history`, `fapiao serve`, and `fapiao sync reset-start|retry`.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use clap::Subcommand;
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_jobs::metrics::Metrics;
use fapiao_jobs::{JobContext, Registry, control, ledger, serve};
use fapiao_store::{Database, input_sync};
use fapiao_usecases::{Actor, App, tenant};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::exit::{Outcome, UsageError};
use crate::{Context, output};

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Each job: schedule, next run, paused, last outcome.
    List,
    /// Run a job now (recorded as manual; waits while another run of it is running).
    Run {
        /// apply-cache, download-apply, fetch or deal-task.
        name: String,
        /// The business date the run works for ("today"), e.g. to replay a day.
        #[arg(long)]
        date: Option<NaiveDate>,
    },
    /// Pause a job: its ticks are recorded as skipped until resumed (every process sees it).
    Pause {
        name: String,
        /// Why (shown on the console and in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    Resume {
        name: String,
    },
    /// Recent runs, newest first.
    History {
        /// Only this job's runs (a job of `jobs list`).
        #[arg(long)]
        job: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Reset a sync scheme's start date (the documented updateDownInit): apply-cache then
    /// backfills every day from it to yesterday, a bounded chunk per run.
    ResetStart {
        #[arg(long)]
        scheme: String,
        #[arg(long)]
        start: NaiveDate,
    },
    /// Send the sync's given-up work through again: staged invoices whose verification failed
    /// (deal-task takes them, attempts from zero) and failed download applications
    /// (download-apply sends them). Within one enterprise and an invoice-date range if given.
    Retry(SyncScopeArgs),
    /// 数据同步日志: each download application (enterprise, invoice day) with its state, attempts
    /// and last error, and its staged invoices by state with the last reason one failed.
    Log {
        #[command(flatten)]
        scope: SyncScopeArgs,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
}

/// One enterprise or all, invoice dates in a range or all.
#[derive(clap::Args)]
pub struct SyncScopeArgs {
    #[arg(long = "tax-no", value_parser = crate::enterprise::parse_tax_no)]
    tax_no: Option<fapiao_schemas::TaxNo>,
    /// First invoice date (inclusive).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last invoice date (inclusive).
    #[arg(long)]
    to: Option<NaiveDate>,
}

impl SyncScopeArgs {
    fn scope(self) -> input_sync::Scope {
        input_sync::Scope { tax_no: self.tax_no, from: self.from, to: self.to }
    }
}

/// What jobs run with: the database, a channel client, this worker's id, and a stop token.
pub async fn job_context(ctx: &Context, cancel: CancellationToken) -> anyhow::Result<(JobContext, Registry)> {
    let registry = Registry::from_settings(&ctx.settings)?;
    let db = Database::open(&ctx.settings).await?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let worker = format!("{}:{}", host.trim(), std::process::id());
    let channel = Arc::new(ChannelClient::new(ClientConfig::from_settings(&ctx.settings.channel)));
    let jc = JobContext { cancel, ..JobContext::new(db.pool, channel, ctx.settings.clone(), worker) };
    Ok((jc, registry))
}

/// Cancel `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received: finishing the running items");
        token.cancel();
    });
}

#[derive(clap::Args, Default)]
pub struct ServeArgs {
    /// Serve the web console here (overrides `[http] listen`), e.g. 127.0.0.1:8080; port 0 picks one.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Serve the web console only: no scheduler, no job workers.
    #[arg(long)]
    pub no_jobs: bool,
}

pub async fn serve_cmd(args: ServeArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone());
    let (jc, registry) = job_context(ctx, cancel.clone()).await?;
    let console = match args.http.or(ctx.settings.http.listen) {
        Some(addr) => Some(start_console(addr, &jc, &registry).await?),
        None if args.no_jobs => {
            return Err(UsageError(
                "--no-jobs serves only the console: give --http ADDR or [http] listen".into(),
            )
            .into());
        }
        None => None,
    };
    if args.no_jobs {
        cancel.cancelled().await;
    } else {
        let served = serve::serve(jc, registry, Arc::new(Metrics::default())).await;
        cancel.cancel();
        served?;
    }
    if let Some(console) = console {
        console.await??;
    }
    Ok(Outcome::Done)
}

/// Bind the console on `addr`, print where it answers (stdout, one line), and serve it until
/// the jobs' stop token fires.
pub async fn start_console(
    addr: std::net::SocketAddr,
    jc: &JobContext,
    registry: &Registry,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("console: cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    println!("console: http://{local}/");
    tracing::info!(addr = %local, "web console");
    println!("ERP API: http://{local}/api/getAppToken.do, /api/login.do, /kapi/app/sim/openApi");
    let app = App::new(jc.pool.clone(), jc.channel.clone(), jc.settings.clone());
    let api = Arc::new(fapiao_api::Api::new(app.clone()));
    let console = Arc::new(fapiao_web::Console::new(app, jc.clone(), registry.clone()));
    // One listener, two doors: the ERP API's routes (the envelope, no console middleware) and
    // the console's.
    let router = fapiao_api::router(api).merge(fapiao_web::router(console));
    let cancel = jc.cancel.clone();
    Ok(tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(async move { cancel.cancelled().await }).await
    }))
}

pub async fn run(command: JobsCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone());
    let (jc, registry) = job_context(ctx, cancel).await?;
    let actor = Actor::cli();
    match command {
        JobsCommand::List => list(&jc, &registry, ctx.json).await?,
        JobsCommand::Run { name, date } => {
            let run = control::run_now(&jc, &registry, &actor, &name, date, &Metrics::default()).await?;
            if ctx.json {
                output::json(&run)?;
            } else {
                let o = &run.outcome;
                println!(
                    "{name} run {}: {} (read {}, written {}, rejected {}){}{}",
                    run.run_id,
                    o.state,
                    o.rows_read,
                    o.rows_written,
                    o.rows_rejected,
                    o.reason.as_ref().map(|r| format!("; {r}")).unwrap_or_default(),
                    o.error.as_ref().map(|e| format!("; error: {e}")).unwrap_or_default()
                );
            }
            if let Some(failed) = control::failed(&run) {
                return Err(failed.into());
            }
        }
        JobsCommand::Pause { name, reason } => {
            let reason = reason.unwrap_or_else(|| format!("paused from the command line by {actor}"));
            control::set_paused(&jc, &registry, &actor, &name, true, Some(&reason)).await?;
            println!("{name} paused");
        }
        JobsCommand::Resume { name } => {
            control::set_paused(&jc, &registry, &actor, &name, false, None).await?;
            println!("{name} resumed");
        }
        JobsCommand::History { job, limit } => {
            let rows = control::history(&jc, &registry, job.as_deref(), limit).await?;
            output::list(
                ctx.json,
                &rows,
                &["RUN", "JOB", "SCHEDULED", "TRIGGER", "STATE", "READ/WRITTEN/REJECTED", "REASON / ERROR"],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.job.clone(),
                        r.scheduled_for.with_timezone(&jc.tz).format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.trigger.to_string(),
                        r.state.to_string(),
                        format!("{}/{}/{}", r.rows_read, r.rows_written, r.rows_rejected),
                        r.reason.clone().or(r.error.clone()).unwrap_or_default(),
                    ]
                },
            )?;
        }
    }
    Ok(Outcome::Done)
}

async fn list(jc: &JobContext, registry: &Registry, json_out: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for spec in registry.iter() {
        let last = ledger::history(&jc.pool, Some(spec.name()), 1).await?.into_iter().next();
        let next = spec
            .schedule
            .next_after(Utc::now())
            .map(|t| t.with_timezone(&jc.tz).format("%Y-%m-%d %H:%M:%S").to_string());
        rows.push(json!({
            "job": spec.name(),
            "task": spec.kind.documented_as(),
            "schedule": spec.schedule.expr,
            "time_zone": spec.schedule.tz.name(),
            "next_run": next,
            "paused": ledger::is_paused(&jc.pool, spec.name()).await?,
            "misfire": format!("{:?}", spec.misfire),
            "last_state": last.as_ref().map(|r| r.state),
            "last_finished": last.as_ref().and_then(|r| r.finished_at),
        }));
    }
    let s = |v: &serde_json::Value| {
        v.as_str().map(str::to_string).unwrap_or_else(|| if v.is_null() { "-".into() } else { v.to_string() })
    };
    output::list(json_out, &rows, &["JOB", "SCHEDULE", "NEXT RUN", "PAUSED", "MISFIRE", "LAST"], |r| {
        ["job", "schedule", "next_run", "paused", "misfire", "last_state"].iter().map(|k| s(&r[*k])).collect()
    })
}

pub async fn sync(command: SyncCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        SyncCommand::ResetStart { scheme, start } => {
            tenant::reset_start(&app, &Actor::cli(), &scheme, start).await?;
            println!(
                "scheme {scheme}: start {start}; apply-cache backfills from there ({} days per run). Change nothing else: the schedule does the work.",
                ctx.settings.jobs.backfill_chunk_days
            );
        }
        SyncCommand::Retry(args) => {
            let sent = tenant::retry_sync(&app, &Actor::cli(), &args.scope()).await?;
            if ctx.json {
                println!("{}", json!(sent));
            } else {
                println!(
                    "sent again: {} staged invoice(s) to deal-task, {} download application(s) to download-apply",
                    sent.staged_rows, sent.applications
                );
            }
        }
        SyncCommand::Log { scope, limit } => {
            let rows = tenant::sync_log(&app, &scope.scope(), limit).await?;
            output::list(
                ctx.json,
                &rows,
                &["TAX NO", "DAY", "STATE", "ATTEMPTS", "PENDING", "DONE", "FAILED", "LAST ERROR"],
                |r| {
                    vec![
                        r.tax_no.clone(),
                        r.invoice_date.to_string(),
                        r.state.clone(),
                        r.attempts.to_string(),
                        r.pending.to_string(),
                        r.done.to_string(),
                        r.failed.to_string(),
                        r.last_error.clone().or(r.last_row_error.clone()).unwrap_or_default(),
                    ]
                },
            )?;
        }
    }
    Ok(Outcome::Done)
}
