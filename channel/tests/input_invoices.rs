//! Downloads, verification and the ERP endpoint against the sandbox.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use fapiao_channel::codes::interface;
use fapiao_channel::sandbox::{World, invoices_for};
use fapiao_channel::wire::DownloadApply;
use fapiao_channel::{ChannelClient, Disposition};

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 18).unwrap()
}

/// A day on which the buyer has at least `n` invoices (the count is generated).
fn busy_day(buyer: &str, n: usize) -> NaiveDate {
    (0..200)
        .map(|d| day() - chrono::Duration::days(d))
        .find(|d| invoices_for(buyer, *d, 1).len() >= n)
        .unwrap()
}

fn apply(tax_no: &str, account: &str, date: NaiveDate) -> DownloadApply {
    DownloadApply {
        taxpayer_id: tax_no.into(),
        etax_account: account.into(),
        invoice_date: date,
        scope: "all".into(),
        small_scale: false,
    }
}

async fn ready(c: &ChannelClient, task: &str) -> u64 {
    for _ in 0..100 {
        let t = c.download_poll(task).await.unwrap();
        if t.state == "ready" {
            return t.total;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("download never became ready");
}

#[tokio::test]
async fn a_download_is_applied_for_becomes_ready_and_is_paged() {
    let sb = sandbox(config("")).await;
    let c = client(&sb);
    let date = busy_day(BUYER, 5);
    let task = c.download_apply(&apply(BUYER, "acct-1", date)).await.unwrap();
    assert_eq!(task.state, "processing");
    assert_eq!(c.download_fetch(&task.task_id, 0, 2).await.unwrap_err().api_code(), Some("9409"));
    let total = ready(&c, &task.task_id).await;
    let expected = invoices_for(BUYER, date, 1);
    assert_eq!(total as usize, expected.len());
    let mut got = Vec::new();
    for page in 0.. {
        let p = c.download_fetch(&task.task_id, page, 2).await.unwrap();
        if p.list.is_empty() {
            break;
        }
        got.extend(p.list);
    }
    let want: Vec<_> = expected.into_iter().map(|v| v.header).collect();
    assert_eq!(got, want);

    // Every fetched invoice verifies with full data; an unknown one does not.
    let h = &got[0];
    let v = c.verify(&h.invoice_code, &h.invoice_num, h.invoice_date, h.amount).await.unwrap();
    assert_eq!(&v.header, h);
    assert!(!v.lines.is_empty());
    let err = c.verify("", "00000000000000000000", date, money("1.00")).await.unwrap_err();
    assert_eq!((err.api_code(), err.disposition()), (Some("9404"), Disposition::BadInput));
}

#[tokio::test]
async fn two_downloads_at_once_on_one_account_log_it_out_and_small_scale_cannot_download_deductions() {
    let mut cfg = config("");
    cfg.download_delay = Duration::from_millis(300);
    let sb = sandbox(cfg).await;
    let c = client(&sb);
    c.download_apply(&apply(BUYER, "shared", day())).await.unwrap();
    let err = c.download_apply(&apply(SELLER, "shared", day())).await.unwrap_err();
    assert_eq!(err.api_code(), Some("9604"));
    assert!(err.to_string().contains("请核对用户信息或重新调用登录接口"), "{err}");
    assert_eq!(err.disposition(), Disposition::Retry);
    c.download_apply(&apply(SELLER, "own-account", day())).await.unwrap();

    let mut deduction = apply(BUYER, "acct-2", day());
    deduction.scope = "deduction".into();
    deduction.small_scale = true;
    let err = c.download_apply(&deduction).await.unwrap_err();
    assert_eq!((err.api_code(), err.disposition()), (Some("9605"), Disposition::BadInput));
}

#[tokio::test]
async fn bureau_faults_are_classified() {
    let sb = sandbox(config("verify_expired@RIM.INVOICE.VERIFY=1,unstable@RIM.DOWNLOAD.APPLY=1")).await;
    let c = client(&sb);
    let err = c.verify("", "24442000000000000001", day(), money("1.00")).await.unwrap_err();
    assert_eq!((err.api_code(), err.disposition()), (Some("9603"), Disposition::NeverRetry));
    assert!(err.to_string().contains("该应用查验权限过期"));
    assert_eq!(sb.world().calls[interface::VERIFY], 1, "never retried");
    let err = c.download_apply(&apply(BUYER, "a", day())).await.unwrap_err();
    assert_eq!((err.api_code(), err.disposition()), (Some("9602"), Disposition::Retry));
    assert!(err.to_string().contains("地方税局网络不稳定，请稍后再试"));
}

#[tokio::test]
async fn same_seed_same_inputs_give_byte_identical_pages() {
    let date = busy_day(BUYER, 3);
    let fetch = |world: &mut World| {
        let later = std::time::Instant::now() + Duration::from_secs(1);
        let apply = serde_json::to_string(&apply(BUYER, "a", date)).unwrap();
        let task: serde_json::Value = serde_json::from_str(
            &world.dispatch(interface::DOWNLOAD_APPLY, &apply, std::time::Instant::now()).unwrap(),
        )
        .unwrap();
        let body = serde_json::json!({ "taskId": task["taskId"], "pageNo": 0, "pageSize": 100 }).to_string();
        world.dispatch(interface::DOWNLOAD_FETCH, &body, later).unwrap()
    };
    let a = fetch(&mut World::new(config("")));
    let b = fetch(&mut World::new(config("")));
    assert_eq!(a.as_bytes(), b.as_bytes());
    let mut other_seed = config("");
    other_seed.seed = 2;
    assert_ne!(a, fetch(&mut World::new(other_seed)));

    // And over HTTP, under faults, the pages are the same.
    let sb = sandbox(config("http5xx=0.2,drop=0.1")).await;
    let c = client(&sb);
    let task = loop {
        if let Ok(t) = c.download_apply(&apply(BUYER, "a", date)).await {
            break t;
        }
    };
    ready(&c, &task.task_id).await;
    let page = c.download_fetch(&task.task_id, 0, 100).await.unwrap();
    let direct: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(serde_json::to_value(&page).unwrap(), direct);
}

#[tokio::test]
async fn the_erp_records_callbacks_and_can_be_told_to_fail() {
    let sb = sandbox(config("")).await;
    let http = reqwest::Client::new();
    let base = sb.base_url();
    http.post(format!("{base}/sandbox/erp/fail"))
        .json(&serde_json::json!({ "count": 1 }))
        .send()
        .await
        .unwrap();
    let body =
        serde_json::json!({ "returnCode": "0", "interfaceCode": "INVOICE.OPEN", "data": { "billNo": "B1" } });
    let first = http.post(format!("{base}/erp/callback/ERP1")).json(&body).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 500);
    let second: serde_json::Value = http
        .post(format!("{base}/erp/callback/ERP1"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["success"], true);
    let seen: serde_json::Value =
        http.get(format!("{base}/sandbox/erp/callbacks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen.as_array().unwrap().len(), 2);
    assert_eq!(seen[0]["system"], "ERP1");
}
