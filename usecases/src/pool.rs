//! 全票池 (the input side): pool invoices with filters, one whole with its lines, the documents
//! using it and its operation log; a document (单据) uses part of an invoice, or lets go of all
//! it used when it is deleted.

use std::collections::HashMap;
use std::path::PathBuf;

use fapiao_channel::wire::InputFileRequest;
pub use fapiao_invoicing::files::DownloadReport;
use fapiao_invoicing::files::Fetched;
use fapiao_schemas::invoice_file::{FileFormat, NameTemplate};
use fapiao_schemas::params::{FILE_TYPE, RIM_FILETYPE_SELECTED};
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

/// Pool invoice files to fetch.
#[derive(Clone, Debug)]
pub struct DownloadRequest {
    pub numbers: Vec<String>,
    /// The receiving enterprise, where a number alone is ambiguous.
    pub tax_no: Option<String>,
    /// `None`: the configured default (`rim_filetype_selected/file_type`).
    pub format: Option<FileFormat>,
    pub name: NameTemplate,
    /// A folder, or a `.zip` file.
    pub out: PathBuf,
}

/// 进项全票池 下载: each invoice's file from the channel, named by the template, into a folder or
/// a zip. An unknown number refuses the whole request before anything is fetched; a file the
/// channel cannot give is reported with its invoice, the others are written.
pub async fn download(app: &App, actor: &Actor, request: &DownloadRequest) -> Result<DownloadReport> {
    let format = match request.format {
        Some(f) => f,
        None => fapiao_store::params::value(&app.pool, RIM_FILETYPE_SELECTED, FILE_TYPE)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(FileFormat::Pdf),
    };
    fapiao_invoicing::files::check_target(&request.out)?;
    let mut details = Vec::new();
    for n in &request.numbers {
        details.push(fapiao_store::pool::show(&app.pool, n, None, request.tax_no.as_deref()).await?);
    }
    let mut fetched = Fetched::default();
    for d in &details {
        let i = &d.invoice;
        let ask = InputFileRequest {
            invoice_code: i.invoice_code.clone(),
            invoice_num: i.invoice_num.clone(),
            taxpayer_id: i.tax_no.clone(),
            file_type: format.as_str().into(),
        };
        let bytes = match app.channel.input_file(&ask).await {
            Ok(f) => app.channel.file(&f.file_url).await,
            Err(e) => Err(e),
        };
        fetched.add(&i.invoice_num, &request.name.render(&template_values(d)), format, bytes);
    }
    let written = fapiao_invoicing::files::write_out(&request.out, &fetched.files)?;
    let failed = fetched.failed;
    tracing::info!(actor = %actor, out = %request.out.display(), written = written.len(), failed = failed.len(), "pool invoice files downloaded");
    Ok(DownloadReport { format, out: request.out.clone(), written, failed })
}

fn template_values(d: &PoolDetail) -> HashMap<&'static str, String> {
    let i = &d.invoice;
    let documents: Vec<&str> =
        d.uses.iter().filter(|u| u.released_at.is_none()).map(|u| u.document_no.as_str()).collect();
    HashMap::from([
        ("发票号码", i.invoice_num.clone()),
        ("发票代码", i.invoice_code.clone()),
        ("开票日期", i.invoice_date.to_string()),
        ("购方名称", i.buyer_name.clone()),
        ("购方税号", i.tax_no.clone()),
        ("销方税号", i.seller_tax_no.clone()),
        ("价税合计", i.total.to_string()),
        ("单据编号", documents.join(",")),
    ])
}
