//! `fapiao pool list|show`: 全票池, the invoices the tenant's enterprises received.

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use fapiao_schemas::{InvoiceKind, TaxNo};
use fapiao_usecases::pool::{self, PoolFilter};
use fapiao_usecases::{Actor, App};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum PoolCommand {
    /// Pool invoices, newest first, with their deductibility (and why not).
    List(ListArgs),
    /// One invoice whole: header, verified lines, and its log (status changes after it entered).
    Show {
        number: String,
        #[arg(long)]
        code: Option<String>,
        /// The receiving enterprise, where two hold the same invoice.
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: Option<TaxNo>,
    },
    /// A document (单据) uses part of an invoice's amount, with its voucher number (凭证号).
    Use {
        number: String,
        #[arg(long)]
        document: String,
        /// The amount used (元, at most 2 decimals).
        #[arg(long)]
        amount: rust_decimal::Decimal,
        #[arg(long)]
        voucher: Option<String>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: Option<TaxNo>,
    },
    /// Ask the channel about the invoice now (查验 again): its status and lines replace the stored ones.
    Refresh {
        number: String,
        #[arg(long)]
        code: Option<String>,
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: Option<TaxNo>,
    },
    /// 下载: the invoices' files (pdf/ofd/xml) from the channel into a folder or one .zip.
    Download {
        /// Invoice numbers.
        #[arg(required = true)]
        numbers: Vec<String>,
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: Option<TaxNo>,
        /// pdf, ofd or xml; default: the parameter rim_filetype_selected/file_type.
        #[arg(long, value_parser = crate::invoices_cmd::parse_format)]
        format: Option<fapiao_schemas::invoice_file::FileFormat>,
        /// File names from the invoice's fields, e.g. '{开票日期}_{发票号码}'. Fields: 发票号码, 发票代码,
        /// 开票日期, 购方名称, 购方税号, 销方税号, 价税合计, 单据编号 (the documents using it).
        #[arg(long, default_value = fapiao_schemas::invoice_file::DEFAULT_TEMPLATE)]
        name: String,
        /// A folder (created if missing) or a FILE.zip.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// The document was deleted: every invoice amount it used is free again.
    Release {
        #[arg(long)]
        document: String,
    },
}

#[derive(Args)]
pub struct ListArgs {
    /// The receiving enterprise (购方税号).
    #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
    tax_no: Option<TaxNo>,
    /// Seller: part of the name, or the tax number.
    #[arg(long)]
    seller: Option<String>,
    /// yes or no.
    #[arg(long, value_parser = parse_yes_no)]
    deductible: Option<bool>,
    /// yes or no.
    #[arg(long, value_parser = parse_yes_no)]
    verified: Option<bool>,
    #[arg(long)]
    from: Option<NaiveDate>,
    #[arg(long)]
    to: Option<NaiveDate>,
    #[arg(long, value_parser = crate::invoices_cmd::parse_kind)]
    kind: Option<InvoiceKind>,
    /// The bureau's status: normal, void, red_flushed, partially_red_flushed, fully_red_flushed, abnormal, out_of_control.
    #[arg(long, value_parser = ["normal", "void", "red_flushed", "partially_red_flushed", "fully_red_flushed", "abnormal", "out_of_control"])]
    status: Option<String>,
    /// 已勾选 for deduction: yes or no.
    #[arg(long, value_parser = parse_yes_no)]
    selected: Option<bool>,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    limit: i64,
}

pub fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "是" | "true" | "1" => Ok(true),
        "no" | "否" | "false" | "0" => Ok(false),
        _ => Err(format!("{s:?}: yes or no")),
    }
}

pub async fn run(command: PoolCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        PoolCommand::List(a) => {
            let filter = PoolFilter {
                tax_no: a.tax_no.map(|t| t.as_str().to_string()),
                seller: a.seller,
                deductible: a.deductible,
                verified: a.verified,
                from: a.from,
                to: a.to,
                kind: a.kind,
                status: a.status,
                selected: a.selected,
                limit: a.limit,
            };
            let rows = pool::list(&app, &filter).await?;
            output::list(
                ctx.json,
                &rows,
                &[
                    "BUYER TAX NO",
                    "CODE",
                    "NUMBER",
                    "DATE",
                    "KIND",
                    "SELLER",
                    "TOTAL",
                    "STATUS",
                    "VERIFIED",
                    "DEDUCTIBLE",
                    "SELECTED",
                ],
                |r| {
                    vec![
                        r.tax_no.clone(),
                        r.invoice_code.clone(),
                        r.invoice_num.clone(),
                        r.invoice_date.to_string(),
                        r.invoice_kind.clone(),
                        r.seller_name.clone(),
                        r.total.to_string(),
                        r.status.clone(),
                        if r.verified { "是" } else { "否" }.into(),
                        match &r.deductible_reason {
                            None => "可抵扣".into(),
                            Some(why) => format!("否 {why}"),
                        },
                        match &r.select_period {
                            Some(p) => format!("{} {p}", r.select_state.label_zh()),
                            None => r.select_state.label_zh().into(),
                        },
                    ]
                },
            )?;
        }
        PoolCommand::Show { number, code, tax_no } => {
            let d = pool::show(&app, &number, code.as_deref(), tax_no.as_ref().map(TaxNo::as_str)).await?;
            if ctx.json {
                output::json(&d)?;
            } else {
                let i = &d.invoice;
                println!(
                    "{} {} {} {} total {} ({})",
                    i.invoice_code, i.invoice_num, i.invoice_date, i.invoice_kind, i.total, i.status
                );
                println!(
                    "seller {} {} → buyer {} {}",
                    i.seller_name, i.seller_tax_no, i.buyer_name, i.tax_no
                );
                println!(
                    "source {}, verified {}, {}",
                    i.source,
                    i.verified,
                    i.deductible_reason
                        .as_deref()
                        .map(|r| format!("not deductible: {r}"))
                        .unwrap_or("deductible".into())
                );
                for l in &d.lines {
                    println!("  {:>3} {} {} {} {}", l.seq, l.goods_name, l.tax_rate, l.amount, l.tax);
                }
                for u in &d.uses {
                    let released = u.released_at.map(|at| format!(" (released {at})")).unwrap_or_default();
                    let voucher = u.voucher_no.as_deref().unwrap_or("-");
                    println!("  used by {} voucher {voucher}: {}{released}", u.document_no, u.amount);
                }
                println!(
                    "available {}; {}{}",
                    d.available,
                    i.select_state.label_zh(),
                    i.select_period.as_deref().map(|p| format!(" 所属期{p}")).unwrap_or_default()
                );
                for e in &d.log {
                    println!("  {} {} {}", e.at, e.event, e.detail);
                }
                for c in &d.compliance {
                    let verdict = if c.passed { "通过" } else { "不通过" };
                    println!("  合规性校验 {} {} {} {verdict}: {}", c.at, c.stage, c.rule, c.detail);
                }
            }
        }
        PoolCommand::Use { number, document, amount, voucher, code, tax_no } => {
            let invoice = pool::InvoiceRef {
                invoice_num: &number,
                invoice_code: code.as_deref(),
                tax_no: tax_no.as_ref().map(TaxNo::as_str),
            };
            let used = pool::use_invoice(&app, &Actor::cli(), invoice, &document, voucher.as_deref(), amount)
                .await?;
            if ctx.json {
                output::json(&used)?;
            } else {
                println!("{number}: {} used by {document}", used.amount);
            }
        }
        PoolCommand::Refresh { number, code, tax_no } => {
            let at = pool::InvoiceRef {
                invoice_num: &number,
                invoice_code: code.as_deref(),
                tax_no: tax_no.as_ref().map(TaxNo::as_str),
            };
            let d = pool::verify_again(&app, &Actor::cli(), at, "状态查询").await?;
            if ctx.json {
                output::json(&d)?;
            } else {
                let i = &d.invoice;
                println!(
                    "{} {}: {}, {}",
                    i.invoice_code,
                    i.invoice_num,
                    i.status,
                    i.deductible_reason
                        .as_deref()
                        .map(|r| format!("not deductible: {r}"))
                        .unwrap_or("deductible".into())
                );
                if let Some(last) = d.log.last() {
                    println!("  {} {}", last.at, last.detail);
                }
            }
        }
        PoolCommand::Download { numbers, tax_no, format, name, out } => {
            let name = fapiao_schemas::invoice_file::NameTemplate::parse(&name)
                .map_err(|e| crate::exit::UsageError(e.to_string()))?;
            let request = pool::DownloadRequest {
                numbers,
                tax_no: tax_no.map(|t| t.as_str().to_string()),
                format,
                name,
                out,
            };
            let report = pool::download(&app, &Actor::cli(), &request).await?;
            let files = crate::invoices_cmd::Files {
                written: &report.written,
                failed: &report.failed,
                format: report.format,
                out: &report.out,
            };
            return crate::invoices_cmd::print_files(ctx, &report, &files);
        }
        PoolCommand::Release { document } => {
            let n = pool::release_document(&app, &Actor::cli(), &document).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "document": document, "released": n }))?;
            } else {
                println!("{document}: {n} invoice use(s) released");
            }
        }
    }
    Ok(Outcome::Done)
}
