//! Tokens and issuing over real HTTP against the sandbox.

mod common;

use std::time::Duration;

use common::*;
use fapiao_channel::codec::Codec;
use fapiao_channel::codes::interface;
use fapiao_channel::{ChannelClient, ChannelError, Disposition};

#[tokio::test]
async fn token_round_trip_and_wrong_credentials() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let info = c.account_check(SELLER).await.unwrap();
    assert_eq!(info.etax_account_type, 3);
    c.account_check(BUYER).await.unwrap();
    assert_eq!(sb.world().calls["login.do"], 1, "the token is cached");

    let mut bad = client_config(&sb);
    bad.app_secret = fapiao_schemas::config::Secret::new("wrong");
    let err = ChannelClient::new(bad).account_check(SELLER).await.unwrap_err();
    assert!(matches!(err, ChannelError::Credentials(_)), "{err}");
    assert_eq!(err.disposition(), Disposition::NeverRetry);
    assert!(!format!("{err:?}").contains("wrong"), "no secret in errors");
}

#[tokio::test]
async fn an_expired_token_mid_run_is_renewed_once() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    c.account_check(SELLER).await.unwrap();
    // The bureau forgets every token (as when one expires early); the next call renews once.
    sb.world().expire_all_tokens();
    c.account_check(SELLER).await.unwrap();
    assert_eq!(sb.world().calls["login.do"], 2);
    assert_eq!(sb.world().calls[interface::ACCOUNT_CHECK], 3, "one refused, then answered");
}

#[tokio::test]
async fn a_token_refused_again_after_its_renewal_is_renewed_again() {
    // Half of all calls find their token expired on the spot: a fresh token is often refused
    // too. Each call renews as often as it takes (with backoff) — issuing included, since a
    // refused token means the request was not processed — and none fails.
    let sb = sandbox(config("expire=0.5")).await;
    let c = client(&sb);
    for i in 0..12 {
        c.issue(&invoice(&format!("E-{i}"), "digital_ordinary", "10.00")).await.unwrap();
    }
    let w = sb.world();
    assert_eq!(w.serials().len(), 12, "{:?}", w.calls);
    assert!(w.calls["login.do"] > 12, "some calls needed more than one renewal: {:?}", w.calls);
}

#[tokio::test]
async fn short_lived_tokens_are_renewed_before_they_expire() {
    let mut cfg = config("");
    cfg.token_ttl = Duration::from_millis(300);
    let sb = sandbox(cfg).await;
    let c = client(&sb);
    for _ in 0..10 {
        c.account_check(SELLER).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w = sb.world();
    assert!(w.calls["login.do"] >= 3, "{:?}", w.calls);
    assert_eq!(w.calls[interface::ACCOUNT_CHECK], 10, "no call was refused: renewal came first");
}

#[tokio::test]
async fn issuing_is_accepted_then_issuing_then_final() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    c.issue(&invoice("S-1", "digital_ordinary", "100.00")).await.unwrap();
    let first = c.query_issue("S-1", SELLER).await.unwrap();
    assert_eq!(
        first.issue_status,
        fapiao_channel::codes::IssueStatus::Issuing,
        "开票中 right after acceptance"
    );
    assert!(first.invoice_num.is_empty());
    let done = c.wait_final("S-1", SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(done.issue_status, fapiao_channel::codes::IssueStatus::Succeeded);
    assert_eq!(done.invoice_num.len(), 20);
    assert_eq!(done.total_amount, money("113.00"));
    assert!(done.invoice_file_url.ends_with(".pdf"));

    let t = issue_ok(&c, "S-2", "taxctl_special", "50.00").await;
    fapiao_schemas::InvoiceKind::TaxctlSpecial
        .validate_number(Some(&t.invoice_code), &t.invoice_num)
        .unwrap();

    let page = c.batch_query(SELLER, 0, 1).await.unwrap();
    assert_eq!((page.total, page.list.len()), (2, 1));
}

#[tokio::test]
async fn a_bad_invoice_fails_with_a_message() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let mut inv = invoice("S-BAD", "digital_special", "100.00");
    inv.buyer_taxpayer_id.clear();
    c.issue(&inv).await.unwrap();
    let r = c.wait_final("S-BAD", SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.issue_status, fapiao_channel::codes::IssueStatus::Failed);
    assert!(r.issue_message.contains("购买方纳税人识别号"), "{}", r.issue_message);

    let mut inv = invoice("S-TAX", "digital_ordinary", "100.00");
    inv.invoice_detail[0].tax_amount = money("13.07");
    c.issue(&inv).await.unwrap();
    let r = c.wait_final("S-TAX", SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.issue_status, fapiao_channel::codes::IssueStatus::Failed);
    assert!(r.issue_message.contains("0.06"), "{}", r.issue_message);
}

#[tokio::test]
async fn a_duplicate_serial_is_reported_not_retried() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    issue_ok(&c, "S-DUP", "digital_ordinary", "10.00").await;
    let err = c.issue(&invoice("S-DUP", "digital_ordinary", "10.00")).await.unwrap_err();
    assert_eq!(err.api_code(), Some("10127"));
    assert_eq!(err.disposition(), Disposition::NeverRetry);
    assert_eq!(sb.world().calls[interface::INVOICE_OPEN], 2, "sent once each time, never retried");
    assert_eq!(sb.world().issued_count(), 1);
}

#[tokio::test]
async fn a_dropped_answer_on_issue_is_settled_by_query_and_the_invoice_exists_once() {
    let sb = sandbox(config("drop@ALLE.INVOICE.OPEN=1")).await;
    let c = client(&sb);
    let err = c.issue(&invoice("S-LOST", "digital_ordinary", "99.00")).await.unwrap_err();
    assert_eq!(err.disposition(), Disposition::UnknownOutcome, "{err}");
    assert_eq!(sb.world().calls[interface::INVOICE_OPEN], 1, "an issuing call is never re-sent");
    let r = c.wait_final("S-LOST", SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.issue_status, fapiao_channel::codes::IssueStatus::Succeeded);
    assert_eq!(sb.world().accepted("S-LOST"), 1);
    assert_eq!(sb.world().issued_count(), 1);
}

#[tokio::test]
async fn the_repairing_failure_carries_its_time() {
    let sb = sandbox(config("repairing@ALLE.INVOICE.OPEN=1")).await;
    let c = client(&sb);
    c.issue(&invoice("S-R", "digital_ordinary", "10.00")).await.unwrap();
    let r = c.wait_final("S-R", SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap();
    assert_eq!(r.issue_status, fapiao_channel::codes::IssueStatus::Failed);
    assert!(r.issue_message.starts_with("局端内部错误，该开票请求修复中，请"), "{}", r.issue_message);
    let at = fapiao_channel::codes::retry_not_before(&r.issue_message).expect("a time in the message");
    assert!(at > chrono::Utc::now());
}

/// Settle one serial the way the invoicing pipeline must: on any failure, ask; resend only
/// when the channel has never seen the serial.
async fn issue_settled(c: &ChannelClient, serial: &str) {
    loop {
        match c.issue(&invoice(serial, "digital_ordinary", "20.00")).await {
            Ok(_) => return,
            Err(e) if e.api_code() == Some("10127") => return,
            Err(_) => match c.query_issue(serial, SELLER).await {
                Ok(_) => return,
                Err(e) if e.api_code() == Some("9404") => continue,
                Err(e) => panic!("query failed after retries: {e}"),
            },
        }
    }
}

#[tokio::test]
async fn thirty_percent_faults_still_end_with_every_idempotent_call_answered() {
    let sb = sandbox(config("http5xx=0.15,drop=0.15")).await;
    let c = client(&sb);
    let serials: Vec<String> = (0..40).map(|n| format!("F-{n:03}")).collect();
    for s in &serials {
        issue_settled(&c, s).await;
    }
    for s in &serials {
        let r = c.wait_final(s, SELLER, Duration::from_millis(10), Duration::from_secs(10)).await.unwrap();
        assert_eq!(r.issue_status, fapiao_channel::codes::IssueStatus::Succeeded, "{s}");
    }
    let w = sb.world();
    assert_eq!(w.issued_count(), 40, "every serial issued exactly once");
    assert!(w.calls[interface::INVOICE_QUERY] > 40, "faults forced retries: {:?}", w.calls);
}

#[tokio::test]
async fn aes_encoded_data_round_trips_and_a_wrong_password_is_a_codec_error() {
    let mut cfg = config("");
    cfg.codec = Codec::aes("tenant-password");
    let sb = sandbox(cfg).await;
    let mut cc = client_config(&sb);
    cc.codec = Codec::aes("tenant-password");
    let c = ChannelClient::new(cc);
    issue_ok(&c, "S-AES", "digital_ordinary", "1.00").await;

    let mut wrong = client_config(&sb);
    wrong.codec = Codec::aes("other");
    let err = ChannelClient::new(wrong).account_check(SELLER).await.unwrap_err();
    assert_eq!(err.api_code(), Some("9400"), "the sandbox cannot decode it: {err}");
}
