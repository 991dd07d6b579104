//! The Excel import against a real database, with fixtures the tests write themselves
//! (rust_xlsxwriter for .xlsx, encoding_rs for GBK CSV).

use std::path::{Path, PathBuf};

use fapiao_pipelines::import::{ImportError, ImportOptions, Summary, import};
use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::{Channel, Enterprise, TaxpayerKind};
use fapiao_store::testing::TestDb;
use rust_xlsxwriter::{Format, Formula, Workbook};

const SELLER: &str = "91310000MA1FL2AB09";
const BUYER: &str = "92440300MA5DXY7K3W";

const HEADERS: [&str; 15] = [
    "单据编号",
    "单据日期",
    "销方税号",
    "购方名称",
    "购方税号",
    "发票种类",
    "商品名称",
    "税收分类编码",
    "数量",
    "单价",
    "金额",
    "税率",
    "税额",
    "价税合计",
    "行性质",
];

async fn db() -> TestDb {
    let db = TestDb::new().await;
    for tax_no in [SELLER, BUYER] {
        let e = Enterprise {
            tax_no: TaxNo::parse(tax_no).unwrap(),
            name: format!("企业{tax_no}"),
            taxpayer_kind: TaxpayerKind::General,
            etax_account: "a".into(),
            channel: Channel::Etax,
        };
        fapiao_store::enterprises::insert(&db.pool, &e).await.unwrap();
    }
    db
}

fn options(kind: &str) -> ImportOptions {
    ImportOptions { kind: kind.parse().unwrap(), ..ImportOptions::default() }
}

async fn run(db: &TestDb, file: &Path, opts: &ImportOptions) -> Result<Summary, ImportError> {
    import(&db.pool, file, opts, &|_| {}).await
}

/// A valid application line as CSV cells.
fn line(bill: &str, amount: &str, tax: &str, total: &str) -> Vec<String> {
    [
        bill,
        "2026-11-01",
        SELLER,
        "深圳示例便利店",
        BUYER,
        "数电普票",
        "*计算机配套产品*键盘",
        "1090511030000000000",
        "1",
        amount,
        amount,
        "13%",
        tax,
        total,
        "正常",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn write_csv(dir: &Path, name: &str, rows: &[Vec<String>]) -> PathBuf {
    let mut text = HEADERS.join(",");
    text.push('\n');
    for r in rows {
        text.push_str(&r.join(","));
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The sandbox playing the bureau (issuing at once) and a channel client pointed at it.
async fn bureau() -> (fapiao_channel::sandbox::Sandbox, std::sync::Arc<fapiao_channel::ChannelClient>) {
    use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
    let config = SandboxConfig { issue_delay: std::time::Duration::ZERO, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config, "127.0.0.1:0").await.unwrap();
    let settings = fapiao_schemas::config::Settings::load_from(None, Vec::new()).unwrap();
    let mut cc = fapiao_channel::ClientConfig::from_settings(&settings.channel);
    cc.base_url = sandbox.base_url();
    (sandbox, std::sync::Arc::new(fapiao_channel::ChannelClient::new(cc)))
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn one_bad_row_among_ten_thousand_changes_nothing_and_is_named() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for n in 0..10_000 {
        // Bills of 5 lines; row 5,002 (line 5,001) carries a wrong tax.
        let tax = if n == 5_000 { "13.07" } else { "13.00" };
        rows.push(line(
            &format!("B{:05}", n / 5),
            "100.00",
            tax,
            if n == 5_000 { "113.07" } else { "113.00" },
        ));
    }
    let file = write_csv(dir.path(), "big.csv", &rows);
    let report = dir.path().join("report.xlsx");
    let s = run(&db, &file, &ImportOptions { report: Some(report.clone()), ..options("applications") })
        .await
        .unwrap();
    assert_eq!(
        (s.outcome, s.rows_read, s.bills, s.accepted, s.rejected),
        ("rejected", 10_000, 2_000, 0, 10_000)
    );
    assert_eq!(s.problems.len(), 1);
    assert_eq!(
        (s.problems[0].row, s.problems[0].code.as_str(), s.problems[0].column.as_str()),
        (5_002, "TAX_LINE_MISMATCH", "税额")
    );
    assert_eq!(count(&db, "SELECT count(*) FROM application").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM import_batch").await, 0);
    // The report names the row, with its original cells.
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&report).unwrap();
    use calamine::Reader;
    let range = book.worksheet_range("错误报告").unwrap();
    let rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(rows[0][15], "行号");
    assert_eq!(rows[1][0], "B01000");
    assert_eq!(rows[1][15], "5002");
    assert!(rows[1][16].contains("TAX_LINE_MISMATCH"), "{:?}", rows[1]);

    // --accept-valid: only that bill is left out.
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    assert_eq!((s.outcome, s.accepted, s.rejected), ("imported", 9_995, 5));
    assert_eq!(count(&db, "SELECT count(*) FROM application").await, 1_999);
    assert_eq!(count(&db, "SELECT count(*) FROM application_line").await, 9_995);
    assert_eq!(count(&db, "SELECT count(*) FROM application WHERE bill_no = 'B01000'").await, 0);

    // The same file again is refused, naming the earlier batch.
    match run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await {
        Err(ImportError::AlreadyImported(id)) => assert_eq!(Some(id), s.batch_id),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bill_rules_across_rows() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let mut discounted = line("D1", "100.00", "13.00", "113.00");
    discounted[14] = "被折扣".into();
    let mut discount = line("D1", "-10.00", "-1.30", "-11.30");
    discount[14] = "折扣".into();
    discount[8] = String::new();
    discount[9] = String::new();
    let mut too_big = line("D2", "-200.00", "-26.00", "-226.00");
    too_big[14] = "折扣".into();
    too_big[8] = String::new();
    too_big[9] = String::new();
    let mut mixed = line("M1", "100.00", "13.00", "113.00");
    mixed[5] = "数电专票".into();
    let mut outsider = line("X1", "100.00", "13.00", "113.00");
    outsider[2] = "91110000600037341L".into();
    let rows = vec![
        discounted,
        discount,
        line("D2", "100.00", "13.00", "113.00"),
        too_big,
        line("M1", "1.00", "0.13", "1.13"),
        mixed,
        outsider,
    ];
    let file = write_csv(dir.path(), "rules.csv", &rows);
    let tenant = ImportOptions {
        accept_valid: true,
        tenant_id: "366045674239990272".into(),
        ..options("applications")
    };
    let s = run(&db, &file, &tenant).await.unwrap();
    let got: Vec<(u32, &str)> = s.problems.iter().map(|p| (p.row, p.code.as_str())).collect();
    assert_eq!(got, vec![(5, "DISCOUNT_PLACEMENT"), (6, "BILL_MIXED"), (7, "BILL_MIXED"), (8, "1130")]);
    assert_eq!(
        s.problems[3].message, "税号:91110000600037341L,不在租户:366045674239990272 范围内",
        "verbatim (seed 004)"
    );
    // Only D1 (discount right after its line) landed, discount line included.
    let lines: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT bill_no, line_no, line_property FROM application_line ORDER BY bill_no, line_no",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(lines, vec![("D1".into(), 1, "discounted".into()), ("D1".into(), 2, "discount".into())]);
}

/// Applications land chunk by chunk while the file is read (8,192 rows a chunk): a bill whose
/// bad line comes in a later chunk than its first lines, and a bill whose lines disagree across
/// chunks, leave whole with `--accept-valid`; a bill number of an earlier batch is refused and
/// the earlier bill keeps its lines.
#[tokio::test]
async fn bills_rejected_after_their_first_lines_landed_leave_whole() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let earlier = write_csv(
        dir.path(),
        "earlier.csv",
        &[line("OLD1", "100.00", "13.00", "113.00"), line("OLD1", "50.00", "6.50", "56.50")],
    );
    let first = run(&db, &earlier, &options("applications")).await.unwrap();

    let mut rows = Vec::new();
    for n in 0..9_000usize {
        let bill = match n {
            10 | 11 => "OLD1".to_string(),
            8_190..=8_193 => "SPAN".to_string(),
            8_000 | 8_300 => "MIX".to_string(),
            _ => format!("C{}", n / 4),
        };
        let (tax, total) = if n == 8_193 { ("13.07", "113.07") } else { ("13.00", "113.00") };
        let mut row = line(&bill, "100.00", tax, total);
        if n == 8_300 {
            row[5] = "数电专票".into();
        }
        rows.push(row);
    }
    let file = write_csv(dir.path(), "chunks.csv", &rows);
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(u32, &str)> = s.problems.iter().map(|p| (p.row, p.code.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (12, "BILL_EXISTS"),
            (13, "BILL_EXISTS"),
            (8_002, "BILL_MIXED"),
            (8_195, "TAX_LINE_MISMATCH"),
            (8_302, "BILL_MIXED")
        ]
    );
    assert_eq!(s.problems[0].message, "单据编号OLD1已存在");
    assert_eq!((s.outcome, s.rows_read, s.accepted, s.rejected), ("imported", 9_000, 9_000 - 8, 8));

    let lines_of = |bill: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM application_line WHERE bill_no = $1")
                .bind(bill)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        (lines_of("SPAN").await, lines_of("MIX").await),
        (0, 0),
        "lines landed before the bill was rejected are gone"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM application WHERE bill_no IN ('SPAN', 'MIX')").await, 0);
    assert_eq!(lines_of("OLD1").await, 2, "the earlier bill keeps its lines");
    let old_batch: Option<i64> =
        sqlx::query_scalar("SELECT batch_id FROM application WHERE bill_no = 'OLD1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(old_batch, first.batch_id);
    assert_eq!(count(&db, "SELECT count(*) FROM application_line").await, 2 + 9_000 - 8);
    // Lines are numbered per bill in file order, across chunks.
    let numbers: Vec<i32> =
        sqlx::query_scalar("SELECT line_no FROM application_line WHERE bill_no = 'C2047' ORDER BY line_no")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(numbers, vec![1, 2], "C2047 kept rows 8,188 and 8,189; its other rows went to SPAN");
    // The batch row carries the final counts.
    let counts: (i32, i32, i32) =
        sqlx::query_as("SELECT rows_read, accepted, rejected FROM import_batch WHERE id = $1")
            .bind(s.batch_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(counts, (9_000, 8_992, 8));
}

/// The same file imported twice at once: the second waits for the first and is refused with
/// its batch id; the bills land once.
#[tokio::test]
async fn the_same_file_imported_twice_at_once_lands_once() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Vec<String>> =
        (0..3_000).map(|n| line(&format!("T{:04}", n / 3), "100.00", "13.00", "113.00")).collect();
    let file = write_csv(dir.path(), "twice.csv", &rows);
    let opts = options("applications");
    let (a, b) = tokio::join!(run(&db, &file, &opts), run(&db, &file, &opts));
    let (landed, refused) = match (a, b) {
        (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
        other => panic!("one import lands, the other is refused: {other:?}"),
    };
    match refused {
        ImportError::AlreadyImported(id) => assert_eq!(Some(id), landed.batch_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&db, "SELECT count(*) FROM application").await, 1_000);
    assert_eq!(count(&db, "SELECT count(*) FROM application_line").await, 3_000);
    assert_eq!(count(&db, "SELECT count(*) FROM import_batch").await, 1);
}

/// A number larger than its column holds is a problem on its row; the other bills land.
#[tokio::test]
async fn a_number_too_large_for_its_column_is_a_row_problem() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let huge = line("BIG1", "12345678901234567.00", "1604938157160493.71", "13950617158395060.71");
    let file = write_csv(dir.path(), "huge.csv", &[huge, line("OK1", "100.00", "13.00", "113.00")]);
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "价税合计", "NUMBER_TOO_LARGE"),
            (2, "单价", "NUMBER_TOO_LARGE"),
            (2, "金额", "NUMBER_TOO_LARGE")
        ]
    );
    assert_eq!((s.outcome, s.accepted, s.rejected), ("imported", 1, 1));
    assert_eq!(count(&db, "SELECT count(*) FROM application_line").await, 1);
}

/// A line without its application, or an application deleted from under its lines, is refused
/// by the database itself (statement-level checks stand in for the row-level foreign key).
#[tokio::test]
async fn lines_always_belong_to_an_application() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "one.csv", &[line("FK1", "100.00", "13.00", "113.00")]);
    run(&db, &file, &options("applications")).await.unwrap();
    let orphan = sqlx::query(
        "INSERT INTO application_line (bill_no, line_no, goods_name, revenue_code, amount, tax_rate, tax, total)
         VALUES ('NOBILL', 1, 'x', '1', 1, 0.13, 0.13, 1.13)",
    )
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(orphan.to_string().contains("bill NOBILL is not an application"), "{orphan}");
    let deleted =
        sqlx::query("DELETE FROM application WHERE bill_no = 'FK1'").execute(&db.pool).await.unwrap_err();
    assert!(deleted.to_string().contains("application FK1 still has lines"), "{deleted}");
    let moved = sqlx::query("UPDATE application_line SET bill_no = 'FK2' WHERE bill_no = 'FK1'")
        .execute(&db.pool)
        .await
        .unwrap_err();
    assert!(moved.to_string().contains("cannot change"), "{moved}");
    assert_eq!(count(&db, "SELECT count(*) FROM application_line WHERE bill_no = 'FK1'").await, 1);
}

/// An .xlsx with the oddities finance files have.
fn oddities_xlsx(path: &Path) {
    let mut book = Workbook::new();
    book.add_worksheet().set_name("说明").unwrap(); // an empty first sheet
    let sheet = book.add_worksheet();
    sheet.set_name("明细").unwrap();
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    // Row 2: bill number merged over rows 2–3, date as a date cell, quantity and price as numbers,
    // tax computed by a formula with its cached value, the revenue code as text.
    sheet.merge_range(1, 0, 2, 0, "MRG1", &Format::new()).unwrap();
    for r in [1u32, 2] {
        sheet
            .write_datetime_with_format(
                r,
                1,
                rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 11, 1).unwrap(),
                &date_format,
            )
            .unwrap();
        sheet.write_string(r, 2, SELLER).unwrap();
        sheet.write_string(r, 3, "深圳示例便利店").unwrap();
        sheet.write_string(r, 4, BUYER).unwrap();
        sheet.write_string(r, 5, "数电普票").unwrap();
        sheet.write_string(r, 6, "*计算机配套产品*键盘").unwrap();
        sheet.write_string(r, 7, "1090511030000000000").unwrap();
        sheet.write_number(r, 8, 3.0).unwrap();
        sheet.write_number(r, 9, 33.333333).unwrap();
        sheet.write_number(r, 10, 100.0).unwrap();
        sheet.write_number(r, 11, 0.13).unwrap();
        sheet.write_formula(r, 12, Formula::new("=K2*L2").set_result("13")).unwrap();
        sheet.write_number(r, 13, 113.0).unwrap();
        sheet.write_string(r, 14, "正常").unwrap();
    }
    // Row 4: blank. Row 5: date as a serial number, full-width digits in the amounts' text,
    // and the revenue code typed as a number (its last digits are gone).
    let r = 4;
    for (c, v) in [
        (0u16, "FW1"),
        (2, SELLER),
        (3, "购方"),
        (4, BUYER),
        (5, "数电普票"),
        (6, "*餐饮服务*餐费"),
        (10, "１００．００"),
        (11, "6%"),
        (12, "６．００"),
        (13, "１０６．００"),
        (14, "正常"),
    ] {
        sheet.write_string(r, c, v).unwrap();
    }
    sheet.write_number(r, 1, 46327.0).unwrap();
    sheet.write_number(r, 7, 3070401000000000000.0).unwrap();
    book.save(path).unwrap();
}

#[tokio::test]
async fn xlsx_oddities_each_handled_explicitly() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.xlsx");
    oddities_xlsx(&file);
    // --sheet picks a sheet by name; the empty first one has nothing to import.
    let err = run(&db, &file, &ImportOptions { sheet: Some("说明".into()), ..options("applications") })
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Read(_)), "{err}");
    // Without --sheet, the first non-empty sheet.
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    // Row 5's revenue code was typed as a number: refused with the reason, its bill left out.
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, vec![(5, "税收分类编码", "NUMBER_NOT_TEXT")]);
    assert_eq!((s.rows_read, s.bills, s.accepted, s.rejected), (3, 2, 2, 1), "the blank row is not a row");
    let lines: Vec<(String, i32, rust_decimal::Decimal, rust_decimal::Decimal)> =
        sqlx::query_as("SELECT bill_no, line_no, tax, price FROM application_line ORDER BY line_no")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(lines.len(), 2, "the merged bill number reached both lines");
    assert_eq!(lines[0].0, "MRG1");
    assert_eq!(lines[0].2.to_string(), "13.00", "formula: the cached value");
    assert_eq!(lines[0].3.normalize().to_string(), "33.333333");
    let date: chrono::NaiveDate =
        sqlx::query_scalar("SELECT bill_date FROM application").fetch_one(&db.pool).await.unwrap();
    assert_eq!(date.to_string(), "2026-11-01");
}

#[tokio::test]
async fn full_width_text_and_serial_dates_from_xlsx() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    // Row 5 of the oddities with its revenue code as text: it lands, full-width amounts and all.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in [
        (0u16, "FW1"),
        (2, SELLER),
        (3, "购方"),
        (4, BUYER),
        (5, "数电普票"),
        (6, "*餐饮服务*餐费"),
        (7, "3070401000000000000"),
        (10, "１００．００"),
        (11, "6%"),
        (12, "６．００"),
        (13, "１０６．００"),
        (14, "正常"),
    ] {
        sheet.write_string(1, c, v).unwrap();
    }
    sheet.write_number(1, 1, 46327.0).unwrap();
    let file = dir.path().join("fw2.xlsx");
    book.save(&file).unwrap();
    let s = run(&db, &file, &options("applications")).await.unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let (amount, date): (rust_decimal::Decimal, chrono::NaiveDate) = sqlx::query_as(
        "SELECT l.amount, a.bill_date FROM application_line l JOIN application a USING (bill_no)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((amount.to_string().as_str(), date.to_string().as_str()), ("100.00", "2026-11-01"));
}

#[tokio::test]
async fn gbk_csv_is_read() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let utf8 = write_csv(dir.path(), "u.csv", &[line("G1", "100.00", "13.00", "113.00")]);
    let text = std::fs::read_to_string(&utf8).unwrap();
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let file = dir.path().join("gbk.csv");
    std::fs::write(&file, &gbk).unwrap();
    let s = run(&db, &file, &options("applications")).await.unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let buyer: String =
        sqlx::query_scalar("SELECT buyer_name FROM application").fetch_one(&db.pool).await.unwrap();
    assert_eq!(buyer, "深圳示例便利店");
}

#[tokio::test]
async fn a_missing_required_column_rejects_the_file_naming_it() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.csv");
    std::fs::write(&file, "单据编号,金额\nB1,1\n").unwrap();
    let err = run(&db, &file, &options("applications")).await.unwrap_err();
    assert!(err.to_string().starts_with("缺少必填列：单据日期"), "{err}");
}

#[tokio::test]
async fn pool_rows_check_the_tenant_and_duplicates() {
    let db = db().await;
    fapiao_store::params::set(&db.pool, "rim_config", "rim_config_need_check", "0").await.unwrap();
    fapiao_store::params::set(&db.pool, "rim_config", "einvoice_auto_sign", "1").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    let header =
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态";
    let rows = [
        ",26442000000000000001,2026-11-01,数电专票,卖方,91110000600037341L,买方,92440300MA5DXY7K3W,100.00,13.00,113.00,正常",
        ",26442000000000000001,2026-11-01,数电专票,卖方,91110000600037341L,买方,92440300MA5DXY7K3W,100.00,13.00,113.00,正常",
        "044031900111,01234567,2026-11-02,电子普票,卖方,91110000600037341L,外人,91330106MA2CFK4M1B,10.00,0.60,10.60,正常",
        ",2644200000000000000,2026-11-01,数电普票,卖方,91110000600037341L,买方,92440300MA5DXY7K3W,10.00,0.60,10.60,正常",
    ];
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let tenant =
        ImportOptions { accept_valid: true, tenant_id: "366045674239990272".into(), ..options("pool") };
    let s = run(&db, &file, &tenant).await.unwrap();
    let got: Vec<(u32, &str)> = s.problems.iter().map(|p| (p.row, p.code.as_str())).collect();
    assert_eq!(got, vec![(3, "DUPLICATE_IN_FILE"), (4, "1130"), (5, "INVOICE_NUMBER_FORMAT")]);
    assert_eq!(s.problems[1].message, "税号:91330106MA2CFK4M1B,不在租户:366045674239990272 范围内");
    let pooled: Vec<(String, String, bool, bool)> =
        sqlx::query_as("SELECT invoice_num, source, signed, deductible FROM invoice_pool")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(pooled, vec![("26442000000000000001".into(), "import".into(), true, true)]);
}

#[tokio::test]
async fn pool_imports_verify_each_invoice_and_charge_billing_units_once() {
    use fapiao_channel::sandbox::sample_invoice;
    let db = db().await;
    let (_sandbox, channel) = bureau().await;
    // Two invoices the bureau knows: issued through the sandbox to our enterprise.
    let outside = ("卖方", "91110000600037341L");
    let mut known = Vec::new();
    for (serial, cents) in [("V1", 10_000), ("V2", 20_000)] {
        channel
            .issue(&sample_invoice(
                serial,
                "digital_special",
                outside,
                ("买方", BUYER),
                fapiao_schemas::Money::from_cents(cents),
            ))
            .await
            .unwrap();
        known.push(
            channel
                .wait_final(
                    serial,
                    outside.1,
                    std::time::Duration::from_millis(5),
                    std::time::Duration::from_secs(5),
                )
                .await
                .unwrap(),
        );
    }
    let row = |num: &str, date: &str, amount: &str, tax: &str, total: &str| {
        format!(",{num},{date},数电专票,卖方,91110000600037341L,买方,{BUYER},{amount},{tax},{total},正常")
    };
    let date = known[0].invoice_date.unwrap().to_string();
    let header =
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态";
    let rows = [
        row(&known[0].invoice_num, &date, "100.00", "13.00", "113.00"),
        row(&known[1].invoice_num, &date, "200.00", "26.00", "226.00"),
        row("26442999999999999999", &date, "1.00", "0.13", "1.13"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let opts = ImportOptions { accept_valid: true, channel: Some(channel.clone()), ..options("pool") };
    let s = run(&db, &file, &opts).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.code.as_str(), p.message.as_str())).collect();
    assert_eq!(got, vec![(4, "VERIFY_FAILED", "查验失败：查无此票")]);
    assert_eq!(count(&db, "SELECT count(*) FROM invoice_pool WHERE verified AND source = 'import'").await, 2);
    let units: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT sum(units) FROM billing_unit").fetch_one(&db.pool).await.unwrap();
    assert_eq!(units.to_string(), "1.0", "0.5 per verified invoice; the failed call is free");

    // The same invoice again (another file): already in the pool, refused before any call — no charge.
    let again = dir.path().join("again.csv");
    std::fs::write(&again, format!("{header}\n{}\n", rows[0])).unwrap();
    let s = run(&db, &again, &opts).await.unwrap();
    assert_eq!(s.problems[0].code, "ALREADY_IN_POOL");
    let units: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT sum(units) FROM billing_unit").fetch_one(&db.pool).await.unwrap();
    assert_eq!(units.to_string(), "1.0");

    // Without a channel a verifying pool import cannot run.
    let third = dir.path().join("third.csv");
    std::fs::write(&third, format!("{header}\n{}\n", rows[1])).unwrap();
    assert!(matches!(run(&db, &third, &options("pool")).await, Err(ImportError::NoChannel)));
}

#[tokio::test]
async fn red_flush_lists_land_as_requests() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("red.csv");
    std::fs::write(
        &file,
        "发票代码,数电号码,红冲金额,红冲原因\n,26442000000000000001,,开票有误\n,26442000000000000002,50.00,01\n044031900111,01234567,30.00,销货退回\n",
    )
    .unwrap();
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("red-flush") }).await.unwrap();
    let got: Vec<(u32, &str)> = s.problems.iter().map(|p| (p.row, p.code.as_str())).collect();
    assert_eq!(got, vec![(3, "RED_REASON_FULL_ONLY")]);
    let requests: Vec<(String, Option<rust_decimal::Decimal>, String)> =
        sqlx::query_as("SELECT invoice_num, red_amount, red_reason FROM red_flush_request ORDER BY row_no")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], ("26442000000000000001".into(), None, "01".into()));
    assert_eq!(requests[1].2, "02");
}

#[tokio::test]
async fn a_generated_workbook_imports_cleanly_and_its_bad_rows_are_named() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(&file, "G", 50, SELLER, BUYER, &[7]).unwrap();
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(u32, &str)> = s.problems.iter().map(|p| (p.row, p.code.as_str())).collect();
    assert_eq!(got, vec![(9, "TAX_LINE_MISMATCH")], "{:?}", s.problems);
    assert_eq!((s.rows_read, s.bills, s.accepted, s.rejected), (50, 10, 45, 5));
}

/// The report reads an .xlsx once more for the rows with problems: without merged cells it reads
/// without probing again, with them it fills them in as the import did.
#[tokio::test]
async fn an_xlsx_report_shows_the_original_cells_merged_ones_filled() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.xlsx");
    let opts = ImportOptions { report: Some(report.clone()), ..options("applications") };
    let rows = [line("M1", "100.00", "13.00", "113.00"), line("M1", "100.00", "13.07", "113.07")];
    for merged in [false, true] {
        let file = dir.path().join(format!("merged-{merged}.xlsx"));
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in HEADERS.iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate().skip(usize::from(merged)) {
                sheet.write_string(r as u32 + 1, c as u16, v).unwrap();
            }
        }
        if merged {
            sheet.merge_range(1, 0, 2, 0, "M1", &Format::new()).unwrap();
        }
        book.save(&file).unwrap();
        let s = run(&db, &file, &opts).await.unwrap();
        let got: Vec<(u32, &str)> = s.problems.iter().map(|p| (p.row, p.code.as_str())).collect();
        assert_eq!((s.outcome, got), ("rejected", vec![(3, "TAX_LINE_MISMATCH")]), "merged: {merged}");
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(&report).unwrap();
        use calamine::Reader;
        let range = book.worksheet_range("错误报告").unwrap();
        let cells: Vec<String> = range.rows().nth(1).unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            (cells[0].as_str(), cells[12].as_str(), cells[15].as_str()),
            ("M1", "13.07", "3"),
            "merged: {merged}"
        );
    }
}

/// Issue 14.3: a header and no rows is refused like an empty file, and no batch is created.
#[tokio::test]
async fn a_header_without_rows_is_refused_like_an_empty_file() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let err = run(&db, &empty, &options("applications")).await.unwrap_err();
    assert!(matches!(err, ImportError::Read(ReadError::Empty)), "{err}");
    let csv = write_csv(dir.path(), "header.csv", &[]);
    // Blank lines under the header are no rows either.
    let blank = dir.path().join("blank.csv");
    std::fs::write(&blank, format!("{}\n,,,\n\n", HEADERS.join(","))).unwrap();
    let xlsx = dir.path().join("header.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    book.save(&xlsx).unwrap();
    for file in [csv, blank, xlsx] {
        for opts in [options("applications"), ImportOptions { accept_valid: true, ..options("applications") }]
        {
            let err = run(&db, &file, &opts).await.unwrap_err();
            assert!(matches!(err, ImportError::Read(ReadError::NoDataRows)), "{}: {err}", file.display());
            assert_eq!(err.to_string(), "文件中没有数据行");
        }
    }
    assert_eq!(count(&db, "SELECT count(*) FROM import_batch").await, 0);
}

/// Issue 14.3: dates outside 1990-01-01…2099-12-31 are their row's problem, named by column;
/// they used to pass the rules and fail the whole import inside PostgreSQL.
#[tokio::test]
async fn dates_out_of_range_are_row_problems_and_the_rest_lands() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let dated = |bill: &str, date: &str| {
        let mut l = line(bill, "100.00", "13.00", "113.00");
        l[1] = date.into();
        l
    };
    let file = write_csv(
        dir.path(),
        "dates.csv",
        &[
            dated("Y0", "0000-01-01"),
            dated("NEG", "-0001-05-01"),
            dated("LATE", "2100-01-01"),
            dated("OK1", "2026-11-01"),
        ],
    );
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "单据日期", "DATE_OUT_OF_RANGE"),
            (3, "单据日期", "DATE_OUT_OF_RANGE"),
            (4, "单据日期", "DATE_OUT_OF_RANGE")
        ]
    );
    assert_eq!(s.problems[0].message, "日期0000-01-01超出范围（1990-01-01至2099-12-31）");
    assert_eq!((s.outcome, s.accepted, s.rejected), ("imported", 1, 3));
    assert_eq!(count(&db, "SELECT count(*) FROM application").await, 1);

    // Serials typed into a date column that land outside the range: year 1899 and past 9999.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, (bill, serial)) in [("S1", 1.0), ("S2", 3_000_000.0), ("S3", 46327.0)].into_iter().enumerate() {
        let r = r as u32 + 1;
        for (c, v) in line(bill, "100.00", "13.00", "113.00").iter().enumerate() {
            sheet.write_string(r, c as u16, v).unwrap();
        }
        sheet.write_number(r, 1, serial).unwrap();
    }
    let xlsx = dir.path().join("serials.xlsx");
    book.save(&xlsx).unwrap();
    let s = run(&db, &xlsx, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, vec![(2, "单据日期", "DATE_OUT_OF_RANGE"), (3, "单据日期", "DATE_OUT_OF_RANGE")]);
    assert_eq!((s.accepted, s.rejected), (1, 2));

    // The pool's 开票日期 as well.
    fapiao_store::params::set(&db.pool, "rim_config", "rim_config_need_check", "0").await.unwrap();
    let pool = dir.path().join("pool-dates.csv");
    std::fs::write(
        &pool,
        "发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计\n\
         26442000000000000001,0000-01-01,数电普票,卖方,91110000600037341L,买方,92440300MA5DXY7K3W,10.00,0.60,10.60\n\
         26442000000000000002,2026-11-01,数电普票,卖方,91110000600037341L,买方,92440300MA5DXY7K3W,10.00,0.60,10.60\n",
    )
    .unwrap();
    let s = run(&db, &pool, &ImportOptions { accept_valid: true, ..options("pool") }).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, vec![(2, "开票日期", "DATE_OUT_OF_RANGE")]);
    assert_eq!(count(&db, "SELECT count(*) FROM invoice_pool").await, 1);
}

/// Issue 14.3: `1e308` and 32-digit amounts are NUMBER_TOO_LARGE, and a message echoes at most
/// 20 characters of the cell.
#[tokio::test]
async fn huge_numbers_are_too_large_with_short_messages() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let digits32 = "12345678901234567890123456789012";
    let file = write_csv(
        dir.path(),
        "huge.csv",
        &[
            line("E308", "1e308", "13.00", "113.00"),
            line("D32", digits32, "13.00", "113.00"),
            line("OK1", "100.00", "13.00", "113.00"),
        ],
    );
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "单价", "NUMBER_TOO_LARGE"),
            (2, "金额", "NUMBER_TOO_LARGE"),
            (3, "单价", "NUMBER_TOO_LARGE"),
            (3, "金额", "NUMBER_TOO_LARGE")
        ]
    );
    assert_eq!(s.problems[3].message, "数值过大：12345678901234567890…（整数部分最多16位）");
    assert_eq!((s.accepted, s.rejected), (1, 2));

    // The same typed as a spreadsheet number: f64 1e308 shows as 309 digits.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in line("X308", "100.00", "13.00", "113.00").iter().enumerate() {
        sheet.write_string(1, c as u16, v).unwrap();
    }
    sheet.write_number(1, 13, 1e308).unwrap();
    let xlsx = dir.path().join("huge.xlsx");
    book.save(&xlsx).unwrap();
    let s = run(&db, &xlsx, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
    let got: Vec<(&str, &str)> = s.problems.iter().map(|p| (p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, vec![("价税合计", "NUMBER_TOO_LARGE")]);
    assert!(s.problems[0].message.chars().count() <= 40, "{}", s.problems[0].message);
}

/// Issue 14.3: an undecodable byte in a GBK CSV is its cell's problem (row, column,
/// INVALID_ENCODING), never a silent U+FFFD; the same for a broken UTF-8 CSV, which stays UTF-8
/// rather than being read as GBK from end to end.
#[tokio::test]
async fn undecodable_bytes_are_row_problems_in_gbk_and_utf8_csv() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["gbk", "bom", "plain"] {
        let mut bad = line(&format!("{name}-BAD"), "100.00", "13.00", "113.00");
        bad[3] = "深圳#BAD#便利店".into();
        let ok = line(&format!("{name}-OK"), "100.00", "13.00", "113.00");
        let utf8 = write_csv(dir.path(), &format!("{name}-utf8.csv"), &[bad, ok]);
        let text = std::fs::read_to_string(&utf8).unwrap();
        let encoded = match name {
            "gbk" => encoding_rs::GBK.encode(&text).0.into_owned(),
            "bom" => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
            _ => text.into_bytes(),
        };
        let at = encoded.windows(5).position(|w| w == b"#BAD#").unwrap();
        let file = dir.path().join(format!("{name}.csv"));
        std::fs::write(&file, [&encoded[..at], b"\xFF", &encoded[at + 5..]].concat()).unwrap();
        let s =
            run(&db, &file, &ImportOptions { accept_valid: true, ..options("applications") }).await.unwrap();
        let got: Vec<(u32, &str, &str)> =
            s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
        assert_eq!(got, vec![(2, "购方名称", "INVALID_ENCODING")], "{name}");
        assert_eq!(
            s.problems[0].message, "含无法识别的字符（文件应为UTF-8或GBK编码）：深圳\u{FFFD}便利店",
            "{name}"
        );
        assert_eq!((s.accepted, s.rejected), (1, 1), "{name}");
    }
    let buyers: Vec<String> = sqlx::query_scalar("SELECT buyer_name FROM application ORDER BY bill_no")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(buyers, vec!["深圳示例便利店"; 3], "no replacement character, no mojibake");
}

/// Issue 14.3: a 税控 code or number typed as a number gets back the zeros its fixed length
/// says it lost; a 20-digit 数电 number typed as a number lost digits and is refused — that row only.
#[tokio::test]
async fn codes_and_numbers_typed_as_numbers_get_their_zeros_back() {
    let db = db().await;
    fapiao_store::params::set(&db.pool, "rim_config", "rim_config_need_check", "0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let headers = [
        "发票代码",
        "发票号码",
        "开票日期",
        "发票种类",
        "销方名称",
        "销方税号",
        "购方名称",
        "购方税号",
        "金额",
        "税额",
        "价税合计",
    ];
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let rest = ["2026-11-01", "", "卖方", "91110000600037341L", "买方", BUYER, "10.00", "0.60", "10.60"];
    for (r, kind) in [(1u32, "电子普票"), (2, "数电普票"), (3, "数电普票"), (4, "普票")] {
        for (c, v) in rest.iter().enumerate() {
            sheet.write_string(r, c as u16 + 2, if c == 1 { kind } else { v }).unwrap();
        }
    }
    // Row 2: 044031900111 / 00012347 typed as numbers. Row 3: a 数电 number typed as a number.
    // Row 4: a 数电 number as text. Row 5: a 10-digit code and an 8-digit number as numbers.
    sheet.write_number(1, 0, 44031900111.0).unwrap();
    sheet.write_number(1, 1, 12347.0).unwrap();
    sheet.write_number(2, 1, 26442000000000000001.0).unwrap();
    sheet.write_string(3, 1, "26442000000000000002").unwrap();
    sheet.write_number(4, 0, 4400191130.0).unwrap();
    sheet.write_number(4, 1, 1234567.0).unwrap();
    let file = dir.path().join("typed.xlsx");
    book.save(&file).unwrap();
    let s = run(&db, &file, &ImportOptions { accept_valid: true, ..options("pool") }).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, vec![(3, "发票号码", "NUMBER_NOT_TEXT")]);
    assert_eq!((s.accepted, s.rejected), (3, 1));
    let pooled: Vec<(String, String)> =
        sqlx::query_as("SELECT invoice_code, invoice_num FROM invoice_pool ORDER BY invoice_num")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        pooled,
        vec![
            ("044031900111".into(), "00012347".into()),
            ("4400191130".into(), "01234567".into()),
            ("".into(), "26442000000000000002".into())
        ]
    );
}

// ---- Issue 14.3: decompression bombs ----

use fapiao_pipelines::import::sample::{self, Bomb};
use fapiao_pipelines::import::{ReadError, ReadLimits, Refusal};

const SHEET: &str = "xl/worksheets/sheet1.xml";

fn with_limits(limits: ReadLimits) -> ImportOptions {
    ImportOptions { limits, ..options("applications") }
}

fn refusal(err: &ImportError) -> &Refusal {
    match err {
        ImportError::Read(ReadError::Refused(r)) => r,
        other => panic!("not a refusal: {other}"),
    }
}

/// A sheet that inflates beyond `import.max_inflated_mib` is refused before calamine reads it;
/// within the limit, the same few KB of padding stream through and the file imports.
#[tokio::test]
async fn a_part_inflating_beyond_max_inflated_mib_is_refused_and_nothing_lands() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("padded.xlsx");
    sample::write_bomb_xlsx(&file, Bomb::Padded, 3, "PAD", 10, SELLER, BUYER).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() < 64 << 10, "a bomb: a few KB for 3 MiB");
    let two_mib = ReadLimits { max_inflated_bytes: 2 << 20, ..ReadLimits::default() };
    for opts in [with_limits(two_mib), ImportOptions { accept_valid: true, ..with_limits(two_mib) }] {
        let err = run(&db, &file, &opts).await.unwrap_err();
        assert_eq!(refusal(&err), &Refusal::PartTooLarge { part: SHEET.into(), limit_mib: 2 });
        assert_eq!(refusal(&err).code(), "FILE_PART_TOO_LARGE");
        assert!(
            err.to_string().starts_with("文件中的 xl/worksheets/sheet1.xml 解压后超过 2 MiB，拒绝导入"),
            "{err}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM import_batch").await, 0);
    // The default limits hold it: padding streams, the ten lines land.
    let s = run(&db, &file, &options("applications")).await.unwrap();
    assert_eq!((s.outcome, s.accepted, s.problems.len()), ("imported", 10, 0));
}

/// A zip header that declares a small size does not let a large part through: the part is
/// stopped once it inflates beyond what it declared, and refused as a size mismatch (it used to
/// fail as FILE_UNREADABLE with the zip crate's words) — with the limits or without.
#[tokio::test]
async fn a_zip_header_declaring_a_small_size_does_not_let_a_large_part_through() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lying.xlsx");
    sample::write_bomb_xlsx(&file, Bomb::Padded, 3, "LIE", 10, SELLER, BUYER).unwrap();
    sample::lie_about_sizes(&file, 1000).unwrap();
    let two_mib = ReadLimits { max_inflated_bytes: 2 << 20, ..ReadLimits::default() };
    for opts in [options("applications"), with_limits(two_mib)] {
        let err = run(&db, &file, &opts).await.unwrap_err();
        // [Content_Types].xml comes first and is longer than 1000 bytes.
        assert!(matches!(refusal(&err), Refusal::SizeMismatch { declared: 1000, .. }), "{err}");
        assert_eq!(refusal(&err).code(), "FILE_PART_SIZE_MISMATCH");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM import_batch").await, 0);
}

/// A cell beyond `import.max_cell_chars` is refused with the whole file, before the read: it
/// would have to be buffered whole to be given to its row (and a shared string has no row until
/// a cell points at it). An inline string is named by its cell; a shared one by its part.
#[tokio::test]
async fn a_cell_beyond_max_cell_chars_refuses_the_file_naming_the_cell() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    // Issue 14.3's shape: one cell (规格型号 of row 2) that is the whole 2 MiB sheet.
    let file = dir.path().join("one-cell.xlsx");
    sample::write_bomb_xlsx(&file, Bomb::OneCell, 2, "ONE", 1, SELLER, BUYER).unwrap();
    let err = run(&db, &file, &options("applications")).await.unwrap_err();
    assert_eq!(
        refusal(&err),
        &Refusal::CellTooLong { part: SHEET.into(), cell: Some("I2".into()), limit: 32767 }
    );
    assert_eq!(refusal(&err).code(), "CELL_TOO_LONG");
    assert!(err.to_string().starts_with("单元格 I2 的内容超过 32767 个字符，拒绝导入"), "{err}");

    // Shared strings (what rust_xlsxwriter and Excel write), counted in characters: 100 Chinese
    // characters (300 bytes) are within a limit of 100, 101 are not.
    let limit = ReadLimits { max_cell_chars: 100, ..ReadLimits::default() };
    for (n, ok) in [(100, true), (101, false)] {
        let mut cells = line(&format!("LONG{n}"), "100.00", "13.00", "113.00");
        cells[6] = format!("*计算机配套产品*{}", "键".repeat(n - 9));
        let file = dir.path().join(format!("shared-{n}.xlsx"));
        write_xlsx(&file, &[cells]);
        let got = run(&db, &file, &with_limits(limit)).await;
        if ok {
            assert_eq!(got.unwrap().accepted, 1);
        } else {
            let err = got.unwrap_err();
            assert_eq!(
                refusal(&err),
                &Refusal::CellTooLong { part: "xl/sharedStrings.xml".into(), cell: None, limit: 100 }
            );
        }
    }
}

/// The shared strings table is kept whole while a workbook is read (calamine reserves its
/// `uniqueCount` up front): beyond `import.max_shared_strings_mib` it is refused.
#[tokio::test]
async fn a_shared_strings_table_beyond_its_memory_budget_is_refused() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.xlsx");
    write_xlsx(&good, &[line("SST1", "100.00", "13.00", "113.00")]);
    // A count that would reserve 96 GB.
    let lying = dir.path().join("unique-count.xlsx");
    rewrite_part(&good, &lying, "xl/sharedStrings.xml", |xml| {
        let at = xml.find("uniqueCount=\"").expect("a uniqueCount") + "uniqueCount=\"".len();
        let end = at + xml[at..].find('"').unwrap();
        format!("{}4000000000{}", &xml[..at], &xml[end..])
    });
    let err = run(&db, &lying, &options("applications")).await.unwrap_err();
    assert_eq!(
        refusal(&err),
        &Refusal::SharedStringsTooLarge { part: "xl/sharedStrings.xml".into(), limit_mib: 64 }
    );
    assert_eq!(refusal(&err).code(), "SHARED_STRINGS_TOO_LARGE");
    // Many strings, none long: the budget counts them.
    let tight = ReadLimits { max_shared_strings_bytes: 1024, ..ReadLimits::default() };
    let err = run(&db, &good, &with_limits(tight)).await.unwrap_err();
    assert!(matches!(refusal(&err), Refusal::SharedStringsTooLarge { .. }), "{err}");
    assert_eq!(run(&db, &good, &options("applications")).await.unwrap().accepted, 1);
}

/// A merged region as large as a sheet (`A2:XFD1048576`, one region) costs nothing per cell it
/// claims: the lines under it get the anchor's value, and the read stays quick.
#[tokio::test]
async fn a_merged_region_as_large_as_the_sheet_is_read_by_row() {
    let db = db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("merged.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.merge_range(1, 0, 2, 0, "BIG1", &Format::new()).unwrap();
    for r in 1..4u32 {
        for (c, v) in line("BIG1", "100.00", "13.00", "113.00").iter().enumerate().skip(1) {
            sheet.write_string(r, c as u16, v).unwrap();
        }
    }
    book.save(&file).unwrap();
    let huge = dir.path().join("merged-huge.xlsx");
    rewrite_part(&file, &huge, SHEET, |xml| xml.replace("ref=\"A2:A3\"", "ref=\"A2:XFD1048576\""));
    let started = std::time::Instant::now();
    let s = run(&db, &huge, &options("applications")).await.unwrap();
    assert_eq!((s.accepted, s.problems.len()), (3, 0));
    let bills: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT bill_no FROM application").fetch_all(&db.pool).await.unwrap();
    assert_eq!(bills, vec!["BIG1".to_string()]);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// The rows under the header as an .xlsx of shared strings (as Excel writes them).
fn write_xlsx(path: &Path, rows: &[Vec<String>]) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, v).unwrap();
        }
    }
    book.save(path).unwrap();
}

/// Copy the zip at `from` to `to` with `part`'s text changed by `change`.
fn rewrite_part(from: &Path, to: &Path, part: &str, change: impl Fn(&str) -> String) {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name == part {
            bytes = change(std::str::from_utf8(&bytes).unwrap()).into_bytes();
        }
        out.start_file(name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap();
}

#[tokio::test]
async fn an_imported_e_ordinary_invoice_is_deductible_by_its_verified_transport_line() {
    use fapiao_channel::sandbox::sample_invoice;
    let db = db().await;
    let (_sandbox, channel) = bureau().await;
    // Two 电子普票 the bureau knows: a ride (运输服务) and a keyboard.
    let outside = ("出租车公司", "91110000600037341L");
    let mut known = Vec::new();
    for (serial, goods) in [("T1", "*运输服务*客运服务费"), ("T2", "*计算机配套产品*键盘")]
    {
        let mut invoice = sample_invoice(
            serial,
            "taxctl_e_ordinary",
            outside,
            ("买方", BUYER),
            fapiao_schemas::Money::from_cents(10_000),
        );
        invoice.invoice_detail[0].goods_name = goods.into();
        channel.issue(&invoice).await.unwrap();
        let every = std::time::Duration::from_millis(5);
        known.push(
            channel.wait_final(serial, outside.1, every, std::time::Duration::from_secs(5)).await.unwrap(),
        );
    }
    let header =
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态";
    let rows: Vec<String> = known
        .iter()
        .map(|k| {
            format!(
                "{},{},{},电子普票,出租车公司,91110000600037341L,买方,{BUYER},100.00,13.00,113.00,正常",
                k.invoice_code,
                k.invoice_num,
                k.invoice_date.unwrap()
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let opts = ImportOptions { channel: Some(channel.clone()), ..options("pool") };
    let s = run(&db, &file, &opts).await.unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let pooled: Vec<(String, bool, Option<String>, i64)> = sqlx::query_as(
        "SELECT p.invoice_num, p.deductible, p.deductible_reason,
                (SELECT count(*) FROM invoice_pool_line l WHERE l.invoice_num = p.invoice_num)
           FROM invoice_pool p ORDER BY p.invoice_num",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let of = |num: &str| pooled.iter().find(|p| p.0 == num).unwrap().clone();
    let ride = of(&known[0].invoice_num);
    assert_eq!((ride.1, ride.2, ride.3), (true, None, 1), "the transport line decides");
    let keyboard = of(&known[1].invoice_num);
    assert_eq!(
        (keyboard.1, keyboard.2.as_deref(), keyboard.3),
        (false, Some("NOT_DEDUCTIBLE_NO_TRANSPORT_LINE"), 1)
    );
    // Its log begins with how it entered: this import batch, verified.
    let d = fapiao_store::pool::show(&db.pool, &known[0].invoice_num, None, None).await.unwrap();
    assert_eq!(d.log[0].detail, format!("Excel导入入池（导入批次{}），已查验", s.batch_id.unwrap()));
}

#[tokio::test]
async fn an_invoice_past_the_reimbursement_period_is_refused_unverified_and_not_charged() {
    use fapiao_channel::sandbox::sample_invoice;
    let db = db().await;
    fapiao_store::params::set(&db.pool, "rim_compliance_reimburse_days", BUYER, "30").await.unwrap();
    let (sandbox, channel) = bureau().await;
    let outside = ("卖方", "91110000600037341L");
    let money = fapiao_schemas::Money::from_cents(10_000);
    channel.issue(&sample_invoice("P1", "digital_special", outside, ("买方", BUYER), money)).await.unwrap();
    let every = std::time::Duration::from_millis(5);
    let fresh = channel.wait_final("P1", outside.1, every, std::time::Duration::from_secs(5)).await.unwrap();
    let old_date = chrono::Local::now().date_naive() - chrono::Duration::days(45);
    let header =
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态";
    let row = |num: &str, date: String| {
        format!(",{num},{date},数电专票,卖方,91110000600037341L,买方,{BUYER},100.00,13.00,113.00,正常")
    };
    let rows = [
        row(&fresh.invoice_num, fresh.invoice_date.unwrap().to_string()),
        row("26442000000000000077", old_date.to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let opts = ImportOptions { accept_valid: true, channel: Some(channel.clone()), ..options("pool") };
    let s = run(&db, &file, &opts).await.unwrap();
    let got: Vec<(u32, &str, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str(), p.message.as_str())).collect();
    assert_eq!(got, [(3, "开票日期", "REIMBURSEMENT_PERIOD_EXCEEDED", "超过企业设置的报销期限")]);
    assert_eq!(
        sandbox.world().calls.get("RIM.INVOICE.VERIFY").copied(),
        Some(1),
        "the old one was never verified"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM billing_unit WHERE invoice_num = '26442000000000000077'").await,
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM invoice_pool").await, 1);
}

#[tokio::test]
async fn a_buyer_named_otherwise_is_refused_unverified_and_the_rules_passed_are_traced() {
    use fapiao_channel::sandbox::sample_invoice;
    let db = db().await;
    for (ptype, value) in [("rim_compliance_reimburse_days", "30"), ("rim_compliance_buyer_name", "1")] {
        fapiao_store::params::set(&db.pool, ptype, BUYER, value).await.unwrap();
    }
    let (sandbox, channel) = bureau().await;
    let outside = ("卖方", "91110000600037341L");
    let money = fapiao_schemas::Money::from_cents(10_000);
    let mut issued = Vec::new();
    for serial in ["N1", "N2"] {
        channel
            .issue(&sample_invoice(serial, "digital_special", outside, ("买方", BUYER), money))
            .await
            .unwrap();
        let every = std::time::Duration::from_millis(5);
        issued.push(
            channel.wait_final(serial, outside.1, every, std::time::Duration::from_secs(5)).await.unwrap(),
        );
    }
    let header =
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态";
    let row = |i: &fapiao_channel::wire::IssueResult, buyer: &str| {
        format!(
            ",{},{},数电专票,卖方,91110000600037341L,{buyer},{BUYER},100.00,13.00,113.00,正常",
            i.invoice_num,
            i.invoice_date.unwrap()
        )
    };
    let rows = [row(&issued[0], &format!("企业{BUYER}")), row(&issued[1], "别的公司")];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let opts = ImportOptions { accept_valid: true, channel: Some(channel.clone()), ..options("pool") };
    let s = run(&db, &file, &opts).await.unwrap();
    let got: Vec<(u32, &str, &str)> =
        s.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, [(3, "购方名称", "BUYER_NAME_MISMATCH")]);
    assert_eq!(s.problems[0].message, format!("购买方名称别的公司与企业名称企业{BUYER}不一致"));
    // Refused before verification: one VERIFY call, one billing unit, one invoice in the pool.
    assert_eq!(sandbox.world().calls.get("RIM.INVOICE.VERIFY").copied(), Some(1));
    let charged = count(&db, "SELECT count(*) FROM billing_unit").await;
    assert_eq!((charged, count(&db, "SELECT count(*) FROM invoice_pool").await), (1, 1));
    // The landed one carries the rules it passed.
    let d = fapiao_store::pool::show(&db.pool, &issued[0].invoice_num, None, None).await.unwrap();
    let rules: Vec<(&str, &str, bool)> =
        d.compliance.iter().map(|c| (c.stage.as_str(), c.rule.as_str(), c.passed)).collect();
    assert_eq!(rules, [("import", "REIMBURSEMENT_PERIOD", true), ("import", "BUYER_NAME", true)]);
}

#[tokio::test]
async fn transport_tickets_enter_the_pool_deductible_and_are_never_issued() {
    let db = db().await;
    fapiao_store::params::set(&db.pool, "rim_config", "rim_config_need_check", "0").await.unwrap();
    let header =
        "发票代码,发票号码,开票日期,发票种类,销方名称,销方税号,购方名称,购方税号,金额,税额,价税合计,发票状态";
    let rows = [
        format!(
            ",26112000000000000001,2026-10-08,铁路电子客票,中国铁路,91110000600037341L,企业{BUYER},{BUYER},100.00,9.00,109.00,正常"
        ),
        format!(
            ",26612000000000000002,2026-10-09,航空运输电子客票行程单,航空公司,91110000600037341L,企业{BUYER},{BUYER},1000.00,90.00,1090.00,正常"
        ),
        format!(
            ",26442000000000000003,2026-10-09,数电普票,某公司,91110000600037341L,企业{BUYER},{BUYER},100.00,6.00,106.00,正常"
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.csv");
    std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let s = run(&db, &file, &options("pool")).await.unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let pooled: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT invoice_kind, deductible, deductible_reason FROM invoice_pool ORDER BY invoice_num",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        pooled,
        [
            ("digital_rail_ticket".to_string(), true, None),
            ("digital_ordinary".to_string(), false, Some("NOT_DEDUCTIBLE_NO_TRANSPORT_LINE".to_string())),
            ("digital_air_ticket".to_string(), true, None),
        ]
    );
    // An application for a ticket kind is refused at its row: we never issue them.
    let mut cells = line("B-T1", "100.00", "13.00", "113.00");
    cells[5] = "铁路电子客票".into();
    let file = write_csv(dir.path(), "apps.csv", &[cells]);
    let s = run(&db, &file, &options("applications")).await.unwrap();
    let got: Vec<(&str, &str)> = s.problems.iter().map(|p| (p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(got, [("发票种类", "INVOICE_KIND_NOT_ISSUABLE")]);
}
