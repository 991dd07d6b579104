//! `fapiao deduct select|unselect|batches|stop|status`: 抵扣类勾选 of pool invoices for a tax period.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use fapiao_schemas::deduction::TaxPeriod;
use fapiao_schemas::{SelectAction, TaxNo};
use fapiao_usecases::deduct::{self, Request};
use fapiao_usecases::{Actor, App};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum DeductCommand {
    /// 勾选: select invoices for deduction in a tax period (one batch per enterprise).
    Select(SelectArgs),
    /// 取消勾选: unselect invoices selected for that period.
    Unselect(SelectArgs),
    /// Selection batches, newest first, with their state and counts.
    Batches {
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: Option<TaxNo>,
        /// Only batches the bureau may still change (pending, processing).
        #[arg(long)]
        open: bool,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// 强制停止 a batch the bureau has not started.
    Stop { batch: String },
    /// Where an invoice stands (勾选状态, period) and its selection log.
    Status {
        number: String,
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: Option<TaxNo>,
    },
    /// Ask about every open batch now (what the deduct-poll job does).
    Poll,
}

#[derive(Args)]
pub struct SelectArgs {
    /// Invoice numbers.
    numbers: Vec<String>,
    /// A file with one invoice number per line (blank lines and # comments ignored).
    #[arg(long)]
    file: Option<PathBuf>,
    /// 税款所属期 YYYYMM. Fixed when the channel reports it; otherwise the current month by default.
    #[arg(long, value_parser = parse_period)]
    period: Option<TaxPeriod>,
    /// The receiving enterprise, where a number alone is ambiguous.
    #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
    tax_no: Option<TaxNo>,
}

fn parse_period(s: &str) -> Result<TaxPeriod, String> {
    TaxPeriod::parse(s).map_err(|e| e.to_string())
}

fn numbers(args: &SelectArgs) -> anyhow::Result<Vec<String>> {
    let mut all = args.numbers.clone();
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        all.extend(
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string),
        );
    }
    let mut seen = std::collections::HashSet::new();
    all.retain(|n| seen.insert(n.clone()));
    Ok(all)
}

pub async fn run(command: DeductCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        DeductCommand::Select(a) => submit(&app, ctx, SelectAction::Select, &a).await,
        DeductCommand::Unselect(a) => submit(&app, ctx, SelectAction::Unselect, &a).await,
        DeductCommand::Batches { tax_no, open, limit } => {
            let rows = deduct::batches(&app, tax_no.as_ref().map(TaxNo::as_str), open, limit).await?;
            output::list(
                ctx.json,
                &rows,
                &["BATCH", "TAX NO", "PERIOD", "ACTION", "MODE", "STATE", "TOTAL", "OK", "FAILED", "MESSAGE"],
                |b| {
                    vec![
                        b.batch_no.clone(),
                        b.tax_no.clone(),
                        b.period.clone(),
                        b.action.label_zh().into(),
                        if b.sync { "同步" } else { "异步" }.into(),
                        b.state.label_zh().into(),
                        b.total.to_string(),
                        b.succeeded.to_string(),
                        b.failed.to_string(),
                        b.message.clone(),
                    ]
                },
            )?;
            Ok(Outcome::Done)
        }
        DeductCommand::Stop { batch } => {
            let b = deduct::stop(&app, &Actor::cli(), &batch).await?;
            if ctx.json {
                output::json(&b)?;
            } else {
                println!("{}: {}", b.batch_no, b.state.label_zh());
            }
            Ok(Outcome::Done)
        }
        DeductCommand::Status { number, tax_no } => {
            let s = deduct::status(&app, &number, tax_no.as_ref().map(TaxNo::as_str)).await?;
            if ctx.json {
                output::json(&s)?;
            } else {
                let i = &s.invoice;
                println!(
                    "{} {} ({}): {}{}",
                    i.invoice_code,
                    i.invoice_num,
                    i.tax_no,
                    i.select_state.label_zh(),
                    i.select_period.as_deref().map(|p| format!("，所属期{p}")).unwrap_or_default()
                );
                for l in &s.log {
                    println!(
                        "  {} {} {} {} {} {} {}",
                        l.at,
                        l.batch_no,
                        l.action.label_zh(),
                        l.period,
                        l.outcome,
                        l.message,
                        l.actor
                    );
                }
            }
            Ok(Outcome::Done)
        }
        DeductCommand::Poll => {
            let r = deduct::poll(&app, &Actor::cli()).await?;
            if ctx.json {
                output::json(&r)?;
            } else {
                println!(
                    "polled {}, finished {}, still open {}, sent again {}",
                    r.polled, r.finished, r.still_open, r.resent
                );
            }
            Ok(Outcome::Done)
        }
    }
}

async fn submit(app: &App, ctx: &Context, action: SelectAction, a: &SelectArgs) -> anyhow::Result<Outcome> {
    let req = Request {
        action,
        numbers: numbers(a)?,
        tax_no: a.tax_no.as_ref().map(|t| t.as_str().to_string()),
        period: a.period,
    };
    let sent = deduct::submit(app, &Actor::cli(), &req).await?;
    if ctx.json {
        output::json(&sent)?;
        return Ok(Outcome::Done);
    }
    for s in &sent {
        let b = &s.batch;
        println!(
            "{} {} {} 所属期{}{}: {} — {} invoice(s), {} succeeded, {} failed{}",
            b.batch_no,
            b.tax_no,
            b.action.label_zh(),
            b.period,
            if s.period_fixed { "（税局确定）" } else { "" },
            b.state.label_zh(),
            b.total,
            b.succeeded,
            b.failed,
            if s.answer_lost { "; answer lost, deduct-poll settles it" } else { "" }
        );
    }
    Ok(Outcome::Done)
}
