//! The web console's background work (issue 19): a workbook uploaded and imported, a
//! reconciliation export built. A task is a row of `console_task` from the moment it is asked
//! for — who, the enterprises it concerns, what was asked — to its outcome: an import's summary
//! with every problem (a rejected or dry-run import lands no batch, so its problems are kept
//! here), an export's manifest and the zip's SHA-256. Each run writes its audit row.
//!
//! A scoped user sees the tasks whose enterprises all lie in their scope (a task about no
//! enterprise — an unscoped user's import — only users who see all).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use crate::audit::{self, Entry, Outcome};
use crate::export::{self, ReconciliationRequest};
use crate::import::{self, ImportRequest};
use crate::{Actor, App, Error, Result};

/// What a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    Import,
    Export,
    /// Issue (or push and issue) everything matching a list's filter.
    Bulk,
    /// Red-flush an uploaded list.
    RedFlushList,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Import => "import",
            TaskKind::Export => "export",
            TaskKind::Bulk => "bulk",
            TaskKind::RedFlushList => "red_flush_list",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub id: i64,
    pub kind: String,
    /// The console user who asked.
    pub actor: String,
    /// The enterprises it concerns: a scoped uploader's scope, an export's enterprises.
    pub tax_nos: Vec<String>,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub request: Value,
    /// An import's summary (with its problems), an export's manifest.
    pub result: Option<Value>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// The uploaded workbook, or the zip.
    pub file_path: String,
    /// An import's xlsx error report, when it has problems.
    pub report_path: Option<String>,
    /// The zip's SHA-256.
    pub sha256: Option<String>,
    /// The batch an import landed, or the earlier batch of the same file.
    pub batch_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A row as read: the JSON columns as text (the workspace's sqlx has no `json` feature).
#[derive(FromRow)]
struct TaskRow {
    id: i64,
    kind: String,
    actor: String,
    tax_nos: Vec<String>,
    state: String,
    request: String,
    result: Option<String>,
    error: Option<String>,
    error_code: Option<String>,
    file_path: String,
    report_path: Option<String>,
    sha256: Option<String>,
    batch_id: Option<i64>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Task {
        let json = |s: &str| serde_json::from_str(s).unwrap_or(Value::Null);
        Task {
            id: r.id,
            kind: r.kind,
            actor: r.actor,
            tax_nos: r.tax_nos,
            state: r.state,
            request: json(&r.request),
            result: r.result.as_deref().map(json),
            error: r.error,
            error_code: r.error_code,
            file_path: r.file_path,
            report_path: r.report_path,
            sha256: r.sha256,
            batch_id: r.batch_id,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

impl Task {
    /// Whether a user of `scope` (`None`: all enterprises) sees this task.
    pub fn visible_to(&self, scope: Option<&[String]>) -> bool {
        match scope {
            None => true,
            Some(s) => !self.tax_nos.is_empty() && self.tax_nos.iter().all(|t| s.contains(t)),
        }
    }

    /// A field of the request as text.
    pub fn asked(&self, field: &str) -> String {
        match self.request.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }
}

/// What an import task asked for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportAsked {
    pub kind: String,
    pub file_name: String,
    pub dry_run: bool,
    pub accept_valid: bool,
    pub bytes: u64,
}

/// What an export task asked for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportAsked {
    pub from: String,
    pub to: String,
    pub tax_nos: Vec<String>,
}

/// One problem of an import task.
#[derive(Clone, Debug, Serialize, FromRow)]
pub struct ProblemRow {
    pub row: i32,
    pub column: String,
    pub code: String,
    pub message: String,
}

/// One check of an export, as its manifest keeps it.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckRow {
    pub name: String,
    pub description: String,
    pub ok: bool,
    pub failures: usize,
    pub examples: Vec<String>,
}

const COLUMNS: &str = "id, kind, actor, tax_nos, state, request::text AS request, result::text AS result, \
                       error, error_code, file_path, report_path, sha256, batch_id, created_at, finished_at";

fn actor_name(actor: &Actor) -> String {
    match actor {
        Actor::Console { user, .. } | Actor::Cli { user } => user.clone(),
        other => other.to_string(),
    }
}

/// Record a task as asked for; returns its id.
pub async fn open(
    app: &App,
    actor: &Actor,
    kind: TaskKind,
    tax_nos: &[String],
    request: Value,
    file_path: &Path,
    report_path: Option<&Path>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO console_task (kind, actor, tax_nos, request, file_path, report_path)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(actor_name(actor))
    .bind(tax_nos)
    .bind(request.to_string())
    .bind(file_path.display().to_string())
    .bind(report_path.map(|p| p.display().to_string()))
    .fetch_one(&app.pool)
    .await?)
}

pub async fn get(app: &App, id: i64) -> Result<Option<Task>> {
    let row: Option<TaskRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM console_task WHERE id = $1")))
            .bind(id)
            .fetch_optional(&app.pool)
            .await?;
    Ok(row.map(Task::from))
}

/// The tasks of a kind a user of `scope` sees, newest first.
pub async fn list(app: &App, kind: TaskKind, scope: Option<&[String]>, limit: i64) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM console_task
         WHERE kind = $1 AND ($2::text[] IS NULL OR (tax_nos <> '{{}}' AND tax_nos <@ $2::text[]))
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(kind.as_str())
    .bind(scope)
    .bind(limit)
    .fetch_all(&app.pool)
    .await?;
    Ok(rows.into_iter().map(Task::from).collect())
}

/// The import task that landed `batch`, if the console made it.
pub async fn of_batch(app: &App, batch: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM console_task WHERE kind = 'import' AND batch_id = $1 AND state = 'done' ORDER BY id LIMIT 1",
    )
    .bind(batch)
    .fetch_optional(&app.pool)
    .await?)
}

/// A page of an import task's problems, in sheet order, optionally of one code; and how many
/// there are in all (of that code).
pub async fn problems(
    app: &App,
    id: i64,
    code: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ProblemRow>, i64)> {
    const FROM: &str =
        "FROM console_task t, jsonb_array_elements(t.result->'problems') WITH ORDINALITY AS e(p, n)
                        WHERE t.id = $1 AND ($2::text IS NULL OR p->>'code' = $2)";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (p->>'row')::integer AS row, p->>'column' AS column, p->>'code' AS code, p->>'message' AS message
         {FROM} ORDER BY n OFFSET $3 LIMIT $4"
    )))
    .bind(id)
    .bind(code)
    .bind(offset)
    .bind(limit)
    .fetch_all(&app.pool)
    .await?;
    let total = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) {FROM}")))
        .bind(id)
        .bind(code)
        .fetch_one(&app.pool)
        .await?;
    Ok((rows, total))
}

/// The codes of an import task's problems, with how many of each.
pub async fn problem_codes(app: &App, id: i64) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT p->>'code', count(*) FROM console_task t, jsonb_array_elements(t.result->'problems') p
         WHERE t.id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await?)
}

pub(crate) async fn finish(
    app: &App,
    id: i64,
    state: &str,
    result: Option<Value>,
    error: Option<(&str, String)>,
    batch: Option<i64>,
    sha256: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE console_task SET state = $2, result = $3::jsonb, error_code = $4, error = $5, batch_id = $6,
                sha256 = $7, finished_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(result.map(|v| v.to_string()))
    .bind(error.as_ref().map(|e| e.0))
    .bind(error.map(|e| e.1))
    .bind(batch)
    .bind(sha256)
    .execute(&app.pool)
    .await?;
    Ok(())
}

/// Run import task `id` (opened with [`open`]): the import use case on the uploaded file, its
/// outcome kept on the task and in the audit log (`import.file`). A file imported before ends
/// the task failed with `DUPLICATE_FILE` and the earlier batch.
pub async fn run_import(
    app: &App,
    actor: &Actor,
    id: i64,
    file: &Path,
    file_name: &str,
    request: ImportRequest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let tax_nos = request.scope.clone().unwrap_or_default();
    let kind = request.kind;
    let outcome = import::file(app, actor, file, request, progress).await;
    let target = format!("{file_name}（{kind}）");
    let (detail, audit_outcome) = match &outcome {
        Ok(s) => {
            let batch = s.batch_id.map(|b| format!("批次{b}：")).unwrap_or_default();
            let what = match s.outcome {
                "imported" => "已导入",
                "dry_run" => "试导入（未入库）",
                _ => "全部拒绝",
            };
            let d = format!(
                "{batch}{what}，读取{}行，单据{}张，接受{}行，拒绝{}行",
                s.rows_read, s.bills, s.accepted, s.rejected
            );
            (d, if s.outcome == "rejected" { Outcome::Refused } else { Outcome::Ok })
        }
        Err(e) => (format!("{}：{e}", e.code()), Outcome::of_kind(Some(e.kind()))),
    };
    match outcome {
        Ok(summary) => {
            let batch = summary.batch_id;
            let value = serde_json::to_value(&summary).unwrap_or(Value::Null);
            finish(app, id, "done", Some(value), None, batch, None).await?;
        }
        Err(Error::Import(fapiao_pipelines::import::ImportError::AlreadyImported(batch))) => {
            let message = format!("此文件已导入过，批次{batch}");
            finish(app, id, "failed", None, Some(("DUPLICATE_FILE", message)), Some(batch), None).await?;
        }
        Err(e) => {
            finish(app, id, "failed", None, Some((e.code(), e.to_string())), None, None).await?;
        }
    }
    let entry = Entry {
        actor,
        action: "import.file",
        target: &target,
        outcome: audit_outcome,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record(&app.pool, entry).await;
    Ok(())
}

/// Run export task `id`: the reconciliation export into the task's zip, the manifest and the
/// zip's SHA-256 kept on the task, the audit row `export.reconciliation` written.
pub async fn run_export(
    app: &App,
    actor: &Actor,
    id: i64,
    request: ReconciliationRequest,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let tax_nos: Vec<String> = request.tax_nos.iter().map(|t| t.as_str().to_string()).collect();
    let target = format!("{} — {}", request.from, request.to);
    let out = request.out.clone();
    let outcome = export::reconciliation(app, actor, request, progress).await;
    let detail = match outcome {
        Ok(report) => {
            let sha = sha256_of(out).await?;
            let m = &report.manifest;
            let failed: Vec<&str> = m.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
            let value = serde_json::to_value(m).unwrap_or(Value::Null);
            finish(app, id, "done", Some(value), None, None, Some(&sha)).await?;
            let checks = if failed.is_empty() {
                "全部核对通过".to_string()
            } else {
                format!("核对未通过：{}", failed.join("、"))
            };
            Ok(format!("SHA-256 {sha}；{checks}"))
        }
        Err(e) => {
            finish(app, id, "failed", None, Some((e.code(), e.to_string())), None, None).await?;
            Err(e)
        }
    };
    let entry = Entry {
        actor,
        action: "export.reconciliation",
        target: &target,
        outcome: Outcome::Ok,
        detail: detail.as_deref().unwrap_or(""),
        tax_nos: &tax_nos,
    };
    audit::record_result(&app.pool, entry, &detail, |e| e.kind()).await;
    Ok(())
}

/// The SHA-256 of a file, read in blocks off the async threads.
pub async fn sha256_of(path: PathBuf) -> Result<String> {
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| Error::bad_input("IO", e.to_string()))?
    .map_err(|e| Error::bad_input("IO", e.to_string()))
}

/// Audit a refused request about a task (a file too large, a period that does not parse).
pub async fn refused(app: &App, actor: &Actor, action: &str, target: &str, detail: &str, tax_nos: &[String]) {
    let entry = Entry { actor, action, target, outcome: Outcome::Refused, detail, tax_nos };
    audit::record(&app.pool, entry).await;
}
