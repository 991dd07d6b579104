//! `fapiao bench console`, the lists of part 2 (issue 19): `/pending`, `/invoices` and `/pool` at
//! ROWS rows each, generated with SQL in the scratch database, each page through the whole Router
//! against its floor — the page's list query alone (its use case with the page's size); and the
//! server's memory while a 100 MiB workbook streams through the Router's upload.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

/// p50/p95 of `uri` through `router` (as the holder of `cookie`) and of `floor`, `requests` times
/// each after 10 warm-up rounds, interleaved so that both see the same load.
pub(crate) async fn measure<F, Fut>(
    router: &Router,
    cookie: &str,
    name: &str,
    uri: &str,
    requests: usize,
    floor: F,
) -> anyhow::Result<Value>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut page = Vec::with_capacity(requests);
    let mut floors = Vec::with_capacity(requests);
    for i in 0..requests + 10 {
        let t = Instant::now();
        let res = router
            .clone()
            .oneshot(Request::get(uri).header(header::COOKIE, cookie).body(Body::empty())?)
            .await?;
        anyhow::ensure!(res.status() == StatusCode::OK, "{uri}: {}", res.status());
        axum::body::to_bytes(res.into_body(), 64 << 20).await?;
        let page_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        floor().await?;
        let floor_secs = t.elapsed().as_secs_f64();
        if i >= 10 {
            page.push(page_secs);
            floors.push(floor_secs);
        }
    }
    let (p50, p95) = crate::bench::p50_p95(page);
    let (f50, f95) = crate::bench::p50_p95(floors);
    Ok(
        json!({ "page": name, "p50_ms": p50, "p95_ms": p95, "floor_p50_ms": f50, "floor_p95_ms": f95, "ratio_p95": p95 / f95 }),
    )
}

/// ROWS issued invoices of `seller`, each with its pending invoice (开票成功), ROWS / 50 failed
/// pending invoices besides, and ROWS pool invoices; dates spread over a year.
pub(crate) async fn stage_lists(pool: &PgPool, seller: &str, rows: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO pending_invoice (seller_tax_no, buyer_name, invoice_kind, data_source, amount, tax, total, status,
                                      error_message, serial_no, created_at)
         SELECT $1, '购方' || (n % 1000), 'digital_ordinary', '批量导入', 100.00, 13.00, 113.00,
                CASE WHEN n > $2 THEN 'failed' ELSE 'succeeded' END,
                CASE WHEN n > $2 THEN '购买方纳税人识别号不正确' END, 'BENCH-' || n,
                timestamptz '2026-11-30 12:00Z' - n * interval '30 seconds'
           FROM generate_series(1, $2 + $2 / 50) n",
    )
    .bind(seller)
    .bind(rows)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO issued_invoice (pending_id, serial_no, invoice_kind, invoice_property, invoice_num, invoice_date,
                                     seller_tax_no, buyer_name, amount, tax, total, remaining)
         SELECT id, serial_no, invoice_kind, 0, lpad(id::text, 20, '0'), (created_at AT TIME ZONE 'Asia/Shanghai')::date,
                seller_tax_no, buyer_name, amount, tax, total, total
           FROM pending_invoice WHERE status = 'succeeded'",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO invoice_pool (tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no, buyer_name,
                                   amount, tax, total, status, invoice_property, source, verified, deductible, signed)
         SELECT $1, '', lpad(n::text, 20, '0'), 'digital_ordinary', DATE '2026-11-30' - (n % 365)::int, '供应商' || (n % 1000),
                '91110000600037341L', '基准企业', 100.00 + (n % 1000), 13.00, 113.00 + (n % 1000), 'normal', 0, 'tax_bureau', true, n % 3 = 0, false
           FROM generate_series(1, $2) n",
    )
    .bind(seller)
    .bind(rows)
    .execute(pool)
    .await?;
    for table in ["pending_invoice", "issued_invoice", "invoice_pool"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(pool).await?;
    }
    Ok(())
}

/// This process's resident set now and its high-water mark, KiB (Linux `/proc/self/status`).
fn rss_and_hwm_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What the server's memory did while a MiB-sized workbook streamed through the Router's
/// `POST /imports`: the growth of the sampled RSS peak and of VmHWM (reset first) over the RSS
/// before, MiB; and the bytes that landed on disk.
pub(crate) struct UploadMemory {
    pub mib: u64,
    pub rss_growth_mib: f64,
    pub hwm_growth_mib: f64,
    pub stored_bytes: u64,
}

/// Stream `mib` MiB as the `file` of a multipart upload (never whole in memory on this side
/// either), sampling RSS every 5 ms on a thread of its own; then wait for the import task (which
/// refuses the bytes: they are no workbook) so the scratch database can go.
pub(crate) async fn upload_memory(
    router: &Router,
    cookie: &str,
    pool: &PgPool,
    uploads: &std::path::Path,
    mib: u64,
) -> anyhow::Result<UploadMemory> {
    use tokio::io::AsyncReadExt;
    let size = mib << 20;
    let boundary = "----fapiao-bench-memory";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\napplications\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.xlsx\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = std::io::Cursor::new(head.into_bytes())
        .chain(tokio::io::repeat(b'x').take(size))
        .chain(std::io::Cursor::new(tail.into_bytes()));
    let stream = tokio_util::io::ReaderStream::with_capacity(body, 64 << 10);
    let req = Request::builder()
        .method("POST")
        .uri("/imports")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from_stream(stream))?;
    crate::bench::reset_peak();
    let (base, _) = rss_and_hwm_kib();
    let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(base)));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_and_hwm_kib().0, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let res = router.clone().oneshot(req).await?;
    let (_, hwm) = rss_and_hwm_kib();
    done.store(true, Ordering::Relaxed);
    sampler.join().map_err(|_| anyhow::anyhow!("the memory sampler panicked"))?;
    anyhow::ensure!(res.status() == StatusCode::SEE_OTHER, "upload: {}", res.status());
    for _ in 0..600 {
        let running: i64 = sqlx::query_scalar("SELECT count(*) FROM console_task WHERE state = 'running'")
            .fetch_one(pool)
            .await?;
        if running == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stored_bytes = walk_size(uploads);
    let mib_of = |kib: u64| kib.saturating_sub(base) as f64 / 1024.0;
    Ok(UploadMemory {
        mib,
        rss_growth_mib: mib_of(peak.load(Ordering::Relaxed)),
        hwm_growth_mib: mib_of(hwm),
        stored_bytes,
    })
}

/// The size of every file under `dir`, bytes.
fn walk_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
