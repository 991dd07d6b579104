//! The threads of an export. The COPY streams run on the caller's runtime and hand chunks of CSV
//! records to a reading thread, which parses each chunk into a DataFrame, sums it for the summary,
//! checks its rows, and passes it on to two writers working side by side: the workbook's thread
//! (constant-memory sheets, saved to a temporary file at the end) and the zip's thread (the
//! ledgers' CSVs, deflated as they come). Channels of two chunks keep memory flat: a slow writer
//! holds the COPY back instead of letting rows pile up.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use polars::prelude::*;
use rust_xlsxwriter::Workbook;
use tokio::sync::{mpsc, oneshot};

use crate::ExportError;
use crate::checks::{self, Check, Tally};
use crate::copy;
use crate::ledgers::{self, Ledger};
use crate::package::{self, Formats, LedgerSheets, Package};
use crate::summary;

/// Chunks in flight between two threads.
pub const IN_FLIGHT: usize = 2;

/// To the reading thread.
pub enum Parse {
    Begin(&'static Ledger),
    Rows(Vec<u8>),
}

/// To the workbook's thread.
pub enum ToBook {
    Begin(&'static Ledger),
    Rows(Arc<DataFrame>),
    Summary {
        summary: DataFrame,
        daily: DataFrame,
        checks: Vec<Check>,
    },
    /// Everything is written: save the workbook. Without it (an export that failed) nothing is.
    Save,
}

/// To the zip's thread.
pub enum ToZip {
    Begin(&'static Ledger),
    Rows(Arc<DataFrame>),
}

/// What the reading thread learnt from every row: counts, partial sums and the row checks.
pub struct Tallies {
    /// Per ledger, in the order of `ledgers::ALL`.
    pub rows: Vec<usize>,
    pub partials: Vec<Vec<DataFrame>>,
    pub red_points_to_blue: Tally,
    pub remaining_agrees: Tally,
}

impl Tallies {
    fn new() -> Tallies {
        Tallies {
            rows: vec![0; ledgers::ALL.len()],
            partials: vec![Vec::new(); ledgers::ALL.len()],
            red_points_to_blue: Tally::default(),
            remaining_agrees: Tally::default(),
        }
    }

    fn count(&mut self, index: usize, ledger: &Ledger, rows: &DataFrame) -> PolarsResult<()> {
        self.rows[index] += rows.height();
        if let Some(part) = summary::partial(ledger, rows)? {
            self.partials[index].push(part);
        }
        if ledger.file == ledgers::RED_FLUSHES.file {
            checks::red_points_to_blue(rows, &mut self.red_points_to_blue)?;
        }
        if ledger.file == ledgers::ISSUED.file {
            checks::remaining_agrees(rows, &mut self.remaining_agrees)?;
        }
        Ok(())
    }

    pub fn partials_of(&self, ledger: &Ledger) -> &[DataFrame] {
        &self.partials[index_of(ledger)]
    }
}

fn index_of(ledger: &Ledger) -> usize {
    ledgers::ALL.iter().position(|l| l.file == ledger.file).expect("a listed ledger")
}

/// A peer thread has stopped; its own error is the one to report.
fn stopped<T>(_: T) -> ExportError {
    ExportError::Stopped
}

/// Run `work` on a thread of its own (polars' lazy engine would try to block in place inside a
/// tokio runtime, which a current-thread runtime does not allow); its result arrives by channel.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T, ExportError> + Send + 'static,
) -> Result<oneshot::Receiver<Result<T, ExportError>>, ExportError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = tx.send(work());
    })?;
    Ok(rx)
}

/// Wait for a thread's result; a thread that panicked stopped without one.
pub async fn joined<T>(rx: oneshot::Receiver<Result<T, ExportError>>) -> Result<T, ExportError> {
    rx.await.unwrap_or(Err(ExportError::Invalid("an export thread panicked".into())))
}

/// The reading thread: parse, count, sum, check, pass on.
pub fn read(
    mut from: mpsc::Receiver<Parse>,
    book: SyncSender<ToBook>,
    zip: SyncSender<ToZip>,
) -> Result<Tallies, ExportError> {
    let mut tallies = Tallies::new();
    let mut current: Option<(usize, &'static Ledger)> = None;
    while let Some(message) = from.blocking_recv() {
        match message {
            Parse::Begin(ledger) => {
                let index = index_of(ledger);
                current = Some((index, ledger));
                book.send(ToBook::Begin(ledger)).map_err(stopped)?;
                zip.send(ToZip::Begin(ledger)).map_err(stopped)?;
                // An empty frame first, so that every ledger has a typed partial even without rows.
                tallies.count(index, ledger, &copy::parse(ledger, Vec::new())?)?;
            }
            Parse::Rows(records) => {
                let (index, ledger) = current.expect("rows follow their ledger's Begin");
                let rows = Arc::new(copy::parse(ledger, records)?);
                tallies.count(index, ledger, &rows)?;
                book.send(ToBook::Rows(rows.clone())).map_err(stopped)?;
                zip.send(ToZip::Rows(rows)).map_err(stopped)?;
            }
        }
    }
    Ok(tallies)
}

/// The workbook's thread: the summary sheet first (filled last), a sheet per ledger as its
/// chunks come, saved to `path` on `Save`.
pub fn book(from: Receiver<ToBook>, path: PathBuf) -> Result<(), ExportError> {
    let f = Formats::new();
    let mut book = Workbook::new();
    // Fast deflate: the zip around it does not compress the workbook again.
    book.set_zip_compression_level(1);
    package::add_summary_sheet(&mut book)?;
    let mut sheets: Option<LedgerSheets> = None;
    for message in from {
        match message {
            ToBook::Begin(ledger) => sheets = Some(LedgerSheets::begin(&mut book, ledger, &f)?),
            ToBook::Rows(rows) => sheets.as_mut().expect("rows follow Begin").append(&mut book, &rows, &f)?,
            ToBook::Summary { summary, daily, checks } => {
                package::summary_sheet(&mut book, &summary, &daily, &checks, &f)?
            }
            ToBook::Save => {
                book.save(&path)?;
                return Ok(());
            }
        }
    }
    Err(ExportError::Stopped)
}

/// The zip's thread: each ledger's CSV, written into the zip as its chunks come.
pub fn zip(from: Receiver<ToZip>, out: File) -> Result<Package<BufWriter<File>>, ExportError> {
    let mut zip = Package::new(BufWriter::new(out));
    let mut columns: &[ledgers::Column] = &[];
    let mut text = Vec::with_capacity(copy::CHUNK_BYTES * 2);
    for message in from {
        match message {
            ToZip::Begin(ledger) => {
                zip.end();
                zip.start(&format!("{}.csv", ledger.file), true, true)?;
                zip.write(&package::csv_head(ledger.columns)?)?;
                columns = ledger.columns;
            }
            ToZip::Rows(rows) => {
                text.clear();
                package::csv_rows(&rows, columns, &mut text)?;
                zip.write(&text)?;
            }
        }
    }
    zip.end();
    Ok(zip)
}
