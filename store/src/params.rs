//! `sys_param`: reading and changing the documented parameters, with a history of changes.

use fapiao_schemas::params::{self, ParamSpec};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};

use crate::StoreError;

/// One parameter as operations see it: the stored value, or the default.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ParamValue {
    #[serde(rename = "type")]
    pub ptype: String,
    pub key: String,
    /// The value in effect (stored, else the default); `None`: unset with no default.
    pub value: Option<String>,
    /// `set` when stored, `default` otherwise.
    pub source: &'static str,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

fn effective(spec: &'static ParamSpec, key: &str, stored: Option<String>) -> ParamValue {
    ParamValue {
        ptype: spec.ptype.into(),
        key: key.into(),
        source: if stored.is_some() { "set" } else { "default" },
        value: stored.or(spec.default.map(str::to_string)),
        default: spec.default,
        doc: spec.doc,
    }
}

async fn stored(db: impl PgExecutor<'_>, ptype: &str, key: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT value FROM sys_param WHERE type = $1 AND key = $2")
        .bind(ptype)
        .bind(key)
        .fetch_optional(db)
        .await?)
}

/// The value in effect for a documented parameter (jobs call this at every run).
pub async fn get(db: impl PgExecutor<'_>, ptype: &str, key: &str) -> Result<ParamValue, StoreError> {
    let spec = params::lookup(ptype, key)?;
    Ok(effective(spec, key, stored(db, ptype, key).await?))
}

/// `get(..).value`, for callers that only need the text.
pub async fn value(db: impl PgExecutor<'_>, ptype: &str, key: &str) -> Result<Option<String>, StoreError> {
    Ok(get(db, ptype, key).await?.value)
}

/// Validate, normalize and store; an invalid value changes nothing. Returns the stored value.
pub async fn set(pool: &PgPool, ptype: &str, key: &str, value: &str) -> Result<String, StoreError> {
    let spec = params::lookup(ptype, key)?;
    let normalized = spec.normalize(key, value)?;
    let mut tx = pool.begin().await?;
    let old: Option<String> =
        sqlx::query_scalar("SELECT value FROM sys_param WHERE type = $1 AND key = $2 FOR UPDATE")
            .bind(ptype)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO sys_param (type, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (type, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(ptype)
    .bind(key)
    .bind(&normalized)
    .execute(&mut *tx)
    .await?;
    record_change(&mut tx, ptype, key, old.as_deref(), Some(&normalized)).await?;
    tx.commit().await?;
    Ok(normalized)
}

/// Remove the stored value (back to the default). Returns whether one was stored.
pub async fn unset(pool: &PgPool, ptype: &str, key: &str) -> Result<bool, StoreError> {
    params::lookup(ptype, key)?;
    let mut tx = pool.begin().await?;
    let old: Option<String> =
        sqlx::query_scalar("DELETE FROM sys_param WHERE type = $1 AND key = $2 RETURNING value")
            .bind(ptype)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
    if old.is_some() {
        record_change(&mut tx, ptype, key, old.as_deref(), None).await?;
    }
    tx.commit().await?;
    Ok(old.is_some())
}

async fn record_change(
    tx: &mut sqlx::PgConnection,
    ptype: &str,
    key: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO sys_param_history (type, key, old_value, new_value) VALUES ($1, $2, $3, $4)")
        .bind(ptype)
        .bind(key)
        .bind(old)
        .bind(new)
        .execute(tx)
        .await?;
    Ok(())
}

/// Every documented parameter with its value in effect, plus every stored key of a family
/// (e.g. each `sim_auto_issue_config` fragment), ordered by type and key.
pub async fn list(pool: &PgPool) -> Result<Vec<ParamValue>, StoreError> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT type, key, value FROM sys_param ORDER BY type, key").fetch_all(pool).await?;
    let mut out: Vec<ParamValue> = params::CATALOG
        .iter()
        .filter_map(|spec| {
            let key = spec.key?;
            let stored = rows.iter().find(|(t, k, _)| t == spec.ptype && k == key).map(|r| r.2.clone());
            Some(effective(spec, key, stored))
        })
        .collect();
    for (ptype, key, value) in rows {
        match params::lookup(&ptype, &key) {
            Ok(spec) if spec.key.is_none() => out.push(effective(spec, &key, Some(value))),
            Ok(_) => {} // listed above
            // A row no spec governs (inserted by hand): show it rather than hide it.
            Err(_) => out.push(ParamValue {
                ptype,
                key,
                value: Some(value),
                source: "set",
                default: None,
                doc: "(not a documented parameter)",
            }),
        }
    }
    out.sort_by(|a, b| (&a.ptype, &a.key).cmp(&(&b.ptype, &b.key)));
    Ok(out)
}

/// The stored values of a family (type with any key), e.g. the auto-reissue fragments.
pub async fn family(db: impl PgExecutor<'_>, ptype: &str) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as("SELECT key, value FROM sys_param WHERE type = $1 ORDER BY key")
        .bind(ptype)
        .fetch_all(db)
        .await?)
}
