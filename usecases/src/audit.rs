//! The audit log: every action that changes something is one row — who, when, from where, what,
//! target, outcome. Written by the use cases themselves (users, logins, parameters; the job
//! runner's pause / resume / run now), so the CLI and the console leave the same trail.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};

use crate::{Actor, App, Result};

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Refused: bad input, a rule, a wrong password, no permission.
    Refused,
    /// Our own failure.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    /// `ok`, or the outcome a failure of this kind is.
    pub fn of_kind(kind: Option<crate::ErrorKind>) -> Outcome {
        match kind {
            None => Outcome::Ok,
            Some(crate::ErrorKind::Internal | crate::ErrorKind::Unavailable) => Outcome::Failed,
            Some(_) => Outcome::Refused,
        }
    }
}

/// One audited action.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub actor: &'a Actor,
    /// e.g. `login`, `job.pause`, `param.set`, `user.add`.
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: Outcome,
    /// What was done or why it was refused; never a password.
    pub detail: &'a str,
    /// The enterprises it concerns (empty: none in particular).
    pub tax_nos: &'a [String],
}

/// Write one row. A failure to audit is logged, not raised: the action itself already happened.
pub async fn record(pool: &PgPool, e: Entry<'_>) {
    let done = sqlx::query(
        "INSERT INTO audit_log (actor, source, action, target, outcome, detail, tax_nos)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(actor_name(e.actor))
    .bind(e.actor.source())
    .bind(e.action)
    .bind(e.target)
    .bind(e.outcome.as_str())
    .bind(e.detail)
    .bind(e.tax_nos)
    .execute(pool)
    .await;
    if let Err(err) = done {
        tracing::error!(error = %err, action = e.action, target = e.target, "audit row not written");
    }
}

/// Record how `result` ended as `e` (its detail on success; the error's message otherwise —
/// `e.outcome` is taken from the result).
pub async fn record_result<T, E: std::fmt::Display>(
    pool: &PgPool,
    e: Entry<'_>,
    result: &std::result::Result<T, E>,
    kind: impl Fn(&E) -> crate::ErrorKind,
) {
    let (outcome, message) = match result {
        Ok(_) => (Outcome::Ok, e.detail.to_string()),
        Err(err) => (Outcome::of_kind(Some(kind(err))), err.to_string()),
    };
    record(pool, Entry { outcome, detail: &message, ..e }).await;
}

/// The name shown in the log: console users by their own name, others as `cli:…`, `job:…`.
fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::Console { user, .. } => user.clone(),
        other => other.to_string(),
    }
}

#[derive(Clone, Debug, Serialize, FromRow)]
pub struct Row {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub tax_nos: Vec<String>,
}

/// What to list: each filter optional; `before` an id (pages go back by id).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actor: Option<String>,
    /// Actions starting with this (`job.` for every job action).
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// The log, newest first. `scope`: the viewer's enterprises (`None`: all); a scoped viewer sees
/// the rows whose tax numbers all lie in the scope (rows about no enterprise included).
pub async fn list(app: &App, scope: Option<&[String]>, filter: &Filter) -> Result<Vec<Row>> {
    let rows = sqlx::query_as(
        "SELECT id, at, actor, source, action, target, outcome, detail, tax_nos FROM audit_log
         WHERE ($1::text[] IS NULL OR tax_nos <@ $1)
           AND ($2::text IS NULL OR actor = $2)
           AND ($3::text IS NULL OR starts_with(action, $3))
           AND ($4::text IS NULL OR outcome = $4)
           AND ($5::bigint IS NULL OR id < $5)
         ORDER BY id DESC LIMIT $6",
    )
    .bind(scope)
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(&filter.outcome)
    .bind(filter.before)
    .bind(filter.limit.clamp(1, 1000))
    .fetch_all(&app.pool)
    .await?;
    Ok(rows)
}
