//! 批量导入: import a workbook of applications, pool invoices or a red-flush list (SPEC.md
//! "Excel import"). All or nothing unless `accept_valid`; a file lands once.

use std::path::{Path, PathBuf};

use fapiao_pipelines::import::{self, ImportOptions, ReadLimits};
use tracing::Instrument;

pub use fapiao_pipelines::import::{BatchRow, ImportKind, Problem, Summary};

use crate::{Actor, App, Result};

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    /// What the file holds (its template: schemas/templates/KIND.toml).
    pub kind: ImportKind,
    pub sheet: Option<String>,
    /// Validate and report, land nothing.
    pub dry_run: bool,
    /// Land the valid bills (rows), reject the rest; the default is all or nothing.
    pub accept_valid: bool,
    /// Write the xlsx error report here: the original columns plus 行号 and 错误原因.
    pub report: Option<PathBuf>,
    /// The enterprises the importing user acts for (a scoped console user); `None`: all. An
    /// application whose seller lies outside is refused row by row (`SELLER_NOT_IN_SCOPE`).
    pub scope: Option<Vec<String>>,
}

impl ImportRequest {
    /// All or nothing, no report: the defaults of `fapiao import FILE --kind KIND`.
    pub fn new(kind: ImportKind) -> ImportRequest {
        ImportRequest { kind, sheet: None, dry_run: false, accept_valid: false, report: None, scope: None }
    }
}

/// Import `file`; `progress` hears the number of rows read so far. Pool rows are verified
/// through the app's channel unless `rim_config_need_check = 0`.
pub async fn file(
    app: &App,
    actor: &Actor,
    file: &Path,
    request: ImportRequest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary> {
    let span = tracing::info_span!("import", actor = %actor, kind = %request.kind, file = %file.display());
    let options = ImportOptions {
        kind: request.kind,
        sheet: request.sheet,
        dry_run: request.dry_run,
        accept_valid: request.accept_valid,
        report: request.report,
        channel: Some(app.channel.clone()),
        limits: ReadLimits::from_settings(&app.settings.import),
        tenant_id: app.settings.channel.tenant_id.clone(),
        scope: request.scope,
    };
    Ok(import::import(&app.pool, file, &options, progress).instrument(span).await?)
}

/// Imported batches, newest first.
pub async fn history(app: &App, limit: i64) -> Result<Vec<BatchRow>> {
    Ok(import::history(&app.pool, limit).await?)
}
