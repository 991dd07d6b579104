//! The ERP API through the binary: `fapiao system add` prints the credentials once, a real
//! `fapiao serve --http ADDR --no-jobs` answers the token calls and BILL.PUSH on the console's
//! listener, and `fapiao api log` / `system list|disable|rotate-secret|set-callback` show and
//! change what the API sees. (Every interface and error in detail: `api/tests/erp_api.rs`.)

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{code, fapiao_on, json, stderr, stdout};
use fapiao_channel::codec::Codec;
use fapiao_store::testing::TestDb;
use serde_json::{Value, json};

const SELLER: &str = "91310000MA1FL2AB09";

/// `fapiao serve --http 127.0.0.1:0 --no-jobs`, and the address it printed.
fn serve(db: &TestDb) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(["serve", "--http", "127.0.0.1:0", "--no-jobs"])
        .env("DATABASE_URL", &db.url)
        .env_remove("FAPIAO_CONFIG")
        .env("RUST_LOG", "warn")
        .env("FAPIAO__METRICS__LISTEN", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("console: http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    // Keep reading what it prints: a closed pipe would fail its next line.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{addr}"))
}

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) with a pid we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
}

async fn post(base: &str, path: &str, body: &Value, token: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).json(body);
    if let Some(t) = token {
        req = req.header("access_token", t);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn serve_answers_the_erp_api_and_the_system_commands_manage_it() {
    let db = TestDb::with_enterprises(&[SELLER]).await;
    let added =
        fapiao_on(&db.url, &["--json", "system", "add", "ERP1", "--name", "金蝶云星空", "--tax-no", SELLER]);
    assert_eq!(code(&added), 0, "{}", stderr(&added));
    let creds = json(&added);
    let (app_id, secret) = (creds["appId"].as_str().unwrap(), creds["appSecret"].as_str().unwrap());
    // Only a hash is kept, and the list never shows the secret.
    let list = fapiao_on(&db.url, &["system", "list"]);
    assert!(stdout(&list).contains("ERP1") && !stdout(&list).contains(secret), "{}", stdout(&list));
    let stored: String =
        sqlx::query_scalar("SELECT secret_hash FROM business_system").fetch_one(&db.pool).await.unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(secret));

    let (mut server, base) = serve(&db);
    let app = post(
        &base,
        "/api/getAppToken.do",
        &json!({"appId": app_id, "appSecret": secret, "accountId": creds["accountId"]}),
        None,
    )
    .await;
    assert_eq!(app["data"]["success"], true, "{app}");
    let login = post(
        &base,
        "/api/login.do",
        &json!({"apptoken": app["data"]["app_token"], "accountId": creds["accountId"], "user": "erp", "usertype": "UserName"}),
        None,
    )
    .await;
    let token = login["data"]["access_token"].as_str().unwrap().to_string();
    let bill = json!([{
        "billNo": "S-1", "billDate": "2026-11-30", "sellerTaxpayerId": SELLER, "buyerName": "个人",
        "invoiceType": "10xdp", "autoInvoice": 1,
        "billDetail": [{"goodsName": "*现代服务*服务费", "revenueCode": "3040201000000000000",
                        "amount": "100.00", "taxRate": "0.06", "taxAmount": "6.00"}]
    }]);
    let envelope = json!({
        "requestId": "1764550000000123", "businessSystemCode": "ERP1", "interfaceCode": "BILL.PUSH",
        "data": Codec::Base64.encode(&bill.to_string()),
    });
    let pushed = post(&base, "/kapi/app/sim/openApi", &envelope, Some(&token)).await;
    assert_eq!(pushed["success"], true, "{pushed}");
    // The console is still there on the same listener.
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let row: (String, String, bool) = sqlx::query_as(
        "SELECT source, business_system_code, auto_issue FROM application WHERE bill_no = 'S-1'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(row, ("直接开票接口".to_string(), "ERP1".to_string(), true));

    let log = fapiao_on(&db.url, &["--json", "api", "log"]);
    let log = json(&log);
    let interfaces: Vec<&str> =
        log.as_array().unwrap().iter().map(|r| r["interface_code"].as_str().unwrap()).collect();
    assert_eq!(interfaces, ["BILL.PUSH", "login.do", "getAppToken.do"]);
    assert!(!log.to_string().contains(secret) && !log.to_string().contains(&token));

    // Rotate: the old secret and the token end; disable: no token at all.
    let rotated = fapiao_on(&db.url, &["--json", "system", "rotate-secret", "ERP1"]);
    assert_eq!(code(&rotated), 0, "{}", stderr(&rotated));
    assert_ne!(json(&rotated)["appSecret"], secret);
    let again = post(&base, "/kapi/app/sim/openApi", &envelope, Some(&token)).await;
    assert_eq!(again["errorCode"], "9401", "{again}");
    let set = fapiao_on(&db.url, &["system", "set-callback", "ERP1", "http://erp.example/callback"]);
    assert_eq!(code(&set), 0, "{}", stderr(&set));
    let url: String =
        sqlx::query_scalar("SELECT callback_url FROM business_system").fetch_one(&db.pool).await.unwrap();
    assert_eq!(url, "http://erp.example/callback");
    assert_eq!(code(&fapiao_on(&db.url, &["system", "disable", "ERP1"])), 0);
    let refused = post(
        &base,
        "/api/getAppToken.do",
        &json!({"appId": app_id, "appSecret": json(&rotated)["appSecret"], "accountId": creds["accountId"]}),
        None,
    )
    .await;
    assert_eq!(refused["data"]["error_code"], "9403", "{refused}");
    // A seller that is not an enterprise is refused at add.
    let bad = fapiao_on(&db.url, &["system", "add", "ERP2", "--name", "x", "--tax-no", "92440300MA5DXY7K3W"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    terminate(&mut server);
}
