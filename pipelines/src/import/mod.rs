//! Excel import (批量导入): stream rows → COPY into the batch's staging table → validate in bulk →
//! merge in one transaction. All or nothing unless `accept_valid`; a file lands once.
//!
//! The staging table is a temporary table of the import's own transaction: a crash (or kill -9)
//! at any point leaves nothing behind, and a re-run imports the file once.

mod read;
mod report;
mod rules;
mod verify;
pub mod floor;
pub mod sample;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fapiao_schemas::Coded;
use fapiao_schemas::params::{EINVOICE_AUTO_SIGN, NEED_CHECK, RIM_CONFIG};
use fapiao_schemas::template::{Cell, ColumnMap, Template, TemplateError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub use read::ReadError;
pub use report::neutralize;
pub use rules::Kind;

#[derive(Clone, Default)]
pub struct ImportOptions {
    pub kind: String,
    pub sheet: Option<String>,
    pub dry_run: bool,
    pub accept_valid: bool,
    pub report: Option<PathBuf>,
    /// The channel, for pool imports that verify (`rim_config_need_check` ≠ 0).
    pub channel: Option<std::sync::Arc<fapiao_channel::ChannelClient>>,
}

/// One problem: the row as the sheet shows it (header = row 1), the column, code and message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub row: u32,
    pub column: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `None` when nothing landed (rejected as a whole, or a dry run).
    pub batch_id: Option<i64>,
    pub kind: String,
    pub rows_read: u64,
    pub bills: u64,
    /// Lines accepted.
    pub accepted: u64,
    /// Lines rejected.
    pub rejected: u64,
    pub problems: Vec<Problem>,
    pub unknown_columns: Vec<String>,
    /// `imported`, `rejected` (nothing landed) or `dry_run`.
    pub outcome: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{}（{}）", .0.message_zh(), .0)]
    Template(#[from] TemplateError),
    #[error("this file was imported before, as batch {0}")]
    AlreadyImported(i64),
    #[error("pool import verifies every invoice (rim_config_need_check ≠ 0) and needs the channel")]
    NoChannel,
    #[error("verification: {0}")]
    Channel(fapiao_channel::ChannelError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] fapiao_store::StoreError),
    #[error("report: {0}")]
    Report(String),
}

/// Rows handed from the reading thread to the loader.
enum Msg {
    Row(u32, Vec<Cell>),
    Failed(ReadError),
}

pub async fn import(pool: &PgPool, path: &Path, options: &ImportOptions, progress: &(dyn Fn(u64) + Sync)) -> Result<Summary, ImportError> {
    let kind = Kind::parse(&options.kind).ok_or_else(|| TemplateError::UnknownKind(options.kind.clone()))?;
    let template = Template::for_kind(kind.as_str())?;
    let verify_with = match kind {
        Kind::Pool if fapiao_store::params::value(pool, RIM_CONFIG, NEED_CHECK).await?.as_deref() != Some("0") => {
            Some(options.channel.clone().ok_or(ImportError::NoChannel)?)
        }
        _ => None,
    };
    let bytes = tokio::fs::read(path).await.map_err(|e| ReadError::Open { path: path.display().to_string(), detail: e.to_string() })?;
    let hash = format!("{:x}", Sha256::digest(&bytes));
    drop(bytes);
    if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM import_batch WHERE content_hash = $1").bind(&hash).fetch_optional(pool).await? {
        return Err(ImportError::AlreadyImported(id));
    }

    // Read on a thread of its own; rows flow through a bounded channel (memory stays flat).
    let (tx_rows, mut rx_rows) = tokio::sync::mpsc::channel::<Msg>(4096);
    let (path_owned, sheet) = (path.to_path_buf(), options.sheet.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let result = read::read(&path_owned, sheet.as_deref(), |row, cells| tx_rows.blocking_send(Msg::Row(row, cells)).is_ok());
        if let Err(e) = result {
            let _ = tx_rows.blocking_send(Msg::Failed(e));
        }
    });

    let headers = match rx_rows.recv().await {
        Some(Msg::Row(_, cells)) => cells.iter().map(Cell::display).collect::<Vec<_>>(),
        Some(Msg::Failed(e)) => return Err(e.into()),
        None => return Err(ReadError::Empty.into()),
    };
    let columns = template.resolve(&headers)?;
    let fields: Vec<String> = template.columns.iter().map(|c| c.field.clone()).collect();

    let mut db = pool.begin().await?;
    let stage_columns: String = fields.iter().map(|f| format!("{f} text")).collect::<Vec<_>>().join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE import_stage (row_no integer PRIMARY KEY, {stage_columns},
             verified boolean NOT NULL DEFAULT false, rejected boolean NOT NULL DEFAULT false) ON COMMIT DROP"
    )))
    .execute(&mut *db)
    .await?;

    let mut problems: Vec<Problem> = Vec::new();
    let mut rows_read = 0u64;
    let phase = std::time::Instant::now();
    {
        let copy_sql = format!("COPY import_stage (row_no, {}) FROM STDIN (FORMAT csv)", fields.join(", "));
        let mut copy = db.copy_in_raw(&copy_sql).await?;
        let mut chunk: Vec<u8> = Vec::with_capacity(1 << 20);
        while let Some(msg) = rx_rows.recv().await {
            let (row_no, cells) = match msg {
                Msg::Row(n, c) => (n, c),
                Msg::Failed(e) => {
                    let _ = copy.abort("read failed").await;
                    return Err(e.into());
                }
            };
            rows_read += 1;
            let record = stage_record(row_no, &cells, &columns, &fields, kind, &mut problems);
            write_csv_record(&mut chunk, &record);
            if chunk.len() >= 1 << 20 {
                copy.send(std::mem::take(&mut chunk)).await?;
            }
            if rows_read.is_multiple_of(10_000) {
                progress(rows_read);
            }
        }
        if !chunk.is_empty() {
            copy.send(chunk).await?;
        }
        copy.finish().await?;
    }
    let _ = reader.await;
    progress(rows_read);
    tracing::debug!(rows_read, elapsed_ms = phase.elapsed().as_millis() as u64, "read, converted and staged");
    let phase = std::time::Instant::now();

    for check in kind.checks() {
        let found: Vec<(i32, String, String, String)> = sqlx::query_as(*check).fetch_all(&mut *db).await?;
        problems.extend(found.into_iter().map(|(row, column, code, message)| Problem { row: row as u32, column: header_of(&template, &column), code, message }));
    }
    tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "set-based checks");
    if let Some(channel) = &verify_with {
        let refused: Vec<i32> = problems.iter().map(|p| p.row as i32).collect();
        verify::verify_rows(&mut db, channel, &refused, &mut problems).await?;
    }
    problems.sort_by(|a, b| (a.row, &a.column).cmp(&(b.row, &b.column)));
    problems.dedup();

    // Reject the rows with problems — for applications, every line of their bill.
    let bad_rows: Vec<i32> = problems.iter().map(|p| p.row as i32).collect::<BTreeSet<_>>().into_iter().collect();
    let rejected = match kind.group_field() {
        Some(group) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE import_stage SET rejected = true WHERE row_no = ANY($1)
                 OR {group} IN (SELECT {group} FROM import_stage WHERE row_no = ANY($1) AND {group} IS NOT NULL)"
        ))),
        None => sqlx::query("UPDATE import_stage SET rejected = true WHERE row_no = ANY($1)"),
    }
    .bind(&bad_rows)
    .execute(&mut *db)
    .await?
    .rows_affected();
    let bills: i64 = match kind.group_field() {
        Some(group) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(DISTINCT {group}) FROM import_stage"))).fetch_one(&mut *db).await?,
        None => rows_read as i64,
    };

    if let Some(report_path) = &options.report {
        // The original cells of the rows with problems: read the file once more (only when
        // there is something to report), rather than carry every row's raw text through COPY.
        let wanted: BTreeSet<u32> = problems.iter().map(|p| p.row).collect();
        let (path_owned, sheet) = (path.to_path_buf(), options.sheet.clone());
        let raw = tokio::task::spawn_blocking(move || {
            let mut raw = BTreeMap::new();
            if !wanted.is_empty() {
                let _ = read::read(&path_owned, sheet.as_deref(), |row, cells| {
                    if wanted.contains(&row) {
                        raw.insert(row, cells.iter().map(Cell::display).collect::<Vec<_>>());
                    }
                    true
                });
            }
            raw
        })
        .await
        .map_err(|e| ImportError::Report(e.to_string()))?;
        report::write(report_path, &headers, &raw, &problems).map_err(|e| ImportError::Report(e.to_string()))?;
    }

    let accepted = rows_read - rejected;
    let mut summary = Summary {
        batch_id: None,
        kind: kind.as_str().into(),
        rows_read,
        bills: bills as u64,
        accepted,
        rejected,
        problems,
        unknown_columns: columns.unknown.clone(),
        outcome: "rejected",
    };
    if !summary.problems.is_empty() && !options.accept_valid {
        summary.accepted = 0;
        summary.rejected = rows_read;
        db.rollback().await?; // all or nothing: nothing lands
        return Ok(summary);
    }
    let batch_id: i64 = sqlx::query_scalar(
        "INSERT INTO import_batch (kind, file_name, content_hash, rows_read, bills, accepted, rejected, unknown_columns)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    .bind(&hash)
    .bind(rows_read as i32)
    .bind(bills as i32)
    .bind(accepted as i32)
    .bind(rejected as i32)
    .bind(&columns.unknown)
    .fetch_one(&mut *db)
    .await?;
    let auto_sign = fapiao_store::params::value(&mut *db, RIM_CONFIG, EINVOICE_AUTO_SIGN).await?.as_deref() == Some("1");
    for statement in kind.merge() {
        let q = sqlx::query(*statement).bind(batch_id);
        let q = if kind == Kind::Pool { q.bind(auto_sign) } else { q };
        q.execute(&mut *db).await?;
    }
    if verify_with.is_some() {
        let units = verify::charge_units(&mut db).await?;
        tracing::info!(batch_id, %units, "billing units charged for verification");
    }
    for p in &summary.problems {
        sqlx::query("INSERT INTO import_problem (batch_id, row_no, column_name, code, message) VALUES ($1, $2, $3, $4, $5)")
            .bind(batch_id)
            .bind(p.row as i32)
            .bind(&p.column)
            .bind(&p.code)
            .bind(&p.message)
            .execute(&mut *db)
            .await?;
    }
    if options.dry_run {
        db.rollback().await?;
        summary.outcome = "dry_run";
    } else {
        db.commit().await?;
        summary.batch_id = Some(batch_id);
        summary.outcome = "imported";
    }
    Ok(summary)
}

/// One CSV record for COPY: row number and each field's converted value (NULL when empty or
/// refused); problems found on the way are added to `problems`.
fn stage_record(row_no: u32, cells: &[Cell], columns: &ColumnMap, fields: &[String], kind: Kind, problems: &mut Vec<Problem>) -> Vec<String> {
    let mut values = BTreeMap::new();
    for (field, (index, column)) in &columns.fields {
        let cell = cells.get(*index).unwrap_or(&Cell::Empty);
        match column.convert(cell) {
            Ok(v) => {
                values.insert(field.clone(), v);
            }
            Err(p) => problems.push(Problem { row: row_no, column: column.header.clone(), code: p.code.into(), message: p.message }),
        }
    }
    for (field, code, message) in kind.row_rules(&values) {
        let column = columns.fields.get(field).map(|(_, c)| c.header.clone()).unwrap_or_else(|| field.to_string());
        problems.push(Problem { row: row_no, column, code: code.into(), message });
    }
    let mut record = Vec::with_capacity(fields.len() + 2);
    record.push(row_no.to_string());
    for f in fields {
        // CSV: an unquoted empty field is NULL in COPY … (FORMAT csv).
        record.push(values.get(f).and_then(|v| v.to_copy_text()).unwrap_or_default());
    }
    record
}

/// One CSV line for COPY: an empty field stays unquoted (NULL), any other is quoted.
fn write_csv_record(out: &mut Vec<u8>, record: &[String]) {
    for (i, field) in record.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !field.is_empty() {
            out.push(b'"');
            out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        }
    }
    out.push(b'\n');
}

fn header_of(template: &Template, field: &str) -> String {
    template.columns.iter().find(|c| c.field == field).map(|c| c.header.clone()).unwrap_or_else(|| field.to_string())
}

/// Recent batches, newest first.
pub async fn history(pool: &PgPool, limit: i64) -> Result<Vec<BatchRow>, ImportError> {
    Ok(sqlx::query_as(
        "SELECT id, kind, file_name, rows_read, bills, accepted, rejected, created_at FROM import_batch ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BatchRow {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub rows_read: i32,
    pub bills: i32,
    pub accepted: i32,
    pub rejected: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
