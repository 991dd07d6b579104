//! `fapiao bench api-push`: BILL.PUSH of LINES lines in requests of BILLS bills, IN_FLIGHT at
//! once, through the ERP API on a real listener (the sandbox's ERP client: tokens, envelope,
//! Base64), into a scratch database; the floor is COPY of the same lines as CSV into a plain
//! table, timed in the same run. Prints bills/s, lines/s, p50/p95 per request and the ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fapiao_channel::sandbox::erp_client::{ErpClient, ErpCredentials, sample_bills};
use fapiao_usecases::systems::{self, NewSystem};
use fapiao_usecases::{Actor, App};
use serde_json::{Value, json};

use crate::exit::Outcome;
use crate::{Context, output};

const SELLER: &str = "91310000MA1FL2AB09";
const LINES_PER_BILL: usize = 5;

pub async fn api_push(
    ctx: &Context,
    lines: usize,
    bills_per_request: usize,
    in_flight: usize,
) -> anyhow::Result<Outcome> {
    let scratch = crate::bench::scratch_with_seller(ctx, "fapiao_bench_api", SELLER).await?;
    let pool = scratch.pool.clone();
    let mut settings = ctx.settings.clone();
    settings.api.rate_per_sec = 0; // the bench measures throughput, not the limit
    let app = App::on(pool.clone(), &settings);
    let new = NewSystem {
        code: "BENCH".into(),
        name: "bench".into(),
        callback_url: None,
        tax_nos: vec![fapiao_schemas::TaxNo::parse(SELLER)?],
        aes: false,
    };
    let creds = systems::add(&app, &Actor::Demo, &new).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let router = fapiao_api::router(Arc::new(fapiao_api::Api::new(app)));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let bills_total = lines.div_ceil(LINES_PER_BILL);
    let requests: Vec<Value> = (0..bills_total.div_ceil(bills_per_request))
        .map(|r| {
            let count = bills_per_request.min(bills_total - r * bills_per_request);
            sample_bills(&format!("R{r:04}"), SELLER, "深圳示例便利店", count, LINES_PER_BILL, false)
        })
        .collect();
    let floor_secs = floor(&pool, &requests).await?;
    let importer_secs = importer(&pool, &requests).await?;

    let erp = Arc::new(ErpClient::new(&ErpCredentials {
        base_url,
        app_id: creds.app_id,
        app_secret: creds.app_secret,
        account_id: creds.account_id,
        system_code: creds.code,
        data_password: None,
    }));
    erp.query("warm-up", SELLER).await.ok(); // the token round trip is not the bench
    let gate = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for body in requests {
        let (erp, gate) = (erp.clone(), gate.clone());
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await.expect("open semaphore");
            let t = Instant::now();
            erp.push(&body).await.map(|answers| (answers.len(), t.elapsed()))
        });
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let mut accepted = 0usize;
    while let Some(done) = tasks.join_next().await {
        let (n, took) = done??;
        accepted += n;
        latencies.push(took);
    }
    let api_secs = started.elapsed().as_secs_f64();
    server.abort();
    let landed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM application_line WHERE bill_no NOT LIKE 'IMP%'")
            .fetch_one(&pool)
            .await?;
    scratch.drop().await?;
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    let (p50, p95) = (pct(0.50).as_secs_f64() * 1000.0, pct(0.95).as_secs_f64() * 1000.0);
    let ratio = floor_secs / api_secs;
    let to_importer = importer_secs / api_secs;
    let figures = json!({
        "lines": landed, "bills": accepted, "requests": latencies.len(), "bills_per_request": bills_per_request,
        "in_flight": in_flight, "api_seconds": api_secs, "bills_per_second": accepted as f64 / api_secs,
        "lines_per_second": landed as f64 / api_secs, "p50_ms": p50, "p95_ms": p95,
        "floor_seconds": floor_secs, "ratio_to_floor": ratio,
        "importer_seconds": importer_secs, "ratio_to_importer": to_importer,
    });
    if ctx.json {
        output::json(&figures)?;
    } else {
        println!(
            "BILL.PUSH: {landed} lines in {accepted} bills, {} requests of {bills_per_request} bills, {in_flight} in flight",
            latencies.len()
        );
        println!(
            "  api    {api_secs:.2} s  ({:.0} bills/s, {:.0} lines/s)  p50 {p50:.0} ms  p95 {p95:.0} ms",
            accepted as f64 / api_secs,
            landed as f64 / api_secs
        );
        println!("  floor  {floor_secs:.2} s  (COPY of the same lines as CSV)");
        println!(
            "  importer {importer_secs:.2} s  (fapiao import of the same lines as an applications CSV, other bill numbers)"
        );
        println!(
            "  ratio  {to_importer:.2} of the importer's throughput (target ≥ 0.5), {ratio:.2} of the floor's"
        );
    }
    Ok(Outcome::Done)
}

/// The same lines, their fields as CSV, COPYed into a plain table: no envelope, no rules.
async fn floor(pool: &sqlx::PgPool, requests: &[Value]) -> anyhow::Result<f64> {
    const FIELDS: [&str; 9] = [
        "goodsName",
        "revenueCode",
        "units",
        "quantity",
        "price",
        "amount",
        "taxRate",
        "taxAmount",
        "lineProperty",
    ];
    let started = Instant::now();
    let mut csv = Vec::new();
    for bill in requests.iter().flat_map(|r| r.as_array().into_iter().flatten()) {
        let head = [&bill["billNo"], &bill["billDate"], &bill["sellerTaxpayerId"], &bill["buyerName"]];
        for line in bill["billDetail"].as_array().into_iter().flatten() {
            let fields: Vec<String> = head
                .iter()
                .copied()
                .chain(FIELDS.iter().map(|f| &line[*f]))
                .map(|v| format!("\"{}\"", v.as_str().unwrap_or_default().replace('"', "\"\"")))
                .collect();
            csv.extend_from_slice(fields.join(",").as_bytes());
            csv.push(b'\n');
        }
    }
    let mut conn = pool.acquire().await?;
    let cols: Vec<String> = (1..=13).map(|i| format!("c{i} text")).collect();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE api_floor_lines ({})", cols.join(", "))))
        .execute(&mut *conn)
        .await?;
    let mut copy = conn.copy_in_raw("COPY api_floor_lines FROM STDIN (FORMAT csv)").await?;
    copy.send(csv).await?;
    copy.finish().await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The importer on the same lines: written as an applications CSV under other bill numbers (so
/// the API's pushes after it find theirs free) and imported into the same database.
async fn importer(pool: &sqlx::PgPool, requests: &[Value]) -> anyhow::Result<f64> {
    use fapiao_pipelines::import::{ImportKind, ImportOptions, import};
    let mut csv = String::from(
        "单据编号,单据日期,销方税号,购方名称,发票种类,商品名称,税收分类编码,单位,数量,单价,金额,税率,税额,价税合计,行性质,自动开票\n",
    );
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    for bill in requests.iter().flat_map(|r| r.as_array().into_iter().flatten()) {
        for line in bill["billDetail"].as_array().into_iter().flatten() {
            let amount: rust_decimal::Decimal = text(&line["amount"]).parse()?;
            let tax: rust_decimal::Decimal = text(&line["taxAmount"]).parse()?;
            csv.push_str(&format!(
                "IMP{},{},{},{},{},{},{},{},{},{},{amount},{},{tax},{},{},否\n",
                text(&bill["billNo"]),
                text(&bill["billDate"]),
                text(&bill["sellerTaxpayerId"]),
                text(&bill["buyerName"]),
                text(&bill["invoiceType"]),
                text(&line["goodsName"]),
                text(&line["revenueCode"]),
                text(&line["units"]),
                text(&line["quantity"]),
                text(&line["price"]),
                text(&line["taxRate"]),
                amount + tax,
                text(&line["lineProperty"]),
            ));
        }
    }
    let dir = tempfile_dir()?;
    let file = dir.join("api-bench-applications.csv");
    std::fs::write(&file, csv)?;
    let options = ImportOptions { kind: ImportKind::Applications, ..ImportOptions::default() };
    let started = Instant::now();
    let summary = import(pool, &file, &options, &|_| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        summary.problems.is_empty(),
        "the importer refused bench lines: {:?}",
        summary.problems.first()
    );
    Ok(secs)
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("fapiao-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
