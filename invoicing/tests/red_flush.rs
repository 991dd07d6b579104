//! Red-flush against the sandbox: the amount rule at its edges, each track's state path, batches
//! where some fail, the write-back that lets a bill be invoiced again, and dropped answers.

mod common;

use std::collections::BTreeMap;

use common::{BUYER, World, line, world};
use fapiao_channel::codes::IssueStatus;
use fapiao_channel::sandbox::FaultPlan;
use fapiao_invoicing::push::{Selection, push};
use fapiao_invoicing::redflush::{self, Outcome, Request, documents};
use fapiao_invoicing::{issue, reissue};
use fapiao_schemas::{Money, PendingStatus, RedFlushRequestState};
use rust_decimal::Decimal;

/// Import and issue one-line bills `(bill, kind, buyer tax number, price)`; bill → invoice number.
async fn blue(w: &World, bills: &[(&str, &str, &str, &str)]) -> BTreeMap<String, String> {
    let lines: Vec<String> = bills.iter().map(|(b, k, t, p)| line(b, k, t, 1, p, "正常", "ERP1")).collect();
    w.import(&format!("blue-{}.csv", bills[0].0), &lines).await;
    let outcomes = w.push_and_issue().await;
    assert!(outcomes.iter().all(|o| o.status == PendingStatus::Succeeded), "{outcomes:?}");
    outcomes.iter().map(|o| (o.bills[0].clone(), o.invoice_num.clone().unwrap())).collect()
}

fn req(num: &str, amount: Option<&str>, reason: Option<&str>) -> Request {
    Request {
        invoice_num: num.into(),
        amount: amount.map(|a| Money::parse(a).unwrap()),
        reason: reason.map(str::to_string),
        ..Request::default()
    }
}

/// A red-flush list (发票代码,发票号码,红冲金额,红冲原因 rows) imported as a file.
async fn import_list(w: &World, rows: &[String]) -> fapiao_pipelines::import::Summary {
    let file = w.dir.path().join("list.csv");
    std::fs::write(&file, format!("发票代码,发票号码,红冲金额,红冲原因\n{}\n", rows.join("\n"))).unwrap();
    fapiao_pipelines::import::import(
        &w.db.pool,
        &file,
        &fapiao_pipelines::import::ImportOptions {
            kind: fapiao_pipelines::import::ImportKind::RedFlush,
            ..Default::default()
        },
        &|_| {},
    )
    .await
    .unwrap()
}

async fn flush(w: &World, requests: &[Request]) -> Vec<Outcome> {
    redflush::red_flush(&w.inv, None, requests, &|_| {}).await.unwrap()
}

async fn blue_state(w: &World, num: &str) -> (String, Decimal) {
    sqlx::query_as("SELECT red_flush_state, remaining FROM issued_invoice WHERE invoice_num = $1")
        .bind(num)
        .fetch_one(&w.db.pool)
        .await
        .unwrap()
}

const INSUFFICIENT: &str =
    "剩余可红冲金额不足。开票管理→待开发票页面中可能存在本发票的未开票的数据，请先处理。";

#[tokio::test]
async fn the_amount_rule_at_its_edges() {
    let w = world("", &[("FAPIAO__INVOICING__SETTLE_WITHIN_SECS", "1")]).await;
    let nums = blue(&w, &[("A1", "数电普票", BUYER, "1000.00")]).await;
    let a = &nums["A1"]; // 1,130.00

    let o = flush(&w, &[req(a, Some("1130.01"), Some("04"))]).await;
    assert_eq!(
        (o[0].state.as_str(), o[0].code.as_deref(), o[0].message.as_deref()),
        ("refused", Some("RED_FLUSH_REMAINING_INSUFFICIENT"), Some(INSUFFICIENT))
    );
    let o = flush(&w, &[req(a, Some("500.00"), Some("01"))]).await;
    assert_eq!(o[0].code.as_deref(), Some("RED_FLUSH_REASON_FULL_ONLY"), "01 is full only");
    let o = flush(&w, &[req(a, Some("500.00"), Some("04"))]).await;
    assert_eq!(o[0].state, RedFlushRequestState::Succeeded, "{o:?}");
    assert_eq!(blue_state(&w, a).await, ("partial".to_string(), Decimal::new(63000, 2)));
    // After a partial red-flush: one cent over what is left is refused.
    assert_eq!(flush(&w, &[req(a, Some("630.01"), None)]).await[0].message.as_deref(), Some(INSUFFICIENT));

    // A red invoice still with the channel (answer lost, the query unavailable) holds its amount;
    // one that failed holds nothing (reissuing it asks the rule again: a_failed_red_invoice_…).
    w.sandbox
        .world()
        .dice
        .set_plan(FaultPlan::parse("drop@ALLE.INVOICE.RED=1,http5xx@ALLE.INVOICE.QUERY=1").unwrap());
    let unsettled = flush(&w, &[req(a, Some("300.00"), None)]).await;
    assert_eq!(unsettled[0].state, RedFlushRequestState::Issuing, "{unsettled:?}");
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    let o = flush(
        &w,
        &[req(a, Some("300.00"), None), req(a, Some("330.01"), None), req(a, Some("330.00"), None)],
    )
    .await;
    let got: Vec<(&str, Option<&str>)> = o.iter().map(|o| (o.state.as_str(), o.code.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("refused", Some("RED_FLUSH_DUPLICATE_PENDING")),
            ("refused", Some("RED_FLUSH_REMAINING_INSUFFICIENT")),
            ("succeeded", None)
        ]
    );
    // Settled by query: the red invoice the channel issued counts, and the blue one is used up.
    let red_pending: i64 = sqlx::query_scalar("SELECT pending_id FROM red_flush WHERE id = $1")
        .bind(unsettled[0].red_flush_id)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    let settled = issue::issue(&w.inv, &[red_pending], &|_| {}).await.unwrap();
    assert_eq!(settled[0].status, PendingStatus::Succeeded, "{settled:?}");
    assert_eq!(blue_state(&w, a).await, ("full".to_string(), Decimal::new(0, 2)));
    assert_eq!(flush(&w, &[req(a, None, None)]).await[0].message.as_deref(), Some("该发票已全额红冲"));
}

#[tokio::test]
async fn each_track_follows_its_state_path() {
    let w = world("", &[]).await;
    let nums = blue(
        &w,
        &[
            ("D1", "增值税普通发票", BUYER, "100.00"),
            ("S1", "增值税专用发票", BUYER, "100.00"),
            ("O1", "数电普票", BUYER, "100.00"),
            ("F1", "数电专票", BUYER, "100.00"),
            ("F2", "数电专票", BUYER, "100.00"),
            ("F3", "数电专票", BUYER, "100.00"),
        ],
    )
    .await;
    let o = flush(&w, &["D1", "S1", "O1", "F1", "F2", "F3"].map(|b| req(&nums[b], None, None))).await;
    let states: Vec<(&str, &str)> = o.iter().map(|o| (o.track.unwrap().as_str(), o.state.as_str())).collect();
    assert_eq!(
        states,
        [
            ("direct", "succeeded"),
            ("red_info_sheet", "succeeded"), // submitted, approved by the bureau, then issued with its number
            ("confirmation_form", "succeeded"), // 01 无需确认: issued at once
            ("confirmation_form", "waiting"), // 02: the buyer must confirm
            ("confirmation_form", "waiting"),
            ("confirmation_form", "waiting"),
        ],
        "{o:#?}"
    );
    assert_eq!(o[3].message.as_deref(), Some("红字确认单待购方确认"));

    // The buyer confirms F1 and rejects F2; F3 is revoked by us.
    let (f1, f2, f3) = (
        o[3].document_id.clone().unwrap(),
        o[4].document_id.clone().unwrap(),
        o[5].document_id.clone().unwrap(),
    );
    w.sandbox.world().counterparty(&f1, "confirm").unwrap();
    w.sandbox.world().counterparty(&f2, "reject").unwrap();
    assert_eq!(documents::revoke(&w.inv, &f3).await.unwrap().as_str(), "08");
    let polled = documents::poll(&w.inv).await.unwrap();
    assert_eq!((polled.polled, polled.succeeded, polled.failed), (2, 1, 1));
    let after: Vec<String> = futures(&w, &o[3..]).await;
    assert_eq!(after, ["succeeded", "ended", "ended"]);
    // A voided form frees the amount: the blue invoice is untouched and red-flushable again.
    assert_eq!(blue_state(&w, &nums["F2"]).await.0, "none");
    let live_red: i64 = sqlx::query_scalar("SELECT count(*) FROM pending_invoice WHERE invoice_property = 1 AND deleted_at IS NULL AND status <> 'succeeded'")
        .fetch_one(&w.db.pool).await.unwrap();
    assert_eq!(live_red, 0);
    // Every state each document went through is kept.
    let history: Vec<String> =
        sqlx::query_scalar("SELECT state FROM red_document_event WHERE document_id = $1 ORDER BY id")
            .bind(&f1)
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(history, ["02", "04"]);
    let sheet: (String, Option<String>) =
        sqlx::query_as("SELECT state, number FROM red_document WHERE kind = 'sheet'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(sheet.0, "approved");
    assert_eq!(sheet.1.unwrap().len(), 16);
    let listed = documents::list(&w.inv).await.unwrap();
    assert_eq!(listed.len(), 5, "four forms and one sheet");
    // Every blue invoice red-flushed is now 全额红冲.
    for b in ["D1", "S1", "O1", "F1"] {
        assert_eq!(blue_state(&w, &nums[b]).await.0, "full", "{b}");
    }
}

async fn futures(w: &World, o: &[Outcome]) -> Vec<String> {
    let mut out = Vec::new();
    for x in o {
        out.push(redflush::outcome(&w.inv, x.red_flush_id.unwrap()).await.unwrap().state.to_string());
    }
    out
}

#[tokio::test]
async fn a_list_is_worked_in_batches_of_ten_and_each_invoice_succeeds_or_fails_on_its_own() {
    let w = world("", &[]).await;
    let bills: Vec<(String, &str, &str, &str)> =
        (0..11).map(|n| (format!("L{n:02}"), "数电普票", BUYER, "100.00")).collect();
    let refs: Vec<(&str, &str, &str, &str)> =
        bills.iter().map(|(b, k, t, p)| (b.as_str(), *k, *t, *p)).collect();
    let nums = blue(&w, &refs).await;
    // L10 was fully red-flushed earlier.
    assert_eq!(flush(&w, &[req(&nums["L10"], None, None)]).await[0].state, RedFlushRequestState::Succeeded);
    // Twelve rows: nine good, an unknown number, an amount over the total, one already red-flushed.
    let mut rows: Vec<String> = (0..9).map(|n| format!(",{},,04", nums[&format!("L{n:02}")])).collect();
    rows.insert(3, ",26311999999999999999,,01".into());
    rows.insert(6, format!(",{},113.01,04", nums["L09"]));
    rows.insert(9, format!(",{},,01", nums["L10"]));
    let s = import_list(&w, &rows).await;
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let requests = redflush::requests_of_import(&w.inv, s.batch_id.unwrap()).await.unwrap();
    assert_eq!(requests.len(), 12);
    let o = redflush::red_flush(&w.inv, s.batch_id, &requests, &|_| {}).await.unwrap();
    let failed: Vec<(usize, &str)> = o
        .iter()
        .enumerate()
        .filter(|(_, o)| o.failed())
        .map(|(i, o)| (i, o.code.as_deref().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (3, "RED_FLUSH_INVOICE_NOT_FOUND"),
            (6, "RED_FLUSH_REMAINING_INSUFFICIENT"),
            (9, "RED_FLUSH_NOT_ELIGIBLE")
        ]
    );
    assert_eq!(o.iter().filter(|o| o.state == RedFlushRequestState::Succeeded).count(), 9);
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM red_flush_batch WHERE source = 'file'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(batches, 2, "twelve rows in batches of ten");
    // Worked once: the list's rows point at their red-flush, and a second run finds nothing to do.
    assert!(redflush::requests_of_import(&w.inv, s.batch_id.unwrap()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_fully_red_flushed_bill_can_be_invoiced_again_and_everything_nets_to_the_original() {
    let w = world("", &[]).await;
    let nums = blue(&w, &[("WB1", "数电普票", BUYER, "1000.00")]).await;
    let o = flush(&w, &[req(&nums["WB1"], None, Some("01"))]).await;
    assert_eq!(o[0].state, RedFlushRequestState::Succeeded);
    let state: String = sqlx::query_scalar("SELECT state FROM application WHERE bill_no = 'WB1'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(state, "returned", "the write-back reopens the bill");
    // The bill's ERP hears of the red invoice (INVOICE.RED) after its blue one (INVOICE.OPEN).
    fapiao_invoicing::callbacks::deliver(&w.inv).await.unwrap();
    let heard: Vec<(String, String)> = w
        .erp_received()
        .await
        .iter()
        .map(|c| {
            (
                c["body"]["interfaceCode"].as_str().unwrap().to_string(),
                c["body"]["data"]["invoices"][0]["totalAmount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        heard,
        [
            ("INVOICE.OPEN".to_string(), "1130.00".to_string()),
            ("INVOICE.RED".to_string(), "-1130.00".to_string())
        ]
    );
    let again = push(&w.inv, &Selection::Bills(vec!["WB1".into()])).await.unwrap();
    assert_eq!(again.pending_ids.len(), 1);
    let outcomes = issue::issue(&w.inv, &again.pending_ids, &|_| {}).await.unwrap();
    assert_eq!(outcomes[0].status, PendingStatus::Succeeded);
    let totals: Vec<Decimal> = sqlx::query_scalar("SELECT total FROM issued_invoice ORDER BY id")
        .fetch_all(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(totals.iter().map(|d| d.to_string()).collect::<Vec<_>>(), ["1130.00", "-1130.00", "1130.00"]);
    assert_eq!(
        totals.iter().sum::<Decimal>().to_string(),
        "1130.00",
        "blue + red + new nets to the original"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM application WHERE bill_no = 'WB1'")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(state, "issued");
}

#[tokio::test]
async fn nothing_is_red_flushed_twice_under_dropped_answers() {
    let w = world("", &[]).await;
    let bills: Vec<(String, &str, &str, &str)> =
        (0..8).map(|n| (format!("X{n}"), "数电普票", BUYER, "100.00")).collect();
    let refs: Vec<(&str, &str, &str, &str)> =
        bills.iter().map(|(b, k, t, p)| (b.as_str(), *k, *t, *p)).collect();
    let nums = blue(&w, &refs).await;
    w.sandbox
        .world()
        .dice
        .set_plan(FaultPlan::parse("drop@ALLE.INVOICE.RED=0.5,drop@REDCONFIRMBILL.APPLY=0.5").unwrap());
    let requests: Vec<Request> = nums.values().map(|n| req(n, None, None)).collect();
    let o = flush(&w, &requests).await;
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    // Whatever was left open by a lost answer is finished by polling.
    documents::poll(&w.inv).await.unwrap();
    let states: Vec<String> = futures(&w, &o).await;
    assert!(states.iter().all(|s| s == "succeeded"), "{states:?}");
    let world = w.sandbox.world();
    for num in nums.values() {
        let reds = world
            .serials()
            .iter()
            .filter(|s| {
                world.outcome(s).is_some_and(|r| {
                    &r.original_invoice_num == num && r.issue_status == IssueStatus::Succeeded
                })
            })
            .count();
        assert_eq!(reds, 1, "{num} red-flushed {reds} times by the channel's ledger");
    }
    let drops = world.calls.get("ALLE.INVOICE.QUERY").copied().unwrap_or(0);
    assert!(drops > 0);
}

#[tokio::test]
async fn by_line_each_red_line_stays_within_its_blue_line_and_keeps_the_price() {
    let w = world("", &[]).await;
    // One bill, two lines: 3 × 100.00 and 2 × 50.00 (13%).
    w.import(
        "lines.csv",
        &[
            line("BL1", "数电普票", BUYER, 3, "100.00", "正常", "ERP1"),
            line("BL1", "数电普票", BUYER, 2, "50.00", "正常", "ERP1"),
        ],
    )
    .await;
    let outcomes = w.push_and_issue().await;
    let num = outcomes[0].invoice_num.clone().unwrap();
    let by = |lines: &[(i32, &str)], reason: &str| Request {
        invoice_num: num.clone(),
        reason: Some(reason.into()),
        lines: lines
            .iter()
            .map(|(seq, v)| redflush::LineRequest { seq: *seq, value: v.parse().unwrap() })
            .collect(),
        ..Request::default()
    };
    // 销货退回 of one unit of line 1: 100.00 + 13.00, the price unchanged.
    let o = flush(&w, &[by(&[(1, "1")], "02")]).await;
    assert_eq!((o[0].state.as_str(), o[0].requested), ("succeeded", Some(Decimal::new(11300, 2))), "{o:?}");
    let red: (Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT l.quantity, l.price, l.amount FROM pending_line l JOIN red_flush f ON f.pending_id = l.pending_id WHERE f.id = $1",
    )
    .bind(o[0].red_flush_id)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (red.0.normalize().to_string(), red.1.normalize().to_string(), red.2.to_string()),
        ("-1".into(), "100".into(), "-100.00".into())
    );
    // Line 1 has 2 left: 3 is refused; an unknown line is refused.
    let o = flush(&w, &[by(&[(1, "3")], "02"), by(&[(9, "1")], "02")]).await;
    let codes: Vec<Option<&str>> = o.iter().map(|o| o.code.as_deref()).collect();
    assert_eq!(codes, [Some("RED_FLUSH_LINE_EXCEEDS"), Some("RED_FLUSH_LINE_UNKNOWN")]);
    assert!(o[0].message.as_deref().unwrap().contains("超过剩余可红冲数量2"), "{:?}", o[0].message);
    // The rest of both lines: the invoice is then fully red-flushed, to the cent.
    let o = flush(&w, &[by(&[(1, "2"), (2, "2")], "02")]).await;
    assert_eq!(o[0].state, RedFlushRequestState::Succeeded);
    assert_eq!(blue_state(&w, &num).await, ("full".to_string(), Decimal::new(0, 2)));
}

/// A partial red-flush by amount after one by line shares itself over what each line still
/// holds: a line already red-flushed whole gives nothing more, and in the end every line's red
/// lines add up to it exactly.
#[tokio::test]
async fn by_amount_after_by_line_takes_only_what_each_line_still_holds() {
    let w = world("", &[]).await;
    // Line 1: 3 × 100.00 = 300.00 + 39.00; line 2: 2 × 50.00 = 100.00 + 13.00.
    w.import(
        "mixed.csv",
        &[
            line("BA1", "数电普票", BUYER, 3, "100.00", "正常", "ERP1"),
            line("BA1", "数电普票", BUYER, 2, "50.00", "正常", "ERP1"),
        ],
    )
    .await;
    let num = w.push_and_issue().await[0].invoice_num.clone().unwrap();
    let whole_line_1 = Request {
        invoice_num: num.clone(),
        reason: Some("02".into()),
        lines: vec![redflush::LineRequest { seq: 1, value: Decimal::from(3) }],
        ..Request::default()
    };
    assert_eq!(flush(&w, &[whole_line_1]).await[0].state, RedFlushRequestState::Succeeded);
    // 100.00 of the 113.00 left: all of it from line 2.
    let o = flush(&w, &[req(&num, Some("100.00"), Some("04"))]).await;
    assert_eq!(o[0].state, RedFlushRequestState::Succeeded, "{o:?}");
    let red: Vec<(i32, Decimal, Decimal)> = sqlx::query_as(
        "SELECT l.blue_seq, l.amount, l.tax FROM pending_line l JOIN red_flush f ON f.pending_id = l.pending_id
          WHERE f.id = $1 AND l.amount <> 0 ORDER BY l.blue_seq",
    )
    .bind(o[0].red_flush_id)
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(red, vec![(2, Decimal::new(-8850, 2), Decimal::new(-1150, 2))]);
    // The last 13.00: every blue line is then red-flushed exactly, amount and tax.
    assert_eq!(
        flush(&w, &[req(&num, Some("13.00"), Some("04"))]).await[0].state,
        RedFlushRequestState::Succeeded
    );
    assert_eq!(blue_state(&w, &num).await, ("full".to_string(), Decimal::new(0, 2)));
    let per_line: Vec<(i32, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT b.seq, b.amount, b.tax, -sum(r.amount), -sum(r.tax)
           FROM pending_line b JOIN issued_invoice i ON i.pending_id = b.pending_id
           JOIN pending_invoice rp ON rp.blue_invoice_id = i.id AND rp.invoice_property = 1
           JOIN pending_line r ON r.pending_id = rp.id AND r.blue_seq = b.seq
          WHERE i.invoice_num = $1 GROUP BY b.seq, b.amount, b.tax ORDER BY b.seq",
    )
    .bind(&num)
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    for (seq, amount, tax, red_amount, red_tax) in per_line {
        assert_eq!((red_amount, red_tax), (amount, tax), "line {seq}");
    }
}

#[tokio::test]
async fn a_failed_red_invoice_is_reissued_under_the_same_rules_and_reserves_nothing_meanwhile() {
    let w = world("", &[]).await;
    let nums = blue(&w, &[("F1", "数电普票", BUYER, "1000.00"), ("F2", "数电普票", BUYER, "1000.00")]).await;
    fapiao_store::params::set(&w.db.pool, "sim_auto_issue_config", "repairing", "局端内部错误")
        .await
        .unwrap();
    w.sandbox.world().config.repair_after = std::time::Duration::from_secs(120);
    w.sandbox.world().dice.set_plan(FaultPlan::parse("repairing@ALLE.INVOICE.RED=1").unwrap());
    let o = flush(
        &w,
        &[req(&nums["F1"], Some("500.00"), Some("04")), req(&nums["F2"], Some("500.00"), Some("04"))],
    )
    .await;
    assert!(
        o.iter()
            .all(|o| o.state == RedFlushRequestState::Failed && o.code.as_deref() == Some("ISSUE_FAILED")),
        "{o:?}"
    );
    w.sandbox.world().dice.set_plan(FaultPlan::none());

    // A failed red invoice holds nothing back: all of F2 (1,130.00) can be red-flushed now.
    let all_of_f2 = flush(&w, &[req(&nums["F2"], None, Some("02"))]).await;
    assert_eq!(all_of_f2[0].state, RedFlushRequestState::Succeeded, "{all_of_f2:?}");

    // Before the repair time nothing goes; after it, F1's red invoice is issued again under the
    // same rules, and F2's no longer fits its blue invoice: left with the amount rule's answer.
    let early = reissue::reissue(&w.inv, chrono::Utc::now(), false, &|_| {}).await.unwrap();
    assert_eq!((early.reissued.len(), early.skipped.len()), (0, 2), "{early:?}");
    let later = reissue::reissue(&w.inv, chrono::Utc::now() + chrono::Duration::minutes(3), false, &|_| {})
        .await
        .unwrap();
    assert_eq!(later.reissued.len(), 1, "{later:?}");
    assert_eq!(later.reissued[0].red_of.as_deref(), Some(nums["F1"].as_str()));
    assert_eq!(later.reissued[0].outcome.as_ref().unwrap().status, PendingStatus::Succeeded);
    assert_eq!(later.skipped.len(), 1, "{later:?}");
    assert_eq!(later.skipped[0].red_of.as_deref(), Some(nums["F2"].as_str()));
    assert!(later.skipped[0].reason.contains("RED_FLUSH_REMAINING_INSUFFICIENT"), "{later:?}");

    let f1 = redflush::outcome(&w.inv, o[0].red_flush_id.unwrap()).await.unwrap();
    assert_eq!(f1.state, RedFlushRequestState::Succeeded, "the request follows its red invoice");
    assert_eq!(blue_state(&w, &nums["F1"]).await, ("partial".into(), Decimal::new(63000, 2)));
    assert_eq!(blue_state(&w, &nums["F2"]).await, ("full".into(), Decimal::ZERO));
}

#[tokio::test]
async fn the_same_amount_refusal_is_for_single_red_flushes_not_for_lists() {
    let w = world("", &[("FAPIAO__INVOICING__SETTLE_WITHIN_SECS", "1")]).await;
    let nums = blue(&w, &[("SA1", "数电普票", BUYER, "1000.00")]).await;
    let a = &nums["SA1"];
    // A red invoice of 100.00 still with the channel (answer lost, the query unavailable).
    w.sandbox
        .world()
        .dice
        .set_plan(FaultPlan::parse("drop@ALLE.INVOICE.RED=1,http5xx@ALLE.INVOICE.QUERY=1").unwrap());
    assert_eq!(
        flush(&w, &[req(a, Some("100.00"), Some("04"))]).await[0].state,
        RedFlushRequestState::Issuing
    );
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    // Singly, the same amount again is refused …
    let single = flush(&w, &[req(a, Some("100.00"), Some("04"))]).await;
    assert_eq!(single[0].code.as_deref(), Some("RED_FLUSH_DUPLICATE_PENDING"));
    // … in a list, it goes.
    let s = import_list(&w, &[format!(",{a},100.00,04")]).await;
    let requests = redflush::requests_of_import(&w.inv, s.batch_id.unwrap()).await.unwrap();
    let o = redflush::red_flush(&w.inv, s.batch_id, &requests, &|_| {}).await.unwrap();
    assert_eq!(o[0].state, RedFlushRequestState::Succeeded, "{o:?}");
}

#[tokio::test]
async fn a_red_info_sheet_number_entered_by_hand_is_used_as_is() {
    use fapiao_channel::codes::interface as i;
    use fapiao_channel::wire::{RedInfoApply, RedInfoRef, RedInfoSheet};
    let w = world("", &[]).await;
    let nums =
        blue(&w, &[("H1", "增值税专用发票", BUYER, "100.00"), ("H2", "数电普票", BUYER, "100.00")]).await;
    let code: String = sqlx::query_scalar("SELECT invoice_code FROM issued_invoice WHERE invoice_num = $1")
        .bind(&nums["H1"])
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    // The sheet was applied for elsewhere (the buyer, or the e-tax website) and approved.
    let apply = RedInfoApply {
        order_no: "ELSEWHERE-1".into(),
        seller_taxpayer_id: common::SELLER.into(),
        invoice_code: code,
        invoice_num: nums["H1"].clone(),
        red_reason: "01".into(),
        amount: Money::parse("-100.00").unwrap(),
        tax_amount: Money::parse("-13.00").unwrap(),
    };
    let sheet: RedInfoSheet = serde_json::from_str(
        &w.sandbox
            .world()
            .dispatch(i::RED_INFO_APPLY, &serde_json::to_string(&apply).unwrap(), std::time::Instant::now())
            .unwrap(),
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let query = serde_json::to_string(&RedInfoRef { sheet_id: sheet.sheet_id }).unwrap();
    let approved: RedInfoSheet = serde_json::from_str(
        &w.sandbox.world().dispatch(i::RED_INFO_QUERY, &query, std::time::Instant::now()).unwrap(),
    )
    .unwrap();
    assert_eq!(approved.state, "approved");
    let number = approved.red_info_bill_no;
    // 下载红字信息表: the sheet applied for elsewhere comes with what it red-flushes.
    let got = documents::download(&w.inv).await.unwrap();
    assert_eq!((got.forms, got.sheets), (0, 1));
    let listed = documents::list(&w.inv).await.unwrap();
    assert_eq!(
        (listed[0].number.as_deref(), listed[0].state_zh.as_str(), listed[0].amount),
        (Some(number.as_str()), "审核通过", Decimal::new(-10000, 2))
    );

    let by_hand =
        |num: &str, no: &str| Request { red_info_no: Some(no.into()), ..req(num, None, Some("01")) };
    let applies_before = w.sandbox.world().calls.get(i::RED_INFO_APPLY).copied().unwrap_or(0);
    let o = flush(&w, &[by_hand(&nums["H1"], &number), by_hand(&nums["H2"], &number)]).await;
    assert_eq!(o[0].state, RedFlushRequestState::Succeeded, "issued on the sheet given: {o:?}");
    assert_eq!(
        o[1].code.as_deref(),
        Some("RED_INFO_NO_NOT_APPLICABLE"),
        "a 数电 invoice has no red info sheet"
    );
    assert_eq!(
        w.sandbox.world().calls.get(i::RED_INFO_APPLY).copied().unwrap_or(0),
        applies_before,
        "no sheet applied for"
    );
    let source: String = sqlx::query_scalar(
        "SELECT p.data_source FROM red_flush f JOIN pending_invoice p ON p.id = f.pending_id WHERE f.id = $1",
    )
    .bind(o[0].red_flush_id)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(source, "手工新增红字信息表编号");
    assert_eq!(blue_state(&w, &nums["H1"]).await.0, "full");
}

#[tokio::test]
async fn a_form_the_buyer_entered_and_we_confirm_is_red_flushed_with_exactly_its_amount_and_tax() {
    let w = world("", &[]).await;
    let nums = blue(&w, &[("F1", "数电普票", BUYER, "100.00")]).await;
    let num = &nums["F1"];
    // The buyer enters a form (03) for 50.00 + 6.51 — a cent off the invoice's 13% share (6.50).
    let form = w
        .sandbox
        .world()
        .inbound_form(num, Money::parse("-50.00").unwrap(), Money::parse("-6.51").unwrap(), "04")
        .unwrap();
    assert_eq!(form.confirm_state, "03");
    assert_eq!(documents::download(&w.inv).await.unwrap().forms, 1);
    let decided = documents::decide(&w.inv, &form.bill_uuid, true).await.unwrap();
    assert_eq!(decided.state, fapiao_schemas::FormState::Confirmed);
    let outcome = decided.red_flush.expect("a confirmed buyer's form is red-flushed");
    assert_eq!(outcome.state, RedFlushRequestState::Succeeded, "{outcome:?}");
    assert_eq!(outcome.document_id.as_deref(), Some(form.bill_uuid.as_str()));
    let red = outcome.red_invoice_num.expect("issued");
    let (amount, tax): (Decimal, Decimal) =
        sqlx::query_as("SELECT amount, tax FROM issued_invoice WHERE invoice_num = $1")
            .bind(&red)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!((amount, tax), (Decimal::new(-5000, 2), Decimal::new(-651, 2)), "the form's figures exactly");
    assert_eq!(blue_state(&w, num).await, ("partial".to_string(), Decimal::new(5649, 2)));
    // The form is used up: confirming it again does not red-flush twice.
    let again = documents::decide(&w.inv, &form.bill_uuid, true).await;
    assert!(again.is_err() || again.unwrap().red_flush.is_none());
    assert_eq!(blue_state(&w, num).await.1, Decimal::new(5649, 2));
}

#[tokio::test]
async fn a_paper_invoice_of_the_month_is_voided_through_voiding_and_other_kinds_are_refused() {
    use fapiao_invoicing::void::void;
    use fapiao_schemas::{Coded, InvoiceStatus};
    let w = world("", &[]).await;
    let nums = blue(
        &w,
        &[
            ("V1", "增值税普通发票", BUYER, "100.00"),
            ("V2", "增值税普通发票", BUYER, "200.00"),
            ("V3", "数电普票", BUYER, "300.00"),
            ("V4", "增值税普通发票", BUYER, "400.00"),
        ],
    )
    .await;
    let status = |num: String| {
        let pool = w.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM issued_invoice WHERE invoice_num = $1")
                .bind(num)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // 正常 → 作废中 → 作废; the bill's lines are open again; the channel has it void.
    let done = void(&w.inv, &nums["V1"], None, "开错购方").await.unwrap();
    assert_eq!((done.status, done.message), (InvoiceStatus::Voided, None));
    assert_eq!(status(nums["V1"].clone()).await, "作废");
    assert!(w.sandbox.world().voided(&nums["V1"]));
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT e.event FROM pending_event e JOIN issued_invoice i ON i.pending_id = e.pending_id WHERE i.invoice_num = $1 ORDER BY e.id",
    )
    .bind(&nums["V1"])
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    assert!(events.ends_with(&["voiding".to_string(), "voided".to_string()]), "{events:?}");
    let open = push(&w.inv, &Selection::Bills(vec!["V1".into()])).await.unwrap();
    assert_eq!(open.pending_ids.len(), 1, "a voided invoice's bill can be invoiced again");
    // A void invoice is neither voided again nor red-flushed.
    let again = void(&w.inv, &nums["V1"], None, "x").await.unwrap_err();
    assert_eq!(again.code(), "INVOICE_NOT_VOIDABLE");
    let red = flush(&w, &[req(&nums["V1"], None, None)]).await;
    assert_eq!(red[0].code.as_deref(), Some("RED_FLUSH_NOT_ELIGIBLE"), "{red:?}");
    // 数电 and partly red-flushed invoices are refused here, before any call.
    let e = void(&w.inv, &nums["V3"], None, "x").await.unwrap_err();
    assert!(e.to_string().contains("不能作废，请开具红字发票"), "{e}");
    let partly = flush(&w, &[req(&nums["V2"], Some("50.00"), Some("04"))]).await;
    assert_eq!(partly[0].state, RedFlushRequestState::Succeeded, "{partly:?}");
    let e = void(&w.inv, &nums["V2"], None, "x").await.unwrap_err();
    assert!(e.to_string().contains("已开具红字发票"), "{e}");
    // Where our books are behind, the channel's refusal puts the invoice back to 正常.
    sqlx::query("UPDATE issued_invoice SET red_flush_state = 'none' WHERE invoice_num = $1")
        .bind(&nums["V2"])
        .execute(&w.db.pool)
        .await
        .unwrap();
    let e = void(&w.inv, &nums["V2"], None, "x").await.unwrap_err();
    assert_eq!(e.code(), "INVOICE_VOID_REFUSED", "{e}");
    assert_eq!(status(nums["V2"].clone()).await, "正常");
    // Every answer lost: it stays 作废中, and voiding again settles it (never a second void).
    w.sandbox.world().dice.set_plan(FaultPlan::parse("drop@ALLE.INVOICE.VOID=1").unwrap());
    let lost = void(&w.inv, &nums["V4"], None, "重复开具").await.unwrap();
    assert_eq!(lost.status, InvoiceStatus::Voiding, "{lost:?}");
    assert_eq!(status(nums["V4"].clone()).await, "作废中");
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    let settled = void(&w.inv, &nums["V4"], None, "重复开具").await.unwrap();
    assert_eq!(settled.status, InvoiceStatus::Voided);
}
