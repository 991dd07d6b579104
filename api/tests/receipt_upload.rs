//! Receipt codes, mode 2 (issue 20, seed 003 3.2.01): a business system uploads an order through
//! the ERP API with its credentials and gets the QR link; the link opens the order's form and a
//! consumer's title gets the invoice, issued against the sandbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fapiao_channel::sandbox::erp_client::{ErpClient, ErpCredentials};
use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_schemas::config::Settings;
use fapiao_schemas::{InvoiceKind, TaxNo};
use fapiao_store::testing::TestDb;
use fapiao_usecases::receipts::{self, Delivery, Opened, SettingsRequest, Title, TitleType};
use fapiao_usecases::systems::{self, NewSystem};
use fapiao_usecases::{Actor, App};
use serde_json::json;

const SELLER: &str = "91310000MA1FL2AB09";
const OTHER: &str = "92440300MA5DXY7K3W";

#[tokio::test]
async fn an_uploaded_order_answers_its_link_and_the_link_gets_the_invoice() {
    let db = TestDb::with_enterprises(&[SELLER, OTHER]).await;
    let sandbox = Sandbox::start(
        SandboxConfig { issue_delay: Duration::from_millis(20), ..SandboxConfig::default() },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let vars = vec![
        ("FAPIAO__INVOICING__SETTLE_POLL_MS".to_string(), "20".to_string()),
        ("FAPIAO__CALLBACKS__URL".to_string(), format!("{}/erp/callback/{{system}}", sandbox.base_url())),
    ];
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
    let settings_of = |mode2: bool| SettingsRequest {
        tax_no: SELLER.into(),
        kinds: vec![InvoiceKind::DigitalOrdinary],
        default_kind: None,
        validity_minutes: 30,
        base_url: "https://fapiao.example.com".into(),
        delivery: Delivery::Email,
        mode1: false,
        mode2,
        order_query_url: None,
        kingdee_compat: false,
        kingdee_key: None,
    };
    receipts::set_settings(&app, &Actor::Demo, &settings_of(true)).await.unwrap();
    let new = NewSystem {
        code: "POS".into(),
        name: "收银系统".into(),
        callback_url: None,
        tax_nos: vec![TaxNo::parse(SELLER).unwrap()],
        aes: false,
    };
    let c = systems::add(&app, &Actor::Demo, &new).await.unwrap();
    let erp = ErpClient::new(&ErpCredentials {
        base_url: format!("http://{addr}"),
        app_id: c.app_id.clone(),
        app_secret: c.app_secret.clone(),
        account_id: c.account_id.clone(),
        system_code: c.code.clone(),
        data_password: None,
    });
    let order = |no: &str, seller: &str, amount: &str| {
        json!({
            "billNo": no, "sellerTaxpayerId": seller, "drawer": "收银员", "includeTaxFlag": 1, "billAmount": amount,
            "billDetail": [{"goodsName": "面包", "revenueCode": "1030201000000000000", "quantity": 4, "price": 12.5,
                            "amount": 50.0, "taxRate": 0.13, "taxAmount": 5.75, "lineProperty": 2}]
        })
    };

    let answers = erp.upload_receipt_orders(&json!([order("SO-1", SELLER, "50.00")])).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["success"], true, "{answers:?}");
    let link = answers[0]["qrLink"].as_str().unwrap().to_string();
    assert!(link.starts_with(&format!("https://fapiao.example.com/r?s={SELLER}&o=SO-1&je=50.00&")), "{link}");
    // The same order again answers the same link and stores nothing new.
    let again = erp.upload_receipt_orders(&order("SO-1", SELLER, "50.00")).await.unwrap();
    assert_eq!(again[0]["qrLink"].as_str(), Some(link.as_str()));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM receipt_code WHERE origin = 'api'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Refused: another tenant's seller, a total that does not add up, a line the rules refuse.
    let refused = erp.upload_receipt_orders(&order("SO-2", OTHER, "50.00")).await.unwrap_err();
    assert!(refused.to_string().contains("1130"), "{refused}");
    let wrong_total = erp.upload_receipt_orders(&order("SO-3", SELLER, "60.00")).await.unwrap_err();
    assert!(wrong_total.to_string().contains("BILL_TOTAL_MISMATCH"), "{wrong_total}");
    let mut bad_tax = order("SO-4", SELLER, "50.00");
    bad_tax["billDetail"][0]["taxAmount"] = json!("9.75");
    let bad = erp.upload_receipt_orders(&bad_tax).await.unwrap_err();
    assert!(bad.to_string().contains("TAX_LINE_MISMATCH"), "{bad}");
    // An object where an amount belongs: the request is refused whole (each order is read from
    // its JSON text, amounts never through an f64).
    let mut misshapen = order("SO-6", SELLER, "50.00");
    misshapen["billDetail"][0]["amount"] = json!({"value": 50});
    let refused =
        erp.upload_receipt_orders(&json!([order("SO-7", SELLER, "50.00"), misshapen])).await.unwrap_err();
    assert!(refused.to_string().contains("data不是订单JSON"), "{refused}");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM receipt_code").fetch_one(&db.pool).await.unwrap();
    assert_eq!(stored, 1);

    // The consumer's side of the uploaded order (the pages call these two use cases).
    let query = link.split_once('?').unwrap().1;
    let Ok(Opened::Form(view)) = receipts::open(&app, query, Utc::now()).await.unwrap() else {
        panic!("the form")
    };
    assert_eq!((view.lines.len(), view.amount.to_string().as_str()), (1, "50.00"));
    let title = Title {
        kind: "digital_ordinary".into(),
        title_type: TitleType::Person,
        name: "赵六".into(),
        tax_no: String::new(),
        address_phone: String::new(),
        bank_account: String::new(),
        email: String::new(),
        phone: String::new(),
    };
    let consumer = Actor::Consumer { from: "127.0.0.1".into() };
    let Ok(result) = receipts::submit(&app, &consumer, query, &title, Utc::now()).await.unwrap() else {
        panic!("issued")
    };
    assert!(result.succeeded(), "{result:?}");
    assert_eq!(sandbox.world().serials().len(), 1);

    // Mode 2 turned off: uploads are refused.
    receipts::set_settings(&app, &Actor::Demo, &settings_of(false)).await.unwrap();
    let off = erp.upload_receipt_orders(&order("SO-5", SELLER, "50.00")).await.unwrap_err();
    assert!(off.to_string().contains("RECEIPT_MODE_OFF"), "{off}");
}
