//! What the console's dashboard shows besides the jobs: pending invoices by state, failed
//! callbacks, the last imports — each limited to the viewer's enterprises. And the health check.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::FromRow;

use crate::{App, Result};

/// Whether the database answers.
pub async fn healthy(app: &App) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&app.pool).await.is_ok()
}

#[derive(Clone, Debug, Serialize, FromRow)]
pub struct PendingByState {
    pub status: String,
    pub invoices: i64,
    /// 价税合计 of those invoices, exact.
    pub total: Decimal,
}

#[derive(Clone, Debug, Serialize, FromRow)]
pub struct LastImport {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub accepted: i32,
    pub rejected: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dashboard {
    pub pending: Vec<PendingByState>,
    pub failed_callbacks: i64,
    /// Import batches carry no enterprise: shown only to viewers who see all of them.
    pub last_imports: Vec<LastImport>,
}

/// `scope`: the viewer's enterprises, `None` for all.
pub async fn dashboard(app: &App, scope: Option<&[String]>) -> Result<Dashboard> {
    let pending = sqlx::query_as(
        "SELECT status, count(*) AS invoices, coalesce(sum(total), 0) AS total FROM pending_invoice
         WHERE deleted_at IS NULL AND ($1::text[] IS NULL OR seller_tax_no = ANY($1))
         GROUP BY status ORDER BY status",
    )
    .bind(scope)
    .fetch_all(&app.pool)
    .await?;
    let failed_callbacks = sqlx::query_scalar(
        "SELECT count(*) FROM callback c JOIN application a USING (bill_no)
         WHERE c.state = 'failed' AND ($1::text[] IS NULL OR a.seller_tax_no = ANY($1))",
    )
    .bind(scope)
    .fetch_one(&app.pool)
    .await?;
    let last_imports = if scope.is_none() {
        sqlx::query_as(
            "SELECT id, kind, file_name, accepted, rejected, created_at FROM import_batch ORDER BY id DESC LIMIT 5",
        )
        .fetch_all(&app.pool)
        .await?
    } else {
        Vec::new()
    };
    Ok(Dashboard { pending, failed_callbacks, last_imports })
}
