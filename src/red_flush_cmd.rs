//! `fapiao red-flush --invoice NUMBER[:AMOUNT[:REASON]] ...`, `red-flush --file LIST.xlsx`,
//! `red-flush forms list|confirm|reject|revoke|download`, `red-flush poll`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use fapiao_invoicing::redflush::{self, Outcome, Request, documents};
use fapiao_pipelines::import::{self, ImportError, ImportKind, ImportOptions};
use fapiao_schemas::Money;
use serde::Serialize;

use crate::exit::{Outcome as Exit, UsageError};
use crate::{Context, invoicing_ctx, output};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RedFlushArgs {
    #[command(subcommand)]
    sub: Option<RedFlushSub>,
    /// An invoice to red-flush: its number, optionally the gross amount (empty: all that remains)
    /// or lines `L<seq>=<quantity>,…` (by line: quantity for lines with one, the price stays;
    /// net amount otherwise), and the reason 01–04 (default: 01 when full, else 04). At most 10.
    #[arg(long = "invoice", value_name = "NUMBER[:AMOUNT|L1=QTY,...[:REASON]]")]
    invoices: Vec<String>,
    /// A red-flush list (the import template: 发票代码, 发票号码, 红冲金额, 红冲原因), any length,
    /// worked in batches of 10. The same file again resumes its unprocessed rows.
    #[arg(long, conflicts_with = "invoices")]
    file: Option<PathBuf>,
    /// The sheet of --file to read.
    #[arg(long, requires = "file")]
    sheet: Option<String>,
    /// Also write the report as .xlsx.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RedFlushSub {
    /// Red confirmation forms (红字确认单) and red info sheets (红字信息表).
    #[command(subcommand)]
    Forms(FormsCommand),
    /// Step every waiting request now (what the red-flush-poll job does).
    Poll,
}

#[derive(Subcommand)]
enum FormsCommand {
    /// Forms and sheets with their state.
    List,
    /// Confirm a form the other party entered.
    Confirm { id: String },
    /// Reject a form the other party entered.
    Reject { id: String },
    /// Revoke a form or a sheet (its request ends; the amount is free again).
    Revoke { id: String },
    /// Fetch every form concerning the tenant's enterprises from the channel.
    Download,
}

/// One line of the report: a request, or a row the list's import rejected.
#[derive(Serialize)]
struct ReportLine {
    row: Option<u32>,
    invoice_num: String,
    requested: Option<String>,
    reason: Option<String>,
    track: Option<String>,
    state: String,
    code: Option<String>,
    message: Option<String>,
    red_invoice_num: Option<String>,
}

impl ReportLine {
    fn of(o: &Outcome, row: Option<u32>) -> ReportLine {
        ReportLine {
            row,
            invoice_num: o.invoice_num.clone(),
            requested: o.requested.map(|d| d.to_string()),
            reason: o.reason.clone(),
            track: o.track.clone(),
            state: o.state.clone(),
            code: o.code.clone(),
            message: o.message.clone(),
            red_invoice_num: o.red_invoice_num.clone(),
        }
    }
}

pub async fn run(args: RedFlushArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let inv = invoicing_ctx::open(ctx).await?;
    match args.sub {
        Some(RedFlushSub::Forms(c)) => return forms(c, ctx, &inv).await,
        Some(RedFlushSub::Poll) => {
            let r = documents::poll(&inv).await?;
            if ctx.json {
                output::json(&r)?;
            } else {
                println!(
                    "polled {}: succeeded {}, still waiting {}, failed or ended {}",
                    r.polled, r.succeeded, r.waiting, r.failed
                );
            }
            return Ok(Exit::Done);
        }
        None => {}
    }
    let bar = invoicing_ctx::progress_bar(ctx, 0);
    let progress = |o: &Outcome| {
        bar.inc(1);
        bar.set_message(format!("{} {}", o.invoice_num, o.state));
    };
    let mut lines = Vec::new();
    if let Some(file) = &args.file {
        let (batch, rejected) = import_list(&inv, file, args.sheet.clone()).await?;
        lines.extend(rejected);
        let requests = redflush::requests_of_import(&inv, batch).await?;
        bar.set_length(requests.len() as u64);
        let outcomes = redflush::red_flush(&inv, Some(batch), &requests, &progress).await?;
        lines.extend(
            outcomes.iter().zip(&requests).map(|(o, r)| ReportLine::of(o, r.row_no.map(|n| n as u32))),
        );
        lines.sort_by_key(|l| l.row);
    } else {
        if args.invoices.is_empty() {
            return Err(UsageError(
                "fapiao red-flush --invoice NUMBER[:AMOUNT[:REASON]] ... | --file LIST.xlsx | forms … | poll"
                    .into(),
            )
            .into());
        }
        if args.invoices.len() > redflush::BATCH {
            return Err(UsageError(format!(
                "at most {} invoices per red-flush batch; use --file for a longer list",
                redflush::BATCH
            ))
            .into());
        }
        let requests = args.invoices.iter().map(|s| parse_invoice(s)).collect::<Result<Vec<_>, _>>()?;
        bar.set_length(requests.len() as u64);
        let outcomes = redflush::red_flush(&inv, None, &requests, &progress).await?;
        lines.extend(outcomes.iter().map(|o| ReportLine::of(o, None)));
    }
    bar.finish_and_clear();
    if let Some(path) = &args.report {
        write_report(path, &lines)?;
    }
    let failed = lines.iter().filter(|l| matches!(l.state.as_str(), "refused" | "failed" | "ended")).count();
    if ctx.json {
        output::json(&serde_json::json!({ "results": lines, "failed": failed }))?;
    } else {
        print_lines(&lines);
        let n = |s: &str| lines.iter().filter(|l| l.state == s).count();
        println!(
            "{} invoices: succeeded {}, waiting {}, failed {}",
            lines.len(),
            n("succeeded"),
            n("waiting") + n("issuing"),
            failed
        );
        if let Some(p) = &args.report {
            println!("report: {}", p.display());
        }
    }
    Ok(if failed > 0 { Exit::SomeRejected } else { Exit::Done })
}

/// `NUMBER[:AMOUNT|L<seq>=<value>,…[:REASON]]`.
fn parse_invoice(spec: &str) -> Result<Request, UsageError> {
    let mut parts = spec.split(':');
    let number = parts.next().unwrap_or_default().trim();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err(UsageError(format!("--invoice {spec:?}: the invoice number must be digits")));
    }
    let (mut amount, mut lines) = (None, Vec::new());
    match parts.next().map(str::trim).filter(|a| !a.is_empty()) {
        Some(l) if l.starts_with(['L', 'l']) => {
            for item in l.split(',') {
                let parsed = item.trim()[1..].split_once('=').and_then(|(seq, v)| {
                    Some((seq.trim().parse::<i32>().ok()?, v.trim().parse::<rust_decimal::Decimal>().ok()?))
                });
                let (seq, value) = parsed.ok_or_else(|| {
                    UsageError(format!("--invoice {spec:?}: lines are L<seq>=<quantity>, e.g. L1=2,L3=0.5"))
                })?;
                lines.push(redflush::LineRequest { seq, value });
            }
        }
        Some(a) => {
            amount =
                Some(Money::parse(a).map_err(|e| UsageError(format!("--invoice {spec:?}: amount: {e}")))?)
        }
        None => {}
    }
    let reason = parts.next().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    if parts.next().is_some() {
        return Err(UsageError(format!("--invoice {spec:?}: expected NUMBER[:AMOUNT[:REASON]]")));
    }
    Ok(Request { invoice_num: number.into(), amount, reason, lines, ..Request::default() })
}

/// Import the list (valid rows land); a list imported before resumes. Returns its batch and a
/// report line per rejected row.
async fn import_list(
    inv: &fapiao_invoicing::Invoicing,
    file: &Path,
    sheet: Option<String>,
) -> anyhow::Result<(i64, Vec<ReportLine>)> {
    let options =
        ImportOptions { kind: ImportKind::RedFlush, sheet, accept_valid: true, ..ImportOptions::default() };
    match import::import(&inv.pool, file, &options, &|_| {}).await {
        Ok(summary) => {
            let rejected = summary
                .problems
                .iter()
                .map(|p| ReportLine {
                    row: Some(p.row),
                    invoice_num: String::new(),
                    requested: None,
                    reason: None,
                    track: None,
                    state: "refused".into(),
                    code: Some(p.code.clone()),
                    message: Some(format!("{}：{}", p.column, p.message)),
                    red_invoice_num: None,
                })
                .collect();
            let batch =
                summary.batch_id.ok_or_else(|| UsageError("no row of the list could be imported".into()))?;
            Ok((batch, rejected))
        }
        Err(ImportError::AlreadyImported(batch)) => Ok((batch, Vec::new())),
        Err(e) => Err(e.into()),
    }
}

fn print_lines(lines: &[ReportLine]) {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.row.map(|r| r.to_string()).unwrap_or_default(),
                l.invoice_num.clone(),
                l.requested.clone().unwrap_or_default(),
                l.reason.clone().unwrap_or_default(),
                l.track.clone().unwrap_or_default(),
                l.state.clone(),
                l.red_invoice_num.clone().unwrap_or_default(),
                format!(
                    "{}{}",
                    l.code.as_ref().map(|c| format!("[{c}] ")).unwrap_or_default(),
                    l.message.clone().unwrap_or_default()
                ),
            ]
        })
        .collect();
    output::table(&["ROW", "INVOICE", "AMOUNT", "REASON", "TRACK", "STATE", "RED INVOICE", "WHY"], &rows);
}

fn write_report(path: &Path, lines: &[ReportLine]) -> anyhow::Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let headers =
        ["行号", "发票号码", "红冲金额", "红冲原因", "红冲方式", "结果", "错误代码", "说明", "红字发票号码"];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for (i, l) in lines.iter().enumerate() {
        let r = i as u32 + 1;
        if let Some(row) = l.row {
            sheet.write_number(r, 0, row)?;
        }
        let cells = [
            &Some(l.invoice_num.clone()),
            &l.requested,
            &l.reason,
            &l.track,
            &Some(l.state.clone()),
            &l.code,
            &l.message,
            &l.red_invoice_num,
        ];
        for (c, v) in cells.iter().enumerate() {
            // Strings stay strings (never formulas); leading formula characters neutralized as on import reports.
            sheet.write_string(r, c as u16 + 1, import::neutralize(v.as_deref().unwrap_or("")))?;
        }
    }
    book.save(path)?;
    Ok(())
}

async fn forms(c: FormsCommand, ctx: &Context, inv: &fapiao_invoicing::Invoicing) -> anyhow::Result<Exit> {
    let said = |what: String| -> anyhow::Result<Exit> {
        if ctx.json {
            output::json(&serde_json::json!({ "result": what }))?;
        } else {
            println!("{what}");
        }
        Ok(Exit::Done)
    };
    match c {
        FormsCommand::List => {
            let rows = documents::list(inv).await?;
            output::list(
                ctx.json,
                &rows,
                &["KIND", "ID", "STATE", "", "NUMBER", "INVOICE", "TOTAL", "REASON", "ENTERED BY", "REQUEST"],
                |d| {
                    vec![
                        d.kind.clone(),
                        d.id.clone(),
                        d.state.clone(),
                        d.state_zh.clone(),
                        d.number.clone().unwrap_or_default(),
                        d.invoice_num.clone(),
                        (d.amount + d.tax).to_string(),
                        d.red_reason.clone(),
                        d.entered_by.clone(),
                        d.red_flush_id.map(|i| i.to_string()).unwrap_or_default(),
                    ]
                },
            )?;
            Ok(Exit::Done)
        }
        FormsCommand::Confirm { id } => {
            said(format!("{id}: {}", documents::form_state_zh(&documents::decide(inv, &id, true).await?)))
        }
        FormsCommand::Reject { id } => {
            said(format!("{id}: {}", documents::form_state_zh(&documents::decide(inv, &id, false).await?)))
        }
        FormsCommand::Revoke { id } => said(format!("{id}: {}", documents::revoke(inv, &id).await?)),
        FormsCommand::Download => said(format!("{} forms downloaded", documents::download(inv).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_specs_parse_amounts_lines_and_reasons() {
        let r = parse_invoice("26311000000000000001").unwrap();
        assert_eq!((r.amount, r.reason, r.lines.len()), (None, None, 0));
        let r = parse_invoice("26311000000000000001:10.50:04").unwrap();
        assert_eq!(
            (r.amount.map(|m| m.to_string()), r.reason.as_deref()),
            (Some("10.50".into()), Some("04"))
        );
        let r = parse_invoice("26311000000000000001::01").unwrap();
        assert_eq!((r.amount, r.reason.as_deref()), (None, Some("01")));
        let r = parse_invoice("26311000000000000001:L1=2,L3=0.5:02").unwrap();
        let lines: Vec<(i32, String)> = r.lines.iter().map(|l| (l.seq, l.value.to_string())).collect();
        assert_eq!(lines, [(1, "2".to_string()), (3, "0.5".to_string())]);
        for bad in ["", "12a", "1:x", "1:L1", "1:L=2", "1:2:01:extra", "1:1.001"] {
            assert!(parse_invoice(bad).is_err(), "{bad:?}");
        }
    }
}
