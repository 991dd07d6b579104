//! `fapiao invoices list|show|download|send`: 已开发票 — search, one whole, files, delivery.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use fapiao_schemas::invoice_file::{DEFAULT_TEMPLATE, FileFormat, NameTemplate};
use fapiao_schemas::{InvoiceKind, InvoiceStatus, RedFlushState, TaxNo};
use fapiao_usecases::invoices::{self, Colour, DownloadRequest, Filter, IssuedRow, Pick, Recipient};
use fapiao_usecases::{Actor, App};

use crate::exit::{Outcome, UsageError};
use crate::{Context, output};

#[derive(Subcommand)]
pub enum InvoicesCommand {
    /// Issued invoices, newest first, narrowed by any of the filters.
    List(ListArgs),
    /// One invoice whole: lines, bills, issuing attempts with serials, callbacks, red invoices,
    /// red-flush requests, deliveries.
    Show {
        number: String,
        /// The invoice code (tax-control invoices, when two share a number).
        #[arg(long)]
        code: Option<String>,
    },
    /// Download invoice files into a folder or one .zip.
    Download(DownloadArgs),
    /// 交付: send an invoice to its buyer by e-mail or SMS (through the channel).
    Send {
        number: String,
        #[arg(long, conflicts_with = "phone", required_unless_present = "phone")]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// 作废: void a paper tax-control invoice of this month with no red invoice (正常 → 作废中 →
    /// 作废); again on one still 作废中, asks the channel again. Exit 3 while still 作废中.
    Void {
        number: String,
        /// The invoice code, where the number alone is not unique.
        #[arg(long)]
        code: Option<String>,
        /// Why (kept with the invoice).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
pub struct ListArgs {
    /// Seller tax number.
    #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
    seller: Option<TaxNo>,
    /// Buyer: part of the name, or the tax number.
    #[arg(long)]
    buyer: Option<String>,
    /// Bill number (单据编号) the invoice serves.
    #[arg(long)]
    bill: Option<String>,
    /// Invoice number.
    #[arg(long)]
    number: Option<String>,
    /// First invoice date (inclusive).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last invoice date (inclusive).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Invoice kind: identifier or label (digital_ordinary, 数电普票, …).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<InvoiceKind>,
    /// blue (蓝字) or red (红字).
    #[arg(long, value_parser = parse_colour)]
    colour: Option<Colour>,
    /// Red-flush state of blue invoices: none|partial|full (未红冲/部分红冲/全额红冲).
    #[arg(long = "red-flush", value_parser = parse_red_flush)]
    red_flush: Option<RedFlushState>,
    /// 正常, 作废中 or 作废.
    #[arg(long, value_parser = parse_status)]
    status: Option<InvoiceStatus>,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    limit: i64,
}

#[derive(Args)]
pub struct DownloadArgs {
    /// Invoice numbers.
    numbers: Vec<String>,
    /// The invoices of these bills.
    #[arg(long = "bill", num_args = 1..)]
    bills: Vec<String>,
    /// Invoices issued from this date (with --to).
    #[arg(long, requires = "to")]
    from: Option<NaiveDate>,
    #[arg(long, requires = "from")]
    to: Option<NaiveDate>,
    /// pdf, ofd or xml; default: the parameter sim_choose_invoice_type/file_type.
    #[arg(long, value_parser = parse_format)]
    format: Option<FileFormat>,
    /// File names from the invoice's fields, e.g. '{发票号码}_{购方名称}'. Fields: 发票号码, 发票代码,
    /// 开票日期, 购方名称, 购方税号, 销方税号, 价税合计, 单据编号.
    #[arg(long, default_value = DEFAULT_TEMPLATE)]
    name: String,
    /// A folder (created if missing) or a FILE.zip.
    #[arg(long)]
    out: PathBuf,
}

pub fn parse_kind(s: &str) -> Result<InvoiceKind, String> {
    s.parse().map_err(|e: fapiao_schemas::invoice_kind::InvoiceNumberError| e.to_string())
}

fn parse_colour(s: &str) -> Result<Colour, String> {
    match s {
        "blue" | "蓝字" => Ok(Colour::Blue),
        "red" | "红字" => Ok(Colour::Red),
        _ => Err(format!("{s:?}: blue or red (蓝字/红字)")),
    }
}

fn parse_red_flush(s: &str) -> Result<RedFlushState, String> {
    match s {
        "none" | "未红冲" => Ok(RedFlushState::None),
        "partial" | "部分红冲" => Ok(RedFlushState::Partial),
        "full" | "全额红冲" => Ok(RedFlushState::Full),
        _ => Err(format!("{s:?}: none, partial or full (未红冲/部分红冲/全额红冲)")),
    }
}

fn parse_status(s: &str) -> Result<InvoiceStatus, String> {
    s.parse().map_err(|_| format!("{s:?}: 正常, 作废中 or 作废"))
}

/// What a file download wrote and could not.
pub struct Files<'a> {
    pub written: &'a [fapiao_usecases::invoices::Written],
    pub failed: &'a [fapiao_usecases::invoices::NotWritten],
    pub format: FileFormat,
    pub out: &'a std::path::Path,
}

/// A download's report: JSON, or a line per file and a summary; some failed → exit 1.
pub fn print_files(ctx: &Context, report: &impl serde::Serialize, f: &Files<'_>) -> anyhow::Result<Outcome> {
    if ctx.json {
        output::json(report)?;
    } else {
        for w in f.written {
            println!("{}  {}", w.invoice_num, w.file);
        }
        for n in f.failed {
            eprintln!("{}  {} {}", n.invoice_num, n.code, n.message);
        }
        println!(
            "{} {} file(s) written to {}, {} failed",
            f.written.len(),
            f.format,
            f.out.display(),
            f.failed.len()
        );
    }
    Ok(if f.failed.is_empty() { Outcome::Done } else { Outcome::SomeRejected })
}

pub fn parse_format(s: &str) -> Result<FileFormat, String> {
    s.to_ascii_lowercase().parse().map_err(|e: fapiao_schemas::invoice_file::UnknownFormat| e.to_string())
}

pub async fn run(command: InvoicesCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        InvoicesCommand::List(a) => {
            if let (Some(from), Some(to)) = (a.from, a.to)
                && from > to
            {
                return Err(UsageError(format!("--from {from} is after --to {to}")).into());
            }
            let filter = Filter {
                seller_tax_no: a.seller.map(|t| t.as_str().to_string()),
                buyer: a.buyer,
                bill_no: a.bill,
                invoice_num: a.number,
                from: a.from,
                to: a.to,
                kind: a.kind,
                colour: a.colour,
                red_flush: a.red_flush,
                status: a.status,
                scope: None,
                limit: a.limit,
            };
            print_rows(ctx.json, &invoices::list(&app, &filter).await?)?;
        }
        InvoicesCommand::Show { number, code } => {
            let d = invoices::show(&app, &number, code.as_deref()).await?;
            if ctx.json {
                output::json(&d)?;
            } else {
                print_rows(false, std::slice::from_ref(&d.invoice))?;
                println!("\nlines:");
                output::table(
                    &["SEQ", "BILL", "LINE", "GOODS", "QTY", "PRICE", "AMOUNT", "RATE", "TAX"],
                    &d.lines
                        .iter()
                        .map(|l| {
                            let g = &l.goods;
                            vec![
                                l.seq.to_string(),
                                l.bill_no.clone().unwrap_or_default(),
                                l.bill_line_no.map(|n| n.to_string()).unwrap_or_default(),
                                g.goods_name.clone(),
                                g.quantity.map(|q| q.normalize().to_string()).unwrap_or_default(),
                                g.price.map(|p| p.normalize().to_string()).unwrap_or_default(),
                                g.amount.to_string(),
                                g.tax_rate.normalize().to_string(),
                                g.tax.to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
                println!("\nattempts:");
                for a in &d.attempts {
                    println!(
                        "  #{} {} {} {}",
                        a.attempt,
                        a.serial_no,
                        a.outcome,
                        a.message.clone().unwrap_or_default()
                    );
                }
                println!("\ncallbacks:");
                for c in &d.callbacks {
                    println!(
                        "  #{} {} {} {} attempts {}",
                        c.id, c.bill_no, c.interface_code, c.state, c.attempts
                    );
                }
                if !d.red_flushes.is_empty() {
                    println!("\nred-flush requests:");
                    for r in &d.red_flushes {
                        println!(
                            "  #{} {} {} {} {}",
                            r.id,
                            r.state,
                            r.requested.map(|a| a.to_string()).unwrap_or_default(),
                            r.red_invoice_num.clone().unwrap_or_default(),
                            r.message.clone().unwrap_or_default()
                        );
                    }
                }
                if !d.deliveries.is_empty() {
                    println!("\ndeliveries:");
                    for x in &d.deliveries {
                        println!(
                            "  {} {} {}",
                            x.delivered_at.with_timezone(&ctx.settings.time_zone()),
                            x.channel,
                            x.address
                        );
                    }
                }
            }
        }
        InvoicesCommand::Download(a) => {
            let pick = match (a.numbers.is_empty(), a.bills.is_empty(), a.from.zip(a.to)) {
                (false, true, None) => Pick::Numbers(a.numbers),
                (true, false, None) => Pick::Bills(a.bills),
                (true, true, Some((from, to))) if from <= to => Pick::Dates { from, to },
                (true, true, Some((from, to))) => {
                    return Err(UsageError(format!("--from {from} is after --to {to}")).into());
                }
                _ => {
                    return Err(UsageError(
                        "give invoice numbers, or --bill NO…, or --from D --to D (one of them)".into(),
                    )
                    .into());
                }
            };
            let name = NameTemplate::parse(&a.name).map_err(|e| UsageError(e.to_string()))?;
            let request = DownloadRequest { pick, format: a.format, name, out: a.out, scope: None };
            let report = invoices::download(&app, &Actor::cli(), &request).await?;
            let files = Files {
                written: &report.written,
                failed: &report.failed,
                format: report.format,
                out: &report.out,
            };
            return print_files(ctx, &report, &files);
        }
        InvoicesCommand::Send { number, email, phone } => {
            let to = match (email, phone) {
                (Some(e), None) => Recipient::Email(e),
                (None, Some(p)) => Recipient::Phone(p),
                _ => return Err(UsageError("give --email or --phone".into()).into()),
            };
            let done = invoices::send(&app, &Actor::cli(), &number, &to).await?;
            if ctx.json {
                output::json(&done)?;
            } else {
                println!("{number} sent by {} to {}", done.channel, done.address);
            }
        }
        InvoicesCommand::Void { number, code, reason } => {
            let done = invoices::void(&app, &Actor::cli(), &number, code.as_deref(), &reason).await?;
            if ctx.json {
                output::json(&done)?;
            } else {
                println!(
                    "{number}: {}{}",
                    done.status,
                    done.message.as_deref().map(|m| format!("（{m}）")).unwrap_or_default()
                );
            }
            if done.status != fapiao_schemas::InvoiceStatus::Voided {
                return Ok(Outcome::SomeRejected);
            }
        }
    }
    Ok(Outcome::Done)
}

/// Issued invoices as a table (or JSON).
pub fn print_rows(json: bool, rows: &[IssuedRow]) -> anyhow::Result<()> {
    output::list(
        json,
        rows,
        &[
            "NUMBER",
            "CODE",
            "DATE",
            "KIND",
            "COLOUR",
            "BUYER",
            "TOTAL",
            "STATUS",
            "RED-FLUSH",
            "REMAINING",
            "BILLS",
        ],
        |r| {
            vec![
                r.invoice_num.clone(),
                r.invoice_code.clone(),
                r.invoice_date.to_string(),
                r.invoice_kind.label_zh().to_string(),
                if r.red {
                    format!("红字 of {}", r.blue_invoice_num.clone().unwrap_or_default())
                } else {
                    "蓝字".into()
                },
                r.buyer_name.clone(),
                r.total.to_string(),
                r.status.to_string(),
                if r.red { String::new() } else { red_flush_zh(r.red_flush_state).into() },
                if r.red { String::new() } else { r.remaining.to_string() },
                r.bills.join(","),
            ]
        },
    )
}

fn red_flush_zh(state: RedFlushState) -> &'static str {
    match state {
        RedFlushState::None => "未红冲",
        RedFlushState::Partial => "部分红冲",
        RedFlushState::Full => "全额红冲",
    }
}
