//! Claiming and executing runs: the heartbeat while a run works, the fenced finish, and the
//! kill switch and pause checks before it starts.

use std::time::Duration;

use chrono::Utc;
use fapiao_schemas::params::{RIM_CONFIG, SYNC_HIS};
use tracing::Instrument;

use crate::job::{JobContext, JobError, JobSpec, RunInfo, RunReport};
use crate::ledger::{self, Claimed, Outcome, RunState, Trigger};
use crate::metrics::Metrics;

/// Execute a claimed run to its end and record the outcome (fenced).
pub async fn execute(
    ctx: &JobContext,
    spec: &JobSpec,
    claimed: Claimed,
    metrics: &Metrics,
) -> Result<Outcome, JobError> {
    let started = std::time::Instant::now();
    let lag = (Utc::now() - claimed.scheduled_for).to_std().unwrap_or_default();
    let info = RunInfo {
        run_id: claimed.id,
        scheduled_for: claimed.scheduled_for,
        business_date: claimed
            .business_date
            .unwrap_or_else(|| claimed.scheduled_for.with_timezone(&ctx.tz).date_naive()),
    };
    // The span is attached to the future (not entered across an await), so it stays with this
    // run whichever thread polls it, and the heartbeat task carries it too.
    let span =
        tracing::info_span!("job_run", job = spec.name(), run_id = claimed.id, attempt = claimed.attempt);
    async {
        let outcome = match precondition(ctx, spec).await? {
            Some(reason) => Outcome::skipped(reason),
            None => {
                // The run gets its own token: lost lease cancels it, shutdown cancels all.
                let run_ctx = JobContext { cancel: ctx.cancel.child_token(), ..ctx.clone() };
                let beat = heartbeat(run_ctx.clone(), claimed.clone());
                let result = spec.run(&run_ctx, &info).await;
                beat.abort();
                to_outcome(result)
            }
        };
        let recorded = ledger::finish(&ctx.pool, &claimed, &ctx.worker, &outcome).await?;
        if !recorded {
            tracing::warn!("run was rescued by another worker meanwhile; its result is not recorded");
        }
        metrics.record(spec.name(), outcome.state.as_str(), started.elapsed(), lag, &outcome);
        tracing::info!(
            state = outcome.state.as_str(),
            read = outcome.rows_read,
            written = outcome.rows_written,
            rejected = outcome.rows_rejected,
            reason = outcome.reason.as_deref().unwrap_or(""),
            error = outcome.error.as_deref().unwrap_or(""),
            "run finished"
        );
        Ok(outcome)
    }
    .instrument(span)
    .await
}

async fn precondition(ctx: &JobContext, spec: &JobSpec) -> Result<Option<String>, JobError> {
    if spec.kind.under_sync_switch()
        && fapiao_store::params::value(&ctx.pool, RIM_CONFIG, SYNC_HIS).await?.as_deref() == Some("0")
    {
        return Ok(Some("rim_config_sync_his = 0 (kill switch)".into()));
    }
    if ledger::is_paused(&ctx.pool, spec.name()).await? {
        return Ok(Some("paused (fapiao jobs resume to resume)".into()));
    }
    Ok(None)
}

fn to_outcome(result: Result<RunReport, JobError>) -> Outcome {
    match result {
        Ok(r) => Outcome {
            state: if r.skipped { RunState::Skipped } else { RunState::Succeeded },
            reason: r.full_reason(),
            rows_read: r.read,
            rows_written: r.written,
            rows_rejected: r.rejected,
            error: None,
        },
        Err(e) => Outcome::failed(e.to_string()),
    }
}

/// Beat until aborted; a refused beat means the run was taken from us: cancel it.
fn heartbeat(ctx: JobContext, claimed: Claimed) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(ctx.settings.jobs.heartbeat_secs);
    let task = async move {
        loop {
            tokio::time::sleep(every).await;
            match ledger::heartbeat(&ctx.pool, &claimed, &ctx.worker).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run_id = claimed.id, "lease lost; stopping at the next item");
                    ctx.cancel.cancel();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
            }
        }
    };
    tokio::spawn(task.in_current_span())
}

/// `jobs run NAME [--date D]`: record a manual run and execute it here, waiting while another
/// run of the job is running (the overlap rule) — rescuing it if its worker died.
pub async fn run_now(
    ctx: &JobContext,
    spec: &JobSpec,
    date: Option<chrono::NaiveDate>,
    metrics: &Metrics,
) -> Result<(i64, Outcome), JobError> {
    let id = ledger::record_due(&ctx.pool, spec.name(), Utc::now(), Trigger::Manual, date)
        .await?
        .expect("a manual run at this instant is new");
    let poll = Duration::from_millis(ctx.settings.jobs.poll_ms);
    let mut told = false;
    loop {
        ledger::rescue_expired(&ctx.pool, ctx.settings.jobs.lease_secs, spec.max_attempts).await?;
        if let Some(claimed) = ledger::claim(&ctx.pool, spec.name(), &ctx.worker, Some(id)).await? {
            return Ok((id, execute(ctx, spec, claimed, metrics).await?));
        }
        if !told {
            tracing::info!(
                job = spec.name(),
                run_id = id,
                "another run of this job is running; waiting for it"
            );
            told = true;
        }
        if ctx.cancel.is_cancelled() {
            return Err(JobError::Failed(format!("interrupted while waiting; run {id} stays due")));
        }
        tokio::time::sleep(poll).await;
    }
}
