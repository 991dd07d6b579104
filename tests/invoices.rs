//! `fapiao invoices list|show|download|send` and `fapiao apply show` as real processes against
//! the sandbox over HTTP: find an invoice by what a user knows, see it whole, fetch its files
//! under a name template (one failure reported, the rest delivered), send it to the buyer.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use common::{code, json, stderr};
use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
use fapiao_store::testing::TestDb;

const SELLER: &str = "91310000MA1FL2AB09";
const BUYER: &str = "92440300MA5DXY7K3W";

struct World {
    db: TestDb,
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let db = TestDb::with_enterprises(&[SELLER, BUYER]).await;
        let sandbox = Sandbox::start(
            SandboxConfig { issue_delay: Duration::from_millis(20), ..SandboxConfig::default() },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        World { db, sandbox, dir: tempfile::tempdir().unwrap() }
    }

    fn fapiao(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_fapiao"))
            .args(args)
            .env("DATABASE_URL", &self.db.url)
            .env_remove("FAPIAO_CONFIG")
            .env("RUST_LOG", "warn")
            .env("FAPIAO__CHANNEL__BASE_URL", self.sandbox.base_url())
            .env("FAPIAO__CALLBACKS__URL", format!("{}/erp/callback/{{system}}", self.sandbox.base_url()))
            .env("FAPIAO__INVOICING__SETTLE_POLL_MS", "20")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.fapiao(&all);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        json(&out)
    }

    /// Bills `(bill, buyer name, quantity)` of one 100.00 line each, imported and issued.
    fn issue(&self, bills: &[(&str, &str, u32)]) {
        let file = self.dir.path().join("bills.csv");
        let mut csv = String::from(
            "单据编号,单据日期,销方税号,购方名称,购方税号,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计,行性质,自动开票,业务系统编码\n",
        );
        for (bill, buyer, q) in bills {
            let amount = 100 * q;
            csv.push_str(&format!(
                "{bill},2026-11-01,{SELLER},{buyer},{BUYER},数电普票,*计算机配套产品*键盘,1090511030000000000,{q},100,{amount}.00,13%,{tax}.00,{total}.00,正常,否,ERP1\n",
                tax = 13 * q,
                total = 113 * q
            ));
        }
        std::fs::write(&file, csv).unwrap();
        self.ok(&["import", file.to_str().unwrap(), "--kind", "applications"]);
        self.ok(&["issue", "--all"]);
    }
}

fn numbers(rows: &serde_json::Value) -> Vec<String> {
    rows.as_array().unwrap().iter().map(|r| r["invoice_num"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_is_found_by_its_bill_shown_whole_and_red_flushes_show_up() {
    let w = World::new().await;
    w.issue(&[("B1", "深圳示例科技有限公司", 1), ("B2", "上海示例贸易有限公司", 2)]);

    let b1 = w.ok(&["invoices", "list", "--bill", "B1"]);
    assert_eq!(b1.as_array().unwrap().len(), 1, "{b1}");
    let num = b1[0]["invoice_num"].as_str().unwrap().to_string();
    assert_eq!(w.ok(&["apply", "show", "B1"]), b1, "开票申请单发票查询 finds the same");
    assert_eq!(numbers(&w.ok(&["invoices", "list", "--buyer", "上海示例"])).len(), 1);
    assert_eq!(numbers(&w.ok(&["invoices", "list", "--buyer", BUYER])).len(), 2);
    assert_eq!(numbers(&w.ok(&["invoices", "list", "--number", &num])), vec![num.clone()]);
    assert!(numbers(&w.ok(&["invoices", "list", "--from", "2000-01-01", "--to", "2000-12-31"])).is_empty());

    let shown = w.ok(&["invoices", "show", &num]);
    assert_eq!(shown["invoice"]["bills"], serde_json::json!(["B1"]));
    assert_eq!(shown["lines"].as_array().unwrap().len(), 1);
    let attempts = shown["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "succeeded");
    assert_eq!(attempts[0]["serial_no"], shown["invoice"]["serial_no"]);
    assert_eq!(shown["callbacks"][0]["bill_no"], "B1");

    // Red-flush part of it: the blue invoice is 部分红冲, the red one is listed with its blue.
    let out = w.fapiao(&["red-flush", "--invoice", &format!("{num}:50.00:04")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(numbers(&w.ok(&["invoices", "list", "--red-flush", "部分红冲"])), vec![num.clone()]);
    let red = w.ok(&["invoices", "list", "--colour", "red"]);
    assert_eq!(red[0]["blue_invoice_num"], num.as_str());
    assert_eq!(red[0]["bills"], serde_json::json!(["B1"]), "a red invoice serves its blue one's bills");
    let shown = w.ok(&["invoices", "show", &num]);
    assert_eq!(shown["red_invoices"][0]["invoice_num"], red[0]["invoice_num"]);
    assert_eq!(shown["red_flushes"][0]["state"], "succeeded");
    assert_eq!(shown["invoice"]["remaining"], "63.00");

    for args in [&["invoices", "show", "26310000000000000000"][..], &["apply", "show", "NO-SUCH"]] {
        let out = w.fapiao(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

fn zip_entries(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_named_by_the_template_and_one_failure_does_not_stop_the_rest() {
    let w = World::new().await;
    w.issue(&[("D1", "深圳/示例:公司", 1), ("D2", "深圳/示例:公司", 1), ("D3", "另一家公司", 1)]);
    let nums: Vec<String> = ["D1", "D2", "D3"]
        .iter()
        .map(|b| numbers(&w.ok(&["invoices", "list", "--bill", b]))[0].clone())
        .collect();

    // A zip named by the buyer: unsafe characters replaced, the same name numbered.
    let zip = w.dir.path().join("out.zip");
    let report = w.ok(&[
        "invoices",
        "download",
        "--bill",
        "D1",
        "D2",
        "D3",
        "--name",
        "{购方名称}",
        "--out",
        zip.to_str().unwrap(),
    ]);
    assert_eq!(report["format"], "pdf", "the default of sim_choose_invoice_type");
    let mut names: Vec<String> = zip_entries(&zip).iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(names, ["另一家公司.pdf", "深圳_示例_公司(2).pdf", "深圳_示例_公司.pdf"]);
    for (name, bytes) in zip_entries(&zip) {
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("%PDF-"), "{name}: {text}");
    }

    // Another format by parameter, into a folder, named by number and bill; one file URL is
    // broken: that invoice is reported, exit 3, the others are written.
    w.ok(&["param", "set", "sim_choose_invoice_type", "file_type", "ofd"]);
    sqlx::query("UPDATE issued_invoice SET ofd_file_url = ofd_file_url || '.missing' WHERE invoice_num = $1")
        .bind(&nums[1])
        .execute(&w.db.pool)
        .await
        .unwrap();
    let folder = w.dir.path().join("files");
    let out = w.fapiao(&[
        "--json",
        "invoices",
        "download",
        &nums[0],
        &nums[1],
        &nums[2],
        "--name",
        "{发票号码}_{单据编号}",
        "--out",
        folder.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["failed"][0]["invoice_num"], nums[1].as_str());
    assert_eq!(report["failed"][0]["code"], "FILE_DOWNLOAD_FAILED");
    let mut files: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let mut expected = [format!("{}_D1.ofd", nums[0]), format!("{}_D3.ofd", nums[2])];
    expected.sort();
    assert_eq!(files, expected);
    let content = std::fs::read_to_string(folder.join(format!("{}_D1.ofd", nums[0]))).unwrap();
    assert!(content.contains(&nums[0]), "{content}");

    // An unknown number or a bad template refuses the whole request; nothing is written.
    let never = w.dir.path().join("never.zip");
    for args in [
        vec!["invoices", "download", "26310000000000000000", "--out", never.to_str().unwrap()],
        vec!["invoices", "download", &nums[0], "--name", "{金额}", "--out", never.to_str().unwrap()],
        vec!["invoices", "download", "--out", never.to_str().unwrap()],
    ] {
        let out = w.fapiao(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    assert!(!never.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_is_sent_to_its_buyer_and_the_delivery_is_kept() {
    let w = World::new().await;
    w.issue(&[("S1", "深圳示例科技有限公司", 1)]);
    let num = numbers(&w.ok(&["invoices", "list", "--bill", "S1"]))[0].clone();

    let sent = w.ok(&["invoices", "send", &num, "--email", "finance@example.cn"]);
    assert_eq!(
        (sent["channel"].as_str(), sent["address"].as_str()),
        (Some("email"), Some("finance@example.cn"))
    );
    w.ok(&["invoices", "send", &num, "--phone", "13800138000"]);
    {
        let world = w.sandbox.world();
        assert_eq!(world.deliveries.len(), 2, "the channel received both");
        assert_eq!(world.deliveries[0].email, "finance@example.cn");
        assert_eq!(world.deliveries[1].phone, "13800138000");
    }
    let shown = w.ok(&["invoices", "show", &num]);
    assert_eq!(shown["deliveries"].as_array().unwrap().len(), 2);

    let out = w.fapiao(&["invoices", "send", &num, "--email", "not-an-address"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("邮箱格式不正确"), "{}", stderr(&out));
    let out = w.fapiao(&["invoices", "send", "26310000000000000000", "--email", "a@b.cn"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(w.sandbox.world().deliveries.len(), 2, "nothing sent by a refused request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_enterprise_has_its_drawer_payee_and_reviewer_on_its_invoices() {
    let w = World::new().await;
    w.issue(&[("I1", "深圳示例科技有限公司", 1)]);
    let before = w.ok(&["invoices", "list", "--bill", "I1"]);
    assert_eq!(before[0]["payee"], serde_json::Value::Null, "no payee before the setting");
    w.ok(&[
        "enterprise",
        "issuers",
        "--tax-no",
        SELLER,
        "--drawer",
        "王开票",
        "--payee",
        "李收款",
        "--reviewer",
        "赵复核",
    ]);
    w.issue(&[("I2", "深圳示例科技有限公司", 1)]);
    let after = w.ok(&["invoices", "list", "--bill", "I2"]);
    let got: Vec<&str> =
        ["drawer", "payee", "reviewer"].iter().map(|k| after[0][k].as_str().unwrap()).collect();
    assert_eq!(got, ["王开票", "李收款", "赵复核"]);
    let serial = after[0]["serial_no"].as_str().unwrap().to_string();
    {
        let world = w.sandbox.world();
        let body = world.opened(&serial).unwrap();
        assert_eq!(
            (body.drawer.as_str(), body.payee.as_str(), body.reviewer.as_str()),
            ("王开票", "李收款", "赵复核")
        );
    }
    // A red invoice carries them too.
    let num = after[0]["invoice_num"].as_str().unwrap().to_string();
    w.ok(&["red-flush", "--invoice", &format!("{num}:113.00")]);
    let red_serial =
        w.ok(&["invoices", "list", "--colour", "red"])[0]["serial_no"].as_str().unwrap().to_string();
    {
        let world = w.sandbox.world();
        let body = world.red_opened(&red_serial).expect("the red body");
        assert_eq!(
            (body.drawer.as_str(), body.payee.as_str(), body.reviewer.as_str()),
            ("王开票", "李收款", "赵复核")
        );
    }
    for args in [
        &["enterprise", "issuers", "--tax-no", "91440300MA5FXXXX0X", "--drawer", "x"][..],
        &["enterprise", "issuers", "--tax-no", "91110000600037341L", "--drawer", "x"][..],
        &["enterprise", "issuers", "--tax-no", SELLER, "--drawer", "  "][..],
    ] {
        let out = w.fapiao(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_flush_dry_run_shows_the_lines_and_what_remains_and_changes_nothing() {
    let w = World::new().await;
    w.issue(&[("R1", "深圳示例科技有限公司", 2)]);
    let num = numbers(&w.ok(&["invoices", "list", "--bill", "R1"]))[0].clone();
    let preview = w.ok(&["red-flush", "--invoice", &format!("{num}:113.00:04"), "--dry-run"]);
    let p = &preview[0];
    assert_eq!((p["state"].as_str(), p["requested"].as_str()), (Some("waiting"), Some("113.00")), "{p}");
    assert_eq!(
        (p["remaining_before"].as_str(), p["remaining_after"].as_str()),
        (Some("226.00"), Some("113.00"))
    );
    let lines = p["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!((lines[0]["amount"].as_str(), lines[0]["tax"].as_str()), (Some("-100.00"), Some("-13.00")));

    // Requests are judged in order: the second sees the first.
    let out = w.fapiao(&[
        "--json",
        "red-flush",
        "--invoice",
        &format!("{num}:113.00:04"),
        "--invoice",
        &format!("{num}:113.01:04"),
        "--dry-run",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(json(&out)[1]["code"], "RED_FLUSH_REMAINING_INSUFFICIENT");

    let count = |sql: &'static str| {
        let pool = w.db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM red_flush").await, 0, "nothing recorded");
    assert_eq!(count("SELECT count(*) FROM pending_invoice WHERE invoice_property = 1").await, 0);
    assert_eq!(w.sandbox.world().calls.get("ALLE.INVOICE.RED"), None, "nothing sent");
    assert_eq!(w.ok(&["invoices", "show", &num])["invoice"]["remaining"], "226.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_the_buyer_entered_are_downloaded_into_a_workbook_and_confirmed_into_a_red_invoice() {
    use calamine::Reader;
    let w = World::new().await;
    w.issue(&[("B1", "深圳示例科技有限公司", 1)]);
    let num = numbers(&w.ok(&["invoices", "list", "--bill", "B1"]))[0].clone();
    let money = |s: &str| fapiao_schemas::Money::parse(s).unwrap();
    let form = w.sandbox.world().inbound_form(&num, money("-20.00"), money("-2.60"), "04").unwrap();
    let out = w.dir.path().join("documents.xlsx");
    let got = w.ok(&["red-flush", "forms", "download", "--out", out.to_str().unwrap()]);
    assert!(got["result"].as_str().unwrap().starts_with("1 forms and 0 red info sheets"), "{got}");
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&out).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let rows: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(rows[0][..4], ["类型", "编号", "ID", "状态"]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[1][0].as_str(), rows[1][2].as_str(), rows[1][3].as_str()),
        ("红字确认单", form.bill_uuid.as_str(), "购方录入待销方确认")
    );
    assert_eq!((rows[1][6].as_str(), rows[1][10].as_str()), (num.as_str(), "-22.60"));
    // Confirmed here, it is red-flushed on the form at once: exactly 20.00 + 2.60.
    let decided = w.ok(&["red-flush", "forms", "confirm", &form.bill_uuid]);
    assert_eq!(decided["state"], "04", "{decided}");
    let red = decided["red_flush"]["red_invoice_num"].as_str().expect("a red invoice").to_string();
    let shown = w.ok(&["invoices", "show", &red]);
    assert_eq!(
        (shown["invoice"]["amount"].as_str(), shown["invoice"]["tax"].as_str()),
        (Some("-20.00"), Some("-2.60"))
    );
    assert_eq!(w.ok(&["invoices", "show", &num])["invoice"]["remaining"], "90.40");
}
