//! Receipt codes from the command line (issue 20): the goods import template and its all-or-nothing
//! import with real workbooks, a receipt code previewed before it is saved, and `bench receipt`
//! run small (its correctness output, never its timings).

mod common;

use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::{code, fapiao_on, json, stderr, stdout};
use fapiao_store::testing::TestDb;
use rust_decimal::Decimal;

const A: &str = "91310000MA1FL2AB09";
const B: &str = "92440300MA5DXY7K3W";
const CODE: &str = "3070401000000000000";

/// A cell of a workbook the tests write.
enum V {
    T(&'static str),
    N(f64),
    E,
}

/// A workbook with `headers` in row 1 and `rows` under them, on a sheet named 开票项.
fn workbook(path: &Path, headers: &[String], rows: &[Vec<V>]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("开票项").unwrap();
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match v {
                V::T(s) => {
                    sheet.write_string(r, c, *s).unwrap();
                }
                V::N(n) => {
                    sheet.write_number(r, c, *n).unwrap();
                }
                V::E => {}
            }
        }
    }
    book.save(path).unwrap();
}

/// The header row of the template `fapiao goods template` wrote.
fn template_headers(path: &Path) -> Vec<String> {
    let mut book: Xlsx<_> = open_workbook(path).unwrap();
    assert_eq!(book.sheet_names()[0], "开票项");
    let range = book.worksheet_range("开票项").unwrap();
    range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| if let Data::String(s) = c { s.clone() } else { String::new() })
        .collect()
}

async fn goods_count(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM goods_item").fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn the_goods_template_imports_whole_or_names_every_bad_row_and_lands_nothing() {
    let db = TestDb::with_enterprises(&[A, B]).await;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.xlsx");
    let out = fapiao_on(&db.url, &["goods", "template", template.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let headers = template_headers(&template);
    assert_eq!(headers, ["销方税号", "商品名称", "税收分类编码", "税率", "规格型号", "单位", "单价"]);

    // A good file, filled under the template's own headers: numbers as numbers and as text.
    let good = dir.path().join("good.xlsx");
    workbook(
        &good,
        &headers,
        &[
            vec![V::E, V::T("拿铁咖啡"), V::T(CODE), V::N(0.06), V::T("大杯"), V::T("杯"), V::N(30.0)],
            vec![V::T(A), V::T("咖啡豆"), V::T(CODE), V::T("13%"), V::E, V::T("袋"), V::N(88.5)],
            vec![V::E, V::T("外卖服务"), V::T(CODE), V::T("0.06"), V::E, V::E, V::E],
        ],
    );
    let out = fapiao_on(&db.url, &["goods", "import", good.to_str().unwrap(), "--tax-no", A]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("3 goods items imported"), "{}", stdout(&out));
    let rows: Vec<(String, Decimal, Option<Decimal>, Option<String>)> =
        sqlx::query_as("SELECT name, tax_rate, price, unit FROM goods_item WHERE tax_no = $1 ORDER BY id")
            .bind(A)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(rows[0], ("拿铁咖啡".into(), d("0.06"), Some(d("30")), Some("杯".into())));
    assert_eq!(rows[1], ("咖啡豆".into(), d("0.13"), Some(d("88.5")), Some("袋".into())));
    assert_eq!(rows[2], ("外卖服务".into(), d("0.06"), None, None));

    // A file with bad rows: each named by row, column and reason; nothing of it lands.
    let bad = dir.path().join("bad.xlsx");
    workbook(
        &bad,
        &headers,
        &[
            vec![V::E, V::T("好的一行"), V::T(CODE), V::N(0.06), V::E, V::E, V::N(1.0)],
            vec![V::E, V::E, V::T(CODE), V::N(0.06), V::E, V::E, V::E],
            vec![V::E, V::T("编码太短"), V::T("12345"), V::N(0.06), V::E, V::E, V::E],
            vec![V::E, V::T("税率不对"), V::T(CODE), V::N(0.07), V::E, V::E, V::E],
            vec![V::E, V::T("单价不对"), V::T(CODE), V::N(0.06), V::E, V::E, V::T("abc")],
            vec![V::T(B), V::T("别家的"), V::T(CODE), V::N(0.06), V::E, V::E, V::N(-2.0)],
        ],
    );
    let before = goods_count(&db).await;
    let out = fapiao_on(&db.url, &["--json", "goods", "import", bad.to_str().unwrap(), "--tax-no", A]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let answer = json(&out);
    let problems: Vec<(u64, String, String)> = answer["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(!p["message"].as_str().unwrap().is_empty());
            (
                p["row"].as_u64().unwrap(),
                p["column"].as_str().unwrap().into(),
                p["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(u64, String, String)> = [
        (3, "商品名称", "REQUIRED_FIELD_EMPTY"),
        (4, "税收分类编码", "REVENUE_CODE_FORMAT"),
        (5, "税率", "TAX_RATE_NOT_ALLOWED"),
        (6, "单价", "NUMBER_FORMAT"),
        (7, "销方税号", "SELLER_MISMATCH"),
        (7, "单价", "GOODS_PRICE"),
    ]
    .into_iter()
    .map(|(r, c, k)| (r, c.to_string(), k.to_string()))
    .collect();
    assert_eq!(problems, expected);
    assert_eq!(answer["imported"].as_array().unwrap().len(), 0);
    assert_eq!(goods_count(&db).await, before, "all or nothing: the good row did not land either");

    // The table for a person, and the seller column required without --tax-no.
    let out = fapiao_on(&db.url, &["goods", "import", good.to_str().unwrap()]);
    assert_eq!(code(&out), 3);
    assert!(
        stdout(&out).contains("nothing imported") && stdout(&out).contains("销方税号"),
        "{}",
        stdout(&out)
    );
    assert_eq!(goods_count(&db).await, before);
}

#[tokio::test]
async fn a_receipt_code_is_previewed_without_storing_or_signing_anything() {
    let db = TestDb::with_enterprises(&[A]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = fapiao_on(
        &db.url,
        &[
            "receipt",
            "settings",
            "--tax-no",
            A,
            "--base-url",
            "http://127.0.0.1:8080",
            "--validity-minutes",
            "90",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = fapiao_on(
        &db.url,
        &[
            "--json",
            "goods",
            "add",
            "--tax-no",
            A,
            "--name",
            "拿铁咖啡",
            "--revenue-code",
            CODE,
            "--tax-rate",
            "0.06",
            "--price",
            "30.00",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let goods: i64 = sqlx::query_scalar("SELECT id FROM goods_item").fetch_one(&db.pool).await.unwrap();
    let line = format!("{goods}:2");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "receipt",
            "add",
            "--tax-no",
            A,
            "--serial",
            "P-1",
            "--drawer",
            "张三",
            "--line",
            &line,
            "--line",
            "discount:-5.00",
            "--bottom-remark",
            "谢谢惠顾，扫码开票",
        ];
        args.extend_from_slice(extra);
        fapiao_on(&db.url, &args)
    };
    let preview_dir = dir.path().join("preview");
    let out = add(&["--preview", "--preview-out", preview_dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "预览",
        "not saved",
        "discounted",
        "discount",
        "total 55.00",
        "bottom remark: 谢谢惠顾，扫码开票",
        "valid until",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let png = preview_dir.join("receipt-preview-P-1.png");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM receipt_code").await, 0, "a preview stores nothing");
    assert_eq!(count("SELECT count(*) FROM receipt_code_line").await, 0);
    assert_eq!(count("SELECT count(*) FROM application").await, 0, "the line check landed nothing");
    assert!(!text.contains("/r?"), "no link signed: {text}");

    let out = add(&["--json", "--preview", "--preview-out", preview_dir.to_str().unwrap()]);
    let p = json(&out);
    assert_eq!(p["stored"], false);
    assert_eq!((p["preview"]["total"].as_str(), p["preview"]["tax"].as_str()), (Some("55.00"), Some("3.12")));
    assert_eq!(p["preview"]["receipt"]["lines"].as_array().unwrap().len(), 2);
    assert_eq!(count("SELECT count(*) FROM receipt_code").await, 0);

    // Saving the same request stores it (so the counts above could have been otherwise).
    let out = add(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("/r?"), "{}", stdout(&out));
    assert_eq!(count("SELECT count(*) FROM receipt_code").await, 1);
}

#[tokio::test]
async fn bench_receipt_checks_every_receipt_got_one_invoice() {
    let db = TestDb::new().await;
    let out = fapiao_on(
        &db.url,
        &["--json", "bench", "receipt", "--codes", "6", "--latency-ms", "5", "--concurrency", "3"],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let r = json(&out);
    assert_eq!(r["codes"], 6);
    assert_eq!(r["not_succeeded"], 0);
    assert_eq!(r["invoices_in_sandbox"], 6);
    assert_eq!(r["one_invoice_per_receipt"], true);
    assert_eq!(r["problems"].as_array().unwrap().len(), 0);
    assert_eq!(r["channel_issue_failures"], 0);
    let out =
        fapiao_on(&db.url, &["bench", "receipt", "--codes", "2", "--latency-ms", "5", "--concurrency", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("every receipt exactly one invoice"), "{}", stdout(&out));
}
