//! 参数配置单据: the documented parameters. Unknown keys and invalid values are refused and
//! change nothing; every change is kept in the history.

use fapiao_store::params;
use serde::Serialize;

pub use fapiao_store::params::ParamValue;

use crate::audit::{self, Entry, Outcome};
use crate::{Actor, App, Error, Result};

pub async fn list(app: &App) -> Result<Vec<ParamValue>> {
    Ok(params::list(&app.pool).await?)
}

pub async fn get(app: &App, ptype: &str, key: &str) -> Result<ParamValue> {
    Ok(params::get(&app.pool, ptype, key).await?)
}

/// Set a parameter; the value as stored (lists trimmed, de-duplicated and sorted).
pub async fn set(app: &App, actor: &Actor, ptype: &str, key: &str, value: &str) -> Result<String> {
    let result = params::set(&app.pool, ptype, key, value).await.map_err(Error::from);
    let target = format!("{ptype}.{key}");
    let detail = result.as_ref().map(|v| format!("= {v}")).unwrap_or_default();
    let e = Entry {
        actor,
        action: "param.set",
        target: &target,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &[],
    };
    audit::record_result(&app.pool, e, &result, Error::kind).await;
    let stored = result?;
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
    let result = params::unset(&app.pool, ptype, key).await.map_err(Error::from);
    let target = format!("{ptype}.{key}");
    let e = Entry {
        actor,
        action: "param.unset",
        target: &target,
        outcome: Outcome::Ok,
        detail: "",
        tax_nos: &[],
    };
    audit::record_result(&app.pool, e, &result, Error::kind).await;
    let removed = result?;
    tracing::info!(actor = %actor, ptype, key, removed, "parameter unset");
    Ok(Unset { removed, value: params::value(&app.pool, ptype, key).await? })
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Change {
    pub id: i64,
    #[serde(rename = "type")]
    pub ptype: String,
    pub key: String,
    pub old_value: Option<String>,
    /// `None`: unset (back to the default).
    pub new_value: Option<String>,
    pub changed_at: chrono::DateTime<chrono::Utc>,
}

/// The latest changes, newest first (who made them is in the audit log).
pub async fn history(app: &App, limit: i64) -> Result<Vec<Change>> {
    Ok(sqlx::query_as(
        "SELECT id, type AS ptype, key, old_value, new_value, changed_at FROM sys_param_history ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&app.pool)
    .await?)
}
