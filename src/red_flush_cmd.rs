//! `fapiao red-flush --invoice NUMBER[:AMOUNT[:REASON]] ...`, `red-flush --file LIST.xlsx`,
//! `red-flush forms list|confirm|reject|revoke|download`, `red-flush poll`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use fapiao_schemas::{Money, RedFlushRequestState as State};
use fapiao_usecases::red_flush::{self, Line, LineRequest, Outcome, Request};
use fapiao_usecases::{Actor, App};

use crate::exit::{Outcome as Exit, UsageError};
use crate::{Context, output, progress};

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
    /// Preview --invoice requests: the rule's answer, each red line's amount and tax, and what
    /// remains of the blue invoice after. Nothing changes, nothing is sent.
    #[arg(long, requires = "invoices", conflicts_with_all = ["file", "report"])]
    dry_run: bool,
    /// 手工新增红字信息表编号: issue the red invoice of the one --invoice (a tax-control special
    /// invoice) on this red info sheet, obtained elsewhere, instead of applying for one.
    #[arg(long, requires = "invoices")]
    red_info_no: Option<String>,
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
    /// 下载: fetch every form concerning the tenant's enterprises and every red info sheet they are
    /// the seller of from the channel; --out FILE.xlsx also writes all forms and sheets there.
    Download {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(args: RedFlushArgs, ctx: &Context) -> anyhow::Result<Exit> {
    let app = App::open(&ctx.settings).await?;
    let actor = Actor::cli();
    match args.sub {
        Some(RedFlushSub::Forms(c)) => return forms(c, ctx, &app, &actor).await,
        Some(RedFlushSub::Poll) => {
            let r = red_flush::poll(&app, &actor).await?;
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
    let bar = progress::bar(ctx, 0);
    let tick = |o: &Outcome| {
        bar.inc(1);
        bar.set_message(format!("{} {}", o.invoice_num, o.state));
    };
    let report = if let Some(file) = &args.file {
        let known = |n: usize| bar.set_length(n as u64);
        red_flush::list(&app, &actor, file, args.sheet.clone(), &known, &tick).await?
    } else {
        if args.invoices.is_empty() {
            return Err(UsageError(
                "fapiao red-flush --invoice NUMBER[:AMOUNT[:REASON]] ... | --file LIST.xlsx | forms … | poll"
                    .into(),
            )
            .into());
        }
        let mut requests = args.invoices.iter().map(|s| parse_invoice(s)).collect::<Result<Vec<_>, _>>()?;
        if let Some(no) = args.red_info_no.as_deref().map(str::trim) {
            if requests.len() != 1 || no.is_empty() {
                return Err(UsageError("--red-info-no goes with exactly one --invoice".into()).into());
            }
            requests[0].red_info_no = Some(no.to_string());
        }
        if args.dry_run {
            bar.finish_and_clear();
            return print_preview(ctx, &red_flush::preview(&app, &requests).await?);
        }
        bar.set_length(requests.len() as u64);
        red_flush::invoices(&app, &actor, &requests, &tick).await?
    };
    bar.finish_and_clear();
    if let Some(path) = &args.report {
        red_flush::write_report(path, &report.results)?;
    }
    if ctx.json {
        output::json(&report)?;
    } else {
        print_lines(&report.results);
        println!(
            "{} invoices: succeeded {}, waiting {}, failed {}",
            report.results.len(),
            report.count(State::Succeeded),
            report.count(State::Waiting) + report.count(State::Issuing),
            report.failed
        );
        if let Some(p) = &args.report {
            println!("report: {}", p.display());
        }
    }
    Ok(if report.failed > 0 { Exit::SomeRejected } else { Exit::Done })
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
                    Some((
                        seq.trim().parse::<i32>().ok()?,
                        fapiao_schemas::money::parse_plain_decimal(v).ok()?,
                    ))
                });
                let (seq, value) = parsed.ok_or_else(|| {
                    UsageError(format!("--invoice {spec:?}: lines are L<seq>=<quantity>, e.g. L1=2,L3=0.5"))
                })?;
                lines.push(LineRequest { seq, value });
            }
        }
        Some(a) => {
            amount = Some(
                Money::parse_plain(a).map_err(|e| UsageError(format!("--invoice {spec:?}: amount: {e}")))?,
            )
        }
        None => {}
    }
    let reason = parts.next().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string);
    if parts.next().is_some() {
        return Err(UsageError(format!("--invoice {spec:?}: expected NUMBER[:AMOUNT[:REASON]]")));
    }
    Ok(Request { invoice_num: number.into(), amount, reason, lines, ..Request::default() })
}

fn print_lines(lines: &[Line]) {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let o = &l.outcome;
            vec![
                l.row.map(|r| r.to_string()).unwrap_or_default(),
                o.invoice_num.clone(),
                o.requested.map(|d| d.to_string()).unwrap_or_default(),
                o.reason.clone().unwrap_or_default(),
                o.track.map(|t| t.to_string()).unwrap_or_default(),
                o.state.to_string(),
                o.red_invoice_num.clone().unwrap_or_default(),
                format!(
                    "{}{}",
                    o.code.as_ref().map(|c| format!("[{c}] ")).unwrap_or_default(),
                    o.message.clone().unwrap_or_default()
                ),
            ]
        })
        .collect();
    output::table(&["ROW", "INVOICE", "AMOUNT", "REASON", "TRACK", "STATE", "RED INVOICE", "WHY"], &rows);
}

async fn forms(c: FormsCommand, ctx: &Context, app: &App, actor: &Actor) -> anyhow::Result<Exit> {
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
            let rows = red_flush::forms(app).await?;
            output::list(
                ctx.json,
                &rows,
                &["KIND", "ID", "STATE", "", "NUMBER", "INVOICE", "TOTAL", "REASON", "ENTERED BY", "REQUEST"],
                |d| {
                    vec![
                        d.kind.to_string(),
                        d.id.clone(),
                        d.state.to_string(),
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
            decided(ctx, &id, red_flush::decide_form(app, actor, &id, true).await?)
        }
        FormsCommand::Reject { id } => {
            decided(ctx, &id, red_flush::decide_form(app, actor, &id, false).await?)
        }
        FormsCommand::Revoke { id } => {
            said(format!("{id}: {}", red_flush::revoke_form(app, actor, &id).await?))
        }
        FormsCommand::Download { out } => {
            let got = red_flush::download_forms(app, actor, out.as_deref()).await?;
            let file = out.map(|o| format!(", written to {}", o.display())).unwrap_or_default();
            said(format!("{} forms and {} red info sheets downloaded{file}", got.forms, got.sheets))
        }
    }
}

/// A form decided: its state, and for a buyer's form confirmed, the red invoice issued on it
/// (exit 3 when that failed).
fn decided(ctx: &Context, id: &str, d: red_flush::Decided) -> anyhow::Result<Exit> {
    if ctx.json {
        output::json(&d)?;
    } else {
        println!("{id}: {}", d.state.label_zh());
        if let Some(o) = &d.red_flush {
            match &o.red_invoice_num {
                Some(num) => {
                    println!("red invoice {num} issued on the form for {}", o.requested.unwrap_or_default())
                }
                None => println!("red-flush {}: {}", o.state, o.message.clone().unwrap_or_default()),
            }
        }
    }
    Ok(if d.red_flush.as_ref().is_some_and(|o| o.failed()) { Exit::SomeRejected } else { Exit::Done })
}

fn print_preview(ctx: &Context, previews: &[red_flush::Preview]) -> anyhow::Result<Exit> {
    if ctx.json {
        output::json(&previews)?;
    } else {
        let text = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        for p in previews {
            match &p.code {
                Some(code) => println!(
                    "{}: would be refused [{code}] {}",
                    p.invoice_num,
                    p.message.clone().unwrap_or_default()
                ),
                None => println!(
                    "{}: would red-flush {} (reason {}, {}), remaining {} → {}",
                    p.invoice_num,
                    text(p.requested),
                    p.reason,
                    p.track.map(|t| t.to_string()).unwrap_or_default(),
                    text(p.remaining_before),
                    text(p.remaining_after)
                ),
            }
            for l in &p.lines {
                println!(
                    "    L{} {} qty {} price {} amount {} tax {}",
                    l.seq,
                    l.goods_name,
                    text(l.quantity.map(|q| q.normalize())),
                    text(l.price.map(|q| q.normalize())),
                    l.amount,
                    l.tax
                );
            }
        }
        println!("(dry run: nothing changed, nothing sent)");
    }
    Ok(if previews.iter().any(|p| p.code.is_some()) { Exit::SomeRejected } else { Exit::Done })
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
        // Typed amounts are plain: no exponent, no thousands separators (Money::parse takes both
        // from files). A zero amount parses; the use case refuses it with its own code.
        assert_eq!(parse_invoice("1:-0").unwrap().amount, Some(Money::ZERO));
        for bad in
            ["", "12a", "1:x", "1:L1", "1:L=2", "1:2:01:extra", "1:1.001", "1:1e3", "1:1,000.00", "1:L1=1e2"]
        {
            assert!(parse_invoice(bad).is_err(), "{bad:?}");
        }
    }
}
