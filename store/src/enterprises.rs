//! `enterprise`: the tenant's enterprises.

use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::{Channel, Enterprise, TaxpayerKind};
use sqlx::{PgExecutor, Row};

use crate::StoreError;

const INSERT: &str = "INSERT INTO enterprise (tax_no, name, taxpayer_kind, etax_account, channel)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tax_no) DO NOTHING";
const UPSERT: &str = "INSERT INTO enterprise (tax_no, name, taxpayer_kind, etax_account, channel)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tax_no) DO UPDATE SET name = EXCLUDED.name, taxpayer_kind = EXCLUDED.taxpayer_kind,
         etax_account = EXCLUDED.etax_account, channel = EXCLUDED.channel, updated_at = now()";

async fn write(db: impl PgExecutor<'_>, sql: &'static str, e: &Enterprise) -> Result<u64, StoreError> {
    let done = sqlx::query(sql)
        .bind(e.tax_no.as_str())
        .bind(&e.name)
        .bind(e.taxpayer_kind.as_str())
        .bind(&e.etax_account)
        .bind(e.channel.as_str())
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Insert a new enterprise; an existing tax number is an error.
pub async fn insert(db: impl PgExecutor<'_>, e: &Enterprise) -> Result<(), StoreError> {
    if write(db, INSERT, e).await? == 0 {
        return Err(StoreError::Invalid(format!("enterprise {} already exists", e.tax_no)));
    }
    Ok(())
}

/// Insert or update by tax number.
pub async fn upsert(db: impl PgExecutor<'_>, e: &Enterprise) -> Result<(), StoreError> {
    write(db, UPSERT, e).await.map(|_| ())
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Enterprise>, StoreError> {
    let rows = sqlx::query(
        "SELECT tax_no, name, taxpayer_kind, etax_account, channel FROM enterprise ORDER BY tax_no",
    )
    .fetch_all(db)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(db: impl PgExecutor<'_>, tax_no: &TaxNo) -> Result<Option<Enterprise>, StoreError> {
    let row = sqlx::query(
        "SELECT tax_no, name, taxpayer_kind, etax_account, channel FROM enterprise WHERE tax_no = $1",
    )
    .bind(tax_no.as_str())
    .fetch_optional(db)
    .await?;
    row.as_ref().map(from_row).transpose()
}

fn from_row(row: &sqlx::postgres::PgRow) -> Result<Enterprise, StoreError> {
    let corrupt = |what: String| StoreError::Invalid(format!("stored enterprise row: {what}"));
    Ok(Enterprise {
        tax_no: TaxNo::parse(row.try_get("tax_no")?).map_err(|e| corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        taxpayer_kind: row
            .try_get::<&str, _>("taxpayer_kind")?
            .parse::<TaxpayerKind>()
            .map_err(|e| corrupt(e.to_string()))?,
        etax_account: row.try_get("etax_account")?,
        channel: row.try_get::<&str, _>("channel")?.parse::<Channel>().map_err(|e| corrupt(e.to_string()))?,
    })
}
