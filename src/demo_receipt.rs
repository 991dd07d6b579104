//! The demo's "receipt code" stage (issue 20): the first enterprise's receipt-code settings, a
//! goods item, a receipt code with a discount line and its signed link; then a consumer's title
//! submitted through the same use case the `/r` page calls, issued against the sandbox.

use chrono::Utc;
use fapiao_schemas::InvoiceKind;
use fapiao_usecases::receipts::{
    self, Delivery, GoodsRequest, LineRequest, ReceiptRequest, SettingsRequest, Title, TitleType,
};
use fapiao_usecases::{Actor, App};
use serde_json::{Value, json};

pub async fn stage(app: &App, seller: &fapiao_schemas::TaxNo) -> anyhow::Result<Value> {
    let tax_no = seller.as_str().to_string();
    let base_url = "http://127.0.0.1:8080".to_string();
    let settings = SettingsRequest {
        tax_no: tax_no.clone(),
        kinds: vec![InvoiceKind::DigitalOrdinary, InvoiceKind::DigitalSpecial],
        default_kind: Some(InvoiceKind::DigitalOrdinary),
        validity_minutes: 1440,
        base_url: base_url.clone(),
        delivery: Delivery::Email,
        mode1: true,
        mode2: true,
        order_query_url: None,
        kingdee_compat: false,
        kingdee_key: None,
    };
    receipts::set_settings(app, &Actor::Demo, &settings).await?;
    let goods = receipts::add_goods(app, &Actor::Demo, &latte(&tax_no)).await?;
    // A serial of its own on every run (a demo may run again on the same database).
    let serial = format!("DEMO-{}", Utc::now().format("%Y%m%d%H%M%S%3f"));
    let request = ReceiptRequest {
        device_no: Some("POS-01".into()),
        bottom_remark: Some("扫描二维码自助开具电子发票".into()),
        ..two_lattes_less_five(&tax_no, &serial, goods, "演示开票人")
    };
    let id = receipts::add(app, &Actor::Demo, &request, Utc::now()).await?;
    let detail = receipts::show(app, id).await?;
    let query = detail.link.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
    let title = Title {
        kind: InvoiceKind::DigitalOrdinary.as_str().into(),
        title_type: TitleType::Person,
        name: "演示消费者".into(),
        tax_no: String::new(),
        address_phone: String::new(),
        bank_account: String::new(),
        email: "consumer@example.com".into(),
        phone: String::new(),
    };
    let consumer = Actor::Consumer { from: "demo".into() };
    let outcome = match receipts::submit(app, &consumer, &query, &title, Utc::now()).await? {
        Ok(r) => json!({
            "bill_no": r.bill_no,
            "invoice_num": r.invoice.as_ref().map(|i| i.invoice_num.clone()),
            "total": r.invoice.as_ref().map(|i| i.total.to_string()),
        }),
        Err(_) => json!({ "refused": true }),
    };
    let printed = crate::receipt_print::print(&detail, &crate::demo::demo_home()?.join("receipts"))?;
    Ok(json!({
        "qr_png": printed.png,
        "pdf": printed.pdf,
        "receipt_id": id,
        "serial": serial,
        "total": detail.receipt.total.to_string(),
        "link": detail.link,
        "submitted": outcome,
    }))
}

/// The demo's goods item (also `bench receipt`'s): 拿铁咖啡, 6 %, ¥30.00 a cup.
pub(crate) fn latte(tax_no: &str) -> GoodsRequest {
    GoodsRequest {
        tax_no: tax_no.to_string(),
        name: "拿铁咖啡".into(),
        revenue_code: "3070401000000000000".into(),
        tax_rate: rust_decimal::Decimal::new(6, 2),
        specification: None,
        unit: Some("杯".into()),
        price: Some(rust_decimal::Decimal::new(3000, 2)),
    }
}

/// A receipt code of two lattes (goods item `goods`) and a discount of ¥5.00 on them: ¥55.00.
pub(crate) fn two_lattes_less_five(tax_no: &str, serial: &str, goods: i64, drawer: &str) -> ReceiptRequest {
    ReceiptRequest {
        tax_no: tax_no.to_string(),
        serial_no: serial.to_string(),
        device_no: None,
        etax_account: None,
        kinds: Vec::new(),
        default_kind: None,
        validity_minutes: None,
        bottom_remark: None,
        drawer: drawer.to_string(),
        payee: None,
        reviewer: None,
        remark: None,
        lines: vec![
            LineRequest::Goods { goods_id: goods, quantity: rust_decimal::Decimal::TWO, price: None },
            LineRequest::Discount { amount: rust_decimal::Decimal::new(-500, 2) },
        ],
    }
}

pub fn print(r: &Value) {
    let s = &r["receipt_code"];
    println!(
        "[9] receipt code (动态小票码) {} · serial {} · 价税合计 {}",
        s["receipt_id"],
        s["serial"].as_str().unwrap_or(""),
        s["total"].as_str().unwrap_or("")
    );
    println!("    link: {}", s["link"].as_str().unwrap_or(""));
    println!(
        "    QR code: {} · PDF: {}",
        s["qr_png"].as_str().unwrap_or(""),
        s["pdf"].as_str().unwrap_or("")
    );
    println!(
        "    (serve it with `fapiao serve --http 127.0.0.1:8080`; the link opens the consumer's page /r)"
    );
    let sub = &s["submitted"];
    println!(
        "    a consumer submitted 个人 · 演示消费者: bill {} → invoice {} ({})",
        sub["bill_no"].as_str().unwrap_or("-"),
        sub["invoice_num"].as_str().unwrap_or("not issued"),
        sub["total"].as_str().unwrap_or("-")
    );
}
