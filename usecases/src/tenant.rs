//! The tenant's foundation: its enterprises (企业信息) and their sync schemes (全量发票数据同步
//! 设置), the documented updateDownInit that makes a scheme start again, and sending the sync's
//! given-up work through again.

use chrono::NaiveDate;
use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::{Enterprise, SyncScheme};
use fapiao_store::{enterprises, input_sync, schemes};

use crate::{Actor, App, Error, Result};

pub use fapiao_store::input_sync::{Scope as SyncScope, SentAgain, SyncLogRow};

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

/// What `enterprise set` changes; `None` keeps the field.
#[derive(Clone, Debug, Default)]
pub struct EnterpriseChange {
    pub name: Option<String>,
    pub taxpayer_kind: Option<fapiao_schemas::enterprise::TaxpayerKind>,
    pub etax_account: Option<String>,
    pub channel: Option<fapiao_schemas::enterprise::Channel>,
}

/// Change an enterprise's name, taxpayer kind, e-tax account or receiving channel (乐企/电子税局);
/// the enterprise as it is now.
pub async fn change_enterprise(
    app: &App,
    actor: &Actor,
    tax_no: &TaxNo,
    change: EnterpriseChange,
) -> Result<Enterprise> {
    require_enterprise(app, tax_no).await?;
    let mut e = enterprises::get(&app.pool, tax_no).await?.expect("checked above");
    if let Some(name) = change.name {
        if name.trim().is_empty() {
            return Err(Error::bad_input("USAGE", "--name is empty"));
        }
        e.name = name.trim().to_string();
    }
    if let Some(account) = change.etax_account {
        if account.trim().is_empty() {
            return Err(Error::bad_input("USAGE", "--etax-account is empty"));
        }
        e.etax_account = account.trim().to_string();
    }
    e.taxpayer_kind = change.taxpayer_kind.unwrap_or(e.taxpayer_kind);
    e.channel = change.channel.unwrap_or(e.channel);
    enterprises::upsert(&app.pool, &e).await?;
    tracing::info!(actor = %actor, tax_no = %e.tax_no, kind = ?e.taxpayer_kind, channel = ?e.channel, "enterprise changed");
    Ok(e)
}

/// `tax_no` must be one of the tenant's enterprises: a filter on an unknown one would find
/// nothing and look like a quiet month, so it is refused, naming it.
pub async fn require_enterprise(app: &App, tax_no: &TaxNo) -> Result<()> {
    if enterprises::get(&app.pool, tax_no).await?.is_none() {
        return Err(Error::NotFound {
            code: "ENTERPRISE_NOT_FOUND",
            message: format!("企业{}不存在（fapiao enterprise list） (no such enterprise)", tax_no.as_str()),
        });
    }
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

/// The scheme's switch 进项状态更新的发票是否查验入库.
pub async fn set_verify_changed(app: &App, actor: &Actor, code: &str, on: bool) -> Result<()> {
    schemes::set_verify_changed(&app.pool, code, on).await?;
    tracing::info!(actor = %actor, code, on, "sync scheme: verify changed invoices again");
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

/// `fapiao sync retry`: staged invoices whose verification was given up and failed download
/// applications go back to the jobs (deal-task, download-apply), their attempts from zero.
pub async fn retry_sync(
    app: &App,
    actor: &Actor,
    scope: &input_sync::Scope,
) -> Result<input_sync::SentAgain> {
    if let (Some(from), Some(to)) = (scope.from, scope.to)
        && from > to
    {
        return Err(Error::bad_input("USAGE", format!("--from {from} is after --to {to}")));
    }
    if let Some(tax_no) = &scope.tax_no {
        require_enterprise(app, tax_no).await?;
    }
    let sent = input_sync::send_again(&app.pool, scope).await?;
    tracing::info!(actor = %actor, staged_rows = sent.staged_rows, applications = sent.applications, "sync work sent again");
    Ok(sent)
}

/// 开票人 (required), 收款人 and 复核人 for an enterprise's invoices from now on.
pub async fn set_issuers(
    app: &App,
    actor: &Actor,
    tax_no: &TaxNo,
    issuers: &enterprises::Issuers,
) -> Result<()> {
    require_enterprise(app, tax_no).await?;
    let clean =
        |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let issuers = enterprises::Issuers {
        drawer: issuers.drawer.trim().to_string(),
        payee: clean(&issuers.payee),
        reviewer: clean(&issuers.reviewer),
    };
    if issuers.drawer.is_empty() {
        return Err(Error::bad_input("USAGE", "--drawer (开票人) is empty"));
    }
    enterprises::set_issuers(&app.pool, tax_no, &issuers).await?;
    tracing::info!(actor = %actor, tax_no = %tax_no.as_str(), "issuers set");
    Ok(())
}

/// `fapiao sync log`: each download application (enterprise, day) with its state and last error,
/// and its staged invoices by state with the last reason one failed.
pub async fn sync_log(app: &App, scope: &input_sync::Scope, limit: i64) -> Result<Vec<SyncLogRow>> {
    if let Some(tax_no) = &scope.tax_no {
        require_enterprise(app, tax_no).await?;
    }
    Ok(input_sync::log(&app.pool, scope, limit).await?)
}
