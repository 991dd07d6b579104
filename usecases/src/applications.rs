//! 开票申请单: applications with their state and open lines; withdraw one never pushed or returned.

use fapiao_invoicing::applications;

pub use fapiao_invoicing::applications::{ApplicationFilter, ApplicationRow};

use crate::{Actor, App, Result};

/// Applications, optionally in one state (received, pushed, partially_issued, issued, withdrawn,
/// returned).
pub async fn list(app: &App, state: Option<&str>) -> Result<Vec<ApplicationRow>> {
    Ok(applications::list(&app.invoicing(), state).await?)
}

/// A page of applications matching `filter` (in bill number order).
pub async fn page(app: &App, filter: &ApplicationFilter) -> Result<Vec<ApplicationRow>> {
    Ok(applications::page(&app.invoicing(), filter).await?)
}

/// The bills "all matching" the filter would push and issue (not issued, not withdrawn).
pub async fn matching_bills(app: &App, filter: &ApplicationFilter) -> Result<Vec<String>> {
    Ok(applications::matching_bills(&app.invoicing(), filter).await?)
}

/// 撤回: only an application that was never pushed.
pub async fn withdraw(app: &App, actor: &Actor, bill_no: &str) -> Result<()> {
    tracing::info!(actor = %actor, bill_no, "withdraw application");
    Ok(applications::withdraw(&app.invoicing(), bill_no).await?)
}
