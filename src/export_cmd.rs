//! `fapiao export reconciliation --from D --to D [--tax-no T ...] --out FILE.zip`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use fapiao_schemas::TaxNo;
use fapiao_usecases::export::{self, ReconciliationRequest};
use fapiao_usecases::{Actor, App};

use crate::exit::Outcome;
use crate::{Context, output, progress};

#[derive(Subcommand)]
pub enum ExportCommand {
    /// One zip for auditors: reconciliation.xlsx (summary + chart, a sheet per ledger), the ledgers as CSV, manifest.json with the checks.
    Reconciliation(ReconciliationArgs),
}

#[derive(Args)]
pub struct ReconciliationArgs {
    /// First day of the period (YYYY-MM-DD), inclusive.
    #[arg(long)]
    from: NaiveDate,
    /// Last day of the period, inclusive.
    #[arg(long)]
    to: NaiveDate,
    /// Only these enterprises (sellers; for the pool and downloads, the buyer); repeatable. Default: all.
    #[arg(long = "tax-no", value_parser = crate::enterprise::parse_tax_no)]
    tax_nos: Vec<TaxNo>,
    /// The zip to write.
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(command: ExportCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let ExportCommand::Reconciliation(args) = command;
    let request =
        ReconciliationRequest { from: args.from, to: args.to, tax_nos: args.tax_nos, out: args.out };
    export::check_out_path(&request)?;
    let app = App::open(&ctx.settings).await?;
    let bar = progress::spinner(ctx);
    let report =
        export::reconciliation(&app, &Actor::cli(), request, &|step| bar.set_message(step.to_string()))
            .await?;
    bar.finish_and_clear();
    let m = &report.manifest;
    if ctx.json {
        output::json(&report)?;
    } else {
        println!("{}", report.path.display());
        for (ledger, n) in &m.row_counts {
            println!("  {ledger:<18} {n} rows");
        }
        for c in &m.checks {
            println!(
                "  check {:<28} {}{}",
                c.name,
                if c.ok { "ok" } else { "FAILED" },
                if c.ok {
                    String::new()
                } else {
                    format!(" ({} — e.g. {})", c.failures, c.examples.first().cloned().unwrap_or_default())
                }
            );
        }
    }
    Ok(if m.all_checks_passed { Outcome::Done } else { Outcome::SomeRejected })
}
