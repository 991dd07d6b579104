//! 全票池 (the input side): pool invoices with filters, one whole with its lines, the documents
//! using it and its operation log; a document (单据) uses part of an invoice, or lets go of all
//! it used when it is deleted.

use rust_decimal::Decimal;

pub use fapiao_store::pool::{InvoiceRef, PoolDetail, PoolFilter, PoolRow, PoolUse, VerifiedLineIn};

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

/// 查验 a pooled invoice again — the status query to the channel: what the bureau says now
/// (status and lines) replaces what is stored, deductibility is decided again, and the pool log
/// says so. Used by `fapiao pool refresh` and by deal-task for the sync scheme's switch
/// 进项状态更新的发票是否查验入库.
pub async fn verify_again(
    app: &App,
    actor: &Actor,
    invoice: InvoiceRef<'_>,
    source: &str,
) -> Result<PoolDetail> {
    let before =
        fapiao_store::pool::show(&app.pool, invoice.invoice_num, invoice.invoice_code, invoice.tax_no)
            .await?;
    let i = &before.invoice;
    let total = fapiao_schemas::Money::round(i.total);
    let verified = app
        .channel
        .verify(&i.invoice_code, &i.invoice_num, i.invoice_date, total)
        .await
        .map_err(crate::Error::Channel)?;
    let lines: Vec<VerifiedLineIn> = verified
        .lines
        .iter()
        .map(|l| VerifiedLineIn {
            goods_name: l.goods_name.clone(),
            tax_rate: l.tax_rate,
            amount: l.amount.value(),
            tax: l.tax_amount.value(),
            business_type: l.business_type.clone(),
        })
        .collect();
    tracing::info!(actor = %actor, invoice_num = %i.invoice_num, status = %verified.header.status, "pool invoice verified again");
    let mut tx = app.pool.begin().await?;
    let key = (i.tax_no.as_str(), i.invoice_code.as_str(), i.invoice_num.as_str());
    fapiao_store::pool::reverified(&mut tx, key, &verified.header.status, &lines, source).await?;
    tx.commit().await?;
    Ok(fapiao_store::pool::show(&app.pool, &i.invoice_num, Some(&i.invoice_code), Some(&i.tax_no)).await?)
}
