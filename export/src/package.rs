//! Writing the package: the workbook (summary with a chart first, then a sheet per ledger), one
//! UTF-8 CSV with BOM per ledger, and the zip with a SHA-256 of every file. Ledgers arrive in
//! chunks and are written as they come, so nothing here holds a whole ledger.

use std::io::Write;

use polars::prelude::*;
use rust_xlsxwriter::{Chart, ChartType, Format, Workbook, Worksheet};
use sha2::{Digest, Sha256};

use crate::ExportError;
use crate::ledgers::{Column, Kind, Ledger};

/// Rows per sheet (Excel's limit, less the header); a longer ledger continues on "name (2)".
const SHEET_ROWS: usize = 1_048_575;

/// One cell, as read from a column.
enum Cell<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Money(Option<i64>),
}

/// Column iterators over a DataFrame, advanced together row by row.
fn cells<'a>(
    df: &'a DataFrame,
    kinds: &[(&str, Kind)],
) -> PolarsResult<Vec<Box<dyn Iterator<Item = Cell<'a>> + 'a>>> {
    kinds
        .iter()
        .map(|(name, kind)| -> PolarsResult<Box<dyn Iterator<Item = Cell<'a>> + 'a>> {
            let c = df.column(name)?;
            Ok(match kind {
                Kind::Text => Box::new(c.str()?.iter().map(Cell::Text)),
                Kind::Int => Box::new(c.i64()?.iter().map(Cell::Int)),
                Kind::Money => Box::new(c.i64()?.iter().map(Cell::Money)),
            })
        })
        .collect()
}

/// Cents as yuan text, exactly: 12345 → "123.45".
pub fn yuan(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// The start of a CSV: BOM and the Chinese headers.
pub fn csv_head(columns: &[Column]) -> Result<Vec<u8>, ExportError> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    let mut w = ::csv::Writer::from_writer(&mut out);
    w.write_record(columns.iter().map(|c| c.header))?;
    w.flush()?;
    drop(w);
    Ok(out)
}

/// Rows of a table as CSV, appended to `out`: money as yuan with two decimals.
pub fn csv_rows(df: &DataFrame, columns: &[Column], out: &mut Vec<u8>) -> Result<(), ExportError> {
    let mut w = ::csv::Writer::from_writer(out);
    let kinds: Vec<(&str, Kind)> = columns.iter().map(|c| (c.name, c.kind)).collect();
    let mut columns = cells(df, &kinds)?;
    let mut record: Vec<String> = Vec::with_capacity(kinds.len());
    for _ in 0..df.height() {
        record.clear();
        for c in columns.iter_mut() {
            record.push(match c.next().expect("columns of equal length") {
                Cell::Text(t) => t.unwrap_or("").to_string(),
                Cell::Int(i) => i.map(|i| i.to_string()).unwrap_or_default(),
                Cell::Money(m) => m.map(yuan).unwrap_or_default(),
            });
        }
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

/// A whole table as CSV (the summary).
pub fn csv(df: &DataFrame, columns: &[Column]) -> Result<Vec<u8>, ExportError> {
    let mut out = csv_head(columns)?;
    csv_rows(df, columns, &mut out)?;
    Ok(out)
}

/// Formats shared by the sheets.
pub struct Formats {
    pub header: Format,
    pub money: Format,
}

impl Formats {
    pub fn new() -> Formats {
        Formats { header: Format::new().set_bold(), money: Format::new().set_num_format("#,##0.00") }
    }
}

impl Default for Formats {
    fn default() -> Self {
        Formats::new()
    }
}

fn write_header(sheet: &mut Worksheet, headers: &[&str], f: &Formats) -> Result<(), ExportError> {
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &f.header)?;
    }
    Ok(())
}

/// Write `count` rows of `df` from row `skip` on, into `sheet` from row `first` on; money as
/// numbers with two decimals (cents are exact integers; the cell shows them ÷ 100).
fn write_rows(
    sheet: &mut Worksheet,
    df: &DataFrame,
    kinds: &[(&str, Kind)],
    first: u32,
    skip: usize,
    count: usize,
    f: &Formats,
) -> Result<(), ExportError> {
    let mut columns = cells(df, kinds)?;
    for c in columns.iter_mut() {
        if skip > 0 {
            c.nth(skip - 1);
        }
    }
    for r in 0..count {
        let row = first + r as u32;
        for (c, col) in columns.iter_mut().enumerate() {
            let c = c as u16;
            match col.next().expect("columns of equal length") {
                Cell::Text(Some(t)) => {
                    sheet.write_string(row, c, t)?;
                }
                Cell::Int(Some(i)) => {
                    sheet.write_number(row, c, i as f64)?;
                }
                Cell::Money(Some(m)) => {
                    sheet.write_number_with_format(row, c, m as f64 / 100.0, &f.money)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A ledger going into the workbook chunk by chunk: one sheet in constant-memory mode (rows go
/// to a temporary file as they are written), continued on "name (2)" past Excel's row limit.
pub struct LedgerSheets {
    ledger: &'static Ledger,
    sheet: usize,
    part: usize,
    rows: usize,
}

impl LedgerSheets {
    /// Add the ledger's first sheet, with its header, even if no row follows.
    pub fn begin(book: &mut Workbook, ledger: &'static Ledger, f: &Formats) -> Result<Self, ExportError> {
        let mut s = LedgerSheets { ledger, sheet: 0, part: 0, rows: 0 };
        s.next_sheet(book, f)?;
        Ok(s)
    }

    fn next_sheet(&mut self, book: &mut Workbook, f: &Formats) -> Result<(), ExportError> {
        self.part += 1;
        self.rows = 0;
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name(if self.part == 1 {
            self.ledger.sheet.to_string()
        } else {
            format!("{} ({})", self.ledger.sheet, self.part)
        })?;
        let headers: Vec<&str> = self.ledger.columns.iter().map(|c| c.header).collect();
        write_header(sheet, &headers, f)?;
        self.sheet = book.worksheets().len() - 1;
        Ok(())
    }

    pub fn append(&mut self, book: &mut Workbook, df: &DataFrame, f: &Formats) -> Result<(), ExportError> {
        let kinds: Vec<(&str, Kind)> = self.ledger.columns.iter().map(|c| (c.name, c.kind)).collect();
        let mut done = 0;
        while done < df.height() {
            if self.rows == SHEET_ROWS {
                self.next_sheet(book, f)?;
            }
            let count = (SHEET_ROWS - self.rows).min(df.height() - done);
            let sheet = book.worksheet_from_index(self.sheet)?;
            write_rows(sheet, df, &kinds, self.rows as u32 + 1, done, count, f)?;
            self.rows += count;
            done += count;
        }
        Ok(())
    }
}

/// The summary's sheet, added first so that it is the workbook's first; `summary_sheet` fills it
/// once every ledger has streamed past.
pub const SUMMARY_SHEET: &str = "汇总";

pub fn add_summary_sheet(book: &mut Workbook) -> Result<(), ExportError> {
    book.add_worksheet().set_name(SUMMARY_SHEET)?;
    Ok(())
}

/// The summary sheet: the table, the failed checks under it, and a chart of daily net totals.
pub fn summary_sheet(
    book: &mut Workbook,
    summary: &DataFrame,
    daily: &DataFrame,
    checks: &[crate::checks::Check],
    f: &Formats,
) -> Result<(), ExportError> {
    let sheet = book.worksheet_from_name(SUMMARY_SHEET)?;
    let columns = crate::summary::columns();
    let kinds: Vec<(&str, Kind)> = columns.iter().map(|c| (c.name, c.kind)).collect();
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    write_header(sheet, &headers, f)?;
    let rows = summary.height().min(SHEET_ROWS);
    write_rows(sheet, summary, &kinds, 1, 0, rows, f)?;
    // The checks under the table.
    let mut r = rows as u32 + 2;
    sheet.write_string_with_format(r, 0, "核对", &f.header)?;
    for c in checks {
        r += 1;
        sheet.write_string(r, 0, if c.ok { "通过" } else { "未通过" })?;
        sheet.write_string(r, 1, c.name)?;
        sheet.write_string(r, 2, c.description)?;
        if !c.ok {
            sheet.write_string(r, 3, format!("{} 项不符：{}", c.failures, c.examples.join("；")))?;
        }
    }
    // Daily net totals to the right, and the chart over them.
    let (x, y) = (crate::summary::COLUMNS.len() as u16 + 1, crate::summary::COLUMNS.len() as u16 + 2);
    sheet.write_string_with_format(0, x, "日期", &f.header)?;
    sheet.write_string_with_format(0, y, "每日净额", &f.header)?;
    let days = daily.column("day")?.str()?;
    let nets = daily.column("net_total")?.i64()?;
    for (i, (d, n)) in days.iter().zip(nets.iter()).enumerate() {
        sheet.write_string(i as u32 + 1, x, d.unwrap_or(""))?;
        sheet.write_number_with_format(i as u32 + 1, y, n.unwrap_or(0) as f64 / 100.0, &f.money)?;
    }
    if daily.height() > 0 {
        let last = daily.height() as u32;
        let mut chart = Chart::new(ChartType::Column);
        chart.title().set_name("每日净额（蓝−红）");
        chart
            .add_series()
            .set_categories(("汇总", 1, x, last, x))
            .set_values(("汇总", 1, y, last, y))
            .set_name("净额");
        chart.legend().set_hidden();
        sheet.insert_chart(r + 2, 0, &chart)?;
    }
    Ok(())
}

/// The zip being written: each file stored with its SHA-256 and size for the manifest.
pub struct Package<W: Write + std::io::Seek> {
    zip: ::zip::ZipWriter<W>,
    pub files: Vec<FileEntry>,
    /// The file being written: its name, its hash so far and its size so far.
    current: Option<(String, Sha256, u64)>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl<W: Write + std::io::Seek> Package<W> {
    pub fn new(w: W) -> Package<W> {
        Package { zip: ::zip::ZipWriter::new(w), files: Vec::new(), current: None }
    }

    /// Start a file; `compress` false for content that is compressed already (xlsx). Its bytes
    /// follow with `write`, and `end` records its size and SHA-256.
    pub fn start(&mut self, name: &str, compress: bool, large: bool) -> Result<(), ExportError> {
        let method =
            if compress { ::zip::CompressionMethod::Deflated } else { ::zip::CompressionMethod::Stored };
        let options = ::zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .compression_level(compress.then_some(1))
            .large_file(large);
        self.zip.start_file(name, options)?;
        self.current = Some((name.to_string(), Sha256::new(), 0));
        Ok(())
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        let (_, sha, size) = self.current.as_mut().expect("a file was started");
        sha.update(bytes);
        *size += bytes.len() as u64;
        self.zip.write_all(bytes)?;
        Ok(())
    }

    pub fn end(&mut self) {
        if let Some((name, sha, bytes)) = self.current.take() {
            self.files.push(FileEntry { name, bytes, sha256: format!("{:x}", sha.finalize()) });
        }
    }

    /// Add a whole file from memory.
    pub fn add(&mut self, name: &str, content: &[u8], compress: bool) -> Result<(), ExportError> {
        self.start(name, compress, content.len() > u32::MAX as usize / 2)?;
        self.write(content)?;
        self.end();
        Ok(())
    }

    /// Add a file from disk, streamed.
    pub fn add_file(
        &mut self,
        name: &str,
        path: &std::path::Path,
        compress: bool,
    ) -> Result<(), ExportError> {
        let mut file = std::fs::File::open(path)?;
        self.start(name, compress, file.metadata()?.len() > u64::from(u32::MAX) / 2)?;
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            self.write(&buf[..n])?;
        }
        self.end();
        Ok(())
    }

    pub fn finish(mut self) -> Result<W, ExportError> {
        self.end();
        Ok(self.zip.finish()?)
    }
}
