//! PostgreSQL → polars in bulk: `COPY (SELECT …) TO STDOUT` as CSV, read by polars' CSV reader
//! with the ledger's schema (text as String, cents and counts as Int64).

use std::io::Cursor;
use std::sync::Arc;

use futures_util::TryStreamExt;
use polars::prelude::*;
use sqlx::PgPool;

use crate::ExportError;
use crate::ledgers::{Filter, Kind, Ledger};

pub fn schema(ledger: &Ledger) -> Schema {
    Schema::from_iter(ledger.columns.iter().map(|c| {
        let dtype = match c.kind {
            Kind::Text => DataType::String,
            Kind::Money | Kind::Int => DataType::Int64,
        };
        Field::new(c.name.into(), dtype)
    }))
}

/// The ledger's rows as a DataFrame.
pub async fn ledger(pool: &PgPool, ledger: &Ledger, filter: &Filter) -> Result<DataFrame, ExportError> {
    let mut conn = pool.acquire().await?;
    let mut stream = conn.copy_out_raw(&ledger.copy_sql(filter)).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        bytes.extend_from_slice(&chunk);
    }
    drop(stream);
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema(ledger))))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()?;
    Ok(df)
}
