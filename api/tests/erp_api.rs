//! The ERP API over real HTTP: its router on a real listener, a fresh PostgreSQL database per
//! test, the sandbox as the channel (issuing) and as the ERP (callbacks).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fapiao_channel::codec::Codec;
use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_pipelines::import::{ImportKind, ImportOptions, import};
use fapiao_schemas::TaxNo;
use fapiao_schemas::config::Settings;
use fapiao_store::testing::TestDb;
use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::systems::{self, Credentials, NewSystem};
use fapiao_usecases::{Actor, App};
use serde_json::{Value, json};

const SELLER: &str = "91310000MA1FL2AB09";
const OTHER_SELLER: &str = "92440300MA5DXY7K3W";

struct World {
    db: TestDb,
    app: App,
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
}

async fn world(env: &[(&str, &str)]) -> World {
    let db = TestDb::with_enterprises(&[SELLER, OTHER_SELLER]).await;
    let config =
        SandboxConfig { issue_delay: Duration::from_millis(20), seed: 3, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config, "127.0.0.1:0").await.unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("FAPIAO__CALLBACKS__URL".into(), format!("{}/erp/callback/{{system}}", sandbox.base_url())),
        ("FAPIAO__INVOICING__SETTLE_POLL_MS".into(), "20".into()),
        ("FAPIAO__INVOICING__SETTLE_WITHIN_SECS".into(), "10".into()),
        ("FAPIAO__CHANNEL__TENANT_ID".into(), "T-1".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_from(None, vars).unwrap();
    let mut cc = ClientConfig::from_settings(&settings.channel);
    cc.base_url = sandbox.base_url();
    let app = App::new(db.pool.clone(), Arc::new(ChannelClient::new(cc)), Arc::new(settings));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = fapiao_api::router(Arc::new(fapiao_api::Api::new(app.clone())));
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    World { db, app, sandbox, base: format!("http://{addr}"), http: reqwest::Client::new() }
}

impl World {
    async fn system(&self, code: &str, sellers: &[&str], aes: bool) -> Credentials {
        let new = NewSystem {
            code: code.into(),
            name: format!("ERP {code}"),
            callback_url: None,
            tax_nos: sellers.iter().map(|t| TaxNo::parse(t).unwrap()).collect(),
            aes,
        };
        systems::add(&self.app, &Actor::Demo, &new).await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Value {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.header("access_token", t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}: every answer is the envelope");
        resp.json().await.unwrap()
    }

    async fn app_token(&self, c: &Credentials) -> Value {
        self.post(
            "/api/getAppToken.do",
            &json!({"appId": c.app_id, "appSecret": c.app_secret, "accountId": c.account_id, "language": "zh_CN"}),
            None,
        )
        .await
    }

    /// getAppToken.do then login.do: the access token.
    async fn token(&self, c: &Credentials) -> String {
        let app = self.app_token(c).await;
        let app_token = app["data"]["app_token"].as_str().unwrap().to_string();
        let login = self
            .post(
                "/api/login.do",
                &json!({"apptoken": app_token, "accountId": c.account_id, "user": "erp", "usertype": "UserName"}),
                None,
            )
            .await;
        assert_eq!(login["data"]["success"], true, "{login}");
        assert!(login["data"]["expire_time"].as_i64().unwrap() > 0);
        login["data"]["access_token"].as_str().unwrap().to_string()
    }

    /// A business call: the envelope with `data` encoded; the answer and its decoded data.
    async fn call(
        &self,
        token: &str,
        interface: &str,
        data: &Value,
        codec: &Codec,
    ) -> (Value, Option<Value>) {
        let body = json!({
            "requestId": fapiao_channel::envelope::request_id(),
            "businessSystemCode": "ignored",
            "interfaceCode": interface,
            "data": codec.encode(&data.to_string()),
        });
        let answer = self.post("/kapi/app/sim/openApi", &body, Some(token)).await;
        let data = answer["data"].as_str().map(|d| serde_json::from_str(&codec.decode(d).unwrap()).unwrap());
        (answer, data)
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }
}

/// A bill of `lines` lines at 6%, totals as an ERP sends them (numbers and strings mixed).
fn bill(no: &str, seller: &str, lines: usize, auto: bool) -> Value {
    let detail: Vec<Value> = (0..lines)
        .map(|i| {
            json!({
                "detailId": format!("{no}-{i}"), "goodsName": "*现代服务*技术服务费",
                "revenueCode": "3040201000000000000", "units": "次", "quantity": 2, "price": "50.00",
                "amount": 100.00, "taxRate": "0.06", "taxAmount": "6.00", "lineProperty": "0"
            })
        })
        .collect();
    json!({
        "billNo": no, "billDate": "2026-11-30", "sellerTaxpayerId": seller, "buyerName": "深圳示例便利店",
        "buyerTaxpayerId": OTHER_SELLER, "invoiceType": "10xdp", "autoInvoice": if auto { "1" } else { "0" },
        "includeTaxFlag": 0, "totalAmount": format!("{}.00", 106 * lines), "billDetail": detail
    })
}

#[tokio::test]
async fn token_flow_and_every_auth_error_in_the_envelope() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let refused = |v: &Value, code: &str, text: &str| {
        assert_eq!(v["data"]["success"], false, "{v}");
        assert_eq!(v["data"]["error_code"], code, "{v}");
        assert!(v["data"]["error_desc"].as_str().unwrap().contains(text), "{v}");
    };
    let good = json!({"appId": c.app_id, "appSecret": c.app_secret, "accountId": c.account_id});
    let wrong_secret = json!({"appId": c.app_id, "appSecret": "nope", "accountId": c.account_id});
    let wrong_app = json!({"appId": "fpUnknown", "appSecret": c.app_secret, "accountId": c.account_id});
    let wrong_account = json!({"appId": c.app_id, "appSecret": c.app_secret, "accountId": "other"});
    refused(&w.post("/api/getAppToken.do", &wrong_secret, None).await, "9403", "appid/appsecuret参数不对");
    refused(&w.post("/api/getAppToken.do", &wrong_app, None).await, "9403", "appid/appsecuret参数不对");
    refused(&w.post("/api/getAppToken.do", &wrong_account, None).await, "9403", "数据中心accountId参数不对");
    let app = w.post("/api/getAppToken.do", &good, None).await;
    assert_eq!(app["data"]["success"], true);
    // Seed 001's sample spells the secret appSecuret.
    let spelled = json!({"appId": c.app_id, "appSecuret": c.app_secret, "accountId": c.account_id});
    assert_eq!(w.post("/api/getAppToken.do", &spelled, None).await["data"]["success"], true);
    let bad_login = json!({"apptoken": "forged", "accountId": c.account_id, "user": "erp"});
    refused(&w.post("/api/login.do", &bad_login, None).await, "9403", "未进行接口授权");

    let token = w.token(&c).await;
    let query = json!({"billNo": "NONE", "sellerTaxpayerId": SELLER});
    let (ok, _) = w.call(&token, "BILL.INVOICE.QUERY", &query, &Codec::Base64).await;
    assert_eq!((ok["success"].clone(), ok["errorCode"].clone()), (json!(false), json!("9404")), "{ok}");
    assert_eq!(ok["message"], "无记录");
    for bad in ["", "forged"] {
        let (a, _) = w.call(bad, "BILL.INVOICE.QUERY", &query, &Codec::Base64).await;
        assert_eq!(a["errorCode"], "9401", "{a}");
        assert!(a["message"].as_str().unwrap().starts_with("未进行接口授权"));
    }
    // Expired: the token's time ran out.
    sqlx::query("UPDATE api_token SET expires_at = now() - interval '1 second' WHERE kind = 'access'")
        .execute(&w.db.pool)
        .await
        .unwrap();
    let (a, _) = w.call(&token, "BILL.INVOICE.QUERY", &query, &Codec::Base64).await;
    assert_eq!(a["errorCode"], "9401", "{a}");

    // Rotating the secret ends the old secret and every token; disabling ends the system.
    let token = w.token(&c).await;
    let rotated = systems::rotate_secret(&w.app, &Actor::Demo, "ERP1").await.unwrap();
    refused(&w.post("/api/getAppToken.do", &good, None).await, "9403", "appid/appsecuret参数不对");
    assert_eq!(w.call(&token, "BILL.INVOICE.QUERY", &query, &Codec::Base64).await.0["errorCode"], "9401");
    let token = w.token(&rotated).await;
    systems::disable(&w.app, &Actor::Demo, "ERP1").await.unwrap();
    assert_eq!(w.call(&token, "BILL.INVOICE.QUERY", &query, &Codec::Base64).await.0["errorCode"], "9401");
    refused(&w.app_token(&rotated).await, "9403", "已停用");

    // The log has every call, never a secret or a token.
    let log: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', interface_code, request_id, outcome, message, remote) FROM api_request_log",
    )
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    assert!(log.len() >= 15, "{log:?}");
    for line in &log {
        assert!(
            !line.contains(&c.app_secret) && !line.contains(&rotated.app_secret) && !line.contains(&token),
            "{line}"
        );
    }
    assert!(log.iter().any(|l| l.starts_with("BILL.INVOICE.QUERY") && l.contains("9401")));
}

#[tokio::test]
async fn a_bad_tax_line_is_refused_with_the_importers_code_and_message() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let token = w.token(&c).await;
    let mut bad = bill("BAD-1", SELLER, 2, false);
    bad["billDetail"][1]["taxAmount"] = json!("9.00");
    bad["totalAmount"] = json!("215.00");
    let good = bill("GOOD-1", SELLER, 1, false);
    let (answer, data) = w.call(&token, "BILL.PUSH", &json!([bad, good]), &Codec::Base64).await;
    let data = data.unwrap();
    assert_eq!(answer["success"], false);
    assert_eq!(answer["errorCode"], "TAX_LINE_MISMATCH", "{answer}");
    assert_eq!(data[0]["success"], false);
    assert_eq!(data[0]["problems"][0]["line"], 2);
    assert_eq!(data[0]["problems"][0]["field"], "billDetail.taxAmount");
    assert_eq!(data[1]["success"], true, "all or nothing per bill: the good bill lands");
    assert_eq!(w.count("SELECT count(*) FROM application WHERE bill_no = 'BAD-1'").await, 0);
    assert_eq!(w.count("SELECT count(*) FROM application_line WHERE bill_no = 'BAD-1'").await, 0);

    // The Excel importer says the same about the same line.
    let dir = std::env::temp_dir().join(format!("erp-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.csv");
    std::fs::write(
        &path,
        format!("单据编号,单据日期,销方税号,购方名称,发票种类,商品名称,税收分类编码,数量,单价,金额,税率,税额,价税合计\nX-1,2026-11-30,{SELLER},深圳示例便利店,10xdp,*现代服务*技术服务费,3040201000000000000,2,50.00,100.00,0.06,9.00,109.00\n"),
    )
    .unwrap();
    let options = ImportOptions { kind: ImportKind::Applications, dry_run: true, ..ImportOptions::default() };
    let summary = import(&w.db.pool, &path, &options, &|_| {}).await.unwrap();
    let excel = &summary.problems[0];
    assert_eq!(data[0]["problems"][0]["code"], excel.code.as_str());
    assert_eq!(data[0]["problems"][0]["message"], excel.message.as_str());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_thousand_bills_in_one_push_land_with_their_source_and_system() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let token = w.token(&c).await;
    let bills: Vec<Value> = (0..1000).map(|i| bill(&format!("K-{i:04}"), SELLER, 3, false)).collect();
    let (answer, data) = w.call(&token, "BILL.PUSH", &Value::Array(bills), &Codec::Base64).await;
    assert_eq!(answer["success"], true, "{answer}");
    let data = data.unwrap();
    assert_eq!(data.as_array().unwrap().len(), 1000);
    assert!(data.as_array().unwrap().iter().all(|a| a["success"] == true));
    assert_eq!(
        w.count("SELECT count(*) FROM application WHERE source = '直接开票接口' AND business_system_code = 'ERP1' AND batch_id IS NULL").await,
        1000
    );
    assert_eq!(w.count("SELECT count(*) FROM application_line").await, 3000);
    // Amounts arrived as JSON numbers and strings: stored exactly.
    assert_eq!(
        w.count(
            "SELECT count(*) FROM application_line WHERE amount = 100.00 AND tax = 6.00 AND total = 106.00"
        )
        .await,
        3000
    );
    let logged: (i32, i32) =
        sqlx::query_as("SELECT bills, accepted FROM api_request_log WHERE interface_code = 'BILL.PUSH'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(logged, (1000, 1000));
}

#[tokio::test]
async fn the_same_push_twice_also_at_once_makes_one_set_and_a_changed_body_is_refused() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let token = w.token(&c).await;
    let bills = json!([bill("D-1", SELLER, 2, false), bill("D-2", SELLER, 1, false)]);
    let (first, first_data) = w.call(&token, "BILL.PUSH", &bills, &Codec::Base64).await;
    assert_eq!(first["success"], true);
    let (again, again_data) = w.call(&token, "BILL.PUSH", &bills, &Codec::Base64).await;
    assert_eq!(again["success"], true);
    assert_eq!(first_data, again_data, "the first answer again");
    assert_eq!(w.count("SELECT count(*) FROM application").await, 2);
    assert_eq!(w.count("SELECT count(*) FROM application_line").await, 3);

    // Eight at once, the same new bills: one set.
    let many =
        json!([bill("C-1", SELLER, 2, false), bill("C-2", SELLER, 2, false), bill("C-3", SELLER, 1, false)]);
    let call = || w.call(&token, "BILL.PUSH", &many, &Codec::Base64);
    let (r1, r2, r3, r4, r5, r6, r7, r8) =
        tokio::join!(call(), call(), call(), call(), call(), call(), call(), call());
    for (a, _) in [r1, r2, r3, r4, r5, r6, r7, r8] {
        assert_eq!(a["success"], true, "{a}");
    }
    assert_eq!(w.count("SELECT count(*) FROM application WHERE bill_no LIKE 'C-%'").await, 3);
    assert_eq!(w.count("SELECT count(*) FROM application_line WHERE bill_no LIKE 'C-%'").await, 5);

    // Changed body under the same number: refused, nothing changed.
    let mut changed = bill("D-1", SELLER, 2, false);
    changed["buyerName"] = json!("另一个购方");
    let (a, data) = w.call(&token, "BILL.PUSH", &json!([changed]), &Codec::Base64).await;
    assert_eq!(a["errorCode"], "BILL_CHANGED", "{a}");
    assert_eq!(data.unwrap()[0]["errorCode"], "BILL_CHANGED");
    let buyer: String = sqlx::query_scalar("SELECT buyer_name FROM application WHERE bill_no = 'D-1'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(buyer, "深圳示例便利店");

    // The same number from another system is taken (bill numbers are the tenant's).
    let other = w.system("ERP2", &[SELLER], false).await;
    let other_token = w.token(&other).await;
    let (a, _) =
        w.call(&other_token, "BILL.PUSH", &json!([bill("D-1", SELLER, 2, false)]), &Codec::Base64).await;
    assert_eq!(a["errorCode"], "BILL_EXISTS", "{a}");
}

#[tokio::test]
async fn withdraw_before_push_and_after_and_the_query_after_issuing_and_the_callback() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], true).await;
    let codec = Codec::aes(c.data_password.as_deref().unwrap());
    let token = w.token(&c).await;
    // Own callback URL (系统管理 → 业务系统列表) instead of the template.
    let own = format!("{}/erp/callback/own-url", w.sandbox.base_url());
    systems::set_callback(&w.app, &Actor::Demo, "ERP1", Some(&own)).await.unwrap();

    let (a, _) = w
        .call(
            &token,
            "BILL.PUSH",
            &json!([bill("W-1", SELLER, 1, false), bill("W-2", SELLER, 1, true)]),
            &codec,
        )
        .await;
    assert_eq!(a["success"], true, "{a}");
    // AES data: Base64 alone is not accepted for this system.
    let (plain, _) = w
        .call(
            &token,
            "BILL.INVOICE.QUERY",
            &json!({"billNo": "W-1", "sellerTaxpayerId": SELLER}),
            &Codec::Base64,
        )
        .await;
    assert_eq!(plain["errorCode"], "9400", "{plain}");

    // Before push: gone; its query answers 无记录; the number may come again.
    let w1 = json!({"billNo": "W-1", "sellerTaxpayerId": SELLER});
    let (a, _) = w.call(&token, "BILL.WITHDRAW", &w1, &codec).await;
    assert_eq!(a["success"], true, "{a}");
    let (a, _) = w.call(&token, "BILL.INVOICE.QUERY", &w1, &codec).await;
    assert_eq!((a["errorCode"].clone(), a["message"].clone()), (json!("9404"), json!("无记录")));
    assert_eq!(w.count("SELECT count(*) FROM application_withdrawal WHERE bill_no = 'W-1'").await, 1);
    let (a, _) = w.call(&token, "BILL.PUSH", &json!([bill("W-1", SELLER, 1, false)]), &codec).await;
    assert_eq!(a["success"], true, "{a}");

    // The auto-issue job's pass issues the 自动开票 bill against the sandbox.
    let report = issuing::issue(&w.app, &Actor::Demo, &Selection::AutoIssue, &|_| {}).await.unwrap();
    assert_eq!(report.succeeded, 1, "{report:?}");
    assert_eq!(
        w.count("SELECT count(*) FROM application WHERE bill_no = 'W-1' AND state = 'received'").await,
        1
    );

    let w2 = json!({"billNo": "W-2", "sellerTaxpayerId": SELLER});
    let (a, data) = w.call(&token, "BILL.INVOICE.QUERY", &w2, &codec).await;
    assert_eq!(a["success"], true, "{a}");
    let found = &data.unwrap()[0];
    assert_eq!(found["billNo"], "W-2");
    let invoice = &found["invoiceList"][0];
    assert_eq!(invoice["invoiceNum"].as_str().unwrap().len(), 20, "{invoice}");
    assert_eq!(invoice["totalAmountWithTax"], "106.00");
    assert!(invoice["invoiceFileUrl"].as_str().unwrap().starts_with("http"));

    // After push: refused, nothing gone.
    let (a, _) = w.call(&token, "BILL.WITHDRAW", &w2, &codec).await;
    assert_eq!(a["errorCode"], "BILL_ALREADY_PUSHED", "{a}");
    assert_eq!(w.count("SELECT count(*) FROM application WHERE bill_no = 'W-2'").await, 1);

    // The callback went to the system's own URL.
    let received = w.sandbox.world().erp.received.clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["system"], "own-url");
    let logged: String =
        sqlx::query_scalar("SELECT url FROM callback_log").fetch_one(&w.db.pool).await.unwrap();
    assert_eq!(logged, own);
}

#[tokio::test]
async fn a_system_cannot_act_for_a_seller_outside_its_list() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let token = w.token(&c).await;
    let (a, data) =
        w.call(&token, "BILL.PUSH", &json!([bill("O-1", OTHER_SELLER, 1, false)]), &Codec::Base64).await;
    assert_eq!(a["errorCode"], "1130", "{a}");
    assert_eq!(data.unwrap()[0]["message"], format!("税号:{OTHER_SELLER},不在租户:T-1 范围内"));
    assert_eq!(w.count("SELECT count(*) FROM application").await, 0);
    let (a, _) = w
        .call(
            &token,
            "BILL.INVOICE.QUERY",
            &json!({"billNo": "O-1", "sellerTaxpayerId": OTHER_SELLER}),
            &Codec::Base64,
        )
        .await;
    assert_eq!(a["errorCode"], "1130", "{a}");
}

#[tokio::test]
async fn limits_and_malformed_requests_are_refused_in_the_envelope() {
    let w = world(&[
        ("FAPIAO__API__MAX_BILLS", "3"),
        ("FAPIAO__API__MAX_BODY_KIB", "64"),
        ("FAPIAO__API__RATE_PER_SEC", "1"),
        ("FAPIAO__API__RATE_BURST", "4"),
    ])
    .await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let token = w.token(&c).await;
    let four: Vec<Value> = (0..4).map(|i| bill(&format!("L-{i}"), SELLER, 1, false)).collect();
    let (a, _) = w.call(&token, "BILL.PUSH", &Value::Array(four), &Codec::Base64).await;
    assert_eq!(a["errorCode"], "9413", "{a}");
    let big = json!({"requestId": "1", "businessSystemCode": "x", "interfaceCode": "BILL.PUSH", "data": "A".repeat(70 * 1024)});
    let a = w.post("/kapi/app/sim/openApi", &big, Some(&token)).await;
    assert_eq!(a["errorCode"], "9413", "{a}");
    let (a, _) = w.call(&token, "BILL.NOPE", &json!({}), &Codec::Base64).await;
    assert_eq!(a["errorCode"], "9400", "{a}");
    // Four calls passed the token check so far or soon: the bucket (4, refilled at 1/s) runs
    // dry and the next call is refused as busy.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (a, _) = w.call(&token, "BILL.PUSH", &json!([]), &Codec::Base64).await;
        codes.push(a["errorCode"].as_str().unwrap().to_string());
    }
    assert_eq!(codes.last().map(String::as_str), Some("9429"), "{codes:?}");
    assert!(codes.iter().all(|c| c == "0" || c == "9429"), "{codes:?}");
    // Not JSON, and a GET: the envelope too, not an error page.
    let resp = w.http.post(format!("{}/kapi/app/sim/openApi", w.base)).body("{{{").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], "9400");
    let resp = w.http.get(format!("{}/api/login.do", w.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], "9400");
}

#[tokio::test]
async fn the_channels_own_client_as_an_erp_pushes_and_queries() {
    use fapiao_channel::sandbox::erp_client::{ErpClient, ErpCredentials, sample_bills};
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], true).await;
    let erp = ErpClient::new(&ErpCredentials {
        base_url: w.base.clone(),
        app_id: c.app_id.clone(),
        app_secret: c.app_secret.clone(),
        account_id: c.account_id.clone(),
        system_code: c.code.clone(),
        data_password: c.data_password.clone(),
    });
    let bills = sample_bills("E", SELLER, "深圳示例便利店", 20, 2, true);
    let answers = erp.push(&bills).await.unwrap();
    assert_eq!(answers.len(), 20);
    // Sent again (a retry after a lost answer): the same answers, nothing new.
    assert_eq!(erp.push(&bills).await.unwrap(), answers);
    assert_eq!(w.count("SELECT count(*) FROM application").await, 20);
    // Its token expires: the client renews it on 9401 and goes on.
    sqlx::query("UPDATE api_token SET expires_at = now() - interval '1 second'")
        .execute(&w.db.pool)
        .await
        .unwrap();
    let report = issuing::issue(&w.app, &Actor::Demo, &Selection::AutoIssue, &|_| {}).await.unwrap();
    assert_eq!(report.succeeded, 20, "{report:?}");
    let found = erp.query("E-000001", SELLER).await.unwrap();
    assert_eq!(found[0]["invoiceList"].as_array().unwrap().len(), 1, "{found:?}");
    match erp.withdraw("E-000002", SELLER).await {
        Err(fapiao_channel::ChannelError::Api { code, .. }) => assert_eq!(code, "BILL_ALREADY_PUSHED"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_system_that_asks_hears_of_receipt_by_callback_before_any_invoice() {
    let w = world(&[]).await;
    let c = w.system("ERP1", &[SELLER], false).await;
    let token = w.token(&c).await;
    let own = format!("{}/erp/callback/on-receipt", w.sandbox.base_url());
    systems::set_callback(&w.app, &Actor::Demo, "ERP1", Some(&own)).await.unwrap();
    // Not asked: a push enqueues nothing.
    let (a, _) = w.call(&token, "BILL.PUSH", &json!([bill("R-0", SELLER, 1, false)]), &Codec::Base64).await;
    assert_eq!(a["success"], true, "{a}");
    assert_eq!(w.count("SELECT count(*) FROM callback").await, 0);
    systems::set_callback_on_receipt(&w.app, &Actor::Demo, "ERP1", true).await.unwrap();
    let bad = {
        let mut b = bill("R-2", SELLER, 1, false);
        b["billDetail"][0]["taxAmount"] = json!("9.99");
        b
    };
    let (a, _) =
        w.call(&token, "BILL.PUSH", &json!([bill("R-1", SELLER, 1, false), bad]), &Codec::Base64).await;
    assert_eq!(a["success"], false, "one bill refused: {a}");
    // Only the bill that landed is acknowledged; the same push again acknowledges nothing new.
    fapiao_usecases::callbacks::deliver(&w.app, &Actor::Demo).await.unwrap();
    let told: Vec<Value> = w.sandbox.world().erp.received.iter().map(|r| r["body"].clone()).collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (told[0]["data"]["billNo"].clone(), told[0]["data"]["billState"].clone()),
        (json!("R-1"), json!("received"))
    );
    assert_eq!(told[0]["interfaceCode"], "BILL.PUSH");
    w.call(&token, "BILL.PUSH", &json!([bill("R-1", SELLER, 1, false)]), &Codec::Base64).await;
    assert_eq!(w.count("SELECT count(*) FROM callback").await, 1);
    assert!(systems::set_callback_on_receipt(&w.app, &Actor::Demo, "NOPE", true).await.is_err());
}
