//! `fapiao serve`: tokio-cron-scheduler fires each job's schedule in its time zone and only
//! records the due tick; a worker loop claims due runs and executes them. Any number of
//! processes may serve one database: the ledger's unique keys give one run per tick and never
//! two runs of a job at once. On shutdown, running jobs stop at the next item boundary, their
//! runs are recorded, and nothing stays claimed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::job::{JobContext, JobError, JobSpec, Registry};
use crate::ledger::{self, Trigger};
use crate::metrics::Metrics;
use crate::runner;

/// Record ticks missed while no process ran, per each job's misfire policy.
pub async fn record_misfires(ctx: &JobContext, registry: &Registry) -> Result<(), JobError> {
    let now = Utc::now();
    for spec in registry.iter() {
        let Some(last) = ledger::last_tick(&ctx.pool, spec.name()).await? else { continue };
        let missed = spec.schedule.ticks_between(last, now + chrono::Duration::milliseconds(1), 10_000);
        if missed.is_empty() {
            continue;
        }
        let runs = spec.misfire.runs().min(missed.len());
        let (skipped, to_run) = missed.split_at(missed.len() - runs);
        let reason = format!("missed while no fapiao serve ran (misfire policy {:?})", spec.misfire);
        ledger::record_missed(&ctx.pool, spec.name(), skipped, &reason).await?;
        for tick in to_run {
            ledger::record_due(&ctx.pool, spec.name(), *tick, Trigger::Schedule, None).await?;
        }
        tracing::info!(
            job = spec.name(),
            missed = skipped.len(),
            run = to_run.len(),
            "misfired ticks recorded"
        );
    }
    Ok(())
}

async fn start_scheduler(ctx: &JobContext, registry: &Registry) -> Result<JobScheduler, JobError> {
    let failed = |e: tokio_cron_scheduler::JobSchedulerError| JobError::Failed(format!("scheduler: {e}"));
    let scheduler = JobScheduler::new().await.map_err(failed)?;
    for spec in registry.iter() {
        let (pool, spec_for_tick) = (ctx.pool.clone(), spec.clone());
        let job = Job::new_async_tz(spec.schedule.expr.as_str(), spec.schedule.tz, move |_id, _lock| {
            let (pool, spec) = (pool.clone(), spec_for_tick.clone());
            Box::pin(async move {
                // The cron trigger only records the due tick (idempotent across processes).
                let Some(tick) = spec.schedule.tick_fired_at(Utc::now()) else { return };
                match ledger::record_due(&pool, spec.name(), tick, Trigger::Schedule, None).await {
                    Ok(Some(id)) => tracing::debug!(job = spec.name(), run_id = id, %tick, "tick recorded"),
                    Ok(None) => {}
                    Err(e) => tracing::error!(job = spec.name(), error = %e, "could not record tick"),
                }
            })
        })
        .map_err(failed)?;
        scheduler.add(job).await.map_err(failed)?;
    }
    scheduler.start().await.map_err(failed)?;
    Ok(scheduler)
}

async fn serve_metrics(listen: std::net::SocketAddr, metrics: Arc<Metrics>) -> Result<(), JobError> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| JobError::Failed(format!("metrics listen {listen}: {e}")))?;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics at /metrics");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { metrics.render() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

/// Serve until `ctx.cancel` is cancelled (the caller wires SIGINT/SIGTERM to it).
pub async fn serve(ctx: JobContext, registry: Registry, metrics: Arc<Metrics>) -> Result<(), JobError> {
    record_misfires(&ctx, &registry).await?;
    let mut scheduler = start_scheduler(&ctx, &registry).await?;
    if let Some(listen) = ctx.settings.metrics.listen {
        serve_metrics(listen, metrics.clone()).await?;
    }
    tracing::info!(worker = %ctx.worker, jobs = registry.iter().count(), "serving");
    let poll = Duration::from_millis(ctx.settings.jobs.poll_ms);
    let mut running: JoinSet<&'static str> = JoinSet::new();
    let mut busy: HashSet<&'static str> = HashSet::new();
    while !ctx.cancel.is_cancelled() {
        while let Some(done) = running.try_join_next() {
            if let Ok(name) = done {
                busy.remove(name);
            }
        }
        if let Err(e) = claim_and_spawn(&ctx, &registry, &metrics, &mut running, &mut busy).await {
            tracing::warn!(error = %e, "worker loop: will try again");
        }
        // Jittered: processes polling in lockstep would hand every tick to the same one.
        let pause = poll.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.5..1.5));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ctx.cancel.cancelled() => {}
        }
    }
    tracing::info!(running = running.len(), "shutting down: letting running items finish");
    while running.join_next().await.is_some() {}
    let _ = scheduler.shutdown().await;
    Ok(())
}

async fn claim_and_spawn(
    ctx: &JobContext,
    registry: &Registry,
    metrics: &Arc<Metrics>,
    running: &mut JoinSet<&'static str>,
    busy: &mut HashSet<&'static str>,
) -> Result<(), JobError> {
    let max_attempts = registry.iter().map(|s| s.max_attempts).max().unwrap_or(1);
    for (id, job, state) in
        ledger::rescue_expired(&ctx.pool, ctx.settings.jobs.lease_secs, max_attempts).await?
    {
        tracing::warn!(
            run_id = id,
            job,
            state = state.as_str(),
            "rescued a run whose worker stopped beating"
        );
    }
    for spec in registry.iter() {
        if busy.contains(spec.name()) {
            continue;
        }
        if let Some(claimed) = ledger::claim(&ctx.pool, spec.name(), &ctx.worker, None).await? {
            busy.insert(spec.name());
            let (ctx, spec, metrics): (JobContext, JobSpec, Arc<Metrics>) =
                (ctx.clone(), spec.clone(), metrics.clone());
            running.spawn(async move {
                if let Err(e) = runner::execute(&ctx, &spec, claimed, &metrics).await {
                    tracing::error!(job = spec.name(), error = %e, "could not record the run");
                }
                spec.name()
            });
        }
    }
    Ok(())
}
