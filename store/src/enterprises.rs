//! `enterprise`: the tenant's enterprises.

use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::{Channel, Enterprise, TaxpayerKind};
use sqlx::PgExecutor;

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
        .bind(e.taxpayer_kind)
        .bind(&e.etax_account)
        .bind(e.channel)
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
    let rows: Vec<EnterpriseRow> = sqlx::query_as(
        "SELECT tax_no, name, taxpayer_kind, etax_account, channel FROM enterprise ORDER BY tax_no",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(EnterpriseRow::parse).collect()
}

pub async fn get(db: impl PgExecutor<'_>, tax_no: &TaxNo) -> Result<Option<Enterprise>, StoreError> {
    let row: Option<EnterpriseRow> = sqlx::query_as(
        "SELECT tax_no, name, taxpayer_kind, etax_account, channel FROM enterprise WHERE tax_no = $1",
    )
    .bind(tax_no.as_str())
    .fetch_optional(db)
    .await?;
    row.map(EnterpriseRow::parse).transpose()
}

#[derive(sqlx::FromRow)]
struct EnterpriseRow {
    tax_no: String,
    name: String,
    taxpayer_kind: TaxpayerKind,
    etax_account: String,
    channel: Channel,
}

impl EnterpriseRow {
    fn parse(self) -> Result<Enterprise, StoreError> {
        let tax_no = TaxNo::parse(&self.tax_no)
            .map_err(|e| StoreError::Invalid(format!("stored enterprise row: {e}")))?;
        Ok(Enterprise {
            tax_no,
            name: self.name,
            taxpayer_kind: self.taxpayer_kind,
            etax_account: self.etax_account,
            channel: self.channel,
        })
    }
}

/// 开票人 (required), 收款人 and 复核人 of an enterprise's invoices.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Issuers {
    pub drawer: String,
    pub payee: Option<String>,
    pub reviewer: Option<String>,
}

/// Set an enterprise's issuers (its tax number must be an enterprise: the foreign key says so).
pub async fn set_issuers(
    db: impl PgExecutor<'_>,
    tax_no: &TaxNo,
    issuers: &Issuers,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO enterprise_issuer (tax_no, drawer, payee, reviewer) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tax_no) DO UPDATE SET drawer = EXCLUDED.drawer, payee = EXCLUDED.payee,
             reviewer = EXCLUDED.reviewer, updated_at = now()",
    )
    .bind(tax_no.as_str())
    .bind(&issuers.drawer)
    .bind(&issuers.payee)
    .bind(&issuers.reviewer)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn issuers(db: impl PgExecutor<'_>, tax_no: &TaxNo) -> Result<Option<Issuers>, StoreError> {
    Ok(sqlx::query_as("SELECT drawer, payee, reviewer FROM enterprise_issuer WHERE tax_no = $1")
        .bind(tax_no.as_str())
        .fetch_optional(db)
        .await?)
}
