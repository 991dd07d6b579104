//! 全票池 (the input side): pool invoices with filters, one whole with its lines, the documents
//! using it and its operation log; a document (单据) uses part of an invoice, or lets go of all
//! it used when it is deleted.

use rust_decimal::Decimal;

pub use fapiao_store::pool::{InvoiceRef, PoolDetail, PoolFilter, PoolRow, PoolUse};

use crate::{Actor, App, Result};

pub async fn list(app: &App, filter: &PoolFilter) -> Result<Vec<PoolRow>> {
    Ok(fapiao_store::pool::list(&app.pool, filter).await?)
}

pub async fn show(
    app: &App,
    invoice_num: &str,
    invoice_code: Option<&str>,
    tax_no: Option<&str>,
) -> Result<PoolDetail> {
    Ok(fapiao_store::pool::show(&app.pool, invoice_num, invoice_code, tax_no).await?)
}

/// A document uses `amount` of an invoice (refused verbatim beyond what is free).
pub async fn use_invoice(
    app: &App,
    actor: &Actor,
    invoice: InvoiceRef<'_>,
    document_no: &str,
    voucher_no: Option<&str>,
    amount: Decimal,
) -> Result<PoolUse> {
    tracing::info!(actor = %actor, invoice_num = invoice.invoice_num, document_no, %amount, "invoice used by a document");
    Ok(fapiao_store::pool::use_invoice(&app.pool, invoice, document_no, voucher_no, amount).await?)
}

/// The document was deleted: what it used is free again. How many uses ended.
pub async fn release_document(app: &App, actor: &Actor, document_no: &str) -> Result<u64> {
    tracing::info!(actor = %actor, document_no, "document released its invoices");
    Ok(fapiao_store::pool::release_document(&app.pool, document_no).await?)
}
