//! PostgreSQL → polars in chunks: `COPY (SELECT …) TO STDOUT` as CSV, cut at record boundaries
//! into chunks of about `CHUNK_BYTES`, each read by polars' CSV reader with the ledger's schema
//! (text as String, cents and counts as Int64). A ledger is never whole in memory: a million
//! pool invoices pass as about forty chunks.

use std::io::Cursor;
use std::sync::Arc;

use futures_util::TryStreamExt;
use polars::prelude::*;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::ExportError;
use crate::ledgers::{Filter, Kind, Ledger};
use crate::workers::Parse;

/// About this much CSV text per chunk (some 28,000 pool invoices). With two chunks waiting on
/// each channel, a few chunks in flight make most of the export's memory: 8 MiB chunks peaked
/// at 267 MiB over a million pool invoices.
pub const CHUNK_BYTES: usize = 4 << 20;

pub fn schema(ledger: &Ledger) -> Schema {
    Schema::from_iter(ledger.columns.iter().map(|c| {
        let dtype = match c.kind {
            Kind::Text => DataType::String,
            Kind::Money | Kind::Int => DataType::Int64,
        };
        Field::new(c.name.into(), dtype)
    }))
}

/// Whole CSV records (without the header line) as a DataFrame.
pub fn parse(ledger: &Ledger, records: Vec<u8>) -> Result<DataFrame, ExportError> {
    let schema = Arc::new(schema(ledger));
    if records.is_empty() {
        return Ok(DataFrame::empty_with_schema(&schema));
    }
    Ok(CsvReadOptions::default()
        .with_has_header(false)
        .with_schema(Some(schema))
        .into_reader_with_file_handle(Cursor::new(records))
        .finish()?)
}

/// COPY the ledger's rows and send them on in chunks of whole records. False when the receiver
/// has gone (a worker stopped; its error is the one to report).
pub async fn stream(
    pool: &PgPool,
    ledger: &Ledger,
    filter: &Filter,
    to: &mpsc::Sender<Parse>,
) -> Result<bool, ExportError> {
    let mut conn = pool.acquire().await?;
    let mut stream = conn.copy_out_raw(&ledger.copy_sql(filter)).await?;
    let mut records = Records::default();
    while let Some(bytes) = stream.try_next().await? {
        if let Some(chunk) = records.push(&bytes)
            && to.send(Parse::Rows(chunk)).await.is_err()
        {
            return Ok(false);
        }
    }
    drop(stream);
    let rest = records.finish();
    Ok(rest.is_empty() || to.send(Parse::Rows(rest)).await.is_ok())
}

/// Cuts COPY's CSV output into chunks of whole records and drops the header line. A record ends
/// at a newline outside quotes: a quoted field may hold a newline, and a doubled quote inside a
/// quoted field toggles the state twice, which leaves it right.
#[derive(Debug, Default)]
pub struct Records {
    buf: Vec<u8>,
    /// Bytes of `buf` looked at so far, and whether that left us inside quotes.
    scanned: usize,
    quoted: bool,
    /// Where the last whole record in `buf` ends.
    boundary: usize,
    header_dropped: bool,
}

impl Records {
    /// Add bytes; a chunk of whole records once at least `CHUNK_BYTES` of them are buffered.
    pub fn push(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let mut header_end = None;
        for (i, b) in self.buf[self.scanned..].iter().enumerate() {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => {
                    self.boundary = self.scanned + i + 1;
                    if !self.header_dropped && header_end.is_none() {
                        header_end = Some(self.boundary);
                    }
                }
                _ => {}
            }
        }
        self.scanned = self.buf.len();
        if let Some(end) = header_end {
            self.buf.drain(..end);
            self.scanned -= end;
            self.boundary -= end;
            self.header_dropped = true;
        }
        (self.boundary >= CHUNK_BYTES).then(|| {
            let rest = self.buf.split_off(self.boundary);
            self.scanned -= self.boundary;
            self.boundary = 0;
            std::mem::replace(&mut self.buf, rest)
        })
    }

    /// What is left once the stream has ended: its last records.
    pub fn finish(self) -> Vec<u8> {
        if self.header_dropped { self.buf } else { Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(input: &[u8], piece: usize) -> Vec<u8> {
        let mut r = Records::default();
        let mut out = Vec::new();
        for p in input.chunks(piece) {
            if let Some(c) = r.push(p) {
                assert!(c.ends_with(b"\n"), "a chunk ends with a whole record");
                out.extend(c);
            }
        }
        out.extend(r.finish());
        out
    }

    #[test]
    fn records_are_cut_whole_and_the_header_goes() {
        // A quoted newline and a doubled quote inside quotes must not end a record.
        let record = b"1,\"a\nb\",\"say \"\"hi\"\"\"\n";
        let mut input = b"id,text,quote\n".to_vec();
        let n = CHUNK_BYTES / record.len() * 3;
        for _ in 0..n {
            input.extend_from_slice(record);
        }
        for piece in [1 << 16, 7919, CHUNK_BYTES + 3] {
            let out = cut(&input, piece);
            assert_eq!(out.len(), record.len() * n, "piece {piece}");
            assert!(out.starts_with(record) && out.ends_with(record));
        }
    }

    #[test]
    fn a_header_alone_is_no_record() {
        assert!(cut(b"id,text\n", 3).is_empty());
        assert!(cut(b"", 3).is_empty());
    }
}
