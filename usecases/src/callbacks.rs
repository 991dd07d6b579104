//! 按单回调: the callbacks to each bill's ERP — deliver what is due, start failed ones again.

use fapiao_invoicing::callbacks::{self, CallbackRow, DeliveryReport};
use serde::Serialize;

use crate::{Actor, App, Result};

/// Deliver every callback that is due, once each.
pub async fn deliver(app: &App, actor: &Actor) -> Result<DeliveryReport> {
    tracing::debug!(actor = %actor, "deliver callbacks");
    Ok(callbacks::deliver(&app.invoicing()).await?)
}

pub async fn list(app: &App, failed_only: bool) -> Result<Vec<CallbackRow>> {
    Ok(callbacks::list(&app.invoicing(), failed_only).await?)
}

#[derive(Clone, Debug, Serialize)]
pub struct RetryReport {
    pub restarted: u64,
    pub delivery: DeliveryReport,
}

/// Start the given failed callbacks (all failed ones when `ids` is empty) again and deliver.
pub async fn retry(app: &App, actor: &Actor, ids: &[i64]) -> Result<RetryReport> {
    tracing::info!(actor = %actor, ?ids, "retry callbacks");
    let inv = app.invoicing();
    let restarted = callbacks::retry(&inv, ids).await?;
    Ok(RetryReport { restarted, delivery: callbacks::deliver(&inv).await? })
}

/// The seller of each of these bills (for a console user's scope): bill number → tax number.
pub async fn sellers(app: &App, bills: &[String]) -> Result<std::collections::HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT bill_no, seller_tax_no FROM application WHERE bill_no = ANY($1)")
            .bind(bills)
            .fetch_all(&app.pool)
            .await?;
    Ok(rows.into_iter().collect())
}
