//! The job runner's own use cases: run a job now, pause it, resume it. They live here rather
//! than in `fapiao-usecases` because the jobs stand above the use cases (a job runs use cases).

use chrono::{DateTime, NaiveDate, Utc};
use fapiao_schemas::ErrorKind;
use fapiao_usecases::{Actor, audit};
use serde::Serialize;

use crate::job::{JobContext, JobError, Registry, RegistryError};
use crate::ledger::{self, Outcome, RunState};
use crate::metrics::Metrics;
use crate::runner;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No job of that name.
    #[error(transparent)]
    UnknownJob(RegistryError),
    /// The run was executed and failed; its error is in the ledger.
    #[error("{job} run {run_id} failed: {error}")]
    RunFailed { job: String, run_id: i64, error: String },
    /// The request is incomplete (a pause without a reason); `code` is stable.
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// A manual run of the job is already waiting for a worker.
    #[error("{job} 已有一次手动运行在排队（运行 {run_id}），请等待其开始")]
    AlreadyQueued { job: String, run_id: i64 },
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

impl ControlError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::UnknownJob(_) | ControlError::BadInput { .. } => ErrorKind::BadInput,
            ControlError::AlreadyQueued { .. } => ErrorKind::Conflict,
            ControlError::RunFailed { .. } => ErrorKind::Refused,
            ControlError::Job(_) | ControlError::Sql(_) => ErrorKind::Internal,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ControlError::UnknownJob(_) => "USAGE",
            ControlError::BadInput { code, .. } => code,
            ControlError::AlreadyQueued { .. } => "RUN_ALREADY_QUEUED",
            ControlError::RunFailed { .. } | ControlError::Job(_) | ControlError::Sql(_) => "FAILED",
        }
    }
}

/// A manual run as it ended.
#[derive(Clone, Debug, Serialize)]
pub struct ManualRun {
    pub run_id: i64,
    pub job: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Record a manual run of `name` and execute it here (waiting while another run of it is
/// running), for `date` as "today" when given. A run that fails is an error.
pub async fn run_now(
    ctx: &JobContext,
    registry: &Registry,
    actor: &Actor,
    name: &str,
    date: Option<NaiveDate>,
    metrics: &Metrics,
) -> Result<ManualRun, ControlError> {
    let spec = registry.get(name).map_err(ControlError::UnknownJob)?;
    tracing::info!(actor = %actor, job = name, ?date, "run now");
    let (run_id, outcome) = runner::run_now(ctx, spec, date, metrics).await?;
    Ok(ManualRun { run_id, job: name.into(), outcome })
}

/// A manual run that failed, as an error (for front doors where a failed run is a failure).
pub fn failed(run: &ManualRun) -> Option<ControlError> {
    (run.outcome.state == RunState::Failed).then(|| ControlError::RunFailed {
        job: run.job.clone(),
        run_id: run.run_id,
        error: run.outcome.error.clone().unwrap_or_default(),
    })
}

/// Pause (`true`, with a reason: required) or resume a job: while paused its ticks are recorded
/// as skipped, in every process. Audited.
pub async fn set_paused(
    ctx: &JobContext,
    registry: &Registry,
    actor: &Actor,
    name: &str,
    paused: bool,
    reason: Option<&str>,
) -> Result<(), ControlError> {
    let result = async {
        registry.get(name).map_err(ControlError::UnknownJob)?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if paused && reason.is_none() {
            return Err(ControlError::BadInput {
                code: "REASON_REQUIRED", message: "暂停须填写原因".into()
            });
        }
        ledger::set_control(&ctx.pool, name, paused, reason, &actor.to_string()).await?;
        Ok(())
    }
    .await;
    let action = if paused { "job.pause" } else { "job.resume" };
    let detail = reason.unwrap_or_default();
    let e = audit::Entry { actor, action, target: name, outcome: audit::Outcome::Ok, detail, tax_nos: &[] };
    audit::record_result(&ctx.pool, e, &result, ControlError::kind).await;
    result?;
    tracing::info!(actor = %actor, job = name, paused, reason, "job paused or resumed");
    Ok(())
}

/// Queue a manual run of `name` (for `date` as "today" when given) for the workers of
/// `fapiao serve` to claim, without waiting for it. Refused while one is already queued.
pub async fn queue_run(
    ctx: &JobContext,
    registry: &Registry,
    actor: &Actor,
    name: &str,
    date: Option<NaiveDate>,
) -> Result<i64, ControlError> {
    let result = async {
        let spec = registry.get(name).map_err(ControlError::UnknownJob)?;
        if let Some(run_id) = ledger::queued_manual(&ctx.pool, spec.name()).await? {
            return Err(ControlError::AlreadyQueued { job: name.into(), run_id });
        }
        let id =
            ledger::record_due(&ctx.pool, spec.name(), chrono::Utc::now(), ledger::Trigger::Manual, date)
                .await?
                .ok_or_else(|| ControlError::AlreadyQueued { job: name.into(), run_id: 0 })?;
        Ok(id)
    }
    .await;
    let detail = match (&result, date) {
        (Ok(id), Some(d)) => format!("run {id}, date {d}"),
        (Ok(id), None) => format!("run {id}"),
        _ => String::new(),
    };
    let e = audit::Entry {
        actor,
        action: "job.run",
        target: name,
        outcome: audit::Outcome::Ok,
        detail: &detail,
        tax_nos: &[],
    };
    audit::record_result(&ctx.pool, e, &result, ControlError::kind).await;
    let id = result?;
    tracing::info!(actor = %actor, job = name, run_id = id, ?date, "run queued");
    Ok(id)
}

/// A job as the console shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobStatus {
    pub job: &'static str,
    /// The documented task it is.
    pub task: &'static str,
    pub schedule: String,
    pub time_zone: String,
    pub takes_date: bool,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<ledger::RunRow>,
    pub control: ledger::Control,
    pub failures_24h: i64,
    /// A manual run waiting for a worker.
    pub queued: Option<i64>,
}

/// Every job of the registry with its schedule, last and next run, pause and recent failures.
pub async fn overview(ctx: &JobContext, registry: &Registry) -> Result<Vec<JobStatus>, ControlError> {
    let now = Utc::now();
    let mut out = Vec::new();
    for spec in registry.iter() {
        let name = spec.name();
        out.push(JobStatus {
            job: name,
            task: spec.kind.documented_as(),
            schedule: spec.schedule.expr.to_string(),
            time_zone: spec.schedule.tz.name().to_string(),
            takes_date: spec.kind.takes_date(),
            next_run: spec.schedule.next_after(now),
            last_run: ledger::history(&ctx.pool, Some(name), 1).await?.into_iter().next(),
            control: ledger::control(&ctx.pool, name).await?,
            failures_24h: ledger::failures_since(&ctx.pool, name, now - chrono::Duration::hours(24)).await?,
            queued: ledger::queued_manual(&ctx.pool, name).await?,
        });
    }
    Ok(out)
}

/// A page of the run ledger (see `ledger::page`).
pub async fn runs(
    ctx: &JobContext,
    filter: &ledger::RunFilter,
    limit: i64,
) -> Result<Vec<ledger::RunRow>, ControlError> {
    Ok(ledger::page(&ctx.pool, filter, limit).await?)
}

pub async fn run(ctx: &JobContext, id: i64) -> Result<Option<ledger::RunRow>, ControlError> {
    Ok(ledger::run(&ctx.pool, id).await?)
}

/// Recent runs, newest first: of the job `name` (which must be a job of the registry — a typo
/// would otherwise look like a job that never ran), or of all jobs.
pub async fn history(
    ctx: &JobContext,
    registry: &Registry,
    name: Option<&str>,
    limit: i64,
) -> Result<Vec<ledger::RunRow>, ControlError> {
    if let Some(name) = name {
        registry.get(name).map_err(ControlError::UnknownJob)?;
    }
    Ok(ledger::history(&ctx.pool, name, limit).await?)
}
