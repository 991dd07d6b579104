//! The `fapiao` binary end to end, each test on a fresh database given as DATABASE_URL.

mod common;

use common::{code, fapiao_on, json, stderr, stdout};
use fapiao_store::testing::TestDb;

#[tokio::test]
async fn an_invalid_parameter_value_exits_2_and_changes_nothing() {
    let db = TestDb::new().await;
    let out = fapiao_on(&db.url, &["param", "set", "rim_config", "rim_config_sync_his", "2"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rim_config_sync_his") && stderr(&out).contains("0 or 1"),
        "{}",
        stderr(&out)
    );
    let out = fapiao_on(&db.url, &["param", "get", "rim_config", "rim_config_sync_his"]);
    assert_eq!(stdout(&out).trim(), "1");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_param").fetch_one(&db.pool).await.unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn valid_values_round_trip_through_get() {
    let db = TestDb::new().await;
    for (ptype, key, value, expected) in [
        ("rim_config", "rim_config_sync_his", "0", "0"),
        ("rim_config", "newetax_inputout_days", "15,1", "1,15"),
        ("rim_down_async", "taxnos", "91310000MA1FL2AB09", "91310000MA1FL2AB09"),
        (
            "sim_auto_issue_config",
            "repairing",
            "局端内部错误，该开票请求修复中",
            "局端内部错误，该开票请求修复中",
        ),
    ] {
        let out = fapiao_on(&db.url, &["param", "set", ptype, key, value]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = fapiao_on(&db.url, &["param", "get", ptype, key]);
        assert_eq!(stdout(&out).trim(), expected);
        let out = fapiao_on(&db.url, &["--json", "param", "get", ptype, key]);
        assert_eq!(json(&out)["value"], expected);
        assert_eq!(json(&out)["source"], "set");
    }
    let out = fapiao_on(&db.url, &["param", "unset", "rim_config", "rim_config_sync_his"]);
    assert_eq!(code(&out), 0);
    let out = fapiao_on(&db.url, &["param", "get", "rim_config", "rim_config_sync_his"]);
    assert_eq!(stdout(&out).trim(), "1");
}

#[tokio::test]
async fn errors_are_json_with_a_stable_code_when_asked() {
    let db = TestDb::new().await;
    let out = fapiao_on(&db.url, &["--json", "param", "set", "rim_config", "no_such_key", "1"]);
    assert_eq!(code(&out), 2);
    assert_eq!(json(&out)["error"]["code"], "PARAM_UNKNOWN");
    let out = fapiao_on(&db.url, &["param", "frobnicate"]);
    assert_eq!(code(&out), 2, "clap usage errors exit 2");
}

#[tokio::test]
async fn enterprises_and_schemes_from_the_cli() {
    let db = TestDb::new().await;
    let add = |tax_no: &str, kind: &str| {
        fapiao_on(
            &db.url,
            &[
                "enterprise",
                "add",
                "--tax-no",
                tax_no,
                "--name",
                "示例公司",
                "--kind",
                kind,
                "--etax-account",
                "acct-1",
                "--channel",
                "乐企",
            ],
        )
    };
    let out = add("91310000MA1FL2AB08", "general");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("check character"), "{}", stderr(&out));
    assert_eq!(code(&add("91310000MA1FL2AB09", "小规模纳税人")), 0);
    let out = add("91310000MA1FL2AB09", "general");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = fapiao_on(&db.url, &["--json", "enterprise", "list"]);
    let list = json(&out);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["taxpayer_kind"], "small_scale");
    assert_eq!(list[0]["channel"], "leqi");
    // Moved to 电子税局 and grown to a general taxpayer; the rest stays.
    let set = [
        "--json",
        "enterprise",
        "set",
        "--tax-no",
        "91310000MA1FL2AB09",
        "--channel",
        "etax",
        "--kind",
        "一般纳税人",
    ];
    let changed = json(&fapiao_on(&db.url, &set));
    assert_eq!(
        (&changed[0]["channel"], &changed[0]["taxpayer_kind"], &changed[0]["etax_account"]),
        (&serde_json::json!("etax"), &serde_json::json!("general"), &serde_json::json!("acct-1"))
    );
    assert_eq!(
        code(&fapiao_on(&db.url, &["enterprise", "set", "--tax-no", "92440300MA5DXY7K3W", "--name", "x"])),
        2
    );

    let out = fapiao_on(
        &db.url,
        &["scheme", "add", "--code", "S1", "--tax-no", "92440300MA5DXY7K3W", "--start", "2022-01-01"],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("enterprise add"), "{}", stderr(&out));
    let out = fapiao_on(
        &db.url,
        &["scheme", "add", "--code", "S1", "--tax-no", "91310000MA1FL2AB09", "--start", "2022-01-01"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = fapiao_on(&db.url, &["--json", "scheme", "list"]);
    assert_eq!(json(&out)[0]["start_date"], "2022-01-01");
    assert_eq!(json(&out)[0]["active"], true);
}

#[tokio::test]
async fn demo_runs_twice_on_the_same_database() {
    let db = TestDb::new().await;
    // A home that does not exist yet, as on a fresh machine: the demo makes it.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("fresh-home");
    for _ in 0..2 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
            .args(["demo", "--json"])
            .env("DATABASE_URL", &db.url)
            .env("FAPIAO_HOME", &home)
            .env_remove("FAPIAO_CONFIG")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let report = json(&out);
        assert_eq!(report["enterprises"][0]["name"], "上海示例贸易有限公司");
        // The pool in use: over-use and the reimbursement period refused verbatim.
        let pool_use = &report["pool_use"];
        assert!(
            pool_use["over_use_refused"].as_str().unwrap().contains("使用金额超出剩余可用金额"),
            "{pool_use}"
        );
        assert_eq!(pool_use["past_period_refused"], "超过企业设置的报销期限", "{pool_use}");
        // 抵扣类勾选: a batch for the reported period polled to done; the small-scale one refused.
        let selection = &report["selection"];
        assert_eq!(selection["selected"]["batch"]["state"], "done", "{selection}");
        assert_eq!(selection["selected"]["first_state"], "pending", "{selection}");
        assert_eq!(
            selection["refused"]["message"],
            "小规模纳税人不支持抵扣类勾选数据下载，可根据企业在税局的信息，在星瀚发票云企业基础资料修改。",
            "{selection}"
        );
        // The imported bills are issued, each once by the sandbox's ledger, and every bill's ERP heard.
        let inv = &report["invoicing"];
        assert_eq!(inv["issued_once"], true, "{inv}");
        assert_eq!(inv["reissue"]["still_failing"], 0);
        assert_eq!(inv["erp_received_ok"], inv["bills"]);
        // Bills pushed through the ERP API are issued and called back at the system's own URL.
        let erp = &report["erp_push"];
        assert_eq!(
            (erp["bills"].clone(), erp["resent_same_answers"].clone()),
            (serde_json::json!(3), serde_json::json!(true)),
            "{erp}"
        );
        assert!(erp["callbacks_at_own_url"].as_u64().unwrap() >= 1, "{erp}");
        // One of each red-flush track succeeded (one on a sheet entered by hand), and the month's
        // export reconciles.
        let reds = report["red_flush"]["results"].as_array().unwrap();
        assert_eq!(reds.len(), 5);
        assert!(reds[3]["path"].as_str().unwrap().contains("entered by hand"), "{reds:?}");
        assert!(reds.iter().all(|r| r["state"] == "succeeded"), "{reds:?}");
        let checks = report["export"]["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 4);
        assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");
        assert!(std::path::Path::new(report["export"]["path"].as_str().unwrap()).is_file());
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_scheme").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 2);
}

#[test]
fn config_show_never_prints_secrets() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(["config", "show"])
        .env("FAPIAO__CHANNEL__APP_SECRET", "hunter2-very-secret")
        .env("FAPIAO__DATABASE__URL", "postgres://app:pw-hidden@db/fapiao")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("hunter2") && !text.contains("pw-hidden"), "{text}");
    assert!(text.contains("******"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(["config", "show"])
        .env("FAPIAO__CHANNEL__NO_SUCH_KEY", "1")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("FAPIAO__CHANNEL__NO_SUCH_KEY"), "{}", stderr(&out));
}

#[test]
fn the_sandbox_command_serves_and_refuses_bad_fault_specs() {
    use std::io::{BufRead, BufReader, Read, Write};
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(["sandbox", "--faults", "meteor=0.5"])
        .output()
        .unwrap();
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--seed", "7"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr =
        first.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).expect(&first).to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(conn, "GET /sandbox/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(reply.starts_with("HTTP/1.1 200") && reply.contains("\"issued\":0"), "{reply}");
}

#[tokio::test]
async fn import_from_the_cli_exit_codes_and_json_shape() {
    let db = TestDb::new().await;
    let add = fapiao_on(
        &db.url,
        &["enterprise", "add", "--tax-no", "91310000MA1FL2AB09", "--name", "卖方", "--etax-account", "a"],
    );
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apps.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(
        &file,
        "CLI",
        20,
        "91310000MA1FL2AB09",
        "92440300MA5DXY7K3W",
        &[3],
    )
    .unwrap();
    let f = file.to_str().unwrap();

    let out = fapiao_on(&db.url, &["--json", "import", f, "--kind", "applications"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let s = json(&out);
    assert_eq!(
        (
            s["batch_id"].is_null(),
            s["rows_read"].as_u64(),
            s["bills"].as_u64(),
            s["accepted"].as_u64(),
            s["rejected"].as_u64()
        ),
        (true, Some(20), Some(4), Some(0), Some(20))
    );
    assert_eq!(s["problems"][0]["row"], 5);
    assert_eq!(s["problems"][0]["column"], "税额");
    assert_eq!(s["problems"][0]["code"], "TAX_LINE_MISMATCH");

    let out = fapiao_on(&db.url, &["--json", "import", f, "--kind", "applications", "--accept-valid"]);
    assert_eq!(code(&out), 3);
    let s = json(&out);
    assert_eq!((s["accepted"].as_u64(), s["rejected"].as_u64()), (Some(15), Some(5)));
    let batch = s["batch_id"].as_i64().unwrap();

    let again = fapiao_on(&db.url, &["import", f, "--kind", "applications", "--accept-valid"]);
    assert_eq!(code(&again), 1);
    assert!(stderr(&again).contains(&format!("batch {batch}")), "{}", stderr(&again));
    let history = fapiao_on(&db.url, &["--json", "import", "history"]);
    assert_eq!(json(&history)[0]["id"], batch);
}

/// Issue 14.3: a decompression bomb is refused from the command line with its code, exit 1, and
/// the `[import]` limits come from the configuration (here an environment override).
#[tokio::test]
async fn a_decompression_bomb_is_refused_with_its_code_and_the_configured_limit() {
    use fapiao_pipelines::import::sample::{Bomb, write_bomb_xlsx};
    let db = TestDb::new().await;
    let add = fapiao_on(
        &db.url,
        &["enterprise", "add", "--tax-no", "91310000MA1FL2AB09", "--name", "卖方", "--etax-account", "a"],
    );
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let dir = tempfile::tempdir().unwrap();
    let one_cell = dir.path().join("one-cell.xlsx");
    write_bomb_xlsx(&one_cell, Bomb::OneCell, 1, "CLI", 1, "91310000MA1FL2AB09", "92440300MA5DXY7K3W")
        .unwrap();
    let out = fapiao_on(&db.url, &["--json", "import", one_cell.to_str().unwrap(), "--kind", "applications"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["code"], "CELL_TOO_LONG");
    assert!(
        json(&out)["error"]["message"].as_str().unwrap().starts_with("单元格 I2 的内容超过 32767 个字符")
    );

    let padded = dir.path().join("padded.xlsx");
    write_bomb_xlsx(&padded, Bomb::Padded, 3, "CLI", 10, "91310000MA1FL2AB09", "92440300MA5DXY7K3W").unwrap();
    let with_limit = |mib: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
            .args(["--json", "import", padded.to_str().unwrap(), "--kind", "applications", "--dry-run"])
            .env("DATABASE_URL", &db.url)
            .env_remove("FAPIAO_CONFIG")
            .env("FAPIAO__IMPORT__MAX_INFLATED_MIB", mib)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = with_limit("2");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["code"], "FILE_PART_TOO_LARGE");
    let out = with_limit("4");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["accepted"], 10);
}

#[tokio::test]
async fn kill_9_during_a_large_import_leaves_no_partial_batch_and_a_rerun_imports_it_once() {
    let db = TestDb::new().await;
    fapiao_on(
        &db.url,
        &["enterprise", "add", "--tax-no", "91310000MA1FL2AB09", "--name", "卖方", "--etax-account", "a"],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(
        &file,
        "K",
        150_000,
        "91310000MA1FL2AB09",
        "92440300MA5DXY7K3W",
        &[],
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(["import", file.to_str().unwrap(), "--kind", "applications"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the import is under way (its staging transaction is open), then kill it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let busy: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'COPY import_stage%'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if busy > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the import never started copying");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM import_batch").await, 0);
    assert_eq!(count("SELECT count(*) FROM application_line").await, 0);

    let rerun = fapiao_on(&db.url, &["import", file.to_str().unwrap(), "--kind", "applications"]);
    assert_eq!(code(&rerun), 0, "{}", stderr(&rerun));
    assert_eq!(count("SELECT count(*) FROM import_batch").await, 1);
    assert_eq!(count("SELECT count(*) FROM application_line").await, 150_000);
}

/// `fapiao ARGS` with no database at all: arguments are refused before one is needed.
fn fapiao_bare(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(args)
        .env_remove("FAPIAO_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn argument_errors_are_json_on_stdout_when_asked_and_help_still_exits_0() {
    for args in [
        &[
            "--json",
            "enterprise",
            "add",
            "--tax-no",
            "91310000MA1FL2AB08",
            "--name",
            "x",
            "--etax-account",
            "a",
        ][..],
        &[
            "enterprise",
            "add",
            "--json",
            "--tax-no",
            "91310000MA1FL2AB09",
            "--name",
            "x",
            "--etax-account",
            "a",
            "--kind",
            "huge",
        ],
        &[
            "--json",
            "export",
            "reconciliation",
            "--from",
            "2026-02-30",
            "--to",
            "2026-03-01",
            "--out",
            "x.zip",
        ],
        &["--json", "jobs", "history", "--limit", "abc"],
        &["--json", "param", "frobnicate"],
        &["--json", "param"],
    ] {
        let out = fapiao_bare(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let e = &json(&out)["error"];
        assert_eq!((e["code"].as_str(), e["exit_code"].as_i64()), (Some("USAGE"), Some(2)), "{args:?}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{args:?}");
        assert!(!stderr(&out).is_empty(), "clap's own message stays on stderr");
    }
    let out = fapiao_bare(&[
        "--json",
        "enterprise",
        "add",
        "--tax-no",
        "91310000MA1FL2AB08",
        "--name",
        "x",
        "--etax-account",
        "a",
    ]);
    assert!(json(&out)["error"]["message"].as_str().unwrap().contains("check character"), "{}", stdout(&out));
    // Without --json stdout stays empty; --help and --version are not errors.
    let out = fapiao_bare(&["param", "frobnicate"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (2, ""));
    for args in [&["--help"][..], &["--version"], &["--json", "param", "--help"]] {
        let out = fapiao_bare(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn an_empty_parameter_key_is_a_parameter_error_not_a_database_one() {
    let db = TestDb::new().await;
    let out = fapiao_on(&db.url, &["--json", "param", "set", "sim_auto_issue_config", "", "局端"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["code"], "PARAM_INVALID");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sys_param").fetch_one(&db.pool).await.unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_zero_or_unplain_red_flush_amount_is_refused_before_anything_happens() {
    let db = TestDb::new().await;
    for spec in ["26311000000000000001:0", "26311000000000000001:-0", "26311000000000000001:0.00:04"] {
        let out = fapiao_on(&db.url, &["--json", "red-flush", "--invoice", spec]);
        assert_eq!(code(&out), 2, "{spec}: {}", stderr(&out));
        let e = &json(&out)["error"];
        assert_eq!(e["code"], "RED_FLUSH_AMOUNT_NOT_POSITIVE", "{spec}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("红冲金额必须大于0") && message.contains("greater than 0"), "{message}");
        assert!(!message.contains("剩余可红冲金额不足"), "{message}");
    }
    for spec in ["26311000000000000001:1e3", "26311000000000000001:1,000.00", "26311000000000000001:L1=1e2"] {
        let out = fapiao_on(&db.url, &["--json", "red-flush", "--invoice", spec]);
        assert_eq!(code(&out), 2, "{spec}: {}", stderr(&out));
        assert_eq!(json(&out)["error"]["code"], "USAGE", "{spec}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM red_flush").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn unknown_names_and_ids_exit_2_with_a_message() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("never.zip");
    let zip_path = zip.to_str().unwrap();
    for (args, expected) in [
        (&["jobs", "history", "--job", "no-such-job"][..], "no-such-job"),
        (&["callbacks", "retry", "999999"], "999999"),
        (&["apply", "withdraw", "NO-SUCH-BILL"], "NO-SUCH-BILL"),
        (&["pool", "show", "12345678"], "12345678"),
        (&["invoices", "void", "26310000000000000009", "--reason", "x"], "26310000000000000009"),
        (&["pending", "edit", "999999", "--seller-address-phone", "x"], "999999"),
        (&["pending", "show", "999999"], "999999"),
        (&["pending", "issue", "999999"], "999999"),
        (&["reissue", "--id", "999999"], "999999"),
        (&["invoices", "show", "26310000000000000000"], "26310000000000000000"),
        (&["red-flush", "forms", "confirm", "NO-SUCH-FORM"], "NO-SUCH-FORM"),
        (&["sync", "reset-start", "--scheme", "NO-SUCH", "--start", "2026-01-01"], "NO-SUCH"),
        (&["sync", "retry", "--tax-no", "91310000MA1FL2AB09"], "91310000MA1FL2AB09"),
        (&["sync", "retry", "--from", "2026-11-02", "--to", "2026-11-01"], "--from 2026-11-02"),
        (
            &[
                "export",
                "reconciliation",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-30",
                "--tax-no",
                "91310000MA1FL2AB09",
                "--out",
                zip_path,
            ],
            "91310000MA1FL2AB09",
        ),
    ] {
        let out = fapiao_on(&db.url, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    let out = fapiao_on(&db.url, &["--json", "callbacks", "retry", "999999"]);
    assert_eq!(json(&out)["error"]["code"], "CALLBACK_NOT_FOUND");
    assert!(!zip.exists(), "an export for an unknown enterprise writes nothing");
    let out = fapiao_on(&db.url, &["jobs", "history", "--job", "fetch"]);
    assert_eq!(code(&out), 0, "a known job with no runs is fine: {}", stderr(&out));
    let out = fapiao_on(&db.url, &["--json", "sync", "retry"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out), serde_json::json!({"staged_rows": 0, "applications": 0}));
}

/// `fapiao bench console` at a tiny size, for correctness only (no figure is asserted): every
/// page is measured against its floor, and the streamed upload lands whole.
#[tokio::test]
async fn bench_console_measures_each_list_and_the_upload_at_a_tiny_size() {
    let db = TestDb::new().await;
    let args = ["--json", "bench", "console", "--rows", "300", "--requests", "3", "--upload-mib", "2"];
    let out = fapiao_on(&db.url, &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    let pages = j["pages"].as_array().unwrap();
    let names: Vec<&str> = pages.iter().map(|p| p["page"].as_str().unwrap()).collect();
    for page in ["/runs", "/", "/pending", "/pending?status=failed", "/invoices", "/pool"] {
        assert!(names.contains(&page), "{page} in {names:?}");
    }
    for p in pages {
        for k in ["p50_ms", "p95_ms", "floor_p50_ms", "floor_p95_ms", "ratio_p95"] {
            assert!(p[k].as_f64().is_some_and(|v| v > 0.0), "{k} of {p}");
        }
    }
    assert_eq!(j["upload"]["stored_bytes"], 2 << 20, "{}", j["upload"]);
    assert!(j["upload"]["rss_growth_mib"].as_f64().is_some());
}
