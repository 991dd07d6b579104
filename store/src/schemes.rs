//! `sync_scheme`: 全量发票数据同步设置, what apply-cache works from.

use chrono::NaiveDate;
use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::SyncScheme;
use sqlx::PgExecutor;

use crate::StoreError;

fn map_missing_enterprise(e: sqlx::Error, scheme: &SyncScheme) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23503") => StoreError::Invalid(format!(
            "no enterprise with tax number {}; add it first with `fapiao enterprise add`",
            scheme.tax_no
        )),
        _ => e.into(),
    }
}

const INSERT: &str =
    "INSERT INTO sync_scheme (code, tax_no, start_date, active, verify_changed) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (code) DO NOTHING";
const UPSERT: &str =
    "INSERT INTO sync_scheme (code, tax_no, start_date, active, verify_changed) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (code) DO UPDATE SET tax_no = EXCLUDED.tax_no, start_date = EXCLUDED.start_date,
         active = EXCLUDED.active, verify_changed = EXCLUDED.verify_changed, updated_at = now()";

async fn write(db: impl PgExecutor<'_>, sql: &'static str, s: &SyncScheme) -> Result<u64, StoreError> {
    let done = sqlx::query(sql)
        .bind(&s.code)
        .bind(s.tax_no.as_str())
        .bind(s.start_date)
        .bind(s.active)
        .bind(s.verify_changed)
        .execute(db)
        .await
        .map_err(|e| map_missing_enterprise(e, s))?;
    Ok(done.rows_affected())
}

/// Insert a new scheme; an existing code is an error.
pub async fn insert(db: impl PgExecutor<'_>, s: &SyncScheme) -> Result<(), StoreError> {
    if write(db, INSERT, s).await? == 0 {
        return Err(StoreError::Invalid(format!("sync scheme {} already exists", s.code)));
    }
    Ok(())
}

/// Insert or update by code.
pub async fn upsert(db: impl PgExecutor<'_>, s: &SyncScheme) -> Result<(), StoreError> {
    write(db, UPSERT, s).await.map(|_| ())
}

/// The documented updateDownInit: the scheme starts again at `start`, and apply-cache backfills
/// from there. An unknown code is `NotFound`.
pub async fn reset_start(db: impl PgExecutor<'_>, code: &str, start: NaiveDate) -> Result<(), StoreError> {
    let sql =
        "UPDATE sync_scheme SET start_date = $2, backfill_next = $2, updated_at = now() WHERE code = $1";
    found(code, sqlx::query(sql).bind(code).bind(start).execute(db).await?.rows_affected())
}

/// An update by code that touched nothing named no scheme.
fn found(code: &str, updated: u64) -> Result<(), StoreError> {
    if updated == 0 {
        return Err(StoreError::NotFound(format!("no sync scheme with code {code}")));
    }
    Ok(())
}

/// 进项状态更新的发票是否查验入库, switched on or off for one scheme. An unknown code is `NotFound`.
pub async fn set_verify_changed(db: impl PgExecutor<'_>, code: &str, on: bool) -> Result<(), StoreError> {
    let updated =
        sqlx::query("UPDATE sync_scheme SET verify_changed = $2, updated_at = now() WHERE code = $1")
            .bind(code)
            .bind(on)
            .execute(db)
            .await?
            .rows_affected();
    if updated == 0 {
        return Err(StoreError::NotFound(format!("no sync scheme with code {code}")));
    }
    Ok(())
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<SyncScheme>, StoreError> {
    let rows: Vec<(String, String, NaiveDate, bool, bool)> = sqlx::query_as(
        "SELECT code, tax_no, start_date, active, verify_changed FROM sync_scheme ORDER BY code",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(code, tax_no, start_date, active, verify_changed)| {
            let tax_no = TaxNo::parse(&tax_no)
                .map_err(|e| StoreError::Invalid(format!("stored sync scheme row: {e}")))?;
            Ok(SyncScheme { code, tax_no, start_date, active, verify_changed })
        })
        .collect()
}
