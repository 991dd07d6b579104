//! Reconciliation export for auditors (SPEC.md "Reconciliation export"): every ledger of a period
//! streams PostgreSQL → polars in chunks (`COPY … TO STDOUT` into polars' CSV reader), the summary is
//! shaped and summed in polars over integer cents, the checks compare what must agree, and one
//! zip holds `reconciliation.xlsx` (summary with a chart first, then a sheet per ledger), the same
//! ledgers as UTF-8 CSV with BOM, and `manifest.json` (parameters, row counts, checks, SHA-256s).

pub mod checks;
mod copy;
pub mod floor;
pub mod ledgers;
pub mod package;
pub mod summary;
mod workers;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use fapiao_schemas::TaxNo;
use serde::Serialize;
use sqlx::PgPool;

use crate::checks::Check;
use crate::ledgers::Filter;
use crate::package::FileEntry;
use crate::workers::{Parse, ToBook};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("polars: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    /// A part of the export stopped because another failed (that one's error is reported).
    #[error("the export stopped")]
    Stopped,
}

#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only these sellers (and, for the pool, buyers); empty: all.
    pub tax_nos: Vec<TaxNo>,
    pub out: PathBuf,
    /// The time zone in which a timestamp belongs to a day.
    pub time_zone: chrono_tz::Tz,
}

#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub kind: &'static str,
    pub generated_at: String,
    pub parameters: Parameters,
    pub row_counts: std::collections::BTreeMap<String, usize>,
    pub checks: Vec<Check>,
    pub all_checks_passed: bool,
    pub files: Vec<FileEntry>,
    pub notes: Vec<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Parameters {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tax_nos: Vec<String>,
    pub time_zone: String,
}

/// What the export did (the manifest, and where the zip is).
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    pub path: PathBuf,
    pub manifest: Manifest,
}

impl ExportOptions {
    pub(crate) fn filter(&self) -> Result<Filter, ExportError> {
        if self.from > self.to {
            return Err(ExportError::Invalid(format!("--from {} is after --to {}", self.from, self.to)));
        }
        let tz = self.time_zone;
        // Literals we build ourselves: dates we formatted, tax numbers that parsed (A–Z, 0–9).
        let taxnos = if self.tax_nos.is_empty() {
            "NULL::text[]".to_string()
        } else {
            format!(
                "ARRAY[{}]::text[]",
                self.tax_nos.iter().map(|t| format!("'{}'", t.as_str())).collect::<Vec<_>>().join(",")
            )
        };
        Ok(Filter {
            from: format!("DATE '{}'", self.from),
            to: format!("DATE '{}'", self.to),
            taxnos,
            tz: format!("'{}'", tz.name()),
        })
    }
}

/// Build the package. `progress` hears each step's name as it starts. Ledgers stream through
/// (see `workers`): memory stays flat in the number of rows.
pub async fn export(
    pool: &PgPool,
    opts: &ExportOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ExportReport, ExportError> {
    let filter = opts.filter()?;
    let zip_path = opts.out.with_extension("zip.partial");
    let book_path = opts.out.with_extension("xlsx.partial");
    let built = build(pool, opts, &filter, &zip_path, &book_path, progress).await;
    let _ = std::fs::remove_file(&book_path);
    match built {
        Ok(manifest) => {
            std::fs::rename(&zip_path, &opts.out)?;
            Ok(ExportReport { path: opts.out.clone(), manifest })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&zip_path);
            Err(e)
        }
    }
}

async fn build(
    pool: &PgPool,
    opts: &ExportOptions,
    filter: &Filter,
    zip_path: &Path,
    book_path: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Manifest, ExportError> {
    use std::sync::mpsc::sync_channel;
    let (to_read, read_rx) = tokio::sync::mpsc::channel(workers::IN_FLIGHT);
    let (to_book, book_rx) = sync_channel(workers::IN_FLIGHT);
    let (to_zip, zip_rx) = sync_channel(workers::IN_FLIGHT);
    let book = workers::spawn("export-xlsx", {
        let path = book_path.to_path_buf();
        move || workers::book(book_rx, path)
    })?;
    let zip = workers::spawn("export-csv", {
        let file = std::fs::File::create(zip_path)?;
        move || workers::zip(zip_rx, file)
    })?;
    let read = workers::spawn("export-read", {
        let to_book = to_book.clone();
        move || workers::read(read_rx, to_book, to_zip)
    })?;

    let streamed = async {
        for ledger in ledgers::ALL {
            progress(&format!("reading {}", ledger.file));
            if to_read.send(Parse::Begin(ledger)).await.is_err()
                || !copy::stream(pool, ledger, filter, &to_read).await?
            {
                return Err(ExportError::Stopped);
            }
        }
        Ok(())
    }
    .await;
    drop(to_read);
    let tallies = match (streamed, workers::joined(read).await) {
        (Ok(()), Ok(tallies)) => tallies,
        (streamed, read) => {
            drop(to_book);
            let (zip, book) = (workers::joined(zip).await, workers::joined(book).await);
            return Err(first_cause([streamed.err(), read.err(), zip.err(), book.err()]));
        }
    };

    progress("summing");
    let (summary, daily) = off_runtime(|| -> Result<_, ExportError> {
        let summary = summary::summary(summary::Partials {
            issued: tallies.partials_of(&ledgers::ISSUED),
            failures: tallies.partials_of(&ledgers::FAILURES),
            pool: tallies.partials_of(&ledgers::POOL),
            units: tallies.partials_of(&ledgers::BILLING_UNITS),
        })?;
        let daily = summary::daily_net(&summary)?;
        Ok((summary, daily))
    })?;
    progress("checking");
    let (red, remaining) = (checks::RED_POINTS_TO_BLUE, checks::REMAINING_AGREES);
    let checks = vec![
        checks::net_matches_ledger(pool, filter, &summary).await?,
        tallies.red_points_to_blue.clone().check(red.0, red.1),
        tallies.remaining_agrees.clone().check(remaining.0, remaining.1),
        checks::issued_bills_have_callback(pool, filter).await?,
    ];

    progress("writing");
    let summary_csv = package::csv(&summary, &summary::columns())?;
    let sent = to_book
        .send(ToBook::Summary { summary: summary.clone(), daily, checks: checks.clone() })
        .and_then(|()| to_book.send(ToBook::Save));
    drop(to_book);
    let (zip, book) = (workers::joined(zip).await, workers::joined(book).await);
    let mut zip = match (sent, zip, book) {
        (Ok(()), Ok(zip), Ok(())) => zip,
        (sent, zip, book) => {
            return Err(first_cause([sent.err().map(|_| ExportError::Stopped), zip.err(), book.err()]));
        }
    };

    progress("zipping");
    zip.add("summary.csv", &summary_csv, true)?;
    zip.add_file("reconciliation.xlsx", book_path, false)?;
    let manifest = Manifest {
        kind: "fapiao reconciliation export",
        generated_at: chrono::Utc::now().to_rfc3339(),
        parameters: Parameters {
            from: opts.from,
            to: opts.to,
            tax_nos: opts.tax_nos.iter().map(|t| t.as_str().to_string()).collect(),
            time_zone: opts.time_zone.name().to_string(),
        },
        row_counts: ledgers::ALL
            .iter()
            .zip(&tallies.rows)
            .map(|(l, rows)| (l.file.to_string(), *rows))
            .chain([("summary".to_string(), summary.height())])
            .collect(),
        all_checks_passed: checks.iter().all(|c| c.ok),
        checks,
        files: zip.files.clone(),
        notes: vec![
            "Amounts are summed as integer cents (exact); in the xlsx they are numbers shown with two decimals, in the CSVs decimal text.",
            "Text that would start a formula (= + - @ tab CR) carries a leading apostrophe in both formats.",
            "files lists every other file of the zip with its SHA-256; manifest.json is not in its own list.",
        ],
    };
    zip.add("manifest.json", &serde_json::to_vec_pretty(&manifest).expect("serializable"), true)?;
    let mut w = zip.finish()?;
    std::io::Write::flush(&mut w)?;
    Ok(manifest)
}

/// Of the errors of an export's parts, the one that caused the others (they only saw `Stopped`).
fn first_cause<const N: usize>(errors: [Option<ExportError>; N]) -> ExportError {
    errors
        .into_iter()
        .flatten()
        .reduce(|found, e| if matches!(found, ExportError::Stopped) { e } else { found })
        .unwrap_or(ExportError::Stopped)
}

/// Run polars' lazy engine on a thread of its own: inside a tokio runtime it would try to block
/// in place, which a current-thread runtime (the CLI's tests, `#[tokio::test]`) does not allow.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(work).join().expect("polars work does not panic"))
}

/// The path's parent must exist; the zip is written beside it and renamed into place at the end.
pub fn check_out_path(out: &Path) -> Result<(), ExportError> {
    match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if !p.is_dir() => Err(ExportError::Invalid(format!("folder {} does not exist", p.display()))),
        _ => Ok(()),
    }
}
