//! Exports for auditors (SPEC.md "Reconciliation export"): one zip per period with the ledgers as
//! xlsx and CSV, the summary, the checks and a manifest of SHA-256s.

use std::path::PathBuf;

use chrono::NaiveDate;
use fapiao_export::ExportOptions;
use fapiao_schemas::TaxNo;
use tracing::Instrument;

pub use fapiao_export::{ExportReport, Manifest};

use crate::{Actor, App, Result};

#[derive(Clone, Debug)]
pub struct ReconciliationRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only these sellers (pool and downloads: our enterprise as buyer); empty: all.
    pub tax_nos: Vec<TaxNo>,
    /// The zip to write (written beside and renamed into place when complete).
    pub out: PathBuf,
}

/// Refuse a target the export could not write before any work is done.
pub fn check_out_path(request: &ReconciliationRequest) -> Result<()> {
    Ok(fapiao_export::check_out_path(&request.out)?)
}

/// The reconciliation export of a period; `progress` hears each step's name as it starts.
pub async fn reconciliation(
    app: &App,
    actor: &Actor,
    request: ReconciliationRequest,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ExportReport> {
    check_out_path(&request)?;
    for tax_no in &request.tax_nos {
        crate::tenant::require_enterprise(app, tax_no).await?;
    }
    let span = tracing::info_span!("export", actor = %actor, from = %request.from, to = %request.to);
    let options = ExportOptions {
        from: request.from,
        to: request.to,
        tax_nos: request.tax_nos,
        out: request.out,
        time_zone: app.settings.time_zone(),
    };
    Ok(fapiao_export::export(&app.pool, &options, progress).instrument(span).await?)
}
