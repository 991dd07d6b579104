//! The tenant's foundation: its enterprises (企业信息) and their sync schemes (全量发票数据同步
//! 设置), and the documented updateDownInit that makes a scheme start again.

use chrono::NaiveDate;
use fapiao_schemas::enterprise::{Enterprise, SyncScheme};
use fapiao_store::{enterprises, schemes};

use crate::{Actor, App, Error, Result};

pub async fn enterprises(app: &App) -> Result<Vec<Enterprise>> {
    Ok(enterprises::list(&app.pool).await?)
}

/// Add an enterprise; its tax number is already checked (a `TaxNo`), its name must not be empty.
pub async fn add_enterprise(app: &App, actor: &Actor, enterprise: &Enterprise) -> Result<()> {
    if enterprise.name.trim().is_empty() {
        return Err(Error::bad_input("USAGE", "--name is empty"));
    }
    enterprises::insert(&app.pool, enterprise).await?;
    tracing::info!(actor = %actor, tax_no = %enterprise.tax_no, "enterprise added");
    Ok(())
}

pub async fn schemes(app: &App) -> Result<Vec<SyncScheme>> {
    Ok(schemes::list(&app.pool).await?)
}

/// Add a sync scheme for an existing enterprise.
pub async fn add_scheme(app: &App, actor: &Actor, scheme: &SyncScheme) -> Result<()> {
    schemes::insert(&app.pool, scheme).await?;
    tracing::info!(actor = %actor, code = %scheme.code, "sync scheme added");
    Ok(())
}

/// Insert or update enterprises and their schemes together, in one transaction.
pub async fn upsert(app: &App, actor: &Actor, list: &[Enterprise], schemes: &[SyncScheme]) -> Result<()> {
    let mut tx = app.pool.begin().await.map_err(fapiao_store::StoreError::from)?;
    for e in list {
        enterprises::upsert(&mut *tx, e).await?;
    }
    for s in schemes {
        schemes::upsert(&mut *tx, s).await?;
    }
    tx.commit().await.map_err(fapiao_store::StoreError::from)?;
    tracing::info!(actor = %actor, enterprises = list.len(), schemes = schemes.len(), "tenant upserted");
    Ok(())
}

/// updateDownInit: the scheme starts again at `start`; apply-cache backfills every day from it to
/// yesterday, a bounded chunk per run.
pub async fn reset_start(app: &App, actor: &Actor, code: &str, start: NaiveDate) -> Result<()> {
    // A code that names nothing is an argument error (exit 2), as for an unknown job name.
    schemes::reset_start(&app.pool, code, start).await.map_err(|e| match e {
        fapiao_store::StoreError::NotFound(message) => Error::bad_input("USAGE", message),
        other => other.into(),
    })?;
    tracing::info!(actor = %actor, code, %start, "sync scheme start reset");
    Ok(())
}
