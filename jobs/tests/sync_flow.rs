//! The four sync jobs end to end: real PostgreSQL (a fresh database per test) and the sandbox
//! over real HTTP.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig, invoices_for};
use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_jobs::metrics::Metrics;
use fapiao_jobs::{JobContext, Registry, runner};
use fapiao_schemas::TaxNo;
use fapiao_schemas::config::Settings;
use fapiao_schemas::enterprise::{Channel, Enterprise, SyncScheme, TaxpayerKind};
use fapiao_store::testing::TestDb;
use fapiao_store::{enterprises, input_sync, params, schemes};

const A: &str = "91310000MA1FL2AB09";
const B: &str = "92440300MA5DXY7K3W";

struct World {
    db: TestDb,
    sandbox: Sandbox,
    ctx: JobContext,
    registry: Registry,
}

async fn world(faults: &str) -> World {
    let db = TestDb::new().await;
    let sandbox = Sandbox::start(
        SandboxConfig {
            faults: FaultPlan::parse(faults).unwrap(),
            download_delay: Duration::from_millis(40),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let settings = Settings::load_from(None, Vec::new()).unwrap();
    let mut cc = ClientConfig::from_settings(&settings.channel);
    cc.base_url = sandbox.base_url();
    cc.retry.base_delay = Duration::from_millis(1);
    for (tax_no, name, kind) in
        [(A, "上海示例贸易有限公司", TaxpayerKind::General), (B, "深圳示例便利店", TaxpayerKind::SmallScale)]
    {
        let e = Enterprise {
            tax_no: TaxNo::parse(tax_no).unwrap(),
            name: name.into(),
            taxpayer_kind: kind,
            etax_account: "shared-account".into(),
            channel: Channel::Etax,
        };
        enterprises::insert(&db.pool, &e).await.unwrap();
        let s = SyncScheme {
            code: format!("S-{tax_no}"),
            tax_no: e.tax_no.clone(),
            start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            active: true,
            verify_changed: false,
        };
        schemes::insert(&db.pool, &s).await.unwrap();
    }
    let ctx = JobContext::new(
        db.pool.clone(),
        Arc::new(ChannelClient::new(cc)),
        settings.clone(),
        "test-worker".into(),
    );
    let registry = Registry::from_settings(&settings).unwrap();
    World { db, sandbox, ctx, registry }
}

impl World {
    async fn run(&self, job: &str, date: NaiveDate) -> fapiao_jobs::ledger::Outcome {
        runner::run_now(&self.ctx, self.registry.get(job).unwrap(), Some(date), &Metrics::default())
            .await
            .unwrap()
            .1
    }
    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }
}

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// The invoices the sandbox holds for both enterprises on the three days before `today`.
fn expected_pool(today: NaiveDate) -> BTreeSet<(String, String, String)> {
    let mut all = BTreeSet::new();
    for tax_no in [A, B] {
        for back in 1..=3 {
            for inv in invoices_for(tax_no, today - chrono::Duration::days(back), 1) {
                all.insert((tax_no.to_string(), inv.header.invoice_code, inv.header.invoice_num));
            }
        }
    }
    all
}

async fn pool_identities(w: &World) -> BTreeSet<(String, String, String)> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT tax_no, invoice_code, invoice_num FROM invoice_pool")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn on_a_mod_3_day_the_chain_pools_exactly_the_previous_three_days_once() {
    let w = world("").await;
    let today = date(18);
    for _ in 0..2 {
        for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
            let outcome = w.run(job, today).await;
            assert_eq!(outcome.state.as_str(), "succeeded", "{job}: {outcome:?}");
        }
    }
    assert_eq!(
        w.count("SELECT count(*) FROM download_application").await,
        6,
        "3 days × 2 enterprises, never today, never twice"
    );
    assert_eq!(
        w.count("SELECT count(*) FROM download_application WHERE invoice_date >= '2026-11-18'").await,
        0
    );
    let expected = expected_pool(today);
    assert!(!expected.is_empty());
    assert_eq!(pool_identities(&w).await, expected);
    assert_eq!(w.count("SELECT count(*) FROM download_staging WHERE state <> 'done_verified'").await, 0);
    assert_eq!(w.count("SELECT count(*) FROM download_log").await, 6, "the second pass sent nothing again");
    // Verified rows carry their lines; deductibility was decided on them.
    assert!(w.count("SELECT count(*) FROM invoice_pool_line").await > 0);
    assert!(
        w.count("SELECT count(*) FROM invoice_pool WHERE verified AND signed").await == 0,
        "tax_file_auto_sign defaults to 0"
    );
}

#[tokio::test]
async fn unverified_pooling_and_auto_sign_follow_the_parameters() {
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    params::set(&w.db.pool, "rim_config", "tax_file_auto_sign", "1").await.unwrap();
    let today = date(18);
    for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
        assert_eq!(w.run(job, today).await.state.as_str(), "succeeded");
    }
    assert_eq!(pool_identities(&w).await, expected_pool(today));
    assert_eq!(w.count("SELECT count(*) FROM download_staging WHERE state <> 'done_unverified'").await, 0);
    assert_eq!(
        w.count("SELECT count(*) FROM invoice_pool WHERE verified OR NOT signed OR signed_at IS NULL").await,
        0
    );
}

/// Two workers moving the same staged rows at once (as two processes would without the ledger's
/// one run per job): every row is pooled once and handled once, whoever took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deal_task_workers_on_the_same_rows_pool_each_once() {
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    const ROWS: i64 = 30_000;
    fapiao_jobs::synthetic::stage(&w.db.pool, A, 0, ROWS).await.unwrap();
    // Small batches, so that the two meet many times.
    let mut settings = (*w.ctx.settings).clone();
    settings.jobs.deal_batch_size = 500;
    let run = fapiao_jobs::RunInfo { run_id: 0, scheduled_for: chrono::Utc::now(), business_date: date(18) };
    let workers = ["worker-1", "worker-2"].map(|name| {
        let ctx = JobContext::new(w.db.pool.clone(), w.ctx.channel.clone(), settings.clone(), name.into());
        let run = run.clone();
        tokio::spawn(async move { fapiao_jobs::sync::deal_task::run(&ctx, &run).await.unwrap().written })
    });
    let mut written = 0;
    for worker in workers {
        written += worker.await.unwrap();
    }
    assert_eq!(written, ROWS, "each row counted by exactly one worker");
    assert_eq!(w.count("SELECT count(*) FROM invoice_pool").await, ROWS);
    assert_eq!(
        w.count("SELECT count(*) FROM download_staging WHERE state <> 'done_unverified' OR handle_num <> 1")
            .await,
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM invoice_pool p JOIN download_staging s ON s.id = p.staging_id").await,
        ROWS
    );
}

#[tokio::test]
async fn on_other_days_download_apply_is_skipped_with_the_reason() {
    let w = world("").await;
    w.run("apply-cache", date(19)).await;
    let outcome = w.run("download-apply", date(19)).await;
    assert_eq!(outcome.state.as_str(), "skipped");
    let reason = outcome.reason.unwrap();
    assert!(reason.contains("2026-11-19") && reason.contains("% 3 == 0"), "{reason}");
    assert_eq!(w.count("SELECT count(*) FROM download_log").await, 0);

    params::set(&w.db.pool, "rim_config", "newetax_inputout_days", "19").await.unwrap();
    assert_eq!(w.run("download-apply", date(19)).await.state.as_str(), "succeeded");
    assert!(w.count("SELECT count(*) FROM download_log").await > 0);
}

#[tokio::test]
async fn transient_faults_leave_applications_open_for_the_next_run() {
    for faults in
        ["http5xx@RIM.DOWNLOAD.APPLY=1", "unstable@RIM.DOWNLOAD.APPLY=1", "logout@RIM.DOWNLOAD.APPLY=1"]
    {
        let w = world(faults).await;
        w.run("apply-cache", date(18)).await;
        let outcome = w.run("download-apply", date(18)).await;
        assert_eq!(outcome.state.as_str(), "succeeded", "{faults}: {outcome:?}");
        // A fault of the moment rejects nothing and costs no attempt; the run says why it
        // put the applications off.
        assert_eq!(outcome.rows_rejected, 0, "{faults}");
        let reason = outcome.reason.unwrap_or_default();
        assert!(reason.contains("put off: ") && reason.contains("RIM.DOWNLOAD.APPLY"), "{faults}: {reason}");
        assert_eq!(
            w.count("SELECT count(*) FROM download_application WHERE state <> 'open' OR attempts > 0").await,
            0,
            "{faults}"
        );
        assert!(
            w.count("SELECT count(*) FROM download_application WHERE last_error IS NOT NULL").await > 0,
            "{faults}"
        );
        assert_eq!(w.count("SELECT count(*) FROM download_log").await, 0, "{faults}");
    }
    let w = world("unstable@RIM.DOWNLOAD.APPLY=1").await;
    w.run("apply-cache", date(18)).await;
    w.run("download-apply", date(18)).await;
    let error: String = sqlx::query_scalar("SELECT last_error FROM download_application LIMIT 1")
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert!(error.contains("地方税局网络不稳定，请稍后再试"), "{error}");
    // The bureau recovers: the next run sends them.
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    w.run("download-apply", date(18)).await;
    assert_eq!(w.count("SELECT count(*) FROM download_application WHERE state = 'open'").await, 0);
}

#[tokio::test]
async fn a_download_whose_poll_keeps_failing_does_not_fail_the_run() {
    // Every poll finds its token refused, renewal after renewal (the second 9401 used to fail
    // the whole run). The application was accepted: fetch polls the download later.
    let w = world("expire@RIM.DOWNLOAD.POLL=1").await;
    let today = date(18);
    w.run("apply-cache", today).await;
    let outcome = w.run("download-apply", today).await;
    assert_eq!(outcome.state.as_str(), "succeeded", "{outcome:?}");
    // One download at a time per e-tax account: the others wait for it.
    assert_eq!(w.count("SELECT count(*) FROM download_application WHERE state = 'applied'").await, 1);
    assert!(outcome.reason.unwrap_or_default().contains("wait for a running download"));
    w.sandbox.world().dice.set_plan(FaultPlan::none());
    for _ in 0..6 {
        for job in ["fetch", "download-apply"] {
            assert_eq!(w.run(job, today).await.state.as_str(), "succeeded", "{job}");
        }
    }
    for job in ["fetch", "deal-task"] {
        assert_eq!(w.run(job, today).await.state.as_str(), "succeeded", "{job}");
    }
    assert_eq!(pool_identities(&w).await, expected_pool(today), "nothing lost");
}

#[tokio::test]
async fn faults_of_the_moment_never_give_a_staged_row_up() {
    // deal_max_attempts is 3: five runs of refused tokens and an unstable bureau must leave
    // every row pending with no attempt counted, and the recovered bureau pools them all.
    for faults in
        ["unstable@RIM.INVOICE.VERIFY=1", "expire@RIM.INVOICE.VERIFY=1", "http5xx@RIM.INVOICE.VERIFY=1"]
    {
        let w = world(faults).await;
        let today = date(18);
        for job in ["apply-cache", "download-apply", "fetch"] {
            w.run(job, today).await;
        }
        let staged = w.count("SELECT count(*) FROM download_staging").await;
        assert!(staged > 0);
        for _ in 0..5 {
            let outcome = w.run("deal-task", today).await;
            assert_eq!(outcome.state.as_str(), "succeeded", "{faults}: {outcome:?}");
            assert_eq!(outcome.rows_rejected, 0, "{faults}");
            assert!(outcome.reason.unwrap_or_default().contains("put off: "), "{faults}");
        }
        assert_eq!(
            w.count("SELECT count(*) FROM download_staging WHERE state = 'pending' AND handle_num = 0").await,
            staged,
            "{faults}: no row given up, no attempt counted"
        );
        w.sandbox.world().dice.set_plan(FaultPlan::none());
        w.run("deal-task", today).await;
        assert_eq!(pool_identities(&w).await, expected_pool(today), "{faults}");
    }
}

#[tokio::test]
async fn given_up_work_is_sent_again_within_its_scope_and_history_says_why() {
    let w = world("").await;
    let today = date(18);
    for job in ["apply-cache", "download-apply", "fetch"] {
        w.run(job, today).await;
    }
    // Amounts that disagree with the bureau's fail verification for good (查验信息不一致), and
    // the run's reason in the ledger says so.
    let skew = |delta: &'static str| {
        let pool = w.db.pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE download_staging SET amount = amount + {delta}, total = total + {delta}"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    skew("1").await;
    let staged = w.count("SELECT count(*) FROM download_staging").await;
    let outcome = w.run("deal-task", today).await;
    assert_eq!(outcome.rows_rejected, staged);
    let reason = outcome.reason.unwrap_or_default();
    assert!(
        reason.starts_with(&format!("rejected: {staged} × ")) && reason.contains("查验信息不一致"),
        "{reason}"
    );
    assert_eq!(w.count("SELECT count(*) FROM download_staging WHERE state = 'failed'").await, staged);
    // The sync log shows each day's failures and why.
    let log = fapiao_store::input_sync::log(&w.db.pool, &Default::default(), 100).await.unwrap();
    assert_eq!(log.iter().map(|r| r.failed).sum::<i64>(), staged);
    assert!(
        log.iter()
            .filter(|r| r.failed > 0)
            .all(|r| r.last_row_error.as_deref().is_some_and(|e| e.contains("查验信息不一致"))),
        "{log:?}"
    );
    sqlx::query("UPDATE download_application SET state = 'failed'").execute(&w.db.pool).await.unwrap();

    // The data is put right; one enterprise's work of one day is sent again, nothing else.
    skew("-1").await;
    let day: NaiveDate = sqlx::query_scalar(
        "SELECT min(invoice_date) FROM download_staging WHERE tax_no = '91310000MA1FL2AB09'",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    let scope = input_sync::Scope { tax_no: Some(TaxNo::parse(A).unwrap()), from: Some(day), to: Some(day) };
    let sent = input_sync::send_again(&w.db.pool, &scope).await.unwrap();
    let in_scope: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM download_staging WHERE tax_no = '91310000MA1FL2AB09' AND invoice_date = $1",
    )
    .bind(day)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert!(in_scope > 0 && in_scope < staged);
    assert_eq!(sent, input_sync::SentAgain { staged_rows: in_scope as u64, applications: 1 });
    assert_eq!(w.count("SELECT count(*) FROM download_application WHERE state = 'open'").await, 1);
    w.run("deal-task", today).await;
    assert_eq!(w.count("SELECT count(*) FROM invoice_pool").await, in_scope);
    assert_eq!(
        w.count("SELECT count(*) FROM download_staging WHERE state = 'failed'").await,
        staged - in_scope
    );

    // Everything else.
    let sent = input_sync::send_again(&w.db.pool, &input_sync::Scope::default()).await.unwrap();
    assert_eq!(sent, input_sync::SentAgain { staged_rows: (staged - in_scope) as u64, applications: 5 });
    w.run("deal-task", today).await;
    assert_eq!(pool_identities(&w).await, expected_pool(today));
}

#[tokio::test]
async fn an_expired_verification_permission_fails_the_run_naming_the_enterprise() {
    let w = world("verify_expired@RIM.INVOICE.VERIFY=1").await;
    let today = date(18);
    for job in ["apply-cache", "download-apply", "fetch"] {
        w.run(job, today).await;
    }
    let outcome = w.run("deal-task", today).await;
    assert_eq!(outcome.state.as_str(), "failed");
    let error = outcome.error.unwrap();
    assert!(error.contains("该应用查验权限过期") && (error.contains(A) || error.contains(B)), "{error}");
    assert_eq!(
        w.count("SELECT count(*) FROM download_staging WHERE state = 'pending' AND claimed_by IS NULL").await,
        w.count("SELECT count(*) FROM download_staging").await,
        "claims released, nothing lost"
    );
}

#[tokio::test]
async fn reset_start_backfills_in_bounded_chunks_and_failed_dates_are_retried() {
    let w = world("").await;
    sqlx::query(
        "UPDATE sync_scheme SET start_date = '2026-09-01', backfill_next = '2026-09-01' WHERE tax_no = $1",
    )
    .bind(A)
    .execute(&w.db.pool)
    .await
    .unwrap();
    w.run("apply-cache", date(18)).await;
    // 31 backfill days (Sep 1 – Oct 1) plus the 3 recent days, for A; 3 for B.
    assert_eq!(w.count("SELECT count(*) FROM download_application").await, 31 + 3 + 3);
    w.run("apply-cache", date(18)).await;
    w.run("apply-cache", date(18)).await;
    // Sep 1 … Nov 17 for A once the backfill is done.
    assert_eq!(
        w.count("SELECT count(*) FROM download_application WHERE tax_no = '91310000MA1FL2AB09'").await,
        78
    );
    assert_eq!(w.count("SELECT count(*) FROM sync_scheme WHERE backfill_next IS NOT NULL").await, 0);

    sqlx::query("UPDATE download_application SET state = 'failed' WHERE invoice_date = '2026-09-05'")
        .execute(&w.db.pool)
        .await
        .unwrap();
    w.run("apply-cache", date(18)).await;
    assert_eq!(w.count("SELECT count(*) FROM download_application WHERE state = 'failed'").await, 0);
}

#[tokio::test]
async fn the_kill_switch_skips_runs_and_pause_is_seen_by_every_process() {
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "rim_config_sync_his", "0").await.unwrap();
    let outcome = w.run("apply-cache", date(18)).await;
    assert_eq!(
        (outcome.state, outcome.reason.as_deref()),
        (fapiao_schemas::RunState::Skipped, Some("rim_config_sync_his = 0 (kill switch)"))
    );
    // The switch is the input sync's only: the invoicing jobs run on (they keep their own pause).
    for job in ["download-apply", "fetch", "deal-task"] {
        assert_eq!(
            w.run(job, date(18)).await.reason.as_deref(),
            Some("rim_config_sync_his = 0 (kill switch)")
        );
    }
    for job in ["auto-issue", "auto-reissue", "red-flush-poll", "deduct-poll"] {
        // They ran (with nothing to do, they say so as "skipped" with what they did).
        let o = w.run(job, date(18)).await;
        assert_ne!(o.state, fapiao_schemas::RunState::Failed, "{job}: {:?}", o.error);
        assert!(!o.reason.as_deref().unwrap_or("").contains("rim_config_sync_his"), "{job}: {:?}", o.reason);
    }
    fapiao_jobs::ledger::set_paused(&w.db.pool, "auto-issue", true).await.unwrap();
    assert_eq!(
        w.run("auto-issue", date(18)).await.reason.as_deref(),
        Some("paused (fapiao jobs resume to resume)")
    );
    params::set(&w.db.pool, "rim_config", "rim_config_sync_his", "1").await.unwrap();
    fapiao_jobs::ledger::set_paused(&w.db.pool, "fetch", true).await.unwrap();
    assert_eq!(w.run("fetch", date(18)).await.state.as_str(), "skipped");
    assert_eq!(w.run("apply-cache", date(18)).await.state.as_str(), "succeeded");
}

#[tokio::test]
async fn header_only_deductibility_in_sql_matches_the_rust_rule() {
    let w = world("").await;
    let mut checked = 0;
    for day in 1..=60 {
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(day);
        for inv in invoices_for(A, d, 3) {
            let h = inv.header;
            let sql: Option<String> =
                sqlx::query_scalar("SELECT deductibility_without_lines($1, $2, $3, $4, $5, $6)")
                    .bind(h.invoice_kind)
                    .bind(i16::from(h.invoice_property))
                    .bind(h.blockchain)
                    .bind(&h.status)
                    .bind(h.invoice_date)
                    .bind(&h.special_business)
                    .fetch_one(&w.db.pool)
                    .await
                    .unwrap();
            let rust = fapiao_schemas::deductibility::assess(&h.deductibility(&[]));
            use fapiao_schemas::Coded;
            assert_eq!(sql.as_deref(), rust.err().map(|e| e.code()), "{h:?}");
            checked += 1;
        }
    }
    assert!(checked > 100);
    // And every kind (the transport tickets too) in every state, on both sides of 2019-04-01.
    use fapiao_schemas::deductibility::{Invoice, InvoiceStatus};
    for kind in fapiao_schemas::InvoiceKind::ALL {
        for property in [0i16, 1] {
            for status in ["normal", "partially_red_flushed", "red_flushed", "void", "abnormal"] {
                for date in [
                    NaiveDate::from_ymd_opt(2019, 3, 31).unwrap(),
                    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                ] {
                    for special in ["", "农产品收购"] {
                        let sql: Option<String> = sqlx::query_scalar(
                            "SELECT deductibility_without_lines($1, $2, false, $3, $4, $5)",
                        )
                        .bind(kind)
                        .bind(property)
                        .bind(status)
                        .bind(date)
                        .bind(special)
                        .fetch_one(&w.db.pool)
                        .await
                        .unwrap();
                        let invoice = Invoice {
                            kind,
                            is_blue: property == 0,
                            is_blockchain: false,
                            status: InvoiceStatus::from_channel(status),
                            issue_date: date,
                            special_business: fapiao_schemas::deductibility::SpecialBusiness::parse(special),
                            lines: Vec::new(),
                        };
                        use fapiao_schemas::Coded;
                        let rust = fapiao_schemas::deductibility::assess(&invoice).err().map(|e| e.code());
                        assert_eq!(sql.as_deref(), rust, "{kind} {property} {status} {date} {special}");
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_pooled_invoice_red_flushed_later_turns_not_deductible_with_its_history() {
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    let today = date(18);
    for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
        assert_eq!(w.run(job, today).await.state.as_str(), "succeeded");
    }
    let (staging_id, tax_no, code, num): (i64, String, String, String) = sqlx::query_as(
        "SELECT staging_id, tax_no, invoice_code, invoice_num FROM invoice_pool WHERE deductible ORDER BY invoice_num LIMIT 1",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    // The bureau reports it again, red-flushed (a later download carries the changed invoice).
    sqlx::query(
        "UPDATE download_staging SET state = 'pending', status = 'red_flushed', handle_num = 0 WHERE id = $1",
    )
    .bind(staging_id)
    .execute(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(w.run("deal-task", today).await.state.as_str(), "succeeded");
    let detail = fapiao_store::pool::show(&w.db.pool, &num, Some(&code), Some(&tax_no)).await.unwrap();
    assert_eq!(detail.invoice.status, "red_flushed");
    assert_eq!(
        (detail.invoice.deductible, detail.invoice.deductible_reason.as_deref()),
        (false, Some("NOT_DEDUCTIBLE_STATUS"))
    );
    // How it entered (from the pool row), then the change.
    assert_eq!(detail.log.len(), 2, "{:?}", detail.log);
    assert_eq!(
        (detail.log[0].event.as_str(), detail.log[0].detail.as_str()),
        ("entered", format!("税局下载入池（下载暂存行{staging_id}），未查验").as_str())
    );
    assert!(
        detail.log[1].detail.contains("normal → red_flushed；可抵扣 → 不可抵扣"),
        "{}",
        detail.log[1].detail
    );
    // Reported the same again: nothing changes, nothing more is logged.
    sqlx::query("UPDATE download_staging SET state = 'pending', handle_num = 0 WHERE id = $1")
        .bind(staging_id)
        .execute(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(w.run("deal-task", today).await.state.as_str(), "succeeded");
    let again = fapiao_store::pool::show(&w.db.pool, &num, Some(&code), Some(&tax_no)).await.unwrap();
    assert_eq!(again.log.len(), 2);
    // The list finds it by its new state.
    let filter = fapiao_store::pool::PoolFilter {
        status: Some("red_flushed".into()),
        deductible: Some(false),
        limit: 10,
        ..Default::default()
    };
    let listed = fapiao_store::pool::list(&w.db.pool, &filter).await.unwrap();
    assert!(listed.iter().all(|r| r.status == "red_flushed" && !r.deductible));
    assert!(listed.iter().any(|r| r.invoice_num == num), "{listed:?}");
}

#[tokio::test]
async fn documents_use_parts_of_an_invoice_never_beyond_its_total_and_release_them() {
    use fapiao_store::pool::{InvoiceRef, release_document, show, use_invoice};
    use rust_decimal::Decimal;
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
        assert_eq!(w.run(job, date(18)).await.state.as_str(), "succeeded");
    }
    let (num, total): (String, Decimal) = sqlx::query_as(
        "SELECT invoice_num, total FROM invoice_pool WHERE status = 'normal' ORDER BY invoice_num LIMIT 1",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    let at = InvoiceRef { invoice_num: &num, invoice_code: None, tax_no: None };
    let cents = |c: i64| Decimal::new(c, 2);
    use_invoice(&w.db.pool, at, "BX-001", Some("记-0001"), cents(10_000)).await.unwrap();
    // The same document called again keeps both voucher numbers.
    use_invoice(&w.db.pool, at, "BX-001", Some("记-0002"), cents(50)).await.unwrap();
    let free = total - cents(10_050);
    let over = use_invoice(&w.db.pool, at, "FK-002", None, free + cents(1)).await.unwrap_err();
    assert_eq!(over.code(), "INVOICE_USE_EXCEEDS_AVAILABLE");
    assert_eq!(
        over.to_string(),
        format!("保存发票关系失败，发票{num}使用金额超出剩余可用金额{free}元，保存失败")
    );
    use_invoice(&w.db.pool, at, "FK-002", None, free).await.unwrap();
    let full = use_invoice(&w.db.pool, at, "FK-003", None, cents(1)).await.unwrap_err();
    assert!(full.to_string().contains("剩余可用金额0.00元"), "{full}");
    let d = show(&w.db.pool, &num, None, None).await.unwrap();
    assert_eq!((d.uses.len(), d.available), (3, Decimal::ZERO));
    // Deleting the first document frees what it used; the log keeps every step.
    assert_eq!(release_document(&w.db.pool, "BX-001").await.unwrap(), 2);
    let d = show(&w.db.pool, &num, None, None).await.unwrap();
    assert_eq!(d.available, cents(10_050));
    let events: Vec<&str> = d.log.iter().map(|l| l.event.as_str()).collect();
    assert_eq!(events, ["entered", "used", "used", "used", "released", "released"]);
    assert_eq!(release_document(&w.db.pool, "BX-001").await.unwrap_err().code(), "NOT_FOUND");
    let bad = use_invoice(&w.db.pool, at, "X", None, Decimal::new(1, 3)).await.unwrap_err();
    assert_eq!(bad.code(), "INVALID_INPUT");
    // 合规性校验: past the enterprise's reimbursement period it is refused verbatim.
    let tax_no: String = sqlx::query_scalar("SELECT tax_no FROM invoice_pool WHERE invoice_num = $1")
        .bind(&num)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    params::set(&w.db.pool, "rim_compliance_reimburse_days", &tax_no, "1").await.unwrap();
    let late = use_invoice(&w.db.pool, at, "BX-009", None, cents(1)).await.unwrap_err();
    assert_eq!(
        (late.code(), late.to_string()),
        ("REIMBURSEMENT_PERIOD_EXCEEDED", "超过企业设置的报销期限".to_string())
    );
    // 重复报销: with single use on, a second document is refused verbatim while the first holds
    // part of it; each rule's outcome is traced, the refusals too.
    params::unset(&w.db.pool, "rim_compliance_reimburse_days", &tax_no).await.unwrap();
    params::set(&w.db.pool, "rim_compliance_single_use", &tax_no, "1").await.unwrap();
    let other = use_invoice(&w.db.pool, at, "BX-010", None, cents(1)).await.unwrap_err();
    assert_eq!(
        (other.code(), other.to_string()),
        ("INVOICE_ALREADY_USED", "发票已被单据使用（单据FK-002）".to_string())
    );
    release_document(&w.db.pool, "FK-002").await.unwrap();
    use_invoice(&w.db.pool, at, "BX-010", None, cents(1)).await.unwrap();
    let d = show(&w.db.pool, &num, None, None).await.unwrap();
    let rules: Vec<(&str, &str, bool)> =
        d.compliance.iter().map(|c| (c.stage.as_str(), c.rule.as_str(), c.passed)).collect();
    assert_eq!(
        rules,
        [("use", "REIMBURSEMENT_PERIOD", false), ("use", "SINGLE_USE", false), ("use", "SINGLE_USE", true)]
    );
}

/// The use cases on the world's database and channel.
fn app(w: &World) -> fapiao_usecases::App {
    fapiao_usecases::App::new(w.db.pool.clone(), w.ctx.channel.clone(), w.ctx.settings.clone())
}

/// Pool the syncs of a few download days unverified and give back `n` deductible normal
/// invoices of A.
async fn pooled_deductible(w: &World, n: i64) -> Vec<String> {
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    for day in [9, 12, 15, 18] {
        for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
            assert_eq!(w.run(job, date(day)).await.state.as_str(), "succeeded");
        }
    }
    sqlx::query_scalar(
        "SELECT invoice_num FROM invoice_pool WHERE tax_no = $1 AND deductible AND status = 'normal'
          ORDER BY invoice_num LIMIT $2",
    )
    .bind(A)
    .bind(n)
    .fetch_all(&w.db.pool)
    .await
    .unwrap()
}

fn selecting(action: fapiao_schemas::SelectAction, numbers: &[String]) -> fapiao_usecases::deduct::Request {
    fapiao_usecases::deduct::Request { action, numbers: numbers.to_vec(), tax_no: None, period: None }
}

async fn select_states(w: &World, numbers: &[String]) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT select_state, select_period FROM invoice_pool WHERE invoice_num = ANY($1) ORDER BY invoice_num")
        .bind(numbers)
        .fetch_all(&w.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_async_selection_batch_is_polled_to_done_and_a_stopped_batch_stops() {
    use fapiao_schemas::deduction::TaxPeriod;
    use fapiao_schemas::{SelectAction, SelectBatchState};
    use fapiao_usecases::{Actor, deduct};
    let w = world("").await;
    let numbers = pooled_deductible(&w, 6).await;
    assert_eq!(numbers.len(), 6);
    let app = app(&w);
    let actor = Actor::Demo;
    // The bureau voided one invoice since it was pooled (ours still says normal): it fails alone.
    let voided = numbers[2].clone();
    w.sandbox.world().set_input_status(&voided, "void");
    w.sandbox.world().selection.set_period(A, Some(TaxPeriod::parse("202611").unwrap()));

    // rpa_select_syn unset: asynchronous — the batch is pending, its invoices 勾选中.
    let sent = deduct::submit(&app, &actor, &selecting(SelectAction::Select, &numbers[..3])).await.unwrap();
    assert_eq!(sent.len(), 1);
    let b = &sent[0].batch;
    assert_eq!(
        (b.state, b.sync, b.period.as_str(), b.total),
        (SelectBatchState::Pending, false, "202611", 3)
    );
    assert!(sent[0].period_fixed);
    assert!(select_states(&w, &numbers[..3]).await.iter().all(|s| s.0 == "selecting"));
    // Polled before the bureau finished: still open, nothing moved.
    let early = deduct::poll(&app, &actor).await.unwrap();
    assert_eq!((early.polled, early.still_open), (1, 1));
    tokio::time::sleep(Duration::from_millis(500)).await; // pending 200 ms, processing 200 ms
    let run = w.run("deduct-poll", date(18)).await;
    assert_eq!((run.state.as_str(), run.rows_read, run.rows_written), ("succeeded", 1, 1), "{run:?}");
    let done = deduct::batches(&app, Some(A), false, 10).await.unwrap();
    assert_eq!((done[0].state, done[0].succeeded, done[0].failed), (SelectBatchState::Done, 2, 1));
    // Each invoice as the bureau reports it: two selected for 202611, the voided one back.
    let states = select_states(&w, &numbers[..3]).await;
    for (num, (state, period)) in numbers[..3].iter().zip(&states) {
        if *num == voided {
            assert_eq!((state.as_str(), period.as_deref()), ("unselected", None));
            assert_eq!(w.sandbox.world().selection.selected(A, num), None);
        } else {
            assert_eq!((state.as_str(), period.as_deref()), ("selected", Some("202611")));
            assert_eq!(
                w.sandbox.world().selection.selected(A, num),
                Some(TaxPeriod::parse("202611").unwrap())
            );
        }
    }
    // The selection log keeps each step with who did it; the pool's own log the success.
    let status = deduct::status(&app, &numbers[0], None).await.unwrap();
    let steps: Vec<(&str, &str)> =
        status.log.iter().map(|l| (l.outcome.as_str(), l.actor.as_str())).collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0], ("pending", "demo"));
    assert!(steps[1].0 == "succeeded" && steps[1].1.starts_with("job:deduct-poll#"), "{steps:?}");
    let failed = deduct::status(&app, &voided, None).await.unwrap();
    assert_eq!(failed.log.last().unwrap().outcome.as_str(), "failed");
    assert!(failed.log.last().unwrap().message.contains("不可勾选"), "{:?}", failed.log);
    let pooled = fapiao_store::pool::show(&w.db.pool, &numbers[0], None, None).await.unwrap();
    assert_eq!(pooled.log.last().unwrap().event, "selected");

    // A batch stopped while pending stops: nothing reaches the bureau, the invoices go back.
    w.sandbox.world().config.select_delay = Duration::from_secs(600);
    let sent = deduct::submit(&app, &actor, &selecting(SelectAction::Select, &numbers[3..5])).await.unwrap();
    let batch_no = sent[0].batch.batch_no.clone();
    let stopped = deduct::stop(&app, &actor, &batch_no).await.unwrap();
    assert_eq!((stopped.state, stopped.total), (SelectBatchState::Stopped, 2));
    assert!(select_states(&w, &numbers[3..5]).await.iter().all(|s| s.0 == "unselected"));
    assert!(numbers[3..5].iter().all(|n| w.sandbox.world().selection.selected(A, n).is_none()));
    let again = deduct::stop(&app, &actor, &batch_no).await.unwrap_err();
    assert_eq!(again.code(), "SELECT_STOP_REFUSED");
    let unknown = deduct::stop(&app, &actor, "SEL-NOPE").await.unwrap_err();
    assert_eq!(unknown.kind(), fapiao_usecases::ErrorKind::NotFound);
    // A batch the bureau already works on cannot be stopped: refused with the bureau's words.
    let sent = deduct::submit(&app, &actor, &selecting(SelectAction::Unselect, &numbers[..1])).await.unwrap();
    let batch_no = &sent[0].batch.batch_no;
    w.sandbox.world().selection.begin(batch_no);
    let refused = deduct::stop(&app, &actor, batch_no).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.to_string()),
        (
            "SELECT_STOP_REFUSED",
            format!(
                "批次{batch_no}处理中，不能停止：正在操作税局、已经成功完成、或明确失败终止的批次不能作废"
            )
        )
    );
    // … and the refusal brought our copy up to date: processing, the invoice still 取消勾选中.
    assert_eq!(deduct::batches(&app, Some(A), true, 1).await.unwrap()[0].state, SelectBatchState::Processing);
    assert_eq!(select_states(&w, &numbers[..1]).await[0].0, "unselecting");
}

#[tokio::test]
async fn synchronous_selection_answers_at_once_and_every_refusal_is_kept_verbatim() {
    use fapiao_schemas::deduction::TaxPeriod;
    use fapiao_schemas::{SelectAction, SelectBatchState};
    use fapiao_usecases::{Actor, deduct};
    let w = world("").await;
    let numbers = pooled_deductible(&w, 4).await;
    let app = app(&w);
    let actor = Actor::Demo;
    params::set(&w.db.pool, "rim_config", "rpa_select_syn", "1").await.unwrap();
    let p = |s: &str| TaxPeriod::parse(s).unwrap();
    let batches = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM select_batch").fetch_one(&w.db.pool).await.unwrap()
    };
    let select_calls = || w.sandbox.world().calls.get("invoiceSelect").copied().unwrap_or(0);

    // The channel reports 202611: fixed. Asking for another period is refused, nothing sent.
    w.sandbox.world().selection.set_period(A, Some(p("202611")));
    let mut req = selecting(SelectAction::Select, &numbers[..2]);
    req.period = Some(p("202610"));
    let fixed = deduct::submit(&app, &actor, &req).await.unwrap_err();
    assert_eq!(
        (fixed.code(), fixed.to_string().as_str()),
        ("TAX_PERIOD_FIXED", "税款所属期由税局确定为202611，不可修改为202610")
    );
    assert_eq!((batches().await, select_calls()), (0, 0));
    // Synchronous (rpa_select_syn = 1): each invoice's result at once.
    req.period = None;
    let sent = deduct::submit(&app, &actor, &req).await.unwrap();
    let b = &sent[0].batch;
    assert_eq!((b.state, b.sync, b.succeeded, b.failed), (SelectBatchState::Done, true, 2, 0));
    assert!(select_states(&w, &numbers[..2]).await.iter().all(|s| s.0 == "selected"));
    // Selecting them again is refused on our side, naming each.
    let twice =
        deduct::submit(&app, &actor, &selecting(SelectAction::Select, &numbers[..2])).await.unwrap_err();
    assert_eq!(twice.code(), "SELECT_NOT_ALLOWED");
    assert!(twice.to_string().contains(&format!("发票{}已勾选（所属期202611）", numbers[0])), "{twice}");
    // The channel cannot tell the period: the current month or the one asked for (editable).
    w.sandbox.world().selection.set_period(A, None);
    let mut req = selecting(SelectAction::Select, &numbers[2..3]);
    req.period = Some(p("202609"));
    let sent = deduct::submit(&app, &actor, &req).await.unwrap();
    assert!(!sent[0].period_fixed);
    assert_eq!(select_states(&w, &numbers[2..3]).await[0], ("selected".into(), Some("202609".into())));
    // Unselecting in another period than the one selected is refused; in its own, done.
    let mut req = selecting(SelectAction::Unselect, &numbers[2..3]);
    req.period = Some(p("202610"));
    let other = deduct::submit(&app, &actor, &req).await.unwrap_err();
    assert!(other.to_string().contains("勾选所属期为202609，与202610不一致"), "{other}");
    req.period = Some(p("202609"));
    deduct::submit(&app, &actor, &req).await.unwrap();
    assert_eq!(select_states(&w, &numbers[2..3]).await[0], ("unselected".into(), None));

    // 无预勾选权限: the bureau refuses the account; the batch is failed, the invoice back.
    w.sandbox.world().selection.deny(A);
    let denied =
        deduct::submit(&app, &actor, &selecting(SelectAction::Select, &numbers[3..4])).await.unwrap_err();
    assert_eq!(
        (denied.code(), denied.to_string().as_str()),
        ("NO_PRESELECT_PERMISSION", "无预勾选权限，请配置发票主表的提交预勾选权限")
    );
    assert_eq!(select_states(&w, &numbers[3..4]).await[0].0, "unselected");
    let last = &deduct::batches(&app, Some(A), false, 1).await.unwrap()[0];
    assert_eq!(
        (last.state, last.message.as_str()),
        (SelectBatchState::Failed, "无预勾选权限，请配置发票主表的提交预勾选权限")
    );

    // A small-scale enterprise: refused verbatim, never sent.
    let small: String = sqlx::query_scalar("SELECT invoice_num FROM invoice_pool WHERE tax_no = $1 LIMIT 1")
        .bind(B)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    let (before, calls) = (batches().await, select_calls());
    let refused = deduct::submit(&app, &actor, &selecting(SelectAction::Select, &[small])).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.to_string().as_str()),
        (
            "SMALL_SCALE_NO_DEDUCTION",
            "小规模纳税人不支持抵扣类勾选数据下载，可根据企业在税局的信息，在星瀚发票云企业基础资料修改。"
        )
    );
    assert_eq!((batches().await, select_calls()), (before, calls));
    // Unknown invoices and not-deductible ones: nothing done.
    let unknown = deduct::submit(&app, &actor, &selecting(SelectAction::Select, &["99999999".into()]))
        .await
        .unwrap_err();
    assert_eq!((unknown.code(), unknown.kind()), ("NOT_FOUND", fapiao_usecases::ErrorKind::NotFound));
    let not_deductible: String = sqlx::query_scalar(
        "SELECT invoice_num FROM invoice_pool WHERE tax_no = $1 AND NOT deductible LIMIT 1",
    )
    .bind(A)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    let no =
        deduct::submit(&app, &actor, &selecting(SelectAction::Select, &[not_deductible])).await.unwrap_err();
    assert_eq!(no.code(), "SELECT_NOT_ALLOWED");
    assert!(no.to_string().contains("不可抵扣"), "{no}");
    assert_eq!((batches().await, select_calls()), (before, calls));
}

#[tokio::test]
async fn a_lost_selection_answer_is_settled_by_its_number_and_nothing_is_selected_twice() {
    use fapiao_channel::sandbox::FaultPlan;
    use fapiao_schemas::SelectAction;
    use fapiao_usecases::{Actor, deduct};
    let w = world("").await;
    let numbers = pooled_deductible(&w, 2).await;
    let app = app(&w);
    params::set(&w.db.pool, "rim_config", "rpa_select_syn", "1").await.unwrap();
    let faults = |spec: &str| w.sandbox.world().dice.set_plan(FaultPlan::parse(spec).unwrap());

    // The bureau selects, every answer is cut off: the batch stays open, the invoice 勾选中.
    faults("drop@invoiceSelect=1");
    let sent =
        deduct::submit(&app, &Actor::Demo, &selecting(SelectAction::Select, &numbers[..1])).await.unwrap();
    assert!(sent[0].answer_lost);
    assert!(sent[0].batch.state.is_open() && !sent[0].batch.acknowledged);
    assert_eq!(select_states(&w, &numbers[..1]).await[0].0, "selecting");
    assert!(w.sandbox.world().calls["invoiceSelect"] > 1, "retried under the same number");
    assert!(w.sandbox.world().selection.selected(A, &numbers[0]).is_some());
    // The poll asks by number: the bureau's one batch, selected once (a second selection
    // would have failed as 已勾选).
    faults("");
    let polled = deduct::poll(&app, &Actor::Demo).await.unwrap();
    assert_eq!((polled.finished, polled.resent), (1, 0));
    let b = &deduct::batches(&app, Some(A), false, 1).await.unwrap()[0];
    assert_eq!((b.succeeded, b.failed, b.acknowledged), (1, 0, true));
    assert_eq!(select_states(&w, &numbers[..1]).await[0].0, "selected");

    // The request never reached the bureau (gateway failures): the poll sends it again under
    // the same number.
    faults("http5xx@invoiceSelect=1");
    let sent =
        deduct::submit(&app, &Actor::Demo, &selecting(SelectAction::Select, &numbers[1..2])).await.unwrap();
    assert!(sent[0].answer_lost);
    assert!(w.sandbox.world().selection.selected(A, &numbers[1]).is_none());
    faults("");
    let polled = deduct::poll(&app, &Actor::Demo).await.unwrap();
    assert_eq!((polled.finished, polled.resent), (1, 1));
    assert_eq!(select_states(&w, &numbers[1..2]).await[0].0, "selected");
    let again = deduct::batches(&app, Some(A), false, 1).await.unwrap();
    assert_eq!((again[0].batch_no.as_str(), again[0].succeeded), (sent[0].batch.batch_no.as_str(), 1));
}

#[tokio::test]
async fn deduction_data_reaches_the_pool_and_small_scale_enterprises_download_input_invoices_only() {
    use fapiao_schemas::deduction::TaxPeriod;
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    let today = date(18);
    // Selected on the e-tax website, not here: the bureau holds it selected for 202611.
    let elsewhere = invoices_for(A, today - chrono::Duration::days(1), 1)
        .into_iter()
        .find(|i| i.header.status == "normal")
        .unwrap()
        .header
        .invoice_num;
    let p = TaxPeriod::parse("202611").unwrap();
    w.sandbox.world().selection.mark_selected(A, &elsewhere, p);
    let mut outcomes = Vec::new();
    for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
        let o = w.run(job, today).await;
        assert_eq!(o.state.as_str(), "succeeded", "{job}: {o:?}");
        outcomes.push(o);
    }
    // The general taxpayer asked for deduction data, the small-scale one for input invoices
    // only — and the run says why, verbatim.
    let scopes: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT tax_no, scope FROM download_log ORDER BY 1")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(scopes, [(A.to_string(), "deduction".to_string()), (B.to_string(), "all".to_string())]);
    let reason = outcomes[1].reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("深圳示例便利店 ({B}): 小规模纳税人不支持抵扣类勾选数据下载，可根据企业在税局的信息，在星瀚发票云企业基础资料修改。")),
        "{reason}"
    );
    // What the bureau reported reached the pool: selected there, selected here.
    let state = |num: String| {
        let pool = w.db.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT select_state, select_period FROM invoice_pool WHERE invoice_num = $1",
            )
            .bind(num)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(state(elsewhere.clone()).await, ("selected".into(), Some("202611".into())));
    let selected: i64 = w.count("SELECT count(*) FROM invoice_pool WHERE select_state = 'selected'").await;
    assert_eq!(selected, 1);
    // Unselected there later: the next download of that invoice says so, the pool follows and
    // the selection log keeps where it came from.
    sqlx::query(
        "UPDATE download_staging SET state = 'pending', handle_num = 0, select_period = NULL WHERE invoice_num = $1",
    )
    .bind(&elsewhere)
    .execute(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(w.run("deal-task", today).await.state.as_str(), "succeeded");
    assert_eq!(state(elsewhere.clone()).await, ("unselected".into(), None));
    let app = app(&w);
    let log = fapiao_usecases::deduct::status(&app, &elsewhere, None).await.unwrap().log;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].actor.as_str(), log[0].action.as_str()), ("发票下载", "unselect"));
    assert!(log[0].message.contains("未勾选"), "{:?}", log[0]);
}

#[tokio::test]
async fn changed_invoices_are_verified_again_where_the_scheme_says_so_and_a_status_query_renews_one() {
    use fapiao_usecases::Actor;
    let w = world("").await;
    params::set(&w.db.pool, "rim_config", "key_element_check", "0").await.unwrap();
    let today = date(18);
    for job in ["apply-cache", "download-apply", "fetch", "deal-task"] {
        assert_eq!(w.run(job, today).await.state.as_str(), "succeeded");
    }
    let normal: Vec<(i64, String)> = sqlx::query_as(
        "SELECT staging_id, invoice_num FROM invoice_pool WHERE tax_no = $1 AND status = 'normal' AND NOT verified
          ORDER BY invoice_num LIMIT 3",
    )
    .bind(A)
    .fetch_all(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(normal.len(), 3);
    // The bureau red-flushes part of an invoice; a later download carries it.
    let report_again = |(staging_id, num): (i64, String)| {
        let w = &w;
        async move {
            w.sandbox.world().set_input_status(&num, "partially_red_flushed");
            sqlx::query(
                "UPDATE download_staging SET state = 'pending', status = 'partially_red_flushed', handle_num = 0 WHERE id = $1",
            )
            .bind(staging_id)
            .execute(&w.db.pool)
            .await
            .unwrap();
            assert_eq!(w.run("deal-task", today).await.state.as_str(), "succeeded");
            fapiao_store::pool::show(&w.db.pool, &num, None, Some(A)).await.unwrap()
        }
    };
    let events =
        |d: &fapiao_store::pool::PoolDetail| d.log.iter().map(|l| l.event.clone()).collect::<Vec<_>>();
    // Switch off (the default): the new status only.
    let off = report_again(normal[0].clone()).await;
    assert_eq!(events(&off), ["entered", "status_changed"]);
    assert!(!off.invoice.verified && off.lines.is_empty());
    // 进项状态更新的发票是否查验入库 on: verified again, its lines stored.
    fapiao_store::schemes::set_verify_changed(&w.db.pool, &format!("S-{A}"), true).await.unwrap();
    let on = report_again(normal[1].clone()).await;
    assert_eq!(events(&on), ["entered", "status_changed", "verified"], "{:?}", on.log);
    let bureau_lines = w.sandbox.world().verified_lines(&normal[1].1);
    assert!(on.invoice.verified && on.lines.len() == bureau_lines && bureau_lines > 0, "{:?}", on.lines);
    assert!(on.log[2].detail.contains("进项状态更新：重新查验"), "{}", on.log[2].detail);
    // A status query (pool refresh): the bureau voided the third; the pool learns it now.
    w.sandbox.world().set_input_status(&normal[2].1, "void");
    let at =
        fapiao_store::pool::InvoiceRef { invoice_num: &normal[2].1, invoice_code: None, tax_no: Some(A) };
    let d = fapiao_usecases::pool::verify_again(&app(&w), &Actor::Demo, at, "状态查询").await.unwrap();
    assert_eq!(
        (d.invoice.status.as_str(), d.invoice.deductible, d.invoice.deductible_reason.as_deref()),
        ("void", false, Some("NOT_DEDUCTIBLE_STATUS"))
    );
    assert!(d.log.last().unwrap().detail.starts_with("状态查询：重新查验"), "{:?}", d.log);
    let unknown =
        fapiao_store::pool::InvoiceRef { invoice_num: "00000000", invoice_code: None, tax_no: None };
    let err =
        fapiao_usecases::pool::verify_again(&app(&w), &Actor::Demo, unknown, "状态查询").await.unwrap_err();
    assert_eq!(err.kind(), fapiao_usecases::ErrorKind::NotFound);
}

#[tokio::test]
async fn pool_invoice_files_download_in_the_configured_format_under_a_name_template() {
    use fapiao_schemas::invoice_file::NameTemplate;
    use fapiao_usecases::{Actor, pool};
    let w = world("").await;
    let numbers = pooled_deductible(&w, 2).await;
    let app = app(&w);
    let out = std::env::temp_dir().join(format!("fapiao-pool-files-{}", std::process::id()));
    let request = |format, out: std::path::PathBuf| pool::DownloadRequest {
        numbers: numbers.clone(),
        tax_no: None,
        format,
        name: NameTemplate::parse("{开票日期}_{发票号码}").unwrap(),
        out,
    };
    // rim_filetype_selected/file_type decides the format when none is asked for.
    params::set(&w.db.pool, "rim_filetype_selected", "file_type", "xml").await.unwrap();
    let r = pool::download(&app, &Actor::Demo, &request(None, out.clone())).await.unwrap();
    assert_eq!((r.written.len(), r.failed.len()), (2, 0), "{:?}", r.failed);
    for (w_, num) in r.written.iter().zip(&numbers) {
        let date: chrono::NaiveDate =
            sqlx::query_scalar("SELECT invoice_date FROM invoice_pool WHERE invoice_num = $1")
                .bind(num)
                .fetch_one(&w.db.pool)
                .await
                .unwrap();
        assert_eq!(w_.file, format!("{date}_{num}.xml"));
        let text = std::fs::read_to_string(out.join(&w_.file)).unwrap();
        assert!(text.contains(&format!("<InvoiceNum>{num}</InvoiceNum>")), "{text}");
    }
    // A number not in the pool refuses the request; nothing more is written.
    let mut bad = request(Some(fapiao_schemas::invoice_file::FileFormat::Pdf), out.join("more"));
    bad.numbers.push("00000000".into());
    let err = pool::download(&app, &Actor::Demo, &bad).await.unwrap_err();
    assert_eq!(err.kind(), fapiao_usecases::ErrorKind::NotFound);
    assert!(!out.join("more").exists());
    std::fs::remove_dir_all(&out).unwrap();
}
