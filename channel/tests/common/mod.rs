//! A sandbox on 127.0.0.1 and a client pointed at it.

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use fapiao_channel::codec::Codec;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig};
use fapiao_channel::wire::{InvoiceLine, OpenInvoice};
use fapiao_channel::{ChannelClient, ClientConfig, RetryPolicy};
use fapiao_schemas::config::Secret;
use fapiao_schemas::{Money, TaxRate};

pub const SELLER: &str = "91310000MA1FL2AB09";
pub const BUYER: &str = "92440300MA5DXY7K3W";

pub fn config(faults: &str) -> SandboxConfig {
    SandboxConfig {
        faults: FaultPlan::parse(faults).unwrap(),
        issue_delay: Duration::from_millis(30),
        download_delay: Duration::from_millis(50),
        red_info_delay: Duration::from_millis(50),
        ..SandboxConfig::default()
    }
}

pub async fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config, "127.0.0.1:0").await.unwrap()
}

pub fn client_config(sandbox: &Sandbox) -> ClientConfig {
    ClientConfig {
        base_url: sandbox.base_url(),
        app_id: "sandbox-app".into(),
        app_secret: Secret::new("sandbox-secret"),
        account_id: "acct".into(),
        tenant_id: "tenant".into(),
        user: "tester".into(),
        business_system_code: "TEST".into(),
        codec: Codec::Base64,
        max_in_flight: 8,
        timeout: Duration::from_secs(5),
        retry: RetryPolicy { max_attempts: 12, base_delay: Duration::from_millis(2), max_delay: Duration::from_millis(20) },
    }
}

pub fn client(sandbox: &Sandbox) -> ChannelClient {
    ChannelClient::new(client_config(sandbox))
}

pub fn money(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// A one-line invoice of `amount` at 13%.
pub fn invoice(serial: &str, kind: &str, amount: &str) -> OpenInvoice {
    let amount = money(amount);
    let rate = TaxRate::parse("13%").unwrap();
    OpenInvoice {
        serial_no: serial.into(),
        invoice_kind: kind.into(),
        invoice_property: 0,
        seller_name: "上海示例贸易有限公司".into(),
        seller_taxpayer_id: SELLER.into(),
        buyer_name: "深圳示例便利店".into(),
        buyer_taxpayer_id: BUYER.into(),
        drawer: "张三".into(),
        remark: String::new(),
        invoice_detail: vec![InvoiceLine {
            seq: 1,
            line_property: 0,
            goods_name: "*计算机配套产品*键盘".into(),
            revenue_code: "1090511030000000000".into(),
            specification: "K1".into(),
            units: "个".into(),
            quantity: Some(rust_decimal::Decimal::ONE),
            price: Some(amount.value()),
            amount,
            tax_rate: rate.value(),
            tax_amount: fapiao_schemas::tax::tax_of(amount, rate),
        }],
    }
}

/// Issue and wait for the final result, asserting success; returns the invoice number.
pub async fn issue_ok(client: &ChannelClient, serial: &str, kind: &str, amount: &str) -> fapiao_channel::wire::IssueResult {
    client.issue(&invoice(serial, kind, amount)).await.unwrap();
    let r = client.wait_final(serial, SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.issue_status, "1", "{r:?}");
    r
}
