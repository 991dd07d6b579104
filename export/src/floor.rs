//! The benchmark's floor: the same pool ledger `COPY (SELECT …) TO STDOUT` as CSV, zipped —
//! what any export of those rows must at least do.

use std::io::Write;
use std::path::Path;

use futures_util::TryStreamExt;
use sqlx::PgPool;

use crate::{ExportError, ExportOptions, ledgers};

/// COPY the pool ledger of the period to CSV and zip it into `out`. Returns the CSV's size.
pub async fn floor(pool: &PgPool, opts: &ExportOptions, out: &Path) -> Result<u64, ExportError> {
    let filter = opts.filter()?;
    let mut conn = pool.acquire().await?;
    let mut stream = conn.copy_out_raw(&ledgers::POOL.copy_sql(&filter)).await?;
    let mut zip = ::zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(out)?));
    let options = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    zip.start_file("pool_invoices.csv", options)?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        bytes += chunk.len() as u64;
        zip.write_all(&chunk)?;
    }
    zip.finish()?.flush()?;
    Ok(bytes)
}
