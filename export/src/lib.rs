//! Reconciliation export for auditors (SPEC.md "Reconciliation export"): every ledger of a period
//! moves PostgreSQL → polars in bulk (`COPY … TO STDOUT` into polars' CSV reader), the summary is
//! shaped and summed in polars over integer cents, the checks compare what must agree, and one
//! zip holds `reconciliation.xlsx` (summary with a chart first, then a sheet per ledger), the same
//! ledgers as UTF-8 CSV with BOM, and `manifest.json` (parameters, row counts, checks, SHA-256s).

pub mod checks;
pub mod floor;
pub mod ledgers;
mod load;
pub mod package;
pub mod summary;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use fapiao_schemas::TaxNo;
use serde::Serialize;
use sqlx::PgPool;

use crate::checks::Check;
use crate::ledgers::Filter;
use crate::package::{FileEntry, Formats, Package};

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

/// Build the package. `progress` hears each step's name as it starts.
pub async fn export(
    pool: &PgPool,
    opts: &ExportOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ExportReport, ExportError> {
    let filter = opts.filter()?;
    let mut frames = Vec::with_capacity(ledgers::ALL.len());
    for ledger in ledgers::ALL {
        progress(&format!("reading {}", ledger.file));
        frames.push(load::ledger(pool, ledger, &filter).await?);
    }
    let frame =
        |l: &ledgers::Ledger| &frames[ledgers::ALL.iter().position(|x| x.file == l.file).expect("listed")];
    progress("summing");
    let (summary, daily, red_check, remaining_check) = off_runtime(|| -> Result<_, ExportError> {
        let summary = summary::summary(
            frame(&ledgers::ISSUED),
            frame(&ledgers::FAILURES),
            frame(&ledgers::POOL),
            frame(&ledgers::BILLING_UNITS),
        )?;
        let daily = summary::daily_net(&summary)?;
        Ok((
            summary,
            daily,
            checks::red_points_to_blue(frame(&ledgers::RED_FLUSHES))?,
            checks::remaining_agrees(frame(&ledgers::ISSUED))?,
        ))
    })?;
    progress("checking");
    let checks = vec![
        checks::net_matches_ledger(pool, &filter, &summary).await?,
        red_check,
        remaining_check,
        checks::issued_bills_have_callback(pool, &filter).await?,
    ];

    // The workbook and the CSVs are independent: build them on two threads.
    progress("writing");
    let (xlsx, csvs) = std::thread::scope(|s| {
        let book = s.spawn(|| -> Result<Vec<u8>, ExportError> {
            let f = Formats::new();
            let mut book = rust_xlsxwriter::Workbook::new();
            // Fast deflate: the zip around it does not compress the workbook again.
            book.set_zip_compression_level(1);
            package::summary_sheet(&mut book, &summary, &daily, &checks, &f)?;
            for (ledger, df) in ledgers::ALL.iter().zip(&frames) {
                package::ledger_sheets(&mut book, df, ledger, &f)?;
            }
            Ok(book.save_to_buffer()?)
        });
        let csvs: Result<Vec<(String, Vec<u8>)>, ExportError> = ledgers::ALL
            .iter()
            .zip(&frames)
            .map(|(l, df)| Ok((format!("{}.csv", l.file), package::csv(df, l.columns)?)))
            .collect();
        (book.join().expect("the workbook thread does not panic"), csvs)
    });
    let (xlsx, csvs) = (xlsx?, csvs?);
    let summary_csv = package::csv(&summary, &summary::columns())?;

    progress("zipping");
    let tmp = opts.out.with_extension("zip.partial");
    let file = std::fs::File::create(&tmp)?;
    let mut zip = Package::new(std::io::BufWriter::new(file));
    zip.add("reconciliation.xlsx", &xlsx, false)?;
    zip.add("summary.csv", &summary_csv, true)?;
    for (name, bytes) in &csvs {
        zip.add(name, bytes, true)?;
    }
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
            .zip(&frames)
            .map(|(l, df)| (l.file.to_string(), df.height()))
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
    drop(w);
    std::fs::rename(&tmp, &opts.out)?;
    Ok(ExportReport { path: opts.out.clone(), manifest })
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
