//! The benchmark floor: read the same .xlsx with calamine's streaming cell reader and COPY the
//! same rows as CSV into a plain table, back to back, with no validation at all.

use std::path::Path;

use calamine::{Reader, Xlsx, open_workbook};
use sqlx::PgPool;

pub async fn read_and_copy(pool: &PgPool, path: &Path) -> Result<u64, String> {
    let path = path.to_path_buf();
    let started = std::time::Instant::now();
    let (csv, rows) = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, u64), String> {
        let mut book: Xlsx<_> = open_workbook(&path).map_err(|e: calamine::XlsxError| e.to_string())?;
        let name = book.sheet_names().first().cloned().ok_or("no sheet")?;
        let mut reader = book.worksheet_cells_reader(&name).map_err(|e| e.to_string())?;
        let (mut out, mut rows, mut current, mut first) = (Vec::new(), 0u64, None, true);
        while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
            let (r, _) = cell.get_position();
            if r == 0 {
                continue; // header
            }
            if current != Some(r) {
                if current.is_some() {
                    out.push(b'\n');
                }
                current = Some(r);
                rows += 1;
                first = true;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(
                super::read::from_data_ref(cell.get_value()).display().replace('"', "\"\"").as_bytes(),
            );
            out.push(b'"');
        }
        out.push(b'\n');
        Ok((out, rows))
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "floor: read");
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    let cols: Vec<String> = (1..=16).map(|i| format!("c{i} text")).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE IF NOT EXISTS floor_lines ({})", cols.join(", "))))
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut copy =
        conn.copy_in_raw("COPY floor_lines FROM STDIN (FORMAT csv)").await.map_err(|e| e.to_string())?;
    for chunk in csv.chunks(1 << 20) {
        copy.send(chunk.to_vec()).await.map_err(|e| e.to_string())?;
    }
    copy.finish().await.map_err(|e| e.to_string())?;
    Ok(rows)
}
