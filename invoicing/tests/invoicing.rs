//! Invoicing end to end: bills imported from a real file into a fresh database, pushed, split,
//! issued against the sandbox over HTTP, and reported to the sandbox's ERP.

mod common;

use std::time::Duration;

use std::str::FromStr;

use common::{BUYER, HEADER, SELLER, World, line, money, world};
use fapiao_channel::sandbox::FaultPlan;
use fapiao_invoicing::push::{Selection, push};
use fapiao_invoicing::{callbacks, exceptions, issue, reissue};
use fapiao_schemas::{CallbackState, Coded, Money, PendingStatus};
use rust_decimal::Decimal;

#[tokio::test]
async fn imported_bills_are_split_issued_and_each_erp_hears_once_with_invoices_that_sum_to_the_bill() {
    let w = world("", &[]).await;
    let mut lines = vec![
        line("B001", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
        line("B001", "数电普票", BUYER, 2, "100.00", "正常", "ERP1"),
        // 10 × 30,000.00 + 13% = 339,000.00 against a 100,000.00 limit: cut by quantity, 2 a piece.
        line("B002", "数电普票", BUYER, 10, "30000.00", "正常", "ERP1"),
        line("B004", "数电普票", BUYER, 4, "50000.00", "被折扣", "ERP2"),
        line("B004", "数电普票", BUYER, 1, "-20000.00", "折扣", "ERP2"),
    ];
    // Twelve lines of 11,300.00: packed whole, eight to an invoice.
    lines.extend((0..12).map(|_| line("B003", "数电普票", BUYER, 1, "10000.00", "正常", "ERP2")));
    w.import("bills.csv", &lines).await;

    let outcomes = w.push_and_issue().await;
    assert!(outcomes.iter().all(|o| o.status == PendingStatus::Succeeded), "{outcomes:?}");
    let per_bill = |bill: &str| outcomes.iter().filter(|o| o.bills == [bill.to_string()]).count();
    assert_eq!((per_bill("B001"), per_bill("B002"), per_bill("B003"), per_bill("B004")), (1, 5, 2, 4));
    let source: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT data_source FROM pending_invoice ORDER BY 1")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(source, ["单据拆合", "批量导入"]);
    // Every invoice within the limit, issued exactly once by the channel's own ledger.
    assert_eq!(w.scalar::<i64>("SELECT count(*) FROM issued_invoice WHERE total > 100000").await, 0);
    assert!(w.succeeded_at_channel().await.values().all(|n| *n == 1));
    assert_eq!(w.scalar::<i64>("SELECT count(*) FROM application WHERE state = 'issued'").await, 4);

    let delivered = callbacks::deliver(&w.inv).await.unwrap();
    assert_eq!((delivered.attempted, delivered.succeeded), (4, 4));
    let received = w.erp_received().await;
    let mut bills: Vec<&str> =
        received.iter().map(|r| r["body"]["data"]["billNo"].as_str().unwrap()).collect();
    bills.sort();
    assert_eq!(bills, ["B001", "B002", "B003", "B004"], "one callback per bill");
    for r in &received {
        let data = &r["body"]["data"];
        assert_eq!(r["body"]["returnCode"], "0");
        assert_eq!(r["body"]["interfaceCode"], "INVOICE.OPEN");
        let expected_system =
            if ["B001", "B002"].contains(&data["billNo"].as_str().unwrap()) { "ERP1" } else { "ERP2" };
        assert_eq!(r["system"], expected_system);
        let invoices = data["invoices"].as_array().unwrap();
        let total: Decimal = invoices.iter().map(|i| money(&i["totalAmount"])).sum();
        let amount: Decimal = invoices.iter().map(|i| money(&i["invoiceAmount"])).sum();
        assert_eq!(total, money(&data["billTotalAmount"]), "{}", data["billNo"]);
        assert_eq!(amount, money(&data["billAmount"]));
        assert!(invoices.iter().all(|i| i["invoiceStatus"] == "1"
            && i["invoiceNum"].as_str().unwrap().len() == 20
            && i["invoiceFileUrl"].as_str().unwrap().ends_with(".pdf")));
    }
    // B002 in five pieces of 2 × 33,900.00 adds up to 339,000.00 to the cent.
    let b002: Decimal = w.scalar("SELECT sum(i.total) FROM issued_invoice i JOIN pending_bill b ON b.pending_id = i.pending_id WHERE b.bill_no = 'B002'").await;
    assert_eq!(b002.to_string(), "339000.00");

    // Nothing new is final: running again enqueues and sends nothing.
    assert_eq!(w.push_and_issue().await.len(), 0);
    assert_eq!(callbacks::deliver(&w.inv).await.unwrap().attempted, 0);
    assert_eq!(w.erp_received().await.len(), 4);
}

#[tokio::test]
async fn merged_bills_share_invoices_and_each_callback_names_its_own_share() {
    let w = world("", &[("FAPIAO__INVOICING__MERGE", "true")]).await;
    w.import(
        "bills.csv",
        &[
            line("M1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
            line("M2", "数电普票", BUYER, 3, "100.00", "正常", "ERP1"),
            line("M3", "数电普票", BUYER, 1, "100.00", "正常", "ERP2"),
        ],
    )
    .await;
    let outcomes = w.push_and_issue().await;
    assert_eq!(outcomes.len(), 2, "M1+M2 merged (same system), M3 alone");
    assert_eq!(outcomes[0].bills, ["M1", "M2"]);
    callbacks::deliver(&w.inv).await.unwrap();
    for r in w.erp_received().await {
        let data = &r["body"]["data"];
        let share: Decimal =
            data["invoices"].as_array().unwrap().iter().map(|i| money(&i["billAmount"])).sum();
        assert_eq!(share, money(&data["billAmount"]), "{}", data["billNo"]);
    }
}

#[tokio::test]
async fn dropped_answers_and_repair_failures_end_with_every_invoice_issued_exactly_once() {
    let w = world("drop@ALLE.INVOICE.OPEN=0.2,repairing@ALLE.INVOICE.OPEN=0.2", &[]).await;
    w.sandbox.world().config.repair_after = Duration::from_secs(120);
    let lines: Vec<String> =
        (0..40).map(|n| line(&format!("R{n:03}"), "数电普票", BUYER, 1, "100.00", "正常", "ERP1")).collect();
    w.import("bills.csv", &lines).await;
    fapiao_store::params::set(
        &w.db.pool,
        "sim_auto_issue_config",
        "repairing",
        "局端内部错误，该开票请求修复中",
    )
    .await
    .unwrap();

    let first = w.push_and_issue().await;
    let failed: Vec<&issue::IssueOutcome> =
        first.iter().filter(|o| o.status == PendingStatus::Failed).collect();
    assert!(
        first.iter().all(|o| o.status == PendingStatus::Succeeded || o.status == PendingStatus::Failed),
        "every dropped answer settled by query"
    );
    let repairing =
        failed.iter().filter(|o| o.message.as_deref().unwrap_or("").starts_with("局端内部错误")).count();
    assert!(repairing >= 2, "the dice should strike some of 40: {repairing}");
    assert!(w.sandbox.world().calls.get("ALLE.INVOICE.QUERY").copied().unwrap_or(0) > 0);
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    // Special invoices without a buyer tax number, issued once the dice are still (a pass drives
    // its invoices in no fixed order, so the dice would strike them at random): the bureau
    // refuses them, and no fragment of sim_auto_issue_config matches its words.
    w.import(
        "special.csv",
        &[
            line("S001", "数电专票", "", 1, "100.00", "正常", "ERP1"),
            line("S002", "数电专票", "", 1, "100.00", "正常", "ERP1"),
        ],
    )
    .await;
    let special = w.push_and_issue().await;
    assert_eq!(special.iter().filter(|o| o.status == PendingStatus::Failed).count(), 2);

    // Now: every repair time is still ahead — nothing is reissued, nothing sent.
    let opens = |w: &World| w.sandbox.world().calls.get("ALLE.INVOICE.OPEN").copied().unwrap_or(0);
    let before = opens(&w);
    let dry = reissue::reissue(&w.inv, chrono::Utc::now() + chrono::Duration::minutes(5), true, &|_| {})
        .await
        .unwrap();
    assert_eq!(dry.reissued.len(), repairing);
    let now = reissue::reissue(&w.inv, chrono::Utc::now(), false, &|_| {}).await.unwrap();
    assert_eq!((now.reissued.len(), now.skipped.len(), now.left_alone.len()), (0, repairing, 2));
    assert!(now.skipped.iter().all(|s| s.reason.starts_with("未到可重开时间：请")), "{:?}", now.skipped);
    assert!(
        now.left_alone.iter().all(|s| s.message.as_deref().unwrap().contains("购买方纳税人识别号不能为空"))
    );
    assert_eq!(opens(&w), before, "nothing sent before its time");

    // After the repair time: all of them go again, each with a new serial, and succeed.
    let later = reissue::reissue(&w.inv, chrono::Utc::now() + chrono::Duration::minutes(3), false, &|_| {})
        .await
        .unwrap();
    assert_eq!((later.reissued.len(), later.still_failing.len(), later.left_alone.len()), (repairing, 0, 2));
    assert!(later.reissued.iter().all(|r| r.outcome.as_ref().unwrap().status == PendingStatus::Succeeded
        && r.outcome.as_ref().unwrap().serial_no != r.serial_no));
    let per = w.succeeded_at_channel().await;
    let special: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM pending_invoice WHERE invoice_kind = 'digital_special'")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    for (id, n) in &per {
        assert_eq!(
            *n,
            usize::from(!special.contains(id)),
            "pending {id}: issued {n} times by the channel's ledger"
        );
    }
    assert_eq!(per.len(), 42);
    assert_eq!(w.scalar::<i64>("SELECT count(*) FROM issued_invoice").await, 40);
    // The reissue count is kept per invoice.
    assert_eq!(
        w.scalar::<i64>("SELECT coalesce(sum(reissue_count), 0)::bigint FROM pending_invoice").await,
        repairing as i64
    );
}

#[tokio::test]
async fn a_crash_between_storing_the_serial_and_recording_the_answer_never_issues_twice() {
    let w = world("", &[]).await;
    w.import(
        "bills.csv",
        &[
            line("K1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
            line("K2", "数电普票", BUYER, 1, "200.00", "正常", "ERP1"),
        ],
    )
    .await;
    let pushed = push(&w.inv, &Selection::All).await.unwrap();
    let [sent, unsent] = pushed.pending_ids[..] else { panic!() };
    // Both were claimed (serial stored, 已提交) by a run that died; it had sent the first one.
    for id in [sent, unsent] {
        sqlx::query(
            "INSERT INTO issue_attempt (serial_no, pending_id, attempt) VALUES ('FPX-' || $1, $1, 1)",
        )
        .bind(id)
        .execute(&w.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE pending_invoice SET status = 'submitted', serial_no = 'FPX-' || id WHERE id = $1",
        )
        .bind(id)
        .execute(&w.db.pool)
        .await
        .unwrap();
    }
    let mut body = fapiao_channel::sandbox::sample_invoice(
        &format!("FPX-{sent}"),
        "digital_ordinary",
        ("企业", SELLER),
        ("买方", BUYER),
        Money::from_cents(10_000),
    );
    body.seller_taxpayer_id = SELLER.into();
    w.inv.channel.issue(&body).await.unwrap();

    let ids = issue::candidates(&w.inv, false).await.unwrap();
    assert_eq!(ids, [sent, unsent]);
    let outcomes = issue::issue(&w.inv, &ids, &|_| {}).await.unwrap();
    assert!(outcomes.iter().all(|o| o.status == PendingStatus::Succeeded));
    assert_eq!(
        outcomes[0].serial_no.as_deref(),
        Some(format!("FPX-{sent}").as_str()),
        "settled by query, not resent"
    );
    assert_eq!(
        outcomes[1].serial_no.as_deref(),
        Some(format!("FPX-{unsent}").as_str()),
        "never accepted: the same serial sent"
    );
    assert_eq!(w.sandbox.world().issued_count(), 2);
    assert_eq!(w.sandbox.world().calls.get("ALLE.INVOICE.OPEN").copied(), Some(2));
}

#[tokio::test]
async fn returning_a_failed_invoice_asks_the_channel_first() {
    let w = world("", &[]).await;
    w.import(
        "bills.csv",
        &[
            line("T1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
            line("T2", "数电专票", "", 1, "100.00", "正常", "ERP1"),
            line("T3", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
        ],
    )
    .await;
    let outcomes = w.push_and_issue().await;
    let (t1, t2, t3) = (outcomes[0].pending_id, outcomes[1].pending_id, outcomes[2].pending_id);
    assert_eq!(outcomes[1].status, PendingStatus::Failed);

    // Our books say T1 failed, but the channel issued it (a stale record): refused, and corrected.
    sqlx::query("DELETE FROM issued_invoice WHERE pending_id = $1")
        .bind(t1)
        .execute(&w.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE pending_invoice SET status = 'failed', error_message = 'x' WHERE id = $1")
        .bind(t1)
        .execute(&w.db.pool)
        .await
        .unwrap();
    let r = exceptions::return_to_application(&w.inv, &[t1, t2, t3], "金额有误，请修改后重推").await.unwrap();
    assert_eq!((r[0].ok, r[0].code.as_deref()), (false, Some("PENDING_ACTUALLY_ISSUED")));
    assert!(r[0].message.contains("已开票成功"), "{}", r[0].message);
    assert!(r[1].ok, "a confirmed failure goes back: {:?}", r[1]);
    assert_eq!(
        (r[2].ok, r[2].code.as_deref()),
        (false, Some("PENDING_STATE")),
        "a succeeded invoice cannot go back"
    );
    let (st1, state2): (String, String) = sqlx::query_as(
        "SELECT (SELECT status FROM pending_invoice WHERE id = $1), (SELECT state FROM application WHERE bill_no = 'T2')",
    )
    .bind(t1)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!((st1.as_str(), state2.as_str()), ("succeeded", "returned"));
    // 退回 tells the bill's ERP, with the reason.
    callbacks::deliver(&w.inv).await.unwrap();
    let told: Vec<serde_json::Value> = w
        .erp_received()
        .await
        .into_iter()
        .map(|r| r["body"].clone())
        .filter(|b| b["data"]["billNo"] == "T2" && b["data"]["billState"] == "returned")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["returnCode"], "9999");
    assert_eq!(told[0]["data"]["returnReason"], "金额有误，请修改后重推");
    // The returned lines are open again: listed and pushed anew.
    let apps = fapiao_invoicing::applications::list(&w.inv, Some("returned")).await.unwrap();
    assert_eq!((apps.len(), apps[0].open_lines), (1, 1));
    let again = push(&w.inv, &Selection::Bills(vec!["T2".into(), "T3".into()])).await.unwrap();
    assert_eq!(again.pending_ids.len(), 1);
    assert_eq!(again.refused.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["BILL_NOTHING_OPEN"]);

    // Delete only failed ones.
    let d = exceptions::delete(&w.inv, &[again.pending_ids[0]]).await.unwrap();
    assert_eq!(d[0].code.as_deref(), Some("PENDING_STATE"));
    // T2 is pushed again (held by a live pending invoice): not withdrawn.
    let e = fapiao_invoicing::applications::withdraw(&w.inv, "T2").await.unwrap_err();
    assert_eq!(e.code(), "BILL_ALREADY_PUSHED", "{e}");
    let d = exceptions::delete(&w.inv, &[again.pending_ids[0]]).await.unwrap();
    assert_eq!(d[0].code.as_deref(), Some("PENDING_STATE"));
    // Edit seller contacts while 无需审批 and not with the channel.
    exceptions::edit(&w.inv, again.pending_ids[0], Some("上海市 021-1234"), None).await.unwrap();
    assert!(exceptions::edit(&w.inv, t3, Some("x"), None).await.is_err());
}

#[tokio::test]
async fn a_returned_bill_is_withdrawn_corrected_and_pushed_again_under_its_number() {
    let w = world("", &[]).await;
    w.import("bills.csv", &[line("R1", "数电专票", "", 1, "100.00", "正常", "ERP1")]).await;
    let first = w.push_and_issue().await;
    assert_eq!(first[0].status, PendingStatus::Failed, "no buyer tax number on a 专票");
    let r = exceptions::return_to_application(&w.inv, &[first[0].pending_id], "购方税号缺失").await.unwrap();
    assert!(r[0].ok, "{r:?}");
    // Withdrawn at once, before the 退回 callback went out: the bill is gone, the callback is not.
    fapiao_invoicing::applications::withdraw(&w.inv, "R1").await.unwrap();
    let (apps, released): (i64, serde_json::Value) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM application WHERE bill_no = 'R1'),
                (SELECT released FROM application_withdrawal WHERE bill_no = 'R1')",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(apps, 0);
    assert_eq!(released.as_array().unwrap()[0]["pending_id"], first[0].pending_id, "{released}");
    callbacks::deliver(&w.inv).await.unwrap();
    let told = w
        .erp_received()
        .await
        .into_iter()
        .filter(|r| r["body"]["data"]["billNo"] == "R1" && r["body"]["data"]["billState"] == "returned")
        .count();
    assert_eq!(told, 1, "the ERP heard of the return");
    // Corrected in the ERP (a buyer tax number) and sent again under the same number: issued.
    w.import("corrected.csv", &[line("R1", "数电专票", BUYER, 1, "100.00", "正常", "ERP1")]).await;
    let again = w.push_and_issue().await;
    assert_eq!((again.len(), again[0].status), (1, PendingStatus::Succeeded), "{again:?}");
    let state: String = sqlx::query_scalar("SELECT state FROM application WHERE bill_no = 'R1'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(state, "issued");
}

#[tokio::test]
async fn failed_callbacks_are_retried_with_backoff_and_every_attempt_is_logged() {
    let w = world("", &[("FAPIAO__CALLBACKS__MAX_ATTEMPTS", "3")]).await;
    w.import("bills.csv", &[line("C1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1")]).await;
    w.push_and_issue().await;
    w.sandbox.world().erp.fail_next = 2;
    let first = callbacks::deliver(&w.inv).await.unwrap();
    assert_eq!((first.attempted, first.succeeded, first.retrying), (1, 0, 1));
    // Not due again until its backoff has passed.
    assert_eq!(callbacks::deliver(&w.inv).await.unwrap().attempted, 0);
    let mut rounds = 0;
    while callbacks::list(&w.inv, false).await.unwrap()[0].state == CallbackState::Pending && rounds < 50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        callbacks::deliver(&w.inv).await.unwrap();
        rounds += 1;
    }
    let row = &callbacks::list(&w.inv, false).await.unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("succeeded", 3));
    let log: Vec<(i32, bool)> = sqlx::query_as("SELECT attempt, ok FROM callback_log ORDER BY attempt")
        .fetch_all(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(log, [(1, false), (2, false), (3, true)]);

    // A callback that keeps failing gives up at the limit, is listed as failed, and can be retried.
    w.import("more.csv", &[line("C2", "数电普票", BUYER, 1, "100.00", "正常", "ERP1")]).await;
    w.push_and_issue().await;
    w.sandbox.world().erp.fail_next = 100;
    for _ in 0..3 {
        sqlx::query("UPDATE callback SET next_attempt_at = now() WHERE state = 'pending'")
            .execute(&w.db.pool)
            .await
            .unwrap();
        callbacks::deliver(&w.inv).await.unwrap();
    }
    let failed = callbacks::list(&w.inv, true).await.unwrap();
    assert_eq!((failed.len(), failed[0].bill_no.as_str(), failed[0].attempts), (1, "C2", 3));
    w.sandbox.world().erp.fail_next = 0;
    // Ids that are not failed callbacks are refused, naming them, and nothing starts over.
    let ids: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, state FROM callback ORDER BY id").fetch_all(&w.db.pool).await.unwrap();
    let (succeeded, failed_id) = (ids[0].0, ids[1].0);
    assert_eq!((ids[0].1.as_str(), ids[1].1.as_str()), ("succeeded", "failed"));
    let err = callbacks::retry(&w.inv, &[failed_id, succeeded]).await.unwrap_err();
    assert_eq!((err.code(), err.kind()), ("CALLBACK_NOT_FAILED", fapiao_schemas::ErrorKind::BadInput));
    assert!(err.to_string().contains(&format!("{succeeded} (succeeded)")), "{err}");
    let err = callbacks::retry(&w.inv, &[failed_id, 999_999]).await.unwrap_err();
    assert_eq!((err.code(), err.kind().exit_code()), ("CALLBACK_NOT_FOUND", 2));
    assert!(err.to_string().contains("999999"), "{err}");
    assert_eq!(callbacks::list(&w.inv, true).await.unwrap().len(), 1, "still failed");
    assert_eq!(callbacks::retry(&w.inv, &[]).await.unwrap(), 1);
    assert_eq!(callbacks::deliver(&w.inv).await.unwrap().succeeded, 1);
    assert!(callbacks::list(&w.inv, true).await.unwrap().is_empty());
}

#[tokio::test]
async fn only_an_application_not_yet_pushed_can_be_withdrawn() {
    let w = world("", &[]).await;
    w.import(
        "bills.csv",
        &[
            line("W1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
            line("W2", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
        ],
    )
    .await;
    fapiao_invoicing::applications::withdraw(&w.inv, "W1").await.unwrap();
    push(&w.inv, &Selection::Bills(vec!["W2".into()])).await.unwrap();
    let e = fapiao_invoicing::applications::withdraw(&w.inv, "W2").await.unwrap_err();
    assert!(e.to_string().contains("已推送"), "{e}");
    // A withdrawn bill is gone (kept in application_withdrawal) …
    let r = push(&w.inv, &Selection::Bills(vec!["W1".into(), "NOPE".into()])).await.unwrap();
    let codes: Vec<&str> = r.refused.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["BILL_NOT_FOUND", "BILL_NOT_FOUND"]);
    let kept: serde_json::Value =
        sqlx::query_scalar("SELECT lines FROM application_withdrawal WHERE bill_no = 'W1'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(kept.as_array().unwrap().len(), 1);
    // … so the ERP may send it again under its number, corrected.
    w.import("corrected.csv", &[line("W1", "数电普票", BUYER, 3, "100.00", "正常", "ERP1")]).await;
    let r = push(&w.inv, &Selection::Bills(vec!["W1".into()])).await.unwrap();
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    let total: Decimal = sqlx::query_scalar("SELECT total FROM pending_invoice p JOIN pending_bill b ON b.pending_id = p.id WHERE b.bill_no = 'W1'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(total, Decimal::new(33900, 2));
}

#[tokio::test]
async fn an_invoice_that_succeeds_after_failing_shows_no_error_and_its_events_keep_the_failure() {
    let w = world("repairing@ALLE.INVOICE.OPEN=1.0", &[]).await;
    w.sandbox.world().config.repair_after = Duration::from_secs(120);
    w.import("bills.csv", &[line("E1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1")]).await;
    fapiao_store::params::set(&w.db.pool, "sim_auto_issue_config", "repairing", "局端内部错误")
        .await
        .unwrap();
    let first = w.push_and_issue().await;
    assert_eq!(first[0].status, PendingStatus::Failed);
    let id = first[0].pending_id;
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    let later = reissue::reissue(&w.inv, chrono::Utc::now() + chrono::Duration::minutes(3), false, &|_| {})
        .await
        .unwrap();
    assert_eq!(later.reissued[0].outcome.as_ref().unwrap().status, PendingStatus::Succeeded);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error_message FROM pending_invoice WHERE id = $1")
            .bind(id)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), error), ("succeeded", None), "a succeeded invoice shows no error");
    let listed = exceptions::list(&w.inv, &exceptions::PendingFilter::default()).await.unwrap();
    assert_eq!(listed.iter().find(|p| p.id == id).unwrap().error_message, None);
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pending_event WHERE pending_id = $1 AND event = 'failed' AND detail LIKE '局端内部错误%'",
    )
    .bind(id)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(failures, 1, "the failure stays in the invoice's history");
}

#[tokio::test]
async fn the_exception_loop_filters_looks_up_edits_and_issues_chosen_invoices_with_the_edit() {
    let w = world("repairing@ALLE.INVOICE.OPEN=1.0", &[]).await;
    w.sandbox.world().config.repair_after = Duration::from_secs(600);
    w.import(
        "bills.csv",
        &[
            line("X1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1"),
            line("X2", "数电普票", BUYER, 2, "100.00", "正常", "ERP1"),
            line("X3", "数电普票", BUYER, 3, "100.00", "正常", "ERP1"),
        ],
    )
    .await;
    fapiao_store::params::set(&w.db.pool, "sim_auto_issue_config", "repairing", "局端内部错误")
        .await
        .unwrap();
    let first = w.push_and_issue().await;
    assert!(first.iter().all(|o| o.status == PendingStatus::Failed), "{first:?}");
    let id_of = |bill: &str| first.iter().find(|o| o.bills == [bill]).unwrap().pending_id;
    let (x1, x2, x3) = (id_of("X1"), id_of("X2"), id_of("X3"));
    w.sandbox.world().dice.set_plan(FaultPlan::none());

    // Filters: by error text, seller, source, dates.
    let filter = |f: exceptions::PendingFilter| {
        let inv = &w.inv;
        async move { exceptions::list(inv, &f).await.unwrap().into_iter().map(|p| p.id).collect::<Vec<_>>() }
    };
    let by_error = exceptions::PendingFilter { error: Some("修复中".into()), ..Default::default() };
    assert_eq!(filter(by_error).await, [x1, x2, x3]);
    let no_match =
        exceptions::PendingFilter { error: Some("购买方纳税人识别号".into()), ..Default::default() };
    assert!(filter(no_match).await.is_empty());
    let other_seller = exceptions::PendingFilter { seller_tax_no: Some(BUYER.into()), ..Default::default() };
    assert!(filter(other_seller).await.is_empty());
    let today = chrono::Utc::now().with_timezone(&w.inv.settings.time_zone()).date_naive();
    let dated = exceptions::PendingFilter {
        from: Some(today),
        to: Some(today),
        source: Some(fapiao_schemas::DataSource::BatchImport),
        ..Default::default()
    };
    assert_eq!(filter(dated).await, [x1, x2, x3]);
    let yesterday = exceptions::PendingFilter { to: Some(today.pred_opt().unwrap()), ..Default::default() };
    assert!(filter(yesterday).await.is_empty());

    // 上查: from the pending invoice to its application line.
    let d = exceptions::show(&w.inv, x2).await.unwrap();
    assert_eq!(d.lines[0].bill_no.as_deref(), Some("X2"));
    assert_eq!(d.lines[0].bill_line_total, Some(Decimal::new(22600, 2)));
    assert!(d.events.iter().any(|e| e.event == "failed"), "{:?}", d.events);

    // The seller's fields edited on X1 go out in the issuing body when a person issues it now
    // (before its repair time: a person decides, not the fragment rule).
    exceptions::edit(
        &w.inv,
        x1,
        Some("上海市浦东新区示例路1号 021-12345678"),
        Some("招商银行上海分行 6225880000000001"),
    )
    .await
    .unwrap();
    let chosen = reissue::issue_chosen(&w.inv, &[x1, x3], &|_| {}).await.unwrap();
    assert!(chosen.refused.is_empty(), "{chosen:?}");
    assert!(chosen.issued.iter().all(|o| o.status == PendingStatus::Succeeded), "{chosen:?}");
    let serial = chosen.issued.iter().find(|o| o.pending_id == x1).unwrap().serial_no.clone().unwrap();
    {
        let world = w.sandbox.world();
        let body = world.opened(&serial).expect("the channel received the new serial");
        assert_eq!(body.seller_address_and_tel, "上海市浦东新区示例路1号 021-12345678");
        assert_eq!(body.seller_bank_and_account, "招商银行上海分行 6225880000000001");
    }
    // Chosen again: a succeeded invoice is refused with the reason; an unknown id refuses all.
    let again = reissue::issue_chosen(&w.inv, &[x1], &|_| {}).await.unwrap();
    assert!(again.refused[0].reason.contains("开票成功"), "{again:?}");
    let e = reissue::issue_chosen(&w.inv, &[999_999], &|_| {}).await.unwrap_err();
    assert_eq!(fapiao_schemas::Coded::code(&e), "PENDING_NOT_FOUND");

    // reissue --id: the same rules as auto-reissue, aimed at X2 only (X3 is done: skipped).
    let later = chrono::Utc::now() + chrono::Duration::minutes(15);
    let r = reissue::reissue_some(&w.inv, later, false, Some(&[x2, x3]), &|_| {}).await.unwrap();
    assert_eq!(r.reissued.iter().map(|i| i.pending_id).collect::<Vec<_>>(), [x2]);
    assert_eq!(r.skipped.iter().map(|i| i.pending_id).collect::<Vec<_>>(), [x3]);
    assert_eq!(w.succeeded_at_channel().await.values().sum::<usize>(), 3, "each issued once");
}

#[tokio::test]
async fn where_approval_is_required_an_invoice_is_issued_only_once_approved_and_each_step_is_kept() {
    let w = world("", &[]).await;
    fapiao_store::params::set(&w.db.pool, "sim_issue_approval", SELLER, "1").await.unwrap();
    w.import("bills.csv", &[line("AP1", "数电普票", BUYER, 1, "100.00", "正常", "ERP1")]).await;
    assert!(w.push_and_issue().await.is_empty(), "暂存 invoices are not issued");
    let all = exceptions::list(&w.inv, &exceptions::PendingFilter::default()).await.unwrap();
    let id = all[0].id;
    assert_eq!(all[0].approval_state, fapiao_schemas::ApprovalState::Draft);
    let chosen = reissue::issue_chosen(&w.inv, &[id], &|_| {}).await.unwrap();
    assert!(chosen.refused[0].reason.contains("暂存"), "{chosen:?}");
    assert_eq!(w.sandbox.world().issued_count(), 0);

    use exceptions::ApprovalStep::*;
    let step = |s: exceptions::ApprovalStep| {
        let inv = &w.inv;
        async move { exceptions::approval(inv, &[id], &s, "cli:finance").await.unwrap().remove(0) }
    };
    assert!(!step(Approve).await.ok, "暂存 cannot be approved before it is submitted");
    assert!(step(Submit).await.ok);
    assert!(step(Reject { reason: "金额有误".into() }).await.ok);
    assert!(step(Submit).await.ok);
    assert!(step(Approve).await.ok);
    let issued = w.push_and_issue().await;
    assert_eq!(issued[0].status, PendingStatus::Succeeded, "{issued:?}");

    let history: Vec<String> = exceptions::show(&w.inv, id)
        .await
        .unwrap()
        .events
        .into_iter()
        .filter_map(|e| e.detail.filter(|_| e.event == "approval"))
        .collect();
    assert_eq!(
        history,
        [
            "cli:finance：暂存→已提交",
            "cli:finance：已提交→暂存，驳回原因：金额有误",
            "cli:finance：暂存→已提交",
            "cli:finance：已提交→已审核"
        ]
    );
    // Another seller without the setting: 无需审批, issued at once.
    fapiao_store::params::set(&w.db.pool, "sim_issue_approval", SELLER, "0").await.unwrap();
    w.import("more.csv", &[line("AP2", "数电普票", BUYER, 1, "100.00", "正常", "ERP1")]).await;
    assert_eq!(w.push_and_issue().await[0].status, PendingStatus::Succeeded);
}

#[tokio::test]
async fn an_invoice_whose_summed_tax_differences_exceed_the_tolerance_is_refused_at_push() {
    let w = world("", &[]).await;
    // Each line's tax 5 cents over amount × rate: within the per-line 0.06, but 30 of them on one
    // invoice are 1.50 over, beyond the invoice-level 1.27; 20 of them (1.00) are not.
    let bill = |no: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| format!("{no},2026-11-01,{SELLER},深圳示例便利店,{BUYER},数电普票,*计算机配套产品*键盘,1090511030000000000,1,100,100.00,13%,13.05,113.05,正常,否,ERP1"))
            .collect()
    };
    let mut lines = bill("T30", 30);
    lines.extend(bill("T20", 20));
    w.import("bills.csv", &lines).await;
    let r = push(&w.inv, &Selection::All).await.unwrap();
    assert_eq!(r.bills, ["T20"]);
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    assert_eq!((r.refused[0].bill_no.as_str(), r.refused[0].code.as_str()), ("T30", "TAX_INVOICE_MISMATCH"));
    assert!(
        r.refused[0].message.contains("1.50") && r.refused[0].message.contains("1.27"),
        "{:?}",
        r.refused
    );
}

#[tokio::test]
async fn a_zero_rate_line_needs_its_mark_and_the_mark_reaches_the_invoice() {
    let w = world("", &[]).await;
    let header = format!("{HEADER},零税率标识,税收优惠政策标识,优惠政策内容");
    let row = |bill: &str, rate: &str, tax: &str, marks: &str| {
        format!(
            "{bill},2026-11-01,{SELLER},深圳示例便利店,{BUYER},数电普票,*图书*教材,1010101000000000000,1,100,100.00,{rate},{tax},{},正常,否,ERP1,{marks}",
            Decimal::new(10000, 2) + Decimal::from_str(tax).unwrap()
        )
    };
    let bad = w
        .import_with(
            "marks.csv",
            &header,
            &[
                row("Z1", "0%", "0.00", ",,"),
                row("Z2", "0%", "0.00", "免税,,"),
                row("Z3", "6%", "6.00", "免税,,"),
                row("Z4", "3%", "3.00", ",是,简易征收"),
                row("Z5", "0%", "0.00", ",是,"),
                row("Z6", "0%", "0.00", "零税,,"),
            ],
        )
        .await;
    let found: Vec<(u32, &str, &str)> =
        bad.problems.iter().map(|p| (p.row, p.column.as_str(), p.code.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "税率", "ZERO_RATE_UNMARKED"),
            (4, "零税率标识", "ZERO_RATE_MARK_ON_TAXED_LINE"),
            (6, "优惠政策内容", "PRIVILEGE_CONTENT_MISSING"),
            // An unreadable mark is no mark: both are said.
            (7, "税率", "ZERO_RATE_UNMARKED"),
            (7, "零税率标识", "ZERO_RATE_MARK_INVALID"),
        ],
        "{:?}",
        bad.problems
    );
    assert!(bad.problems[0].message.contains("零税率标识或税收优惠政策标识"), "{}", bad.problems[0].message);
    assert_eq!(bad.batch_id, None, "all or nothing");
    // Marked lines land, and the marks go out in the issuing body.
    let good = w
        .import_with(
            "good.csv",
            &header,
            &[row("Z2", "0%", "0.00", "免税,,"), row("Z4", "3%", "3.00", ",是,简易征收")],
        )
        .await;
    assert!(good.problems.is_empty(), "{:?}", good.problems);
    let issued = w.push_and_issue().await;
    assert!(issued.iter().all(|o| o.status == PendingStatus::Succeeded), "{issued:?}");
    let serials: Vec<String> = sqlx::query_scalar("SELECT serial_no FROM issue_attempt ORDER BY pending_id")
        .fetch_all(&w.db.pool)
        .await
        .unwrap();
    let policies: Vec<_> = {
        let world = w.sandbox.world();
        serials.iter().map(|s| world.opened(s).unwrap().invoice_detail[0].policy.clone()).collect()
    };
    let zero = policies.iter().find(|p| p.zero_rate_flag.is_some()).expect("the 0% line");
    assert_eq!((zero.zero_rate_flag.as_deref(), zero.privilege_flag), (Some("1"), 0));
    let simple = policies.iter().find(|p| p.privilege_flag == 1).expect("the policy line");
    assert_eq!(simple.privilege_content, "简易征收");
    // The channel refuses a 0% line that reaches it without a mark (here: taken off after push).
    w.import_with("z7.csv", &header, &[row("Z7", "0%", "0.00", "免税,,")]).await;
    push(&w.inv, &Selection::All).await.unwrap();
    sqlx::query("UPDATE pending_line SET zero_rate_mark = NULL WHERE bill_no = 'Z7'")
        .execute(&w.db.pool)
        .await
        .unwrap();
    let ids = issue::candidates(&w.inv, false).await.unwrap();
    let out = issue::issue(&w.inv, &ids, &|_| {}).await.unwrap();
    assert_eq!(out[0].status, PendingStatus::Failed);
    let error: String = w.scalar("SELECT error_message FROM pending_invoice p JOIN pending_bill b ON b.pending_id = p.id WHERE b.bill_no = 'Z7'").await;
    assert!(error.contains("零税率标识或税收优惠政策标识"), "{error}");
}

#[tokio::test]
async fn two_issuing_passes_at_once_never_fail_and_issue_each_invoice_exactly_once() {
    // Two workers (two Invoicing values hold their invoices apart, as two processes do) driving
    // the same candidates, as `fapiao issue --all` beside the auto-issue job would.
    let w = world("latency=5ms", &[]).await;
    let lines: Vec<String> =
        (0..30).map(|n| line(&format!("P{n:03}"), "数电普票", BUYER, 1, "100.00", "正常", "ERP1")).collect();
    w.import("bills.csv", &lines).await;
    let pushed = push(&w.inv, &Selection::All).await.unwrap();
    assert!(pushed.refused.is_empty());
    let ids = issue::candidates(&w.inv, false).await.unwrap();
    assert_eq!(ids.len(), 30);
    let other =
        fapiao_invoicing::Invoicing::new(w.inv.pool.clone(), w.inv.channel.clone(), w.inv.settings.clone());
    let (a, b) = tokio::join!(issue::issue(&w.inv, &ids, &|_| {}), issue::issue(&other, &ids, &|_| {}));
    let (a, b) = (a.expect("the first pass"), b.expect("the second pass"));
    assert_eq!((a.len(), b.len()), (30, 30));
    // Whatever each pass saw, every invoice ends issued, once by the channel's own ledger.
    assert_eq!(w.scalar::<i64>("SELECT count(*) FROM pending_invoice WHERE status = 'succeeded'").await, 30);
    let per = w.succeeded_at_channel().await;
    assert!(per.len() == 30 && per.values().all(|n| *n == 1), "{per:?}");
    assert_eq!(w.scalar::<i64>("SELECT count(*) FROM issued_invoice").await, 30);
    // No pass settled the other's call in flight: every attempt was accepted by the channel.
    assert_eq!(w.scalar::<i64>("SELECT count(*) FROM issue_attempt").await, 30);
}
