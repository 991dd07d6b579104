//! `fapiao import FILE --kind …` and `fapiao import history`.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use fapiao_usecases::import::{self, ImportKind, ImportRequest};
use fapiao_usecases::{Actor, App};

use crate::exit::Outcome;
use crate::{Context, output, progress};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImportArgs {
    #[command(subcommand)]
    history: Option<ImportSub>,
    /// The file: .xlsx, .xls, .xlsb, .ods or .csv (UTF-8 or GBK).
    file: Option<PathBuf>,
    /// What the file holds (its template: schemas/templates/KIND.toml).
    #[arg(long, value_parser = kind_parser())]
    kind: Option<ImportKind>,
    /// The sheet to read (default: the first non-empty one).
    #[arg(long)]
    sheet: Option<String>,
    /// Validate and report, land nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import the valid bills (rows) and reject the rest; default is all or nothing.
    #[arg(long)]
    accept_valid: bool,
    /// Write the error report here (.xlsx): the original columns plus 行号 and 错误原因.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ImportSub {
    /// Imported batches, newest first.
    History {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
}

/// `--kind` by name; `--help` and a wrong value list the kinds as clap lists an enum's values.
fn kind_parser() -> impl TypedValueParser<Value = ImportKind> {
    PossibleValuesParser::new(ImportKind::ALL.map(ImportKind::as_str)).try_map(|k| k.parse::<ImportKind>())
}

pub async fn run(args: ImportArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    if let Some(ImportSub::History { limit }) = args.history {
        let rows = import::history(&app, limit).await?;
        output::list(
            ctx.json,
            &rows,
            &["BATCH", "KIND", "FILE", "ROWS", "BILLS", "ACCEPTED", "REJECTED", "AT"],
            |b| {
                vec![
                    b.id.to_string(),
                    b.kind.to_string(),
                    b.file_name.clone(),
                    b.rows_read.to_string(),
                    b.bills.to_string(),
                    b.accepted.to_string(),
                    b.rejected.to_string(),
                    b.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]
            },
        )?;
        return Ok(Outcome::Done);
    }
    let (Some(file), Some(kind)) = (args.file, args.kind) else {
        return Err(crate::exit::UsageError(
            "fapiao import FILE --kind applications|pool|red-flush (or: fapiao import history)".into(),
        )
        .into());
    };
    let request = ImportRequest {
        kind,
        sheet: args.sheet,
        dry_run: args.dry_run,
        accept_valid: args.accept_valid,
        report: args.report.clone(),
        scope: None,
    };
    let bar = progress::spinner(ctx);
    bar.set_message("reading");
    let progress = |n: u64| bar.set_message(format!("{n} rows read"));
    let summary = import::file(&app, &Actor::cli(), &file, request, &progress).await?;
    bar.finish_and_clear();
    if ctx.json {
        output::json(&summary)?;
    } else {
        let batch = summary.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{} {}: {} — rows read {}, bills {}, accepted {}, rejected {}, batch {batch}",
            summary.kind,
            file.display(),
            summary.outcome,
            summary.rows_read,
            summary.bills,
            summary.accepted,
            summary.rejected
        );
        if !summary.unknown_columns.is_empty() {
            println!("columns ignored (not in the template): {}", summary.unknown_columns.join(", "));
        }
        for p in summary.problems.iter().take(30) {
            println!("  row {}  {}  [{}] {}", p.row, p.column, p.code, p.message);
        }
        if summary.problems.len() > 30 {
            println!(
                "  … {} more problems{}",
                summary.problems.len() - 30,
                if args.report.is_some() { " (see the report)" } else { " (--report FILE.xlsx lists all)" }
            );
        }
        if let Some(r) = &args.report {
            println!("report: {}", r.display());
        }
    }
    Ok(if summary.problems.is_empty() { Outcome::Done } else { Outcome::SomeRejected })
}
