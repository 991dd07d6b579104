//! The job runner's own use cases: run a job now, pause it, resume it. They live here rather
//! than in `fapiao-usecases` because the jobs stand above the use cases (a job runs use cases).

use chrono::NaiveDate;
use fapiao_schemas::ErrorKind;
use fapiao_usecases::Actor;
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
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

impl ControlError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::UnknownJob(_) => ErrorKind::BadInput,
            ControlError::RunFailed { .. } => ErrorKind::Refused,
            ControlError::Job(_) | ControlError::Sql(_) => ErrorKind::Internal,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ControlError::UnknownJob(_) => "USAGE",
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

/// Pause (`true`) or resume a job: while paused its ticks are recorded as skipped, in every process.
pub async fn set_paused(
    ctx: &JobContext,
    registry: &Registry,
    actor: &Actor,
    name: &str,
    paused: bool,
) -> Result<(), ControlError> {
    registry.get(name).map_err(ControlError::UnknownJob)?;
    ledger::set_paused(&ctx.pool, name, paused).await?;
    tracing::info!(actor = %actor, job = name, paused, "job paused or resumed");
    Ok(())
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
