//! Invoice files and delivery: fetch issued invoices' files from the channel's file URLs, name
//! them by a template, write them into a folder or one zip; send an invoice to its buyer (交付).
//! A file that cannot be fetched is reported with its invoice and the others are still written.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use fapiao_channel::wire::Deliver;
use fapiao_schemas::invoice_file::{FileFormat, NameTemplate, UniqueNames};
use fapiao_schemas::params::{FILE_TYPE, SIM_CHOOSE_INVOICE_TYPE};
use serde::Serialize;

use crate::issued::{self, DeliveryRow, Filter, IssuedRow};
use crate::{Invoicing, InvoicingError, Result};

/// Which invoices.
#[derive(Clone, Debug)]
pub enum Pick {
    Numbers(Vec<String>),
    Bills(Vec<String>),
    Dates { from: NaiveDate, to: NaiveDate },
}

#[derive(Clone, Debug)]
pub struct DownloadRequest {
    pub pick: Pick,
    /// `None`: the configured default (`sim_choose_invoice_type/file_type`).
    pub format: Option<FileFormat>,
    pub name: NameTemplate,
    /// A folder, or a `.zip` file (written beside and renamed into place when complete).
    pub out: PathBuf,
    /// Only these sellers (a user's tenant scope); `None`: all.
    pub scope: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Written {
    pub invoice_num: String,
    pub file: String,
    pub bytes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotWritten {
    pub invoice_num: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DownloadReport {
    pub format: FileFormat,
    pub out: PathBuf,
    pub written: Vec<Written>,
    pub failed: Vec<NotWritten>,
}

pub async fn download(inv: &Invoicing, request: &DownloadRequest) -> Result<DownloadReport> {
    let format = match request.format {
        Some(f) => f,
        None => default_format(inv).await?,
    };
    check_target(&request.out)?;
    let rows = invoices(inv, &request.pick, request.scope.as_ref()).await?;
    let mut fetched = Fetched::default();
    for row in &rows {
        let url = match format {
            FileFormat::Pdf => &row.invoice_file_url,
            FileFormat::Ofd => &row.ofd_file_url,
            FileFormat::Xml => &row.xml_file_url,
        };
        let Some(url) = url.as_deref().filter(|u| !u.is_empty()) else {
            fetched.failed.push(NotWritten {
                invoice_num: row.invoice_num.clone(),
                code: "NO_FILE_URL",
                message: format!("发票{}没有{format}文件地址", row.invoice_num),
            });
            continue;
        };
        let stem = request.name.render(&template_values(row));
        fetched.add(&row.invoice_num, &stem, format, inv.channel.file(url).await);
    }
    let written = write_out(&request.out, &fetched.files)?;
    Ok(DownloadReport { format, out: request.out.clone(), written, failed: fetched.failed })
}

async fn default_format(inv: &Invoicing) -> Result<FileFormat> {
    let value = fapiao_store::params::value(&inv.pool, SIM_CHOOSE_INVOICE_TYPE, FILE_TYPE)
        .await
        .map_err(InvoicingError::Param)?;
    Ok(value.as_deref().unwrap_or("pdf").parse().unwrap_or(FileFormat::Pdf))
}

/// The files of a download as they are fetched, each named once from its template, and the
/// invoices whose file could not be had.
#[derive(Default)]
pub struct Fetched {
    names: UniqueNames,
    /// (invoice number, file name, bytes)
    pub files: Vec<(String, String, Vec<u8>)>,
    pub failed: Vec<NotWritten>,
}

impl Fetched {
    pub fn add(
        &mut self,
        invoice_num: &str,
        stem: &str,
        format: FileFormat,
        bytes: std::result::Result<Vec<u8>, fapiao_channel::ChannelError>,
    ) {
        match bytes {
            Ok(bytes) => {
                let file = self.names.take(stem, format);
                self.files.push((invoice_num.to_string(), file, bytes));
            }
            Err(e) => self.failed.push(NotWritten {
                invoice_num: invoice_num.to_string(),
                code: "FILE_DOWNLOAD_FAILED",
                message: format!("发票{invoice_num}的{format}文件下载失败：{e}"),
            }),
        }
    }
}

fn is_zip(out: &Path) -> bool {
    out.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// A refused target changes nothing: its folder must exist before anything is fetched.
pub fn check_target(out: &Path) -> Result<()> {
    let zip = is_zip(out);
    let folder = if zip { out.parent().filter(|p| !p.as_os_str().is_empty()) } else { out.parent() };
    match folder {
        Some(p) if !p.as_os_str().is_empty() && !p.is_dir() => Err(InvoicingError::Invalid {
            code: "OUT_NOT_WRITABLE",
            message: format!("folder {} does not exist", p.display()),
        }),
        _ => Ok(()),
    }
}

/// The invoices picked; a number or bill that names nothing refuses the whole request.
async fn invoices(inv: &Invoicing, pick: &Pick, scope: Option<&Vec<String>>) -> Result<Vec<IssuedRow>> {
    let in_scope = |r: &IssuedRow| scope.is_none_or(|s| s.contains(&r.seller_tax_no));
    let mut rows = Vec::new();
    match pick {
        Pick::Numbers(numbers) => {
            for n in numbers {
                let row = issued::find(inv, n, None).await?;
                if !in_scope(&row) {
                    return Err(InvoicingError::not_found("INVOICE_NOT_FOUND", format!("发票{n}不存在")));
                }
                rows.push(row);
            }
        }
        Pick::Bills(bills) => {
            for b in bills {
                rows.extend(issued::of_bill(inv, b).await?.into_iter().filter(|r| in_scope(r)));
            }
        }
        Pick::Dates { from, to } => {
            let filter = Filter {
                from: Some(*from),
                to: Some(*to),
                scope: scope.cloned(),
                limit: i64::MAX,
                ..Filter::default()
            };
            rows = issued::list(inv, &filter).await?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    rows.retain(|r| seen.insert(r.id));
    Ok(rows)
}

fn template_values(row: &IssuedRow) -> HashMap<&'static str, String> {
    HashMap::from([
        ("发票号码", row.invoice_num.clone()),
        ("发票代码", row.invoice_code.clone()),
        ("开票日期", row.invoice_date.to_string()),
        ("购方名称", row.buyer_name.clone()),
        ("购方税号", row.buyer_tax_no.clone().unwrap_or_default()),
        ("销方税号", row.seller_tax_no.clone()),
        ("价税合计", row.total.to_string()),
        ("单据编号", row.bills.join(",")),
    ])
}

/// Fetched files `(invoice number, file name, bytes)` into a folder, or a `.zip` (written beside
/// and renamed into place when complete).
pub fn write_out(out: &Path, files: &[(String, String, Vec<u8>)]) -> Result<Vec<Written>> {
    if is_zip(out) { write_zip(out, files) } else { write_folder(out, files) }.map_err(|e| {
        InvoicingError::Invalid { code: "OUT_NOT_WRITABLE", message: format!("{}: {e}", out.display()) }
    })
}

fn write_folder(dir: &Path, files: &[(String, String, Vec<u8>)]) -> std::io::Result<Vec<Written>> {
    std::fs::create_dir_all(dir)?;
    files
        .iter()
        .map(|(num, name, bytes)| {
            std::fs::write(dir.join(name), bytes)?;
            Ok(Written { invoice_num: num.clone(), file: name.clone(), bytes: bytes.len() })
        })
        .collect()
}

fn write_zip(out: &Path, files: &[(String, String, Vec<u8>)]) -> std::io::Result<Vec<Written>> {
    let part = out.with_extension("zip.part");
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(&part)?));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut written = Vec::with_capacity(files.len());
    for (num, name, bytes) in files {
        zip.start_file(name, options).map_err(std::io::Error::other)?;
        zip.write_all(bytes)?;
        written.push(Written { invoice_num: num.clone(), file: name.clone(), bytes: bytes.len() });
    }
    zip.finish().map_err(std::io::Error::other)?.flush()?;
    std::fs::rename(&part, out)?;
    Ok(written)
}

/// Where an invoice is sent.
#[derive(Clone, Debug)]
pub enum Recipient {
    Email(String),
    Phone(String),
}

/// 交付: send an issued invoice to its buyer through the channel, and remember it.
pub async fn send(inv: &Invoicing, invoice_num: &str, to: &Recipient) -> Result<DeliveryRow> {
    let row = issued::find(inv, invoice_num, None).await?;
    if row.status != fapiao_schemas::InvoiceStatus::Normal {
        return Err(InvoicingError::refused(
            "INVOICE_NOT_NORMAL",
            format!("发票{invoice_num}状态为{}，不能交付", row.status),
        ));
    }
    let (email, phone) = match to {
        Recipient::Email(e) => (e.trim().to_string(), String::new()),
        Recipient::Phone(p) => (String::new(), p.trim().to_string()),
    };
    let d = Deliver {
        seller_taxpayer_id: row.seller_tax_no.clone(),
        invoice_num: row.invoice_num.clone(),
        email,
        phone,
    };
    let done = inv.channel.deliver(&d).await.map_err(|e| match e.api_code() {
        Some(fapiao_channel::codes::error::BAD_REQUEST) => InvoicingError::Invalid {
            code: "DELIVERY_REFUSED",
            message: match &e {
                fapiao_channel::ChannelError::Api { message, .. } => message.clone(),
                other => other.to_string(),
            },
        },
        _ => InvoicingError::Channel(e),
    })?;
    let address = if done.channel == "email" { d.email } else { d.phone };
    Ok(sqlx::query_as(
        "INSERT INTO invoice_delivery (issued_invoice_id, channel, address) VALUES ($1, $2, $3)
         RETURNING channel, address, delivered_at",
    )
    .bind(row.id)
    .bind(&done.channel)
    .bind(&address)
    .fetch_one(&inv.pool)
    .await?)
}
