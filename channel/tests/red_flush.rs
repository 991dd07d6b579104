//! The three red-flush tracks against the sandbox, the counterparty side included.

mod common;

use std::time::Duration;

use common::*;
use fapiao_channel::ChannelClient;
use fapiao_channel::wire::{QuickRed, RedConfirmApply, RedInfoApply, RedInvoice};

fn red(serial: &str, blue: &str, amount: &str, tax: &str) -> RedInvoice {
    RedInvoice {
        serial_no: serial.into(),
        seller_taxpayer_id: SELLER.into(),
        original_invoice_code: String::new(),
        original_invoice_num: blue.into(),
        red_reason: "02".into(),
        amount: money(amount),
        tax_amount: money(tax),
        gov_red_confirm_bill_uuid: String::new(),
        red_info_bill_no: String::new(),
        drawer: String::new(),
        payee: String::new(),
        reviewer: String::new(),
    }
}

fn apply(order: &str, blue: &str, amount: &str, tax: &str) -> RedConfirmApply {
    RedConfirmApply {
        order_no: order.into(),
        seller_taxpayer_id: SELLER.into(),
        invoice_num: blue.into(),
        red_reason: "02".into(),
        amount: money(amount),
        tax_amount: money(tax),
    }
}

fn sheet(
    order: &str,
    blue: &fapiao_channel::wire::IssueResult,
    reason: &str,
    amount: &str,
    tax: &str,
) -> RedInfoApply {
    RedInfoApply {
        order_no: order.into(),
        seller_taxpayer_id: SELLER.into(),
        invoice_code: blue.invoice_code.clone(),
        invoice_num: blue.invoice_num.clone(),
        red_reason: reason.into(),
        amount: money(amount),
        tax_amount: money(tax),
    }
}

async fn settle(c: &ChannelClient, serial: &str) -> fapiao_channel::wire::IssueResult {
    c.wait_final(serial, SELLER, Duration::from_millis(10), Duration::from_secs(5)).await.unwrap()
}

#[tokio::test]
async fn digital_ordinary_needs_no_confirmation_and_the_remaining_amount_is_enforced() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let blue = issue_ok(&c, "B-1", "digital_ordinary", "100.00").await; // total 113.00
    let form = c.red_confirm_apply(&apply("O-1", &blue.invoice_num, "-50.00", "-6.50")).await.unwrap();
    assert_eq!(form.confirm_state, "01");
    // Applying again with the same order number answers the same form.
    assert_eq!(
        c.red_confirm_apply(&apply("O-1", &blue.invoice_num, "-50.00", "-6.50")).await.unwrap().bill_uuid,
        form.bill_uuid
    );

    let mut r = red("R-1", &blue.invoice_num, "-50.00", "-6.50");
    r.gov_red_confirm_bill_uuid = form.bill_uuid.clone();
    c.red_invoice(&r).await.unwrap();
    let done = settle(&c, "R-1").await;
    assert_eq!(
        (done.issue_status, done.invoice_property),
        (fapiao_channel::codes::IssueStatus::Succeeded, 1)
    );
    assert_eq!(done.original_invoice_num, blue.invoice_num);

    // The same form cannot be used twice; more than the remaining 56.50 is refused.
    r.serial_no = "R-2".into();
    assert_eq!(c.red_invoice(&r).await.unwrap_err().api_code(), Some("9409"));
    let err = c.red_confirm_apply(&apply("O-2", &blue.invoice_num, "-50.01", "-6.50")).await.unwrap_err();
    assert_eq!(err.api_code(), Some("9409"));
    let rest = c.red_confirm_apply(&apply("O-3", &blue.invoice_num, "-50.00", "-6.50")).await.unwrap();
    assert_eq!(rest.confirm_state, "01");
}

#[tokio::test]
async fn digital_special_waits_for_the_buyer_who_confirms_or_rejects() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let blue = issue_ok(&c, "B-2", "digital_special", "200.00").await;
    let waiting = c.red_confirm_apply(&apply("O-W", &blue.invoice_num, "-100.00", "-13.00")).await.unwrap();
    assert_eq!(waiting.confirm_state, "02");
    let mut r = red("R-W", &blue.invoice_num, "-100.00", "-13.00");
    r.gov_red_confirm_bill_uuid = waiting.bill_uuid.clone();
    assert_eq!(c.red_invoice(&r).await.unwrap_err().api_code(), Some("9409"), "not before confirmation");

    sb.world().counterparty(&waiting.bill_uuid, "confirm").unwrap();
    assert_eq!(c.red_confirm_query(&waiting.bill_uuid).await.unwrap().confirm_state, "04");
    c.red_invoice(&r).await.unwrap();
    assert_eq!(settle(&c, "R-W").await.issue_status, fapiao_channel::codes::IssueStatus::Succeeded);
    assert_eq!(
        c.red_confirm_revoke(&waiting.bill_uuid).await.unwrap_err().api_code(),
        Some("9409"),
        "used forms stay"
    );

    let rejected = c.red_confirm_apply(&apply("O-X", &blue.invoice_num, "-10.00", "-1.30")).await.unwrap();
    sb.world().counterparty(&rejected.bill_uuid, "reject").unwrap();
    assert_eq!(c.red_confirm_query(&rejected.bill_uuid).await.unwrap().confirm_state, "05");

    let revoked = c.red_confirm_apply(&apply("O-V", &blue.invoice_num, "-10.00", "-1.30")).await.unwrap();
    assert_eq!(c.red_confirm_revoke(&revoked.bill_uuid).await.unwrap().confirm_state, "08");

    let listed = c.red_confirm_download(BUYER, 0, 10).await.unwrap();
    assert_eq!(listed.total, 3);
}

#[tokio::test]
async fn a_form_entered_by_the_buyer_is_confirmed_or_rejected_by_us() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let blue = issue_ok(&c, "B-3", "digital_special", "100.00").await;
    let inbound =
        sb.world().inbound_form(&blue.invoice_num, money("-100.00"), money("-13.00"), "01").unwrap();
    assert_eq!(inbound.confirm_state, "03");
    assert_eq!(c.red_confirm_decide(&inbound.bill_uuid, true).await.unwrap().confirm_state, "04");
    assert_eq!(
        c.red_confirm_revoke(&inbound.bill_uuid).await.unwrap().confirm_state,
        "09",
        "withdrawn after confirmation"
    );
    let other = sb.world().inbound_form(&blue.invoice_num, money("-1.00"), money("-0.13"), "04").unwrap();
    assert_eq!(c.red_confirm_decide(&other.bill_uuid, false).await.unwrap().confirm_state, "06");
}

#[tokio::test]
async fn tax_control_special_goes_through_an_approved_red_info_sheet() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let blue = issue_ok(&c, "B-4", "taxctl_special", "100.00").await;
    let info = |order: &str| sheet(order, &blue, "01", "-100.00", "-13.00");
    let sheet = c.red_info_apply(&info("I-1")).await.unwrap();
    assert_eq!(sheet.state, "submitted");
    tokio::time::sleep(Duration::from_millis(80)).await;
    let approved = c.red_info_query(&sheet.sheet_id).await.unwrap();
    assert_eq!(approved.state, "approved");
    assert_eq!(approved.red_info_bill_no.len(), 16);

    let mut r = red("R-4", &blue.invoice_num, "-100.00", "-13.00");
    assert_eq!(c.red_invoice(&r).await.unwrap_err().api_code(), Some("9409"), "no sheet, no red invoice");
    r.red_info_bill_no = approved.red_info_bill_no.clone();
    c.red_invoice(&r).await.unwrap();
    assert_eq!(settle(&c, "R-4").await.issue_status, fapiao_channel::codes::IssueStatus::Succeeded);

    let second = c.red_info_apply(&info("I-2")).await.unwrap_err();
    assert_eq!(second.api_code(), Some("9409"), "nothing left to red-flush");
}

#[tokio::test]
async fn red_info_sheets_can_be_rejected_or_revoked() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let blue = issue_ok(&c, "B-5", "taxctl_special", "100.00").await;
    let info = |order: &str| sheet(order, &blue, "04", "-10.00", "-1.30");
    let a = c.red_info_apply(&info("I-A")).await.unwrap();
    let rejected = sb.world().bureau_decides(&a.sheet_id, false).unwrap();
    assert_eq!(rejected.state, "rejected");
    let b = c.red_info_apply(&info("I-B")).await.unwrap();
    assert_eq!(c.red_info_revoke(&b.sheet_id).await.unwrap().state, "revoked");
}

#[tokio::test]
async fn tax_control_ordinary_quick_red_flush_is_full_only() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let blue = issue_ok(&c, "B-6", "taxctl_e_ordinary", "100.00").await;
    let quick = |serial: &str| QuickRed {
        serial_no: serial.into(),
        seller_taxpayer_id: SELLER.into(),
        invoice_code: blue.invoice_code.clone(),
        invoice_num: blue.invoice_num.clone(),
        red_reason: "01".into(),
    };
    c.quick_red(&quick("Q-1")).await.unwrap();
    let done = settle(&c, "Q-1").await;
    assert_eq!(done.total_amount, money("-113.00"));
    assert_eq!(c.quick_red(&quick("Q-2")).await.unwrap_err().api_code(), Some("9409"));

    let special = issue_ok(&c, "B-7", "digital_special", "1.00").await;
    let mut q = quick("Q-3");
    q.invoice_num = special.invoice_num;
    assert_eq!(c.quick_red(&q).await.unwrap_err().api_code(), Some("9400"));
}
