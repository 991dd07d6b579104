//! The reconciliation export on a known data set: read back (xlsx with calamine, CSVs, the
//! manifest), every total found; each deliberately broken fact fails its own check.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

use calamine::{Data, Reader};
use chrono::NaiveDate;
use fapiao_export::{ExportOptions, export};
use fapiao_schemas::TaxNo;
use fapiao_store::testing::TestDb;

const SELLER: &str = "91310000MA1FL2AB09";
const BUYER: &str = "92440300MA5DXY7K3W";

/// Two days of one seller: day 1 two blue invoices (113.00, 226.00) and a red one of −113.00
/// against the second; day 2 a blue invoice of 1,130.00 and a failed pending invoice. Every
/// issued bill has its callback. The buyer (our second enterprise) has two pool invoices.
const FIXTURE: &str = "
INSERT INTO application (bill_no, bill_date, seller_tax_no, buyer_name, buyer_tax_no, invoice_kind, source, state) VALUES
  ('A1', '2026-11-01', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', 'digital_ordinary', '批量导入', 'issued'),
  ('A2', '2026-11-01', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', 'digital_ordinary', '批量导入', 'issued'),
  ('A3', '2026-11-02', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', 'digital_ordinary', '批量导入', 'issued');
INSERT INTO pending_invoice (id, seller_tax_no, buyer_name, invoice_kind, invoice_property, data_source, status, amount, tax, total, error_message, updated_at) VALUES
  (1, '91310000MA1FL2AB09', '买方', 'digital_ordinary', 0, '批量导入', 'succeeded', 100.00, 13.00, 113.00, NULL, '2026-11-01 10:00+08'),
  (2, '91310000MA1FL2AB09', '买方', 'digital_ordinary', 0, '批量导入', 'succeeded', 200.00, 26.00, 226.00, NULL, '2026-11-01 10:00+08'),
  (3, '91310000MA1FL2AB09', '买方', 'digital_ordinary', 1, '单张开票', 'succeeded', -100.00, -13.00, -113.00, NULL, '2026-11-01 11:00+08'),
  (4, '91310000MA1FL2AB09', '买方', 'digital_ordinary', 0, '批量导入', 'succeeded', 1000.00, 130.00, 1130.00, NULL, '2026-11-02 10:00+08'),
  (5, '91310000MA1FL2AB09', '买方', 'digital_ordinary', 0, '批量导入', 'failed', 50.00, 6.50, 56.50, '局端内部错误，该开票请求修复中，请2026-11-02 18:00后再试！', '2026-11-02 12:00+08');
INSERT INTO pending_bill VALUES (1, 'A1'), (2, 'A2'), (4, 'A3');
INSERT INTO issued_invoice (id, pending_id, serial_no, invoice_kind, invoice_property, invoice_num, invoice_date, seller_tax_no, buyer_name, buyer_tax_no,
                            amount, tax, total, red_flush_state, remaining, blue_invoice_id) VALUES
  (1, 1, 'S1', 'digital_ordinary', 0, '26311000000000000001', '2026-11-01', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', 100.00, 13.00, 113.00, 'none', 113.00, NULL),
  (2, 2, 'S2', 'digital_ordinary', 0, '26311000000000000002', '2026-11-01', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', 200.00, 26.00, 226.00, 'partial', 113.00, NULL),
  (3, 3, 'S3', 'digital_ordinary', 1, '26311000000000000003', '2026-11-01', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', -100.00, -13.00, -113.00, 'none', 113.00, 2),
  (4, 4, 'S4', 'digital_ordinary', 0, '26311000000000000004', '2026-11-02', '91310000MA1FL2AB09', '买方', '92440300MA5DXY7K3W', 1000.00, 130.00, 1130.00, 'none', 1130.00, NULL);
INSERT INTO callback (bill_no, interface_code, fingerprint, body, state) VALUES
  ('A1', 'INVOICE.OPEN', 'f1', '{\"returnCode\": \"0\"}', 'succeeded'),
  ('A2', 'INVOICE.OPEN', 'f2', '{\"returnCode\": \"0\"}', 'succeeded'),
  ('A3', 'INVOICE.OPEN', 'f3', '{\"returnCode\": \"0\"}', 'succeeded');
";

async fn db() -> TestDb {
    let db = TestDb::with_enterprises(&[SELLER, BUYER]).await;
    sqlx::raw_sql(FIXTURE).execute(&db.pool).await.unwrap();
    // The pool through the real import (no verification), one seller name a formula.
    fapiao_store::params::set(&db.pool, "rim_config", "rim_config_need_check", "0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(&file, format!(
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态\n\
         ,26442000000000000101,2026-11-01,数电专票,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",91110000600037341L,买方,{BUYER},500.00,65.00,565.00,正常\n\
         ,26442000000000000102,2026-11-02,数电普票,供应商,91110000600037341L,买方,{BUYER},100.00,6.00,106.00,正常\n"
    )).unwrap();
    let opts = fapiao_pipelines::import::ImportOptions {
        kind: fapiao_pipelines::import::ImportKind::Pool,
        ..Default::default()
    };
    let s = fapiao_pipelines::import::import(&db.pool, &file, &opts, &|_| {}).await.unwrap();
    assert_eq!((s.accepted, s.problems.len()), (2, 0), "{:?}", s.problems);
    db
}

fn options(dir: &Path) -> ExportOptions {
    ExportOptions {
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        tax_nos: Vec::new(),
        out: dir.join("recon.zip"),
        time_zone: chrono_tz::Asia::Shanghai,
    }
}

fn unzip(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().unwrap().to_string(), bytes)
        })
        .collect()
}

fn failed_checks(report: &fapiao_export::ExportReport) -> Vec<&str> {
    report.manifest.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[tokio::test]
async fn a_known_data_set_exports_every_total_and_reconciles() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let report = export(&db.pool, &options(dir.path()), &|_| {}).await.unwrap();
    assert!(report.manifest.all_checks_passed, "{:#?}", report.manifest.checks);
    let files = unzip(&report.path);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "billing_units.csv",
            "callbacks.csv",
            "download_log.csv",
            "issued_invoices.csv",
            "job_runs.csv",
            "manifest.json",
            "pending_failures.csv",
            "pool_invoices.csv",
            "reconciliation.xlsx",
            "red_flushes.csv",
            "summary.csv"
        ]
    );

    // The manifest: counts, and a SHA-256 that matches every other file.
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["row_counts"]["issued_invoices"], 4);
    assert_eq!(manifest["row_counts"]["red_flushes"], 1);
    assert_eq!(manifest["row_counts"]["pending_failures"], 1);
    assert_eq!(manifest["row_counts"]["pool_invoices"], 2);
    for f in manifest["files"].as_array().unwrap() {
        use sha2::Digest;
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            format!("{:x}", sha2::Sha256::digest(&files[name])),
            "{name}"
        );
    }

    // The summary CSV (BOM, Chinese headers) has the totals per seller and day.
    let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
    assert!(summary.starts_with('\u{feff}'));
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(summary.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let row = |tax: &str, day: &str| {
        rows.iter()
            .find(|r| r[0] == tax && r[1] == day)
            .unwrap_or_else(|| panic!("{tax} {day} in {rows:?}"))
            .clone()
    };
    let d1 = row(SELLER, "2026-11-01");
    // blue count/amount/tax/total, red count/amount/tax/total, net, failures
    assert_eq!(
        &d1[2..12],
        ["2", "300.00", "39.00", "339.00", "1", "100.00", "13.00", "113.00", "226.00", "0"]
    );
    let d2 = row(SELLER, "2026-11-02");
    assert_eq!(
        &d2[2..12],
        ["1", "1000.00", "130.00", "1130.00", "0", "0.00", "0.00", "0.00", "1130.00", "1"]
    );
    let pool_day = row(BUYER, "2026-11-01");
    assert_eq!(&pool_day[12..15], ["1", "565.00", "65.00"], "pool in, its total, deductible tax");

    // The workbook: summary first with the same figures as numbers, then a sheet per ledger.
    let mut book = calamine::Xlsx::new(Cursor::new(files["reconciliation.xlsx"].clone())).unwrap();
    assert_eq!(
        book.sheet_names(),
        ["汇总", "已开发票", "红冲", "开票失败", "回调", "发票池", "下载日志", "调度记录", "票量"]
    );
    let sheet = book.worksheet_range("汇总").unwrap();
    let first = (1..sheet.height())
        .find(|r| sheet.get((*r, 1)).map(|d| d.to_string()) == Some("2026-11-01".into()))
        .unwrap();
    assert_eq!(sheet.get((first, 10)), Some(&Data::Float(226.0)), "net as a number");
    let issued = book.worksheet_range("已开发票").unwrap();
    assert_eq!(issued.height(), 5);
    // xlsx numbers are doubles; each is read back to the cent as a Decimal and summed exactly.
    let totals: rust_decimal::Decimal = (1..5)
        .map(|r| match issued.get((r, 11)) {
            Some(Data::Float(f)) => rust_decimal::Decimal::try_from(*f).unwrap().round_dp(2),
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(totals, rust_decimal::Decimal::new(135600, 2));

    // A formula from the import is inert in both formats.
    let pool_csv = String::from_utf8(files["pool_invoices.csv"].clone()).unwrap();
    assert!(pool_csv.contains("'=HYPERLINK"), "{pool_csv}");
    let pool_sheet = book.worksheet_range("发票池").unwrap();
    let cell = (1..pool_sheet.height())
        .find_map(|r| match pool_sheet.get((r, 5)) {
            Some(Data::String(s)) if s.contains("HYPERLINK") => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert!(cell.starts_with("'="), "{cell}");
    let formulas = book.worksheet_formula("发票池").unwrap();
    assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()), "no formulas in the sheet");
}

#[tokio::test]
async fn each_broken_fact_fails_exactly_the_checks_it_breaks() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let breakages: [(&str, &[&str], &str); 4] = [
        // A red invoice recorded with a positive total: blue − red no longer matches the ledger's sum.
        (
            "UPDATE issued_invoice SET total = 113.00, amount = 100.00, tax = 13.00 WHERE id = 3",
            &["net_matches_ledger"],
            "UPDATE issued_invoice SET total = -113.00, amount = -100.00, tax = -13.00 WHERE id = 3",
        ),
        // A red invoice that lost its blue one: and that blue's remaining no longer has its red.
        (
            "UPDATE issued_invoice SET blue_invoice_id = NULL WHERE id = 3",
            &["red_points_to_blue", "remaining_agrees"],
            "UPDATE issued_invoice SET blue_invoice_id = 2 WHERE id = 3",
        ),
        (
            "UPDATE issued_invoice SET remaining = 226.00 WHERE id = 2",
            &["remaining_agrees"],
            "UPDATE issued_invoice SET remaining = 113.00 WHERE id = 2",
        ),
        (
            "UPDATE callback SET body = '{\"returnCode\": \"9999\"}' WHERE bill_no = 'A3'",
            &["issued_bills_have_callback"],
            "UPDATE callback SET body = '{\"returnCode\": \"0\"}' WHERE bill_no = 'A3'",
        ),
    ];
    for (breaking, expected, repair) in breakages {
        sqlx::raw_sql(sqlx::AssertSqlSafe(breaking)).execute(&db.pool).await.unwrap();
        let report = export(&db.pool, &options(dir.path()), &|_| {}).await.unwrap();
        assert_eq!(failed_checks(&report), expected, "{breaking}");
        let failed = report.manifest.checks.iter().find(|c| c.name == expected[0]).unwrap();
        assert!(failed.failures > 0 && !failed.examples.is_empty());
        // The failure is in the summary sheet too.
        let files = unzip(&report.path);
        let mut book = calamine::Xlsx::new(Cursor::new(files["reconciliation.xlsx"].clone())).unwrap();
        let sheet = book.worksheet_range("汇总").unwrap();
        assert!(
            sheet
                .rows()
                .any(|r| r.first().map(|c| c.to_string()) == Some("未通过".into()) && r[1] == expected[0])
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(repair)).execute(&db.pool).await.unwrap();
    }
    let report = export(&db.pool, &options(dir.path()), &|_| {}).await.unwrap();
    assert!(report.manifest.all_checks_passed);
}

#[tokio::test]
async fn the_period_and_tax_numbers_filter_every_ledger() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.from = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let report = export(&db.pool, &opts, &|_| {}).await.unwrap();
    assert_eq!(report.manifest.row_counts["issued_invoices"], 1);
    assert_eq!(report.manifest.row_counts["red_flushes"], 0);
    opts.tax_nos = vec![TaxNo::parse(BUYER).unwrap()];
    let report = export(&db.pool, &opts, &|_| {}).await.unwrap();
    assert_eq!(
        (report.manifest.row_counts["issued_invoices"], report.manifest.row_counts["pool_invoices"]),
        (0, 1)
    );
    opts.to = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    assert!(export(&db.pool, &opts, &|_| {}).await.is_err(), "from after to");
}

/// A pool ledger of several COPY chunks (about 4 MiB of CSV each): every row reaches the CSV
/// and the sheet once, in order, and the summary adds the chunks' partial sums up exactly.
#[tokio::test]
async fn a_ledger_of_several_chunks_streams_whole_and_sums_exactly() {
    const ROWS: i64 = 120_000;
    let db = db().await;
    // Amounts with cents that vary, so that a lost or doubled chunk changes the totals.
    sqlx::query(
        "INSERT INTO invoice_pool (tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no,
                                   buyer_name, amount, tax, total, status, invoice_property, source, verified, deductible, signed)
         SELECT $2, '', '7' || lpad(n::text, 19, '0'), 'digital_special', DATE '2026-11-03', '供应商, \"引号\"\n换行' || (n % 97),
                '91110000600037341L', '买方', (n % 1000) + 0.01 * (n % 100), 0.13 * (n % 100), (n % 1000) + 0.14 * (n % 100),
                'normal', 0, 'tax_bureau', true, n % 3 = 0, false
           FROM generate_series(1, $1) n",
    )
    .bind(ROWS)
    .bind(BUYER)
    .execute(&db.pool)
    .await
    .unwrap();
    let (total_cents, deductible_cents): (i64, i64) = sqlx::query_as(
        "SELECT (sum(total) * 100)::bigint, (sum(CASE WHEN deductible THEN tax ELSE 0 END) * 100)::bigint
           FROM invoice_pool WHERE invoice_date = DATE '2026-11-03'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let report = export(&db.pool, &options(dir.path()), &|_| {}).await.unwrap();
    assert!(report.manifest.all_checks_passed, "{:#?}", report.manifest.checks);
    assert_eq!(report.manifest.row_counts["pool_invoices"], ROWS as usize + 2);
    let files = unzip(&report.path);

    // The CSV: every row once, in the ledger's order, the quoted newline and quotes intact.
    let mut csv = csv::Reader::from_reader(&files["pool_invoices.csv"][3..]);
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let nums: Vec<String> = records.iter().map(|r| r[4].to_string()).collect();
    assert_eq!(nums.len(), ROWS as usize + 2);
    assert!(records.iter().filter(|r| r[5].starts_with("供应商, \"引号\"\n换行")).count() == ROWS as usize);
    let mut sorted = nums.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), nums.len(), "no row twice");

    // The summary row of that day: the chunks' partial sums added up to the database's sums.
    let summary = String::from_utf8(files["summary.csv"].clone()).unwrap();
    let day = summary.lines().find(|l| l.contains("2026-11-03")).expect("a summary row for the day");
    let cells: Vec<&str> = day.split(',').collect();
    let yuan = |cents: i64| format!("{}.{:02}", cents / 100, cents % 100);
    assert_eq!(cells[12], ROWS.to_string(), "pool_in: {day}");
    assert_eq!(cells[13], yuan(total_cents), "pool_total: {day}");
    assert_eq!(cells[14], yuan(deductible_cents), "pool_deductible_tax: {day}");

    // The sheet: the header and every row.
    let mut book = calamine::Xlsx::new(Cursor::new(files["reconciliation.xlsx"].clone())).unwrap();
    let sheet = book.worksheet_range("发票池").unwrap();
    assert_eq!(sheet.height(), ROWS as usize + 3);
    assert_eq!(book.sheet_names()[0], "汇总");
}
