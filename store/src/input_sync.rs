//! The input-invoice sync's work that was given up: staged rows whose verification failed for
//! good, download applications that failed. `send_again` puts them back where the jobs pick
//! them up (`fapiao sync retry`).

use chrono::NaiveDate;
use fapiao_schemas::TaxNo;
use sqlx::PgPool;

use crate::StoreError;

/// Which given-up work to send again: one enterprise or all, invoice dates in a range or all.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub tax_no: Option<TaxNo>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SentAgain {
    /// Staged invoices back to pending, their attempts counted from zero (deal-task).
    pub staged_rows: u64,
    /// Download applications open again (download-apply).
    pub applications: u64,
}

/// Both kinds in one transaction: either all of the scope is sent again or nothing is.
pub async fn send_again(pool: &PgPool, scope: &Scope) -> Result<SentAgain, StoreError> {
    const IN_SCOPE: &str = "($1::text IS NULL OR tax_no = $1)
         AND ($2::date IS NULL OR invoice_date >= $2) AND ($3::date IS NULL OR invoice_date <= $3)";
    let tax_no = scope.tax_no.as_ref().map(TaxNo::as_str);
    let mut tx = pool.begin().await?;
    let staged_rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE download_staging SET state = 'pending', handle_num = 0, claimed_by = NULL, claimed_until = NULL
         WHERE state = 'failed' AND {IN_SCOPE}"
    )))
    .bind(tax_no)
    .bind(scope.from)
    .bind(scope.to)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let applications = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE download_application SET state = 'open', attempts = 0, updated_at = now()
         WHERE state = 'failed' AND {IN_SCOPE}"
    )))
    .bind(tax_no)
    .bind(scope.from)
    .bind(scope.to)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(SentAgain { staged_rows, applications })
}
