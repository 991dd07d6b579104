//! 已开发票: search issued invoices, see one whole, download their files under a name template,
//! send one to its buyer (交付), void one (作废), and a bill's invoices (开票申请单发票查询).

use fapiao_invoicing::{files, issued};

pub use fapiao_invoicing::files::{DownloadReport, DownloadRequest, NotWritten, Pick, Recipient, Written};
pub use fapiao_invoicing::issued::{Colour, DeliveryRow, Detail, Filter, IssuedRow};
pub use fapiao_invoicing::void::VoidOutcome;

use crate::{Actor, App, Result};

pub async fn list(app: &App, filter: &Filter) -> Result<Vec<IssuedRow>> {
    Ok(issued::list(&app.invoicing(), filter).await?)
}

pub async fn show(app: &App, invoice_num: &str, invoice_code: Option<&str>) -> Result<Detail> {
    Ok(issued::show(&app.invoicing(), invoice_num, invoice_code).await?)
}

/// The invoices of one bill, blue and red.
pub async fn of_bill(app: &App, bill_no: &str) -> Result<Vec<IssuedRow>> {
    Ok(issued::of_bill(&app.invoicing(), bill_no).await?)
}

/// Fetch the picked invoices' files into a folder or a zip; one that fails is reported and the
/// others are still written.
pub async fn download(app: &App, actor: &Actor, request: &DownloadRequest) -> Result<DownloadReport> {
    let report = files::download(&app.invoicing(), request).await?;
    tracing::info!(actor = %actor, out = %report.out.display(), written = report.written.len(), failed = report.failed.len(), "invoice files downloaded");
    Ok(report)
}

/// 交付: the invoice to its buyer by e-mail or SMS.
pub async fn send(app: &App, actor: &Actor, invoice_num: &str, to: &Recipient) -> Result<DeliveryRow> {
    let done = files::send(&app.invoicing(), invoice_num, to).await?;
    // The address is the buyer's personal data: the log says how, not where.
    tracing::info!(actor = %actor, invoice_num, channel = %done.channel, "invoice delivered");
    Ok(done)
}

/// 作废: a paper tax-control invoice of the month without red invoices; 作废中 until the
/// channel has it, then 作废 (its bills' lines open again). Again on a 作废中 one: asks again.
pub async fn void(
    app: &App,
    actor: &Actor,
    invoice_num: &str,
    invoice_code: Option<&str>,
    reason: &str,
) -> Result<VoidOutcome> {
    tracing::info!(actor = %actor, invoice_num, "void invoice");
    Ok(fapiao_invoicing::void::void(&app.invoicing(), invoice_num, invoice_code, reason).await?)
}
