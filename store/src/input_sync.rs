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

/// 数据同步日志 (seed 004): a download application per enterprise and day with where it stands,
/// and what became of its staged invoices — how many in each state, the last reason one failed.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct SyncLogRow {
    pub tax_no: String,
    pub invoice_date: NaiveDate,
    /// open, applied, done, failed.
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Staged invoices by state (pending, done_unverified, done_verified, failed).
    pub pending: i64,
    pub done: i64,
    pub failed: i64,
    /// The most recent reason a staged invoice of this day failed or was put off.
    pub last_row_error: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The sync log within `scope`, newest day first, at most `limit` days.
pub async fn log(pool: &PgPool, scope: &Scope, limit: i64) -> Result<Vec<SyncLogRow>, StoreError> {
    let tax_no = scope.tax_no.as_ref().map(TaxNo::as_str);
    Ok(sqlx::query_as(
        "SELECT a.tax_no, a.invoice_date, a.state, a.attempts, a.last_error,
                count(s.id) FILTER (WHERE s.state = 'pending') AS pending,
                count(s.id) FILTER (WHERE s.state IN ('done_unverified', 'done_verified')) AS done,
                count(s.id) FILTER (WHERE s.state = 'failed') AS failed,
                (array_agg(s.reason ORDER BY s.id DESC) FILTER (WHERE s.reason IS NOT NULL))[1] AS last_row_error,
                a.updated_at
           FROM download_application a
           LEFT JOIN download_log l ON l.application_id = a.id
           LEFT JOIN download_staging s ON s.download_log_id = l.id
          WHERE ($1::text IS NULL OR a.tax_no = $1)
            AND ($2::date IS NULL OR a.invoice_date >= $2) AND ($3::date IS NULL OR a.invoice_date <= $3)
          GROUP BY a.id ORDER BY a.invoice_date DESC, a.tax_no LIMIT $4",
    )
    .bind(tax_no)
    .bind(scope.from)
    .bind(scope.to)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
