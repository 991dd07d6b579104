//! 参数配置单据: the documented parameters. Unknown keys and invalid values are refused and
//! change nothing; every change is kept in the history.

use fapiao_store::params;
use serde::Serialize;

pub use fapiao_store::params::ParamValue;

use crate::{Actor, App, Result};

pub async fn list(app: &App) -> Result<Vec<ParamValue>> {
    Ok(params::list(&app.pool).await?)
}

pub async fn get(app: &App, ptype: &str, key: &str) -> Result<ParamValue> {
    Ok(params::get(&app.pool, ptype, key).await?)
}

/// Set a parameter; the value as stored (lists trimmed, de-duplicated and sorted).
pub async fn set(app: &App, actor: &Actor, ptype: &str, key: &str, value: &str) -> Result<String> {
    let stored = params::set(&app.pool, ptype, key, value).await?;
    tracing::info!(actor = %actor, ptype, key, value = %stored, "parameter set");
    Ok(stored)
}

#[derive(Clone, Debug, Serialize)]
pub struct Unset {
    /// Whether a value was stored.
    pub removed: bool,
    /// What is in effect now (the default, if any).
    pub value: Option<String>,
}

pub async fn unset(app: &App, actor: &Actor, ptype: &str, key: &str) -> Result<Unset> {
    let removed = params::unset(&app.pool, ptype, key).await?;
    tracing::info!(actor = %actor, ptype, key, removed, "parameter unset");
    Ok(Unset { removed, value: params::value(&app.pool, ptype, key).await? })
}
