//! `fapiao issue [--bill NO ...] [--all]` and `fapiao reissue [--dry-run]`: the issuing pass and
//! auto-reissue (`fapiao_usecases::issuing`), printed.

use clap::Args;
use fapiao_usecases::issuing::{self, IssueOutcome, ReissueItem, Selection};
use fapiao_usecases::{Actor, App};

use crate::exit::{Outcome, UsageError};
use crate::{Context, output, progress};

#[derive(Args)]
pub struct IssueArgs {
    /// Bills (单据编号) to push and issue; repeatable.
    #[arg(long = "bill", value_name = "NO")]
    bills: Vec<String>,
    /// Every application with open lines, and every unfinished pending invoice.
    #[arg(long, conflicts_with = "bills")]
    all: bool,
}

pub async fn run(args: IssueArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let selection = match (args.all, args.bills.is_empty()) {
        (true, _) => Selection::All,
        (false, false) => Selection::Bills(args.bills),
        (false, true) => {
            return Err(UsageError("fapiao issue --bill NO [--bill NO ...] | --all".into()).into());
        }
    };
    let app = App::open(&ctx.settings).await?;
    let bar = progress::spinner(ctx);
    let report = issuing::issue(&app, &Actor::cli(), &selection, &|o| tick(&bar, o)).await?;
    bar.finish_and_clear();
    if ctx.json {
        output::json(&report)?;
    } else {
        for r in &report.pushed.refused {
            println!("bill {} not pushed: [{}] {}", r.bill_no, r.code, r.message);
        }
        print_outcomes(&report.invoices);
        println!(
            "{} bills pushed into {} pending invoices; issued {}, failed {}, unsettled {}; callbacks sent {}, succeeded {}",
            report.pushed.bills.len(),
            report.pushed.pending_ids.len(),
            report.succeeded,
            report.failed,
            report.unsettled,
            report.callbacks.attempted,
            report.callbacks.succeeded
        );
    }
    Ok(if report.rejected() > 0 { Outcome::SomeRejected } else { Outcome::Done })
}

/// One invoice ended: the spinner counts it and names it.
fn tick(bar: &indicatif::ProgressBar, o: &IssueOutcome) {
    bar.inc(1);
    bar.set_message(format!("{} invoices: {} {}", bar.position(), o.bills.join(","), o.status_zh));
}

fn print_outcomes(outcomes: &[IssueOutcome]) {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.pending_id.to_string(),
                o.bills.join(","),
                o.serial_no.clone().unwrap_or_default(),
                o.status_zh.to_string(),
                format!(
                    "{}{}",
                    o.invoice_code.clone().unwrap_or_default(),
                    o.invoice_num.clone().unwrap_or_default()
                ),
                o.total.to_string(),
                o.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["PENDING", "BILLS", "SERIAL", "STATUS", "INVOICE", "TOTAL", "MESSAGE"], &rows);
}

#[derive(Args)]
pub struct ReissueArgs {
    /// List what would be reissued; change nothing, call nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only these pending invoices (ids of `pending list`), under the same rules.
    #[arg(long = "id", num_args = 1..)]
    ids: Vec<i64>,
}

pub async fn reissue(args: ReissueArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    let bar = progress::spinner(ctx);
    let now = chrono::Utc::now();
    let ids = (!args.ids.is_empty()).then_some(args.ids.as_slice());
    let r = issuing::reissue(&app, &Actor::cli(), now, args.dry_run, ids, &|o| tick(&bar, o)).await?;
    bar.finish_and_clear();
    if ctx.json {
        output::json(&r)?;
    } else {
        let section = |title: &str, items: &[ReissueItem]| {
            println!("{title}: {}", items.len());
            for i in items {
                let now = i
                    .outcome
                    .as_ref()
                    .map(|o| format!(" → {} {}", o.serial_no.clone().unwrap_or_default(), o.status_zh))
                    .unwrap_or_default();
                let what = match &i.red_of {
                    Some(blue) => format!("红冲{blue}"),
                    None => i.bills.join(","),
                };
                println!(
                    "  #{} {what} {}{now}  [{}] {}",
                    i.pending_id,
                    i.serial_no.clone().unwrap_or_default(),
                    i.reason,
                    i.message.clone().unwrap_or_default()
                );
            }
        };
        section(if args.dry_run { "would reissue" } else { "reissued" }, &r.report.reissued);
        section("skipped", &r.report.skipped);
        section("still failing", &r.report.still_failing);
        section("left alone (no sim_auto_issue_config fragment matches)", &r.report.left_alone);
    }
    Ok(if r.report.still_failing.is_empty() { Outcome::Done } else { Outcome::SomeRejected })
}
