//! Writing the package: the workbook (summary with a chart first, then a sheet per ledger), one
//! UTF-8 CSV with BOM per ledger, and the zip with a SHA-256 of every file.

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

/// A table as CSV: BOM, the Chinese headers, money as yuan with two decimals.
pub fn csv(df: &DataFrame, columns: &[Column]) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::with_capacity(df.height() * 128 + 1024);
    out.extend_from_slice("\u{feff}".as_bytes());
    {
        let mut w = ::csv::Writer::from_writer(&mut out);
        w.write_record(columns.iter().map(|c| c.header))?;
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
    }
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

/// Write `df` under `headers` from row 0 of `sheet`, money as numbers with two decimals (cents
/// are exact integers; the cell shows them ÷ 100). Returns rows written; stops at `limit`.
fn write_rows(
    sheet: &mut Worksheet,
    df: &DataFrame,
    kinds: &[(&str, Kind)],
    headers: &[&str],
    skip: usize,
    limit: usize,
    f: &Formats,
) -> Result<usize, ExportError> {
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, *h, &f.header)?;
    }
    let mut columns = cells(df, kinds)?;
    for c in columns.iter_mut() {
        if skip > 0 {
            c.nth(skip - 1);
        }
    }
    let rows = (df.height() - skip).min(limit);
    for r in 0..rows {
        let row = r as u32 + 1;
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
    Ok(rows)
}

/// A ledger as one sheet (or several, past Excel's row limit).
pub fn ledger_sheets(
    book: &mut Workbook,
    df: &DataFrame,
    ledger: &Ledger,
    f: &Formats,
) -> Result<(), ExportError> {
    let kinds: Vec<(&str, Kind)> = ledger.columns.iter().map(|c| (c.name, c.kind)).collect();
    let headers: Vec<&str> = ledger.columns.iter().map(|c| c.header).collect();
    let mut done = 0;
    let mut part = 1;
    loop {
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name(if part == 1 {
            ledger.sheet.to_string()
        } else {
            format!("{} ({part})", ledger.sheet)
        })?;
        done += write_rows(sheet, df, &kinds, &headers, done, SHEET_ROWS, f)?;
        if done >= df.height() {
            return Ok(());
        }
        part += 1;
    }
}

/// The summary sheet: the table, the failed checks under it, and a chart of daily net totals.
pub fn summary_sheet(
    book: &mut Workbook,
    summary: &DataFrame,
    daily: &DataFrame,
    checks: &[crate::checks::Check],
    f: &Formats,
) -> Result<(), ExportError> {
    let sheet = book.add_worksheet();
    sheet.set_name("汇总")?;
    let columns = crate::summary::columns();
    let kinds: Vec<(&str, Kind)> = columns.iter().map(|c| (c.name, c.kind)).collect();
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    let rows = write_rows(sheet, summary, &kinds, &headers, 0, SHEET_ROWS, f)?;
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
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl<W: Write + std::io::Seek> Package<W> {
    pub fn new(w: W) -> Package<W> {
        Package { zip: ::zip::ZipWriter::new(w), files: Vec::new() }
    }

    /// Add a file; `compress` false for content that is compressed already (xlsx).
    pub fn add(&mut self, name: &str, content: &[u8], compress: bool) -> Result<(), ExportError> {
        let method =
            if compress { ::zip::CompressionMethod::Deflated } else { ::zip::CompressionMethod::Stored };
        let options = ::zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .compression_level(compress.then_some(1))
            .large_file(content.len() > u32::MAX as usize / 2);
        self.zip.start_file(name, options)?;
        self.zip.write_all(content)?;
        self.files.push(FileEntry {
            name: name.into(),
            bytes: content.len() as u64,
            sha256: format!("{:x}", Sha256::digest(content)),
        });
        Ok(())
    }

    pub fn finish(self) -> Result<W, ExportError> {
        Ok(self.zip.finish()?)
    }
}
