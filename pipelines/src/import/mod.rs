//! Excel import (批量导入): stream rows → COPY into the batch's staging table → validate in bulk →
//! merge in one transaction. All or nothing unless `accept_valid`; a file lands once.
//!
//! The staging table is a temporary table of the import's own transaction: a crash (or kill -9)
//! at any point leaves nothing behind, and a re-run imports the file once. Parsing and
//! converting run on a thread each, a few chunks ahead of the database; applications land
//! chunk by chunk while the file is read (`land`), pool invoices and red-flush lists are merged
//! after the checks.
//!
//! How often the file is read: once for its SHA-256, streamed through a small buffer on a thread
//! of its own while the reading thread starts; a zipped workbook is then inflated once by the
//! guard (`guard`: decompression bombs are refused before calamine holds anything, and merged
//! regions are found) and parsed once; once more (guard and parse) for the error report only when
//! one was asked for and there are problems. A clean file: hash + guard + parse.

mod convert;
pub mod erp;
pub mod floor;
mod guard;
mod land;
mod read;
mod report;
mod rules;
pub mod sample;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fapiao_channel::ChannelClient;
use fapiao_schemas::Coded;
use fapiao_schemas::params::{EINVOICE_AUTO_SIGN, NEED_CHECK, RIM_CONFIG};
use fapiao_schemas::template::{Cell, Template, TemplateError};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use convert::Reading;
use land::Lander;
use rules::KindRules;

pub use fapiao_schemas::ImportKind;
pub use guard::{MAX_MERGED_REGIONS, MAX_TAG_BYTES, ReadLimits, Refusal};
pub use read::{ReadError, read as read_rows};
pub use report::neutralize;

#[derive(Clone)]
pub struct ImportOptions {
    pub kind: ImportKind,
    pub sheet: Option<String>,
    pub dry_run: bool,
    pub accept_valid: bool,
    pub report: Option<PathBuf>,
    /// The channel, for pool imports that verify (`rim_config_need_check` ≠ 0).
    pub channel: Option<Arc<ChannelClient>>,
    /// What the file may hold (`[import]` in the configuration).
    pub limits: ReadLimits,
    /// The tenant's id (`channel.tenant_id`), named by the 1130 refusal (税号:…,不在租户:<id> 范围内).
    pub tenant_id: String,
    /// The enterprises the importing user acts for (a console user scoped to some); `None`: all.
    /// An applications row whose seller lies outside is refused (`SELLER_NOT_IN_SCOPE`).
    pub scope: Option<Vec<String>>,
}

/// Applications, all or nothing, from the first non-empty sheet, landing, no report, no channel.
impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            kind: ImportKind::Applications,
            sheet: None,
            dry_run: false,
            accept_valid: false,
            report: None,
            channel: None,
            limits: ReadLimits::default(),
            tenant_id: String::new(),
            scope: None,
        }
    }
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
    pub kind: ImportKind,
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

/// Import the file at `path` as `options.kind`; `progress` hears the rows read so far. How often
/// the file is read: see the module's documentation.
pub async fn import(
    pool: &PgPool,
    path: &Path,
    options: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, ImportError> {
    let plan = Plan::new(pool, options).await?;
    let hashing = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || read::content_hash(&path))
    };
    let reading = plan.start_reading(path, options);
    // A file imported before is refused before its header is even looked at, as when the hash
    // was taken first; the reading thread has started meanwhile (and stops when refused).
    let hash = hashing
        .await
        .map_err(|e| ReadError::Open { path: path.display().to_string(), detail: e.to_string() })??;
    if let Some(id) = imported_as(pool, &hash).await? {
        return Err(ImportError::AlreadyImported(id));
    }
    run(pool, path, options, progress, &plan, &hash, reading).await
}

/// What an import was asked to do, settled before the file is read.
struct Plan {
    kind: ImportKind,
    template: Template,
    /// The template's fields, in its order.
    fields: Vec<String>,
    /// The fields the staging table keeps.
    staged_fields: Vec<String>,
    /// The channel, when pool rows are verified.
    verify_with: Option<Arc<ChannelClient>>,
}

impl Plan {
    async fn new(pool: &PgPool, options: &ImportOptions) -> Result<Plan, ImportError> {
        let kind = options.kind;
        let template = Template::for_kind(kind);
        let verify_with = match kind {
            ImportKind::Pool
                if fapiao_store::params::value(pool, RIM_CONFIG, NEED_CHECK).await?.as_deref()
                    != Some("0") =>
            {
                Some(options.channel.clone().ok_or(ImportError::NoChannel)?)
            }
            _ => None,
        };
        let fields: Vec<String> = template.columns.iter().map(|c| c.field.clone()).collect();
        let staged_fields = kind.staged_fields(&fields);
        Ok(Plan { kind, template, fields, staged_fields, verify_with })
    }

    /// One pass of the reading thread over the file.
    fn start_reading(&self, path: &Path, options: &ImportOptions) -> Reading {
        let staged = self
            .staged_fields
            .iter()
            .map(|f| self.fields.iter().position(|g| g == f).expect("a template field"))
            .collect();
        Reading::start(
            path.to_path_buf(),
            options.sheet.clone(),
            options.limits,
            self.template.clone(),
            self.kind,
            staged,
        )
    }

    /// A field's header in the sheet, for problems.
    fn header_of(&self, field: &str) -> String {
        self.template
            .columns
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.header.clone())
            .unwrap_or_else(|| field.to_string())
    }
}

/// One pass over the file, in one transaction: the phases in order. Nothing is committed before
/// `finish`; an error in any phase drops the transaction, and nothing lands.
async fn run(
    pool: &PgPool,
    path: &Path,
    options: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
    plan: &Plan,
    hash: &str,
    mut reading: Reading,
) -> Result<Summary, ImportError> {
    let (headers, columns) = reading.header().await?;
    let mut db = pool.begin().await?;
    // For the checks in SQL that name the tenant (1130); local to this transaction.
    sqlx::query("SELECT set_config('fapiao.tenant_id', $1, true)")
        .bind(&options.tenant_id)
        .execute(&mut *db)
        .await?;
    create_stage(&mut db, plan).await?;
    let batch_id = open_batch(&mut db, pool, plan.kind, path, hash, &columns.unknown).await?;
    let landed = stream_and_land(&mut db, &mut reading, plan, batch_id, options, progress).await?;
    if landed.rows_read == 0 {
        // A header and no rows: refused like an empty file; dropping the transaction drops the batch.
        return Err(ReadError::NoDataRows.into());
    }
    let mut problems = landed.problems;
    let mixed = landed.lander.as_ref().map(Lander::mixed).unwrap_or_default();
    check_across_rows(&mut db, plan, &mixed, &mut problems).await?;
    verify_pool_rows(&mut db, plan, &mut problems).await?;
    let rejected = reject_rows_with_problems(&mut db, plan.kind, &mut problems).await?;
    write_report(path, options, &headers, &problems).await?;
    let summary = Summary {
        batch_id: None,
        kind: plan.kind,
        rows_read: landed.rows_read,
        bills: landed.lander.as_ref().map_or(landed.rows_read, Lander::bills),
        accepted: landed.rows_read - rejected,
        rejected,
        problems,
        unknown_columns: columns.unknown,
        outcome: "rejected",
    };
    if !summary.problems.is_empty() && !options.accept_valid {
        return reject_all(db, summary).await;
    }
    merge_accepted(&mut db, plan, batch_id, landed.lander.as_ref()).await?;
    charge_verification(&mut db, plan, batch_id).await?;
    record_batch(&mut db, batch_id, &summary).await?;
    finish(db, batch_id, summary, options.dry_run).await
}

/// The batch's staging table: every row's staged fields as text, for the checks across rows and
/// the merge. Dropped with the transaction.
///
/// Row numbers are unique by construction (one pass over one sheet). Pool and red-flush stages
/// keep them as a primary key: verification updates a row at a time by its number. An
/// applications stage is only read whole, and its index cost the database 0.5 s of a million
/// rows during the read, when the database is the busy part.
async fn create_stage(db: &mut PgConnection, plan: &Plan) -> Result<(), sqlx::Error> {
    let stage_columns: String =
        plan.staged_fields.iter().map(|f| format!("{f} text")).collect::<Vec<_>>().join(", ");
    let key = if plan.kind == ImportKind::Applications { "" } else { " PRIMARY KEY" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE import_stage (row_no integer{key}, {stage_columns},
             verified boolean NOT NULL DEFAULT false, verified_lines jsonb, verified_reason text,
             rejected boolean NOT NULL DEFAULT false) ON COMMIT DROP"
    )))
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// What the rows of one pass left: how many, their problems so far, and the applications lander.
struct Landed {
    rows_read: u64,
    problems: Vec<Problem>,
    lander: Option<Lander>,
}

/// Every chunk the reading thread sends is COPYed into the stage and, for applications, landed
/// at once, so the database works while the next rows are read.
async fn stream_and_land(
    db: &mut PgConnection,
    reading: &mut Reading,
    plan: &Plan,
    batch_id: i64,
    options: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Landed, ImportError> {
    let mut lander = match plan.kind {
        ImportKind::Applications => Some(
            Lander::new(
                db,
                batch_id,
                &plan.fields,
                |f| plan.header_of(f),
                options.accept_valid,
                &options.tenant_id,
                options.scope.as_deref(),
            )
            .await?,
        ),
        _ => None,
    };
    let copy_stage =
        format!("COPY import_stage (row_no, {}) FROM STDIN (FORMAT csv)", plan.staged_fields.join(", "));
    let (mut problems, mut rows_read) = (Vec::new(), 0u64);
    let phase = Instant::now();
    // Time spent waiting for the reading thread: most of the phase when reading is the bottleneck.
    let mut waited = Duration::ZERO;
    loop {
        let wait = Instant::now();
        let Some(chunk) = reading.next_chunk().await? else { break };
        waited += wait.elapsed();
        copy_in(db, &copy_stage, chunk.copy).await?;
        rows_read += chunk.rows.len() as u64;
        problems.extend(chunk.problems);
        if let Some(lander) = &mut lander {
            lander.land(db, &chunk.rows, &mut problems).await?;
        }
        progress(rows_read);
    }
    tracing::debug!(
        rows_read,
        elapsed_ms = phase.elapsed().as_millis() as u64,
        waited_ms = waited.as_millis() as u64,
        "read, converted, staged and landed"
    );
    Ok(Landed { rows_read, problems, lander })
}

/// The kind's set-based checks over the whole stage: rules across rows and against the data;
/// then the rows of the bills found `mixed` while landing.
async fn check_across_rows(
    db: &mut PgConnection,
    plan: &Plan,
    mixed: &[String],
    problems: &mut Vec<Problem>,
) -> Result<(), sqlx::Error> {
    let phase = Instant::now();
    let mixed_rows = (!mixed.is_empty()).then(|| sqlx::query_as(rules::BILL_MIXED_ROWS).bind(mixed));
    let checks = plan.kind.checks().iter().map(|check| sqlx::query_as(*check));
    for query in checks.chain(mixed_rows) {
        let found: Vec<(i32, String, String, String)> = query.fetch_all(&mut *db).await?;
        problems.extend(found.into_iter().map(|(row, column, code, message)| Problem {
            row: row as u32,
            column: plan.header_of(&column),
            code,
            message,
        }));
    }
    tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "checks across rows");
    Ok(())
}

/// Pool invoices are verified through the channel (when asked to), only the rows no other
/// problem refused already: each verification costs billing units.
async fn verify_pool_rows(
    db: &mut PgConnection,
    plan: &Plan,
    problems: &mut Vec<Problem>,
) -> Result<(), ImportError> {
    if let Some(channel) = &plan.verify_with {
        let refused: Vec<i32> = problems.iter().map(|p| p.row as i32).collect();
        verify::verify_rows(db, channel, &refused, problems).await?;
    }
    Ok(())
}

/// Problems in sheet order, once each; the rows with problems are marked rejected in the stage —
/// for applications, every line of their bill. Returns the rows rejected.
async fn reject_rows_with_problems(
    db: &mut PgConnection,
    kind: ImportKind,
    problems: &mut Vec<Problem>,
) -> Result<u64, sqlx::Error> {
    problems.sort_by(|a, b| (a.row, &a.column).cmp(&(b.row, &b.column)));
    problems.dedup();
    let bad_rows: Vec<i32> =
        problems.iter().map(|p| p.row as i32).collect::<BTreeSet<_>>().into_iter().collect();
    Ok(match kind.group_field() {
        Some(group) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE import_stage SET rejected = true WHERE row_no = ANY($1)
                 OR {group} IN (SELECT {group} FROM import_stage WHERE row_no = ANY($1) AND {group} IS NOT NULL)"
        ))),
        None => sqlx::query("UPDATE import_stage SET rejected = true WHERE row_no = ANY($1)"),
    }
    .bind(&bad_rows)
    .execute(&mut *db)
    .await?
    .rows_affected())
}

/// The error report, when asked for — written before anything is decided, so a report that
/// cannot be written lands nothing.
async fn write_report(
    path: &Path,
    options: &ImportOptions,
    headers: &[String],
    problems: &[Problem],
) -> Result<(), ImportError> {
    let Some(report_path) = &options.report else { return Ok(()) };
    let raw =
        original_rows(path, options.sheet.clone(), options.limits, problems.iter().map(|p| p.row).collect())
            .await?;
    report::write(report_path, headers, &raw, problems).map_err(|e| ImportError::Report(e.to_string()))
}

/// All or nothing: a problem anywhere and no row lands; the summary says every row was rejected.
async fn reject_all(db: Transaction<'_, Postgres>, mut summary: Summary) -> Result<Summary, ImportError> {
    summary.accepted = 0;
    summary.rejected = summary.rows_read;
    db.rollback().await?;
    Ok(summary)
}

/// The accepted rows land: applications landed while read, so their rejected bills leave again;
/// pool invoices and red-flush requests are inserted from the stage.
async fn merge_accepted(
    db: &mut PgConnection,
    plan: &Plan,
    batch_id: i64,
    lander: Option<&Lander>,
) -> Result<(), ImportError> {
    let phase = Instant::now();
    match lander {
        Some(lander) => lander.drop_rejected(db).await?,
        None => {
            let auto_sign =
                fapiao_store::params::value(&mut *db, RIM_CONFIG, EINVOICE_AUTO_SIGN).await?.as_deref()
                    == Some("1");
            for statement in plan.kind.merge() {
                let q = sqlx::query(*statement).bind(batch_id);
                let q = if plan.kind == ImportKind::Pool { q.bind(auto_sign) } else { q };
                q.execute(&mut *db).await?;
            }
        }
    }
    tracing::debug!(elapsed_ms = phase.elapsed().as_millis() as u64, "merged");
    Ok(())
}

/// The billing units of this import's verifications, charged with the batch (seed 004).
async fn charge_verification(db: &mut PgConnection, plan: &Plan, batch_id: i64) -> Result<(), ImportError> {
    if plan.verify_with.is_some() {
        let units = verify::charge_units(db).await?;
        tracing::info!(batch_id, %units, "billing units charged for verification");
    }
    Ok(())
}

/// Commit — or, for a dry run, roll back what was checked and merged.
async fn finish(
    db: Transaction<'_, Postgres>,
    batch_id: i64,
    mut summary: Summary,
    dry_run: bool,
) -> Result<Summary, ImportError> {
    if dry_run {
        db.rollback().await?;
        summary.outcome = "dry_run";
    } else {
        db.commit().await?;
        summary.batch_id = Some(batch_id);
        summary.outcome = "imported";
    }
    Ok(summary)
}

async fn imported_as(db: impl sqlx::PgExecutor<'_>, hash: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM import_batch WHERE content_hash = $1")
        .bind(hash)
        .fetch_optional(db)
        .await
}

/// The batch's row, before anything lands (its rows point at it). The unique content hash makes
/// a second import of the same file wait here for the first, then refuses it — which is why the
/// hash is known before the rows land rather than hashed along with them: a later check would
/// let the second import land its bills and then fail on their keys, not as `AlreadyImported`.
async fn open_batch(
    db: &mut PgConnection,
    pool: &PgPool,
    kind: ImportKind,
    path: &Path,
    hash: &str,
    unknown: &[String],
) -> Result<i64, ImportError> {
    let inserted = sqlx::query_scalar(
        "INSERT INTO import_batch (kind, file_name, content_hash, rows_read, bills, accepted, rejected, unknown_columns)
         VALUES ($1, $2, $3, 0, 0, 0, 0, $4) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    .bind(hash)
    .bind(unknown)
    .fetch_one(&mut *db)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => match imported_as(pool, hash).await? {
            Some(id) => Err(ImportError::AlreadyImported(id)),
            None => Err(sqlx::Error::Database(e).into()),
        },
        other => Ok(other?),
    }
}

/// The batch's counts and problems, once known.
async fn record_batch(db: &mut PgConnection, batch_id: i64, summary: &Summary) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_batch SET rows_read = $2, bills = $3, accepted = $4, rejected = $5 WHERE id = $1",
    )
    .bind(batch_id)
    .bind(summary.rows_read as i32)
    .bind(summary.bills as i32)
    .bind(summary.accepted as i32)
    .bind(summary.rejected as i32)
    .execute(&mut *db)
    .await?;
    let p = &summary.problems;
    sqlx::query(
        "INSERT INTO import_problem (batch_id, row_no, column_name, code, message)
         SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::text[], $5::text[])",
    )
    .bind(batch_id)
    .bind(p.iter().map(|p| p.row as i32).collect::<Vec<_>>())
    .bind(p.iter().map(|p| p.column.clone()).collect::<Vec<_>>())
    .bind(p.iter().map(|p| p.code.clone()).collect::<Vec<_>>())
    .bind(p.iter().map(|p| p.message.clone()).collect::<Vec<_>>())
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// The original cells of the rows with problems, for the report: the file is read once more
/// (only when there is something to report) rather than every row's raw text carried along.
async fn original_rows(
    path: &Path,
    sheet: Option<String>,
    limits: ReadLimits,
    wanted: BTreeSet<u32>,
) -> Result<BTreeMap<u32, Vec<String>>, ImportError> {
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut raw = BTreeMap::new();
        let _ = read::read(&path, sheet.as_deref(), &limits, |row, cells| {
            if wanted.contains(&row) {
                raw.insert(row, cells.iter().map(Cell::display).collect::<Vec<_>>());
            }
            true
        });
        raw
    })
    .await
    .map_err(|e| ImportError::Report(e.to_string()))
}

/// COPY `csv` into a table (nothing when empty).
pub(super) async fn copy_in(db: &mut PgConnection, statement: &str, csv: Vec<u8>) -> Result<(), sqlx::Error> {
    if csv.is_empty() {
        return Ok(());
    }
    let mut copy = db.copy_in_raw(statement).await?;
    copy.send(csv).await?;
    copy.finish().await?;
    Ok(())
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
    #[sqlx(try_from = "String")]
    pub kind: ImportKind,
    pub file_name: String,
    pub rows_read: i32,
    pub bills: i32,
    pub accepted: i32,
    pub rejected: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
