//! The durable run ledger (`job_run`): one row per due tick, unique on (job, scheduled time).
//! The cron trigger only records a due run; a worker claims it; a heartbeat lease shows it
//! alive; results are fenced by (worker, attempt) so a late worker cannot overwrite a newer one.
//! Never two runs of one job at once: a partial unique index on running rows says so.
//! Start and end use clock_timestamp(): a claim that waited on the previous run's finish must
//! not be stamped with its transaction's earlier start time.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};

pub use fapiao_schemas::{RunState, RunTrigger as Trigger};

/// A run this worker holds.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: i64,
    pub job: String,
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    pub attempt: i32,
    pub business_date: Option<NaiveDate>,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Succeeded, failed or skipped.
    pub state: RunState,
    pub reason: Option<String>,
    pub rows_read: i64,
    pub rows_written: i64,
    pub rows_rejected: i64,
    pub error: Option<String>,
}

impl Outcome {
    /// The run decided not to work, and why.
    pub fn skipped(reason: String) -> Outcome {
        Outcome { state: RunState::Skipped, reason: Some(reason), ..Outcome::counted(RunState::Skipped) }
    }

    pub fn failed(error: String) -> Outcome {
        Outcome { error: Some(error), ..Outcome::counted(RunState::Failed) }
    }

    /// `state` with no rows counted yet, no reason and no error.
    pub fn counted(state: RunState) -> Outcome {
        Outcome { state, reason: None, rows_read: 0, rows_written: 0, rows_rejected: 0, error: None }
    }
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub job: String,
    pub scheduled_for: DateTime<Utc>,
    pub trigger: Trigger,
    pub state: RunState,
    pub reason: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_read: i64,
    pub rows_written: i64,
    pub rows_rejected: i64,
    pub error: Option<String>,
    pub worker: Option<String>,
    pub attempt: i32,
    pub business_date: Option<NaiveDate>,
}

/// Record a due run; `None` when this tick is already recorded (by this or another process).
pub async fn record_due(
    pool: &PgPool,
    job: &str,
    tick: DateTime<Utc>,
    trigger: Trigger,
    business_date: Option<NaiveDate>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO job_run (job, scheduled_for, trigger, business_date) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job, scheduled_for) DO NOTHING RETURNING id",
    )
    .bind(job)
    .bind(tick)
    .bind(trigger)
    .bind(business_date)
    .fetch_optional(pool)
    .await
}

/// Record ticks that passed while nothing ran.
pub async fn record_missed(
    pool: &PgPool,
    job: &str,
    ticks: &[DateTime<Utc>],
    reason: &str,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO job_run (job, scheduled_for, trigger, state, reason, finished_at)
         SELECT $1, t, 'schedule', 'missed', $3, now() FROM unnest($2::timestamptz[]) AS t
         ON CONFLICT (job, scheduled_for) DO NOTHING",
    )
    .bind(job)
    .bind(ticks)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The latest scheduled tick recorded for `job`.
pub async fn last_tick(pool: &PgPool, job: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT max(scheduled_for) FROM job_run WHERE job = $1 AND trigger = 'schedule'")
        .bind(job)
        .fetch_one(pool)
        .await
}

const CLAIM_RETURNING: &str = "RETURNING id, job, scheduled_for, trigger, attempt, business_date";

/// Claim the oldest due run of `job` (or run `only_id`). `None`: nothing due, or another run of
/// the job is running — the database refuses a second running row.
pub async fn claim(
    pool: &PgPool,
    job: &str,
    worker: &str,
    only_id: Option<i64>,
) -> sqlx::Result<Option<Claimed>> {
    let sql = format!(
        "UPDATE job_run SET state = 'running', worker = $2, started_at = clock_timestamp(), heartbeat_at = clock_timestamp()
         WHERE id = (SELECT id FROM job_run WHERE job = $1 AND state = 'due' AND ($3::bigint IS NULL OR id = $3)
                     ORDER BY scheduled_for LIMIT 1 FOR UPDATE SKIP LOCKED)
         {CLAIM_RETURNING}"
    );
    let result = sqlx::query_as::<_, Claimed>(sqlx::AssertSqlSafe(sql))
        .bind(job)
        .bind(worker)
        .bind(only_id)
        .fetch_optional(pool)
        .await;
    let claimed = match result {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => return Ok(None),
        other => other?,
    };
    // The claim's clock_timestamp() is taken before the unique index makes it wait for a
    // finishing run of the same job to commit, so it can fall before that run's end: stamp the
    // start again now that the claim holds.
    if let Some(run) = &claimed {
        sqlx::query("UPDATE job_run SET started_at = clock_timestamp() WHERE id = $1 AND worker = $2 AND attempt = $3")
            .bind(run.id)
            .bind(worker)
            .bind(run.attempt)
            .execute(pool)
            .await?;
    }
    Ok(claimed)
}

/// Beat the heartbeat; `false` when the run is no longer ours (rescued and re-claimed).
pub async fn heartbeat(pool: &PgPool, run: &Claimed, worker: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE job_run SET heartbeat_at = now() WHERE id = $1 AND worker = $2 AND attempt = $3 AND state = 'running'")
        .bind(run.id)
        .bind(worker)
        .bind(run.attempt)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Record how the run ended; `false` when fenced out (a rescuer took the run meanwhile).
pub async fn finish(pool: &PgPool, run: &Claimed, worker: &str, outcome: &Outcome) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE job_run SET state = $4, reason = $5, rows_read = $6, rows_written = $7, rows_rejected = $8,
                error = $9, finished_at = clock_timestamp(), heartbeat_at = clock_timestamp()
         WHERE id = $1 AND worker = $2 AND attempt = $3 AND state = 'running'",
    )
    .bind(run.id)
    .bind(worker)
    .bind(run.attempt)
    .bind(outcome.state)
    .bind(&outcome.reason)
    .bind(outcome.rows_read)
    .bind(outcome.rows_written)
    .bind(outcome.rows_rejected)
    .bind(&outcome.error)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Runs whose worker stopped beating for `lease_secs`: due again (next attempt) while attempts
/// remain, failed after. Returns (id, job, new state).
pub async fn rescue_expired(
    pool: &PgPool,
    lease_secs: u64,
    max_attempts: u32,
) -> sqlx::Result<Vec<(i64, String, RunState)>> {
    sqlx::query_as(
        "UPDATE job_run SET
             state = CASE WHEN attempt < $2 THEN 'due' ELSE 'failed' END,
             error = concat_ws(E'\\n', error, format('attempt %s: lease expired, worker %s silent since %s', attempt, worker, heartbeat_at)),
             attempt = CASE WHEN attempt < $2 THEN attempt + 1 ELSE attempt END,
             finished_at = CASE WHEN attempt < $2 THEN NULL ELSE now() END,
             worker = NULL
         WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1)
         RETURNING id, job, state",
    )
    .bind(lease_secs as f64)
    .bind(max_attempts as i32)
    .fetch_all(pool)
    .await
}

pub async fn history(pool: &PgPool, job: Option<&str>, limit: i64) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "SELECT id, job, scheduled_for, trigger, state, reason, started_at, finished_at, rows_read, rows_written,
                rows_rejected, error, worker, attempt, business_date
         FROM job_run WHERE ($1::text IS NULL OR job = $1) ORDER BY scheduled_for DESC, id DESC LIMIT $2",
    )
    .bind(job)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn is_paused(pool: &PgPool, job: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>("SELECT paused FROM job_control WHERE job = $1")
        .bind(job)
        .fetch_optional(pool)
        .await?
        .unwrap_or(false))
}

pub async fn set_paused(pool: &PgPool, job: &str, paused: bool) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO job_control (job, paused) VALUES ($1, $2)
         ON CONFLICT (job) DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()",
    )
    .bind(job)
    .bind(paused)
    .execute(pool)
    .await?;
    Ok(())
}

/// A job's operator control: paused or not, and why and by whom when paused.
#[derive(Debug, Clone, Default, FromRow, Serialize)]
pub struct Control {
    pub paused: bool,
    pub reason: Option<String>,
    pub paused_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn control(pool: &PgPool, job: &str) -> sqlx::Result<Control> {
    Ok(sqlx::query_as("SELECT paused, reason, paused_by, updated_at FROM job_control WHERE job = $1")
        .bind(job)
        .fetch_optional(pool)
        .await?
        .unwrap_or_default())
}

/// Pause with a reason (and who), or resume (clearing both).
pub async fn set_control(
    pool: &PgPool,
    job: &str,
    paused: bool,
    reason: Option<&str>,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO job_control (job, paused, reason, paused_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job) DO UPDATE SET paused = EXCLUDED.paused, reason = EXCLUDED.reason,
             paused_by = EXCLUDED.paused_by, updated_at = now()",
    )
    .bind(job)
    .bind(paused)
    .bind(if paused { reason } else { None })
    .bind(if paused { Some(by) } else { None })
    .execute(pool)
    .await?;
    Ok(())
}

/// Failed runs of `job` that ended since `since`.
pub async fn failures_since(pool: &PgPool, job: &str, since: DateTime<Utc>) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM job_run WHERE job = $1 AND state = 'failed' AND finished_at >= $2",
    )
    .bind(job)
    .bind(since)
    .fetch_one(pool)
    .await
}

/// The manual run of `job` waiting for a worker, if any.
pub async fn queued_manual(pool: &PgPool, job: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM job_run WHERE job = $1 AND trigger = 'manual' AND state = 'due' LIMIT 1",
    )
    .bind(job)
    .fetch_optional(pool)
    .await
}

/// Filters of the run ledger's pages; every one optional.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub job: Option<String>,
    pub state: Option<RunState>,
    pub trigger: Option<Trigger>,
    /// Scheduled at or after.
    pub from: Option<DateTime<Utc>>,
    /// Scheduled before.
    pub to: Option<DateTime<Utc>>,
    /// Leave out scheduled runs that did nothing (skipped, or succeeded with no rows).
    pub hide_idle: bool,
    /// Keyset: only runs before this (scheduled_for, id), newest first.
    pub before: Option<(DateTime<Utc>, i64)>,
}

const RUN_COLUMNS: &str =
    "id, job, scheduled_for, trigger, state, reason, started_at, finished_at, rows_read, rows_written,
                rows_rejected, error, worker, attempt, business_date";

/// One page of runs, newest first, by keyset on (scheduled_for, id): as fast on the last page of
/// a million rows as on the first (index `job_run_keyset`).
pub async fn page(pool: &PgPool, f: &RunFilter, limit: i64) -> sqlx::Result<Vec<RunRow>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM job_run
         WHERE ($1::text IS NULL OR job = $1) AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR trigger = $3)
           AND ($4::timestamptz IS NULL OR scheduled_for >= $4) AND ($5::timestamptz IS NULL OR scheduled_for < $5)
           AND (NOT $6 OR NOT (trigger = 'schedule' AND (state = 'skipped'
                OR (state = 'succeeded' AND rows_read = 0 AND rows_written = 0 AND rows_rejected = 0))))
           AND ($7::timestamptz IS NULL OR (scheduled_for, id) < ($7, $8))
         ORDER BY scheduled_for DESC, id DESC LIMIT $9"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&f.job)
        .bind(f.state)
        .bind(f.trigger)
        .bind(f.from)
        .bind(f.to)
        .bind(f.hide_idle)
        .bind(f.before.map(|b| b.0))
        .bind(f.before.map(|b| b.1))
        .bind(limit)
        .fetch_all(pool)
        .await
}

pub async fn run(pool: &PgPool, id: i64) -> sqlx::Result<Option<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM job_run WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}
