//! Reading a file into rows of `Cell`s, row numbers as the sheet shows them (header = 1).
//!
//! `.xlsx` is streamed cell by cell (calamine's cells reader: memory stays flat for a million
//! lines); `.xls`, `.xlsb`, `.ods` go through calamine's range reader; `.csv` may be UTF-8 (with
//! or without BOM) or GBK. Merged regions repeat their top-left value in every cell they cover,
//! so a 单据编号 merged over its lines reaches every line. Entirely empty rows are skipped.
//!
//! A zipped workbook is first inflated once by the guard (`guard::inspect`), which refuses
//! decompression bombs before calamine holds anything of them and tells on the way whether a
//! worksheet has merged regions — an xlsx sheet lists them after all its cells, so only a sheet
//! that has them is parsed for them before its rows stream.

use std::collections::HashMap;
use std::path::Path;

use calamine::{Data, DataRef, Dimensions, Reader, Xlsx, open_workbook, open_workbook_auto};
use fapiao_schemas::template::{Cell, normalize_text};

use super::guard::{self, ReadLimits, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("sheet {0:?} not found")]
    NoSheet(String),
    #[error("the file holds no data")]
    Empty,
    /// A header row and nothing under it: refused like an empty file, no batch.
    #[error("{}", fapiao_schemas::messages::NO_DATA_ROWS)]
    NoDataRows,
    #[error("unsupported file type {0:?}; use .xlsx, .xls, .xlsb, .ods or .csv")]
    UnsupportedType(String),
    #[error("stopped")]
    Stopped,
    /// Beyond what an import may hold (`[import]` limits): refused before it is read.
    #[error("{0}")]
    Refused(Refusal),
}

impl ReadError {
    /// Stable English code.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::Refused(r) => r.code(),
            _ => "FILE_UNREADABLE",
        }
    }
}

fn open_err(path: &Path, e: impl std::fmt::Display) -> ReadError {
    ReadError::Open { path: path.display().to_string(), detail: e.to_string() }
}

/// Call `each(row_no, cells)` for every non-empty row; `each` returns false to stop. A zipped
/// workbook beyond `limits` is refused before it is read.
pub fn read(
    path: &Path,
    sheet: Option<&str>,
    limits: &ReadLimits,
    mut each: impl FnMut(u32, Vec<Cell>) -> bool,
) -> Result<(), ReadError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "xlsx" | "xlsm" => {
            let inspection = guard::inspect(path, limits)?;
            read_xlsx(path, sheet, inspection.merged_cells, &mut each)
        }
        "xlsb" | "ods" => {
            guard::inspect(path, limits)?;
            read_range(path, sheet, &mut each)
        }
        "xls" => read_range(path, sheet, &mut each),
        "csv" => read_csv(path, &mut each),
        other => Err(ReadError::UnsupportedType(other.into())),
    }
}

/// SHA-256 of the file's bytes (a file lands once), streamed through a 64 KiB buffer: the file
/// is never whole in memory.
pub fn content_hash(path: &Path) -> Result<String, ReadError> {
    use sha2::{Digest, Sha256};
    let file = std::fs::File::open(path).map_err(|e| open_err(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::io::BufReader::with_capacity(1 << 16, file), &mut hasher)
        .map_err(|e| open_err(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn emit(
    row_no: u32,
    cells: Vec<Cell>,
    each: &mut impl FnMut(u32, Vec<Cell>) -> bool,
) -> Result<(), ReadError> {
    if cells
        .iter()
        .all(|c| matches!(c, Cell::Empty) || matches!(c, Cell::Text(t) if normalize_text(t).is_empty()))
    {
        return Ok(());
    }
    if each(row_no, cells) { Ok(()) } else { Err(ReadError::Stopped) }
}

fn from_data(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Number(i.to_string()),
        Data::Float(f) => Cell::from_f64(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => {
            dt.as_datetime().map(|t| Cell::Date(t.date())).unwrap_or_else(|| Cell::from_f64(dt.as_f64()))
        }
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Error(e) => Cell::Error(e.to_string()),
    }
}

/// The streaming reader's borrowed cell, converted like any other.
pub(crate) fn from_data_ref(d: &DataRef<'_>) -> Cell {
    match d {
        // The common case (shared strings) without an owned round trip through `Data`.
        DataRef::SharedString(s) => Cell::Text((*s).to_string()),
        other => from_data(&Data::from(other.clone())),
    }
}

fn read_xlsx(
    path: &Path,
    sheet: Option<&str>,
    with_merges: bool,
    each: &mut impl FnMut(u32, Vec<Cell>) -> bool,
) -> Result<(), ReadError> {
    let mut book: Xlsx<_> = open_workbook(path).map_err(|e| open_err(path, e))?;
    let name = match sheet {
        Some(s) => {
            book.sheet_names().into_iter().find(|n| n == s).ok_or_else(|| ReadError::NoSheet(s.into()))?
        }
        None => first_non_empty_xlsx(&mut book)?,
    };
    let mut merged = if with_merges {
        MergedRegions::new(book.merge_cells_by_sheet_name(&name).map_err(|e| open_err(path, e))?)
    } else {
        MergedRegions::new(Vec::new())
    };
    let mut reader = book.worksheet_cells_reader(&name).map_err(|e| open_err(path, e))?;
    let mut current: Option<u32> = None;
    let mut row: Vec<Cell> = Vec::new();
    let mut finish_row = |r: u32, row: &mut Vec<Cell>, merged: &mut MergedRegions| {
        merged.fill(r, row);
        let cells = std::mem::take(row);
        if cells.iter().all(|c| matches!(c, Cell::Empty)) { true } else { each(r + 1, cells) }
    };
    while let Some(cell) = reader.next_cell().map_err(|e| open_err(path, e))? {
        let (r, c) = cell.get_position();
        if current != Some(r) {
            if let Some(prev) = current
                && !finish_row(prev, &mut row, &mut merged)
            {
                return Err(ReadError::Stopped);
            }
            current = Some(r);
        }
        let value = from_data_ref(cell.get_value());
        merged.seen(r, c, &value);
        if row.len() <= c as usize {
            row.resize(c as usize + 1, Cell::Empty);
        }
        row[c as usize] = value;
    }
    match current {
        Some(last) if !finish_row(last, &mut row, &mut merged) => Err(ReadError::Stopped),
        Some(_) => Ok(()),
        None => Err(ReadError::Empty),
    }
}

/// A sheet's merged regions as its rows stream by (rows in increasing order): the regions a row
/// is in are the active ones, an anchor's value is kept only while its region lasts, and a
/// region fills no further right than the widest row read — so neither memory nor time grows
/// with the area a region claims (`A2:XFD1048576` is one region, not 17 billion cells).
struct MergedRegions {
    /// By first row, the next one to start last.
    pending: Vec<Dimensions>,
    active: Vec<Dimensions>,
    /// Values of the active regions' anchors, by anchor.
    anchors: HashMap<(u32, u32), Cell>,
    widest: usize,
}

impl MergedRegions {
    fn new(mut regions: Vec<Dimensions>) -> MergedRegions {
        regions.sort_by_key(|d| std::cmp::Reverse(d.start));
        MergedRegions { pending: regions, active: Vec::new(), anchors: HashMap::new(), widest: 0 }
    }

    /// A cell was read: remember it when it anchors a region.
    fn seen(&mut self, r: u32, c: u32, value: &Cell) {
        self.start_rows_to(r);
        if self.active.iter().any(|d| d.start == (r, c)) {
            self.anchors.insert((r, c), value.clone());
        }
    }

    fn start_rows_to(&mut self, r: u32) {
        while self.pending.last().is_some_and(|d| d.start.0 <= r) {
            let d = self.pending.pop().expect("a pending region");
            self.active.push(d);
        }
    }

    /// Row `r` is complete: its empty cells inside a region take the region's anchor value.
    fn fill(&mut self, r: u32, row: &mut Vec<Cell>) {
        self.widest = self.widest.max(row.len());
        if self.pending.is_empty() && self.active.is_empty() {
            return;
        }
        self.start_rows_to(r);
        for d in &self.active {
            if d.start.0 > r || d.end.0 < r {
                continue;
            }
            let Some(v) = self.anchors.get(&d.start) else { continue };
            let last = (d.end.1 as usize).min(self.widest.saturating_sub(1));
            for c in d.start.1 as usize..=last {
                if (r, c as u32) == d.start {
                    continue;
                }
                if row.len() <= c {
                    row.resize(c + 1, Cell::Empty);
                }
                if matches!(row[c], Cell::Empty) {
                    row[c] = v.clone();
                }
            }
        }
        // Regions whose last row this was end here, with their anchors.
        let anchors = &mut self.anchors;
        self.active.retain(|d| {
            let lasts = d.end.0 > r;
            if !lasts {
                anchors.remove(&d.start);
            }
            lasts
        });
    }
}

fn first_non_empty_xlsx<RS: std::io::Read + std::io::Seek>(book: &mut Xlsx<RS>) -> Result<String, ReadError> {
    for name in book.sheet_names() {
        let mut reader = book
            .worksheet_cells_reader(&name)
            .map_err(|e| ReadError::Open { path: name.clone(), detail: e.to_string() })?;
        while let Some(cell) =
            reader.next_cell().map_err(|e| ReadError::Open { path: name.clone(), detail: e.to_string() })?
        {
            if !matches!(cell.get_value(), DataRef::Empty) {
                return Ok(name);
            }
        }
    }
    Err(ReadError::Empty)
}

fn read_range(
    path: &Path,
    sheet: Option<&str>,
    each: &mut impl FnMut(u32, Vec<Cell>) -> bool,
) -> Result<(), ReadError> {
    let mut book = open_workbook_auto(path).map_err(|e| open_err(path, e))?;
    let names = book.sheet_names();
    let mut chosen = None;
    for name in names.iter().filter(|n| sheet.is_none_or(|s| s == n.as_str())) {
        let range = book.worksheet_range(name).map_err(|e| open_err(path, e))?;
        if !range.is_empty() {
            chosen = Some(range);
            break;
        }
    }
    let range = match (chosen, sheet) {
        (Some(r), _) => r,
        (None, Some(s)) if !names.iter().any(|n| n == s) => return Err(ReadError::NoSheet(s.into())),
        (None, _) => return Err(ReadError::Empty),
    };
    let (start_row, start_col) = range.start().unwrap_or((0, 0));
    for (i, cells) in range.rows().enumerate() {
        let mut row = vec![Cell::Empty; start_col as usize];
        row.extend(cells.iter().map(from_data));
        emit(start_row + i as u32 + 1, row, each)?;
    }
    Ok(())
}

fn read_csv(path: &Path, each: &mut impl FnMut(u32, Vec<Cell>) -> bool) -> Result<(), ReadError> {
    let bytes = std::fs::read(path).map_err(|e| open_err(path, e))?;
    let (bytes, encoding) = csv_encoding(&bytes);
    // Split the raw bytes, then decode each field on its own: a byte the encoding cannot decode
    // is that cell's problem (`Cell::Undecodable`), never a silent U+FFFD. GBK's second bytes
    // (0x40–0xFE) and GB18030's (0x30–0x39) are never a comma, quote or line break, so
    // splitting before decoding cuts no character in two.
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut any = false;
    for (i, record) in reader.byte_records().enumerate() {
        let record = record.map_err(|e| open_err(path, e))?;
        any = true;
        let row = record.iter().map(|field| csv_cell(field, encoding)).collect();
        emit(i as u32 + 1, row, each)?;
    }
    if any { Ok(()) } else { Err(ReadError::Empty) }
}

/// The CSV's encoding and its bytes without a BOM. UTF-8 with a BOM, or valid UTF-8 throughout,
/// is UTF-8. Otherwise the fields with bytes beyond ASCII vote: Chinese text in GBK is almost
/// never valid UTF-8, so a UTF-8 file with a few broken fields stays UTF-8 (its broken fields
/// then refused) rather than being read as GBK mojibake from end to end.
fn csv_encoding(bytes: &[u8]) -> (&[u8], &'static encoding_rs::Encoding) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (rest, encoding_rs::UTF_8);
    }
    if std::str::from_utf8(bytes).is_ok() {
        return (bytes, encoding_rs::UTF_8);
    }
    let (mut utf8, mut not_utf8) = (0usize, 0usize);
    for field in bytes.split(|b| matches!(b, b',' | b'\n' | b'\r')).filter(|f| !f.is_ascii()) {
        if std::str::from_utf8(field).is_ok() { utf8 += 1 } else { not_utf8 += 1 }
    }
    // Excel on Chinese Windows saves CSV as GBK (GB18030 is its superset).
    (bytes, if utf8 > not_utf8 { encoding_rs::UTF_8 } else { encoding_rs::GB18030 })
}

fn csv_cell(field: &[u8], encoding: &'static encoding_rs::Encoding) -> Cell {
    if field.is_empty() {
        return Cell::Empty;
    }
    match encoding.decode_without_bom_handling_and_without_replacement(field) {
        Some(text) => Cell::Text(text.into_owned()),
        None => Cell::Undecodable(encoding.decode_without_bom_handling(field).0.into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    /// Rows arrive in order, some rows have no cells at all; a region fills only the rows it
    /// spans, only empty cells, no further right than the widest row read.
    #[test]
    fn merged_regions_fill_the_rows_they_span() {
        let region = |start: (u32, u32), end: (u32, u32)| Dimensions { start, end };
        let mut m = MergedRegions::new(vec![region((1, 0), (2, 0)), region((4, 1), (4, 16383))]);
        let mut header = vec![text("a"), text("b"), text("c")];
        m.fill(0, &mut header);
        let mut row1 = vec![text("M1"), text("x")];
        m.seen(1, 0, &row1[0]);
        m.fill(1, &mut row1);
        let mut row2 = vec![Cell::Empty, text("y")];
        m.fill(2, &mut row2);
        assert_eq!(row2, vec![text("M1"), text("y")]);
        // Row 3 had no cells; row 5 is past the first region.
        let mut row4 = vec![Cell::Empty, text("W")];
        m.seen(4, 1, &row4[1]);
        m.fill(4, &mut row4);
        assert_eq!(row4, vec![Cell::Empty, text("W"), text("W")], "as wide as the header, no wider");
        let mut row5 = vec![Cell::Empty, Cell::Empty, text("z")];
        m.fill(5, &mut row5);
        assert_eq!(row5, vec![Cell::Empty, Cell::Empty, text("z")]);
        assert!(m.active.is_empty() && m.anchors.is_empty());
    }
}
