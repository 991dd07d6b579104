//! `fapiao issue` and `fapiao red-flush` as real processes against the sandbox: a bulk issue
//! killed with SIGKILL mid-run and re-run issues nothing twice; a red-flush batch of ten where
//! three fail reports each one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{code, stderr};
use fapiao_channel::codes::IssueStatus;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig};
use fapiao_store::testing::TestDb;

const SELLER: &str = "91310000MA1FL2AB09";
const BUYER: &str = "92440300MA5DXY7K3W";

fn fapiao(db: &TestDb, sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fapiao"));
    c.args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("FAPIAO_CONFIG")
        .env("RUST_LOG", "warn")
        .env("FAPIAO__CHANNEL__BASE_URL", sandbox.base_url())
        .env("FAPIAO__CALLBACKS__URL", format!("{}/erp/callback/{{system}}", sandbox.base_url()))
        .env("FAPIAO__INVOICING__ISSUE_CONCURRENCY", "4")
        .env("FAPIAO__INVOICING__SETTLE_POLL_MS", "20");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_bulk_issue_then_a_rerun_issues_nothing_twice() {
    let db = TestDb::with_enterprises(&[SELLER, BUYER]).await;
    let faults = FaultPlan::parse("latency@ALLE.INVOICE.OPEN=60ms,drop@ALLE.INVOICE.OPEN=0.1").unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig { issue_delay: Duration::from_millis(40), faults, ..SandboxConfig::default() },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bills.csv");
    let mut csv = String::from(
        "单据编号,单据日期,销方税号,购方名称,购方税号,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计\n",
    );
    for n in 0..80 {
        csv.push_str(&format!("K{n:03},2026-11-01,{SELLER},买方,{BUYER},数电普票,*计算机配套产品*键盘,1090511030000000000,1,100,100.00,13%,13.00,113.00\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let imported = fapiao(&db, &sandbox, &["import", file.to_str().unwrap(), "--kind", "applications"])
        .output()
        .unwrap();
    assert_eq!(code(&imported), 0, "{}", stderr(&imported));

    let mut victim = fapiao(&db, &sandbox, &["issue", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let accepted = sandbox.world().issued_count();
        if accepted >= 8 {
            assert!(accepted < 80, "killed too late to prove anything");
            break;
        }
        assert!(Instant::now() < deadline, "issuing never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let unfinished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pending_invoice WHERE status <> 'succeeded'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(unfinished > 0);

    sandbox.world().dice.set_plan(FaultPlan::none());
    let (d, s) = (db.url.clone(), sandbox.base_url());
    let rerun = tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fapiao"));
        c.args(["issue", "--all", "--json"])
            .env("DATABASE_URL", d)
            .env_remove("FAPIAO_CONFIG")
            .env("RUST_LOG", "warn")
            .env("FAPIAO__CHANNEL__BASE_URL", &s)
            .env("FAPIAO__CALLBACKS__URL", format!("{s}/erp/callback/{{system}}"))
            .env("FAPIAO__INVOICING__SETTLE_POLL_MS", "20");
        c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code(&rerun), 0, "{}", stderr(&rerun));

    // Every pending invoice issued, exactly once by the channel's own ledger; every serial the
    // channel ever accepted was stored by us before the call.
    let attempts: Vec<(i64, String)> =
        sqlx::query_as("SELECT pending_id, serial_no FROM issue_attempt").fetch_all(&db.pool).await.unwrap();
    let ours: BTreeSet<&str> = attempts.iter().map(|(_, s)| s.as_str()).collect();
    let mut per: BTreeMap<i64, usize> = BTreeMap::new();
    {
        let world = sandbox.world();
        assert!(world.serials().iter().all(|s| ours.contains(s.as_str())));
        for (id, serial) in &attempts {
            *per.entry(*id).or_default() +=
                usize::from(world.outcome(serial).is_some_and(|r| r.issue_status == IssueStatus::Succeeded));
        }
    }
    assert_eq!(per.len(), 80);
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    let issued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM issued_invoice").fetch_one(&db.pool).await.unwrap();
    assert_eq!(issued, 80);
    // And every bill's ERP heard once.
    assert_eq!(sandbox.world().erp.received.len(), 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_flush_batch_of_ten_where_three_fail_reports_each_and_exits_3() {
    let db = TestDb::with_enterprises(&[SELLER, BUYER]).await;
    let sandbox = Sandbox::start(
        SandboxConfig { issue_delay: Duration::from_millis(20), ..SandboxConfig::default() },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bills.csv");
    let mut csv = String::from(
        "单据编号,单据日期,销方税号,购方名称,购方税号,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计\n",
    );
    for n in 0..9 {
        csv.push_str(&format!("R{n},2026-11-01,{SELLER},买方,{BUYER},数电普票,*计算机配套产品*键盘,1090511030000000000,1,100,100.00,13%,13.00,113.00\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let (url, base) = (db.url.clone(), sandbox.base_url());
    let run = move |args: Vec<String>| {
        let (url, base) = (url.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_fapiao"))
                .args(&args)
                .env("DATABASE_URL", url)
                .env_remove("FAPIAO_CONFIG")
                .env("RUST_LOG", "warn")
                .env("FAPIAO__CHANNEL__BASE_URL", &base)
                .env("FAPIAO__CALLBACKS__URL", format!("{base}/erp/callback/{{system}}"))
                .env("FAPIAO__INVOICING__SETTLE_POLL_MS", "20")
                .output()
                .unwrap()
        })
    };
    let out =
        run(vec!["import".into(), file.to_str().unwrap().into(), "--kind".into(), "applications".into()])
            .await
            .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(vec!["issue".into(), "--all".into()]).await.unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let nums: Vec<String> = sqlx::query_scalar("SELECT invoice_num FROM issued_invoice ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    // Seven good ones; an unknown number, one cent over, and reason 01 for a part.
    let mut args: Vec<String> = vec!["red-flush".into()];
    for n in &nums[..7] {
        args.extend(["--invoice".into(), n.clone()]);
    }
    args.extend(["--invoice".into(), "26311999999999999999".into()]);
    args.extend(["--invoice".into(), format!("{}:113.01:04", nums[7])]);
    args.extend(["--invoice".into(), format!("{}:50:01", nums[8])]);
    let report = dir.path().join("red.xlsx");
    args.extend(["--report".into(), report.to_str().unwrap().into(), "--json".into()]);
    let out = run(args.clone()).await.unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<(&str, Option<&str>)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["state"].as_str().unwrap(), r["code"].as_str()))
        .collect();
    assert_eq!(&states[..7], &[("succeeded", None); 7]);
    assert_eq!(
        &states[7..],
        &[
            ("refused", Some("RED_FLUSH_INVOICE_NOT_FOUND")),
            ("refused", Some("RED_FLUSH_REMAINING_INSUFFICIENT")),
            ("refused", Some("RED_FLUSH_REASON_FULL_ONLY"))
        ]
    );
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&report).unwrap();
    use calamine::Reader;
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.height(), 11, "a header and a line per invoice");
    assert_eq!(
        range.get((9, 7)).unwrap().to_string(),
        "剩余可红冲金额不足。开票管理→待开发票页面中可能存在本发票的未开票的数据，请先处理。"
    );
    // Eleven at once is refused before anything happens.
    args.extend(["--invoice".into(), nums[0].clone()]);
    assert_eq!(code(&run(args).await.unwrap()), 2);
}
