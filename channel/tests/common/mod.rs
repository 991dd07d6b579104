//! A sandbox on 127.0.0.1 and a client pointed at it.

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use fapiao_channel::codec::Codec;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig, sample_invoice};
use fapiao_channel::wire::OpenInvoice;
use fapiao_channel::{ChannelClient, ClientConfig, RetryPolicy};
use fapiao_schemas::Money;
use fapiao_schemas::config::Secret;

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
        retry: RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
        },
    }
}

pub fn client(sandbox: &Sandbox) -> ChannelClient {
    ChannelClient::new(client_config(sandbox))
}

pub fn money(s: &str) -> Money {
    Money::parse(s).unwrap()
}

/// A one-line invoice of `amount` at 13% from SELLER to BUYER.
pub fn invoice(serial: &str, kind: &str, amount: &str) -> OpenInvoice {
    sample_invoice(serial, kind, ("上海示例贸易有限公司", SELLER), ("深圳示例便利店", BUYER), money(amount))
}

/// Issue and wait for the final result, asserting success; returns the invoice number.
pub async fn issue_ok(
    client: &ChannelClient,
    serial: &str,
    kind: &str,
    amount: &str,
) -> fapiao_channel::wire::IssueResult {
    client.issue(&invoice(serial, kind, amount)).await.unwrap();
    let r =
        client.wait_final(serial, SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.issue_status, fapiao_channel::codes::IssueStatus::Succeeded, "{r:?}");
    r
}
