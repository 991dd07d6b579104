//! `fapiao issue [--bill NO ...] [--all]` and `fapiao reissue [--dry-run]`.

use clap::Args;
use fapiao_invoicing::issue::{self, IssueOutcome};
use fapiao_invoicing::push::{self, PushReport, Selection};
use fapiao_invoicing::{Invoicing, callbacks, reissue};
use serde::Serialize;

use crate::exit::{Outcome, UsageError};
use crate::{Context, invoicing_ctx, output};

#[derive(Args)]
pub struct IssueArgs {
    /// Bills (单据编号) to push and issue; repeatable.
    #[arg(long = "bill", value_name = "NO")]
    bills: Vec<String>,
    /// Every application with open lines, and every unfinished pending invoice.
    #[arg(long, conflicts_with = "bills")]
    all: bool,
}

#[derive(Serialize)]
struct IssueSummary {
    pushed: PushReport,
    invoices: Vec<IssueOutcome>,
    succeeded: usize,
    failed: usize,
    /// Still 已提交/开票中 at the channel: a later run (or the auto-issue job) settles them.
    unsettled: usize,
    callbacks: callbacks::DeliveryReport,
}

pub async fn run(args: IssueArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let selection = match (args.all, args.bills.is_empty()) {
        (true, _) => Selection::All,
        (false, false) => Selection::Bills(args.bills.clone()),
        (false, true) => {
            return Err(UsageError("fapiao issue --bill NO [--bill NO ...] | --all".into()).into());
        }
    };
    let inv = invoicing_ctx::open(ctx).await?;
    let pushed = push::push(&inv, &selection).await?;
    let ids = match &selection {
        Selection::Bills(b) => issue::candidates_of_bills(&inv, b).await?,
        _ => issue::candidates(&inv, false).await?,
    };
    let invoices = drive(ctx, &inv, &ids).await?;
    let callbacks = callbacks::deliver(&inv).await?;
    let count = |s: &str| invoices.iter().filter(|o| o.status.as_str() == s).count();
    let summary = IssueSummary {
        succeeded: count("succeeded"),
        failed: count("failed"),
        unsettled: invoices.len() - count("succeeded") - count("failed"),
        pushed,
        invoices,
        callbacks,
    };
    if ctx.json {
        output::json(&summary)?;
    } else {
        for r in &summary.pushed.refused {
            println!("bill {} not pushed: [{}] {}", r.bill_no, r.code, r.message);
        }
        print_outcomes(&summary.invoices);
        println!(
            "{} bills pushed into {} pending invoices; issued {}, failed {}, unsettled {}; callbacks sent {}, succeeded {}",
            summary.pushed.bills.len(),
            summary.pushed.pending_ids.len(),
            summary.succeeded,
            summary.failed,
            summary.unsettled,
            summary.callbacks.attempted,
            summary.callbacks.succeeded
        );
    }
    Ok(if summary.failed > 0 || !summary.pushed.refused.is_empty() {
        Outcome::SomeRejected
    } else {
        Outcome::Done
    })
}

/// Issue with a per-invoice progress bar.
async fn drive(ctx: &Context, inv: &Invoicing, ids: &[i64]) -> anyhow::Result<Vec<IssueOutcome>> {
    let bar = invoicing_ctx::progress_bar(ctx, ids.len() as u64);
    let progress = |o: &IssueOutcome| {
        bar.inc(1);
        bar.set_message(format!("{} {}", o.bills.join(","), o.status_zh));
    };
    let outcomes = issue::issue(inv, ids, &progress).await?;
    bar.finish_and_clear();
    Ok(outcomes)
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
}

pub async fn reissue(args: ReissueArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let inv = invoicing_ctx::open(ctx).await?;
    let bar = invoicing_ctx::progress_bar(ctx, 0);
    let progress = |o: &IssueOutcome| {
        bar.inc(1);
        bar.set_message(format!("{} {}", o.bills.join(","), o.status_zh));
    };
    let report = reissue::reissue(&inv, chrono::Utc::now(), args.dry_run, &progress).await?;
    bar.finish_and_clear();
    let callbacks = if args.dry_run { None } else { Some(callbacks::deliver(&inv).await?) };
    if ctx.json {
        output::json(&serde_json::json!({ "report": report, "callbacks": callbacks }))?;
    } else {
        let section = |title: &str, items: &[reissue::ReissueItem]| {
            println!("{title}: {}", items.len());
            for i in items {
                let now = i
                    .outcome
                    .as_ref()
                    .map(|o| format!(" → {} {}", o.serial_no.clone().unwrap_or_default(), o.status_zh))
                    .unwrap_or_default();
                println!(
                    "  #{} {} {}{now}  [{}] {}",
                    i.pending_id,
                    i.bills.join(","),
                    i.serial_no.clone().unwrap_or_default(),
                    i.reason,
                    i.message.clone().unwrap_or_default()
                );
            }
        };
        section(if args.dry_run { "would reissue" } else { "reissued" }, &report.reissued);
        section("skipped", &report.skipped);
        section("still failing", &report.still_failing);
        section("left alone (no sim_auto_issue_config fragment matches)", &report.left_alone);
    }
    Ok(if report.still_failing.is_empty() { Outcome::Done } else { Outcome::SomeRejected })
}
