//! The reading thread: rows from the file → each field converted, the rules of one row applied,
//! and the staging table's COPY text written — handed to the loader a chunk at a time, so the
//! loader's database work overlaps the reading of the next rows.

use std::path::PathBuf;

use fapiao_schemas::ImportKind;
use fapiao_schemas::template::{Cell, Column, ColumnMap, Template, Value};
use tokio::sync::mpsc;

use super::guard::ReadLimits;
use super::read::{self, ReadError};
use super::rules::{KindRules, Values};
use super::{ImportError, Problem};

/// Rows per chunk: large enough that a COPY's start-up does not count, small enough that a few
/// chunks in flight keep memory flat.
const CHUNK_ROWS: usize = 8_192;
/// Chunks read ahead of the loader. Since parsing and converting run apart the reader keeps up
/// with the database and this channel stays full: at 3 a million-line import peaked at 110–133
/// MiB (the round-2 bound is 128), at 2 one chunk (about 8 MiB of staged rows) less.
const CHUNKS_AHEAD: usize = 2;

/// One data row as staged.
pub(super) struct StagedRow {
    pub row_no: u32,
    /// Each template field's value as COPY text, in template order (`None` = NULL: empty or refused).
    pub values: Vec<Option<String>>,
    /// A cell or a rule of this row was refused.
    pub refused: bool,
}

#[derive(Default)]
pub(super) struct Chunk {
    pub rows: Vec<StagedRow>,
    /// The rows as CSV for `COPY import_stage (row_no, <fields>) FROM STDIN (FORMAT csv)`.
    pub copy: Vec<u8>,
    pub problems: Vec<Problem>,
}

enum Msg {
    /// The header row as read, and what it maps to.
    Header {
        headers: Vec<String>,
        columns: ColumnMap,
    },
    Chunk(Chunk),
    Failed(ImportError),
}

/// One pass over the file by the reading thread, as the loader sees it.
pub(super) struct Reading {
    rx: mpsc::Receiver<Msg>,
}

impl Reading {
    /// Start reading `path` on a thread of its own; `staged` are the positions (in template
    /// order) of the fields the staging table keeps.
    pub fn start(
        path: PathBuf,
        sheet: Option<String>,
        limits: ReadLimits,
        template: Template,
        kind: ImportKind,
        staged: Vec<usize>,
    ) -> Reading {
        Reading { rx: spawn(path, sheet, limits, template, kind, staged) }
    }

    /// The header row as read and what it maps to: the thread's first message.
    pub async fn header(&mut self) -> Result<(Vec<String>, ColumnMap), ImportError> {
        match self.rx.recv().await {
            Some(Msg::Header { headers, columns }) => Ok((headers, columns)),
            Some(Msg::Failed(e)) => Err(e),
            Some(Msg::Chunk(_)) | None => Err(ReadError::Empty.into()),
        }
    }

    /// The next chunk of rows; `None` once the file was read to its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Chunk>, ImportError> {
        match self.rx.recv().await {
            Some(Msg::Chunk(chunk)) => Ok(Some(chunk)),
            Some(Msg::Failed(e)) => Err(e),
            Some(Msg::Header { .. }) => unreachable!("one header, first"),
            None => Ok(None),
        }
    }
}

/// Rows the parsing thread hands over at a time, and batches it may run ahead.
const RAW_ROWS: usize = 1_024;
const RAW_AHEAD: usize = 2;

/// Cells as parsed, from the parsing thread to the converting one.
enum Raw {
    Rows(Vec<(u32, Vec<Cell>)>),
    Failed(ReadError),
}

/// Two threads: one parses the file (calamine, after the guard), the other converts and checks
/// each row and writes the COPY text. Measured on a million lines, parsing and converting on one
/// thread kept it busy for the whole read while the database waited; apart, each has a core.
fn spawn(
    path: PathBuf,
    sheet: Option<String>,
    limits: ReadLimits,
    template: Template,
    kind: ImportKind,
    staged: Vec<usize>,
) -> mpsc::Receiver<Msg> {
    let (tx, rx) = mpsc::channel::<Msg>(CHUNKS_AHEAD);
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Raw>(RAW_AHEAD);
    tokio::task::spawn_blocking(move || parse(&path, sheet.as_deref(), &limits, &raw_tx));
    tokio::task::spawn_blocking(move || convert(raw_rx, &tx, &template, kind, &staged));
    rx
}

/// The parsing thread: rows in batches until the file ends, the converter stops listening, or
/// the read fails.
fn parse(
    path: &std::path::Path,
    sheet: Option<&str>,
    limits: &ReadLimits,
    out: &std::sync::mpsc::SyncSender<Raw>,
) {
    let mut batch = Vec::with_capacity(RAW_ROWS);
    let result = read::read(path, sheet, limits, |row_no, cells| {
        batch.push((row_no, cells));
        batch.len() < RAW_ROWS
            || out.send(Raw::Rows(std::mem::replace(&mut batch, Vec::with_capacity(RAW_ROWS)))).is_ok()
    });
    let _ = match result {
        Ok(()) if batch.is_empty() => Ok(()),
        Ok(()) => out.send(Raw::Rows(batch)),
        Err(ReadError::Stopped) => Ok(()),
        Err(e) => out.send(Raw::Failed(e)),
    };
}

/// The converting thread: the first row is the header, every other one is staged; chunks go to
/// the loader as they fill.
fn convert(
    rows: std::sync::mpsc::Receiver<Raw>,
    tx: &mpsc::Sender<Msg>,
    template: &Template,
    kind: ImportKind,
    staged: &[usize],
) {
    let fields: Vec<String> = template.columns.iter().map(|c| c.field.clone()).collect();
    let mut columns: Option<ColumnMap> = None;
    let mut chunk = Chunk::default();
    for raw in rows {
        let batch = match raw {
            Raw::Rows(batch) => batch,
            Raw::Failed(e) => {
                let _ = tx.blocking_send(Msg::Failed(e.into()));
                return;
            }
        };
        for (row_no, cells) in batch {
            let Some(map) = &columns else {
                let headers: Vec<String> = cells.iter().map(Cell::display).collect();
                match template.resolve(&headers) {
                    Ok(map) => {
                        columns = Some(map.clone());
                        if tx.blocking_send(Msg::Header { headers, columns: map }).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Msg::Failed(e.into()));
                        return;
                    }
                }
                continue;
            };
            let row = stage_row(row_no, &cells, map, &fields, kind, &mut chunk.problems);
            let row_no = row.row_no.to_string();
            let stage_values = staged.iter().map(|&i| row.values[i].as_deref());
            write_csv_record(&mut chunk.copy, std::iter::once(Some(row_no.as_str())).chain(stage_values));
            chunk.rows.push(row);
            if chunk.rows.len() >= CHUNK_ROWS
                && tx.blocking_send(Msg::Chunk(std::mem::take(&mut chunk))).is_err()
            {
                return;
            }
        }
    }
    // The parser finished the file (a failure returned above): the last rows.
    if !chunk.rows.is_empty() {
        let _ = tx.blocking_send(Msg::Chunk(chunk));
    }
}

/// One row: each field converted (NULL when empty or refused), then the row's rules; problems
/// found on the way are added to `problems`.
fn stage_row(
    row_no: u32,
    cells: &[Cell],
    columns: &ColumnMap,
    fields: &[String],
    kind: ImportKind,
    problems: &mut Vec<Problem>,
) -> StagedRow {
    let present = columns
        .fields
        .iter()
        .map(|(field, (index, column))| (field.as_str(), column, cells.get(*index).unwrap_or(&Cell::Empty)));
    let (mut values, found) = check_row(present, kind);
    let refused = !found.is_empty();
    for (field, code, message) in found {
        let column =
            columns.fields.get(field).map(|(_, c)| c.header.clone()).unwrap_or_else(|| field.to_string());
        problems.push(Problem { row: row_no, column, code: code.into(), message });
    }
    StagedRow {
        row_no,
        values: fields.iter().map(|f| values.remove(f.as_str()).and_then(Value::into_copy_text)).collect(),
        refused,
    }
}

/// The one rule set of a row, whether it came from a sheet or from an ERP (`erp`, issue 17):
/// each present field converted by its template column (`Column::convert`, NULL when refused),
/// then the kind's row rules on what converted. Problems name the template field.
pub(super) fn check_row<'f>(
    present: impl Iterator<Item = (&'f str, &'f Column, &'f Cell)>,
    kind: ImportKind,
) -> (Values<'f>, Vec<(&'f str, &'static str, String)>) {
    let mut values = Values::new();
    let mut problems = Vec::new();
    for (field, column, cell) in present {
        match column.convert(cell) {
            Ok(v) => {
                values.insert(field, v);
            }
            Err(p) => problems.push((field, p.code, p.message)),
        }
    }
    problems.extend(kind.row_rules(&values));
    (values, problems)
}

/// One CSV line for COPY: NULL (or an empty value) stays an unquoted empty field, any other
/// value is quoted.
pub(super) fn write_csv_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a str>>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(v) = field.filter(|v| !v.is_empty()) {
            out.push(b'"');
            let mut rest = v.as_bytes();
            while let Some(at) = memchr::memchr(b'"', rest) {
                out.extend_from_slice(&rest[..=at]);
                out.push(b'"');
                rest = &rest[at + 1..];
            }
            out.extend_from_slice(rest);
            out.push(b'"');
        }
    }
    out.push(b'\n');
}
