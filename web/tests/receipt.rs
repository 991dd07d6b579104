//! Receipt codes over real HTTP (issue 20): the console's router on a listener, the sandbox as
//! the channel and as the merchant's order query (GET.ORDER). Mode 1 end to end, printed codes,
//! every refusal with nothing created, one invoice per receipt (two submits at once included, by
//! the sandbox's own ledger), CSRF, headers, rate limits, key rotation, the Kingdee format.

mod chromium;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_jobs::{JobContext, Registry};
use fapiao_schemas::InvoiceKind;
use fapiao_schemas::config::Settings;
use fapiao_store::testing::TestDb;
use fapiao_usecases::receipts::{self, Delivery, GoodsRequest, LineRequest, ReceiptRequest, SettingsRequest};
use fapiao_usecases::{Actor, App};
use fapiao_web::Console;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const A: &str = "91310000MA1FL2AB09";
const BUYER: &str = "92440300MA5DXY7K3W";
const BAD_BUYER: &str = "92440300MA5DXY7K3X";

struct World {
    db: TestDb,
    app: App,
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
}

async fn world(env: &[(&str, &str)]) -> World {
    let db = TestDb::with_enterprises(&[A, BUYER]).await;
    let config =
        SandboxConfig { issue_delay: Duration::from_millis(20), seed: 5, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config, "127.0.0.1:0").await.unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("FAPIAO__CALLBACKS__URL".into(), format!("{}/erp/callback/{{system}}", sandbox.base_url())),
        ("FAPIAO__INVOICING__SETTLE_POLL_MS".into(), "20".into()),
        ("FAPIAO__INVOICING__SETTLE_WITHIN_SECS".into(), "10".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_from(None, vars).unwrap();
    let mut cc = ClientConfig::from_settings(&settings.channel);
    cc.base_url = sandbox.base_url();
    let app = App::new(db.pool.clone(), Arc::new(ChannelClient::new(cc)), Arc::new(settings.clone()));
    let jobs = JobContext::new(db.pool.clone(), app.channel.clone(), settings.clone(), "test-worker".into());
    let registry = Registry::from_settings(&settings).unwrap();
    let console = Arc::new(Console::new(app.clone(), jobs, registry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = fapiao_web::router(console);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let base = format!("http://{addr}");
    receipts::set_settings(
        &app,
        &Actor::Demo,
        &SettingsRequest {
            tax_no: A.into(),
            kinds: vec![InvoiceKind::DigitalOrdinary, InvoiceKind::DigitalSpecial],
            default_kind: Some(InvoiceKind::DigitalOrdinary),
            validity_minutes: 60,
            base_url: base.clone(),
            delivery: Delivery::Both,
            mode1: true,
            mode2: true,
            order_query_url: Some(format!("{}/merchant/order", sandbox.base_url())),
            kingdee_compat: false,
            kingdee_key: None,
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    World { db, app, sandbox, base, http }
}

/// An answer: status, headers, body.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let cookie = self.headers.get("set-cookie").expect("a CSRF cookie").to_str().unwrap();
        cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
    }
}

/// The documented GET.ORDER answer of an order of 100.00 (tax included): a discounted line, its
/// discount, a normal line.
fn order(bill_no: &str, amount: &str) -> Value {
    json!({
        "billNo": bill_no, "drawer": "收银员1", "billDate": "2026-12-01", "includeTaxFlag": "1",
        "billProperty": "1", "sellerTaxpayerId": A, "cancalState": "0", "billAmount": amount,
        "billDetail": [
            {"goodsName": "拿铁咖啡", "revenueCode": "3070401000000000000", "units": "杯", "quantity": 2, "price": "30.00",
             "amount": "60.00", "taxRate": "0.06", "taxAmount": "3.40", "lineProperty": "0"},
            {"goodsName": "拿铁咖啡", "revenueCode": "3070401000000000000", "amount": "-10.00", "taxRate": "0.06",
             "taxAmount": "-0.57", "lineProperty": "1"},
            {"goodsName": "咖啡豆", "revenueCode": "3070401000000000000", "units": "袋", "quantity": 1, "price": 50.0,
             "amount": 50.0, "taxRate": 0.06, "taxAmount": 2.83, "lineProperty": "2"}
        ]
    })
}

impl World {
    async fn merchant_knows(&self, order: Value) {
        let r = self
            .http
            .post(format!("{}/sandbox/merchant/orders", self.sandbox.base_url()))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    async fn link(&self, order_no: &str, amount: &str) -> String {
        receipts::sign_order_link(&self.app, A, order_no, amount.parse().unwrap(), Utc::now()).await.unwrap()
    }

    async fn get(&self, url: &str) -> Page {
        let r = self.http.get(url).send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        Page { status, headers, body: r.text().await.unwrap() }
    }

    /// POST the form of `link` (its query) with the CSRF pair `csrf` and the title fields.
    async fn submit(&self, link: &str, csrf: &str, fields: &[(&str, &str)]) -> Page {
        let query = link.split_once('?').unwrap().1;
        let mut form: Vec<(&str, &str)> = vec![("link", query), ("csrf", csrf)];
        form.extend_from_slice(fields);
        let r = self
            .http
            .post(format!("{}/r", self.base))
            .header("cookie", format!("receipt_csrf={csrf}"))
            .header("sec-fetch-site", "same-origin")
            .form(&form)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        Page { status, headers, body: r.text().await.unwrap() }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }

    fn serials(&self) -> usize {
        self.sandbox.world().serials().len()
    }
}

const COMPANY: [(&str, &str); 5] = [
    ("kind", "digital_ordinary"),
    ("title_type", "company"),
    ("name", "深圳示例便利店"),
    ("tax_no", BUYER),
    ("email", "buyer@example.com"),
];

fn with(
    fields: &[(&'static str, &'static str)],
    key: &str,
    value: &'static str,
) -> Vec<(&'static str, &'static str)> {
    fields.iter().map(|&(k, v)| if k == key { (k, value) } else { (k, v) }).collect()
}

#[tokio::test]
async fn mode_1_a_consumer_opens_the_link_fills_a_company_title_and_gets_the_invoice_once() {
    let w = world(&[]).await;
    w.merchant_knows(order("POS-1", "100.00")).await;
    let link = w.link("POS-1", "100.00").await;
    assert!(link.starts_with(&format!("{}/r?s={A}&o=POS-1&je=100.00&", w.base)), "{link}");

    let form = w.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains(&format!("企业{A}")) && form.body.contains("¥100.00"), "{}", form.body);
    assert!(form.body.contains("数电票（普通发票）") && form.body.contains("数电票（增值税专用发票）"));
    assert!(form.body.contains("个人") && form.body.contains("单位"));
    assert_eq!(form.headers["cache-control"], "no-store");
    assert_eq!(form.headers["referrer-policy"], "no-referrer");
    let cookie = form.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let csrf = form.csrf();
    assert!(form.body.contains(&format!("name=\"csrf\" value=\"{csrf}\"")));

    // A company title without a tax number, then with a wrong check character: the form again.
    let missing = w.submit(&link, &csrf, &with(&COMPANY, "tax_no", "")).await;
    assert_eq!(missing.status, 422);
    assert!(missing.body.contains("单位抬头必须填写税号"), "{}", missing.body);
    let wrong = w.submit(&link, &csrf, &with(&COMPANY, "tax_no", BAD_BUYER)).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("id=\"error-tax_no\""), "{}", wrong.body);
    assert_eq!(w.count("SELECT count(*) FROM application").await, 0);
    assert_eq!(w.serials(), 0);

    let done = w.submit(&link, &csrf, &COMPANY).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("开票成功") && done.body.contains("¥100.00"), "{}", done.body);
    assert!(done.body.contains("id=\"download\""), "{}", done.body);
    assert_eq!(w.serials(), 1);
    let (source, buyer, buyer_tax): (String, String, Option<String>) =
        sqlx::query_as("SELECT data_source, buyer_name, buyer_tax_no FROM pending_invoice")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (source.as_str(), buyer.as_str(), buyer_tax.as_deref()),
        ("小票码开票", "深圳示例便利店", Some(BUYER))
    );
    let lines: Vec<(String, Decimal)> =
        sqlx::query_as("SELECT line_property, total FROM application_line ORDER BY line_no")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    let props: Vec<&str> = lines.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(props, ["discounted", "discount", "normal"]);
    // Delivered to the e-mail given, through the channel.
    let delivered: Vec<String> = w.sandbox.world().deliveries.iter().map(|d| d.email.clone()).collect();
    assert_eq!(delivered, ["buyer@example.com"]);

    // Re-opening shows the invoice; submitting again shows the same one and issues nothing.
    let again = w.get(&link).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("开票成功") && !again.body.contains("<form"), "{}", again.body);
    let twice = w.submit(&link, &csrf, &with(&COMPANY, "name", "另一个抬头")).await;
    assert!(twice.body.contains("开票成功") && twice.body.contains("深圳示例便利店"), "{}", twice.body);
    assert_eq!(w.serials(), 1);
    assert_eq!(w.count("SELECT count(*) FROM pending_invoice").await, 1);
}

#[tokio::test]
async fn two_submits_at_once_make_one_invoice() {
    let w = world(&[]).await;
    w.merchant_knows(order("POS-2", "100.00")).await;
    let link = w.link("POS-2", "100.00").await;
    let csrf = w.get(&link).await.csrf();
    let person = [("kind", "digital_ordinary"), ("title_type", "person"), ("name", "张三")];
    let (a, b) = tokio::join!(w.submit(&link, &csrf, &person), w.submit(&link, &csrf, &person));
    assert_eq!((a.status, b.status), (200, 200), "{}\n{}", a.body, b.body);
    let bill = |p: &Page| p.body.split("data-bill=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(bill(&a), bill(&b));
    assert!(a.body.contains("开票成功") || b.body.contains("开票成功"));
    // By the channel's own ledger: one invoice was issued.
    assert_eq!(w.serials(), 1);
    assert_eq!(w.count("SELECT count(*) FROM application").await, 1);
    assert_eq!(w.count("SELECT count(*) FROM receipt_claim").await, 1);
}

#[tokio::test]
async fn every_refusal_has_its_page_and_creates_nothing() {
    let w = world(&[]).await;
    w.merchant_knows(order("POS-3", "100.00")).await;
    let person = [("kind", "digital_ordinary"), ("title_type", "person"), ("name", "张三")];
    let good = w.link("POS-3", "100.00").await;

    let past = Utc::now() - chrono::Duration::minutes(61);
    let expired =
        receipts::sign_order_link(&w.app, A, "POS-3", "100.00".parse().unwrap(), past).await.unwrap();
    let tampered = good.replace("je=100.00", "je=1.00");
    let unknown_key = good.replace("kid=k1", "kid=k9");
    let unknown_order = w.link("POS-404", "100.00").await;
    let differs = w.link("POS-3", "90.00").await;
    let cases = [
        (expired, 410, "RECEIPT_LINK_EXPIRED", "已过有效期"),
        (tampered, 403, "RECEIPT_LINK_TAMPERED", "校验失败"),
        (unknown_key, 404, "RECEIPT_LINK_UNKNOWN", "无法识别"),
        (format!("{}/r?foo=bar", w.base), 404, "RECEIPT_LINK_UNKNOWN", "无法识别"),
    ];
    for (link, status, code, words) in &cases {
        let page = w.get(link).await;
        assert_eq!(page.status, *status, "GET {code}: {}", page.body);
        assert!(page.body.contains(code) && page.body.contains(words), "{}", page.body);
        assert_eq!(page.headers["cache-control"], "no-store");
        let posted = w.submit(link, "token-of-a-forged-page", &person).await;
        assert_eq!(posted.status, *status, "POST {code}: {}", posted.body);
    }
    // The order query decides these at submit: the form shows, the submit is refused.
    for (link, status, code) in
        [(unknown_order, 404, "RECEIPT_ORDER_UNKNOWN"), (differs, 409, "RECEIPT_AMOUNT_DIFFERS")]
    {
        let form = w.get(&link).await;
        assert_eq!(form.status, 200);
        let page = w.submit(&link, &form.csrf(), &person).await;
        assert_eq!(page.status, status, "{code}: {}", page.body);
        assert!(page.body.contains(code), "{}", page.body);
    }

    // A printed code disabled by the merchant.
    let goods = receipts::add_goods(
        &w.app,
        &Actor::Demo,
        &GoodsRequest {
            tax_no: A.into(),
            name: "矿泉水".into(),
            revenue_code: "1030307000000000000".into(),
            tax_rate: "0.13".parse().unwrap(),
            specification: Some("550ml".into()),
            unit: Some("瓶".into()),
            price: Some("2.00".parse().unwrap()),
        },
    )
    .await
    .unwrap();
    let id = receipts::add(&w.app, &Actor::Demo, &receipt("RC-9", goods, vec![]), Utc::now()).await.unwrap();
    let printed = receipts::show(&w.app, id).await.unwrap().link;
    assert_eq!(w.get(&printed).await.status, 200);
    receipts::disable(&w.app, &Actor::Demo, id).await.unwrap();
    let page = w.get(&printed).await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("RECEIPT_CODE_DISABLED") && page.body.contains("已被商家禁用"));

    // Nothing was created by any of them; the good link still works afterwards.
    assert_eq!(w.count("SELECT count(*) FROM application").await, 0);
    assert_eq!(w.count("SELECT count(*) FROM receipt_claim").await, 0);
    assert_eq!(w.serials(), 0);
    let form = w.get(&good).await;
    let done = w.submit(&good, &form.csrf(), &person).await;
    assert!(done.body.contains("开票成功"), "{}", done.body);
}

/// A goods item of A: 便当, 6 %, ¥25.00 a portion.
async fn bento(w: &World) -> i64 {
    let item = GoodsRequest {
        tax_no: A.into(),
        name: "便当".into(),
        revenue_code: "3070401000000000000".into(),
        tax_rate: "0.06".parse().unwrap(),
        specification: None,
        unit: Some("份".into()),
        price: Some("25.00".parse().unwrap()),
    };
    receipts::add_goods(&w.app, &Actor::Demo, &item).await.unwrap()
}

fn receipt(serial: &str, goods: i64, mut extra: Vec<LineRequest>) -> ReceiptRequest {
    let mut lines = vec![LineRequest::Goods { goods_id: goods, quantity: "3".parse().unwrap(), price: None }];
    lines.append(&mut extra);
    ReceiptRequest {
        tax_no: A.into(),
        serial_no: serial.into(),
        device_no: Some("POS-01".into()),
        etax_account: None,
        kinds: vec![],
        default_kind: None,
        validity_minutes: None,
        bottom_remark: Some("扫码开具电子发票，有效期1小时".into()),
        drawer: "李四".into(),
        payee: None,
        reviewer: None,
        remark: None,
        lines,
    }
}

#[tokio::test]
async fn a_printed_code_with_a_discount_is_checked_by_the_importers_rules_and_invoiced() {
    let w = world(&[]).await;
    let goods = bento(&w).await;
    // A discount before any line, and a positive "discount", are refused by the rules.
    let before = ReceiptRequest {
        lines: vec![LineRequest::Discount { amount: "-5".parse().unwrap() }],
        ..receipt("RC-0", goods, vec![])
    };
    let e = receipts::add(&w.app, &Actor::Demo, &before, Utc::now()).await.unwrap_err();
    assert_eq!(e.code(), "DISCOUNT_WITHOUT_LINE");
    let positive = receipt("RC-0", goods, vec![LineRequest::Discount { amount: "5".parse().unwrap() }]);
    let e = receipts::add(&w.app, &Actor::Demo, &positive, Utc::now()).await.unwrap_err();
    assert_eq!(e.code(), "RECEIPT_LINES_INVALID");
    assert!(e.to_string().contains("DISCOUNT_NOT_NEGATIVE"), "{e}");
    assert_eq!(w.count("SELECT count(*) FROM receipt_code").await, 0);
    assert_eq!(w.count("SELECT count(*) FROM application").await, 0, "the check landed nothing");

    let id = receipts::add(
        &w.app,
        &Actor::Demo,
        &receipt("RC-1", goods, vec![LineRequest::Discount { amount: "-5.00".parse().unwrap() }]),
        Utc::now(),
    )
    .await
    .unwrap();
    let shown = receipts::show(&w.app, id).await.unwrap();
    assert_eq!(shown.receipt.total, "70.00".parse::<Decimal>().unwrap());
    let copy = receipts::copy(&w.app, &Actor::Demo, id, "RC-2", Utc::now()).await.unwrap();
    assert_eq!(receipts::show(&w.app, copy).await.unwrap().lines.len(), 2);
    assert_eq!(
        receipts::copy(&w.app, &Actor::Demo, id, "RC-2", Utc::now()).await.unwrap_err().code(),
        "RECEIPT_SERIAL_EXISTS"
    );

    let form = w.get(&shown.link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("便当")
            && form.body.contains("（折扣）")
            && form.body.contains("扫码开具电子发票")
    );
    let person =
        [("kind", "digital_ordinary"), ("title_type", "person"), ("name", "王五"), ("phone", "13800138000")];
    let done = w.submit(&shown.link, &form.csrf(), &person).await;
    assert!(done.body.contains("开票成功") && done.body.contains("¥70.00"), "{}", done.body);
    assert_eq!(w.sandbox.world().calls.get("GET.ORDER"), None, "a stored code asks no merchant");
    let phones: Vec<String> = w.sandbox.world().deliveries.iter().map(|d| d.phone.clone()).collect();
    assert_eq!(phones, ["13800138000"]);
}

#[tokio::test]
async fn the_invoice_carries_the_codes_drawer_payee_and_reviewer_not_the_enterprises() {
    let w = world(&[]).await;
    // The enterprise's own issuers: what an invoice of another source would carry.
    let enterprise = fapiao_store::enterprises::Issuers {
        drawer: "企业开票人".into(),
        payee: Some("企业收款人".into()),
        reviewer: Some("企业复核人".into()),
    };
    let a = fapiao_schemas::TaxNo::parse(A).unwrap();
    fapiao_store::enterprises::set_issuers(&w.db.pool, &a, &enterprise).await.unwrap();
    let goods = bento(&w).await;
    let code = ReceiptRequest {
        payee: Some("王收款".into()),
        reviewer: Some("赵复核".into()),
        ..receipt("RC-ISS", goods, vec![])
    };
    let id = receipts::add(&w.app, &Actor::Demo, &code, Utc::now()).await.unwrap();
    let link = receipts::show(&w.app, id).await.unwrap().link;
    let person = [("kind", "digital_ordinary"), ("title_type", "person"), ("name", "王五")];
    let done = w.submit(&link, &w.get(&link).await.csrf(), &person).await;
    assert!(done.body.contains("开票成功"), "{}", done.body);
    let sent = |w: &World| {
        let world = w.sandbox.world();
        let mut all: Vec<(String, String, String)> = world
            .serials()
            .iter()
            .map(|s| world.opened(s).unwrap())
            .map(|o| (o.drawer.clone(), o.payee.clone(), o.reviewer.clone()))
            .collect();
        all.sort();
        all
    };
    // By what the channel received: the code's 开票人, 收款人, 复核人.
    assert_eq!(sent(&w), [("李四".to_string(), "王收款".to_string(), "赵复核".to_string())]);

    // A mode-1 order names its drawer (GET.ORDER `drawer`): that one, no payee or reviewer.
    w.merchant_knows(order("POS-ISS", "100.00")).await;
    let link = w.link("POS-ISS", "100.00").await;
    let done = w.submit(&link, &w.get(&link).await.csrf(), &person).await;
    assert!(done.body.contains("开票成功"), "{}", done.body);
    let all = sent(&w);
    assert!(all.contains(&("收银员1".to_string(), String::new(), String::new())), "{all:?}");
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn forged_forms_and_floods_are_refused() {
    let w = world(&[("FAPIAO__RECEIPT__PER_LINK_PER_MINUTE", "3")]).await;
    w.merchant_knows(order("POS-5", "100.00")).await;
    let link = w.link("POS-5", "100.00").await;
    let form = w.get(&link).await;
    let query = link.split_once('?').unwrap().1;
    let person = [
        ("link", query),
        ("csrf", "abc"),
        ("kind", "digital_ordinary"),
        ("title_type", "person"),
        ("name", "张三"),
    ];
    // No cookie: the token cannot be checked.
    let r = w.http.post(format!("{}/r", w.base)).form(&person).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Another site's page posting the form (the console's cross-site check).
    let r = w
        .http
        .post(format!("{}/r", w.base))
        .header("cookie", "receipt_csrf=abc")
        .header("sec-fetch-site", "cross-site")
        .form(&person)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(w.count("SELECT count(*) FROM application").await, 0);
    // Three requests of this link a minute: the form and the post without a cookie were two (the
    // cross-site post never reached the page).
    assert_eq!(w.get(&link).await.status, 200);
    let flooded = w.get(&link).await;
    assert_eq!(flooded.status, 429);
    assert!(flooded.body.contains("请求过于频繁"));
    // Another link is not limited by this one's count.
    w.merchant_knows(order("POS-6", "100.00")).await;
    assert_eq!(w.get(&w.link("POS-6", "100.00").await).await.status, 200);
    let _ = form;
}

#[tokio::test]
async fn a_rotated_key_keeps_old_links_until_retired_and_the_kingdee_format_needs_compatibility() {
    let w = world(&[]).await;
    w.merchant_knows(order("POS-7", "100.00")).await;
    let old = w.link("POS-7", "100.00").await;
    let k2 = receipts::rotate_key(&w.app, &Actor::Demo, A).await.unwrap();
    assert_eq!(k2, "k2");
    let new = w.link("POS-7", "100.00").await;
    assert!(new.contains("kid=k2"), "{new}");
    assert_eq!(w.get(&old).await.status, 200);
    receipts::retire_key(&w.app, &Actor::Demo, A, "k1").await.unwrap();
    assert_eq!(w.get(&old).await.status, 404);
    assert_eq!(w.get(&new).await.status, 200);

    let now = Utc::now().timestamp_millis();
    let kingdee = format!(
        "{}/r?{}",
        w.base,
        fapiao_schemas::receipt_link::kingdee_query("shop-key-1", "POS-7", "100.00".parse().unwrap(), now)
    );
    assert_eq!(w.get(&kingdee).await.status, 404, "off by default");
    let mut s = receipts::settings(&w.app, A).await.unwrap();
    s.kingdee_compat = true;
    s.kingdee_key = Some("shop-key-1".into());
    fapiao_store::receipts::put_settings(&w.db.pool, &s).await.unwrap();
    let form = w.get(&kingdee).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let done = w
        .submit(
            &kingdee,
            &form.csrf(),
            &[("kind", "digital_ordinary"), ("title_type", "person"), ("name", "张三")],
        )
        .await;
    assert!(done.body.contains("开票成功"), "{}", done.body);
    let mode: String =
        sqlx::query_scalar("SELECT mode FROM receipt_claim").fetch_one(&w.db.pool).await.unwrap();
    assert_eq!(mode, "kingdee");
}

// ---------------------------------------------------------------------------------------------
// A phone in headless Chromium (Debian's chromium and chromium-driver over WebDriver, as in
// tests/browser.rs): skipped without /usr/bin/chromedriver unless FAPIAO_REQUIRE_BROWSER=1.

mod phone {
    use std::time::{Duration, Instant};

    use fantoccini::{Client, Locator};

    /// Wait until `css` (on this page or the next) contains `needle`.
    pub async fn wait_text(b: &Client, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = match b.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.contains(needle) {
                return found;
            }
            assert!(Instant::now() < deadline, "{css} never contained {needle}: {found:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shot(b: &Client, name: &str) {
        std::fs::write(crate::chromium::shot(name), b.screenshot().await.unwrap()).unwrap();
    }
}

#[tokio::test]
async fn on_a_phone_a_printed_code_switch_kind_wrong_then_right_tax_number_and_the_invoice() {
    use fantoccini::Locator;
    if !chromium::available() {
        return;
    }
    let w = world(&[]).await;
    let goods = receipts::add_goods(
        &w.app,
        &Actor::Demo,
        &GoodsRequest {
            tax_no: A.into(),
            name: "拿铁咖啡".into(),
            revenue_code: "3070401000000000000".into(),
            tax_rate: "0.06".parse().unwrap(),
            specification: Some("大杯".into()),
            unit: Some("杯".into()),
            price: Some("32.00".parse().unwrap()),
        },
    )
    .await
    .unwrap();
    let req = receipt("RC-PHONE", goods, vec![LineRequest::Discount { amount: "-6.00".parse().unwrap() }]);
    let id = receipts::add(&w.app, &Actor::Demo, &req, Utc::now()).await.unwrap();
    let link = receipts::show(&w.app, id).await.unwrap().link;

    let driver = chromium::start().await;
    let b = chromium::browser(&driver, chromium::Screen::Phone).await;
    b.goto(&link).await.unwrap();
    phone::wait_text(&b, "#amount", "¥90.00").await;
    // Nothing is wider than the phone.
    let width = b.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
    assert!(width.as_i64().unwrap() <= 360, "page is {width} px wide");
    // The default kind is checked; switch to the special invoice.
    let checked =
        b.find(Locator::Css("input[name=kind]:checked")).await.unwrap().attr("value").await.unwrap();
    assert_eq!(checked.as_deref(), Some("digital_ordinary"));
    b.find(Locator::Css("input[name=kind][value=digital_special]")).await.unwrap().click().await.unwrap();
    b.find(Locator::Css("input[name=title_type][value=company]")).await.unwrap().click().await.unwrap();
    b.find(Locator::Css("#name")).await.unwrap().send_keys("深圳示例便利店").await.unwrap();
    b.find(Locator::Css("#tax_no")).await.unwrap().send_keys(BAD_BUYER).await.unwrap();
    b.find(Locator::Css("#email")).await.unwrap().send_keys("buyer@example.com").await.unwrap();
    b.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();
    // The next page's message under the field (the GB 32100-2015 check character).
    phone::wait_text(&b, "#error-tax_no", "校验位").await;
    phone::shot(&b, "receipt-form.png").await;
    // The form kept what was typed, the special kind included.
    let kind = b.find(Locator::Css("input[name=kind]:checked")).await.unwrap().attr("value").await.unwrap();
    assert_eq!(kind.as_deref(), Some("digital_special"));
    assert_eq!(w.serials(), 0);
    let tax = b.find(Locator::Css("#tax_no")).await.unwrap();
    tax.clear().await.unwrap();
    tax.send_keys(BUYER).await.unwrap();
    b.find(Locator::Css("#submit")).await.unwrap().click().await.unwrap();
    phone::wait_text(&b, "#state", "开票成功").await;
    phone::wait_text(&b, "#total", "¥90.00").await;
    phone::shot(&b, "receipt-result.png").await;
    let width = b.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
    assert!(width.as_i64().unwrap() <= 360, "result page is {width} px wide");
    assert_eq!(w.serials(), 1);
    let kind: String =
        sqlx::query_scalar("SELECT invoice_kind FROM pending_invoice").fetch_one(&w.db.pool).await.unwrap();
    assert_eq!(kind, "digital_special");
    b.close().await.unwrap();
}
