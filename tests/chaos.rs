//! Chaos: the sandbox fails 30% of calls with every kind of fault of the moment, over several
//! rounds of imports, issuing, reissue, red-flush and the four sync jobs. Then the faults stop,
//! the schedule's work goes on until it is done, and the sandbox's own ledger and our tables
//! must agree: nothing issued twice, nothing lost, nothing stuck, no row given up for a fault
//! of the moment. (`verify_expired` is left out on purpose: it is the documented permanent
//! refusal that stops a sync run naming the enterprise — `jobs/tests/sync_flow.rs`.)

#[path = "../invoicing/tests/common/mod.rs"]
mod invoicing_world;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDate;
use fapiao_channel::codes::IssueStatus;
use fapiao_channel::sandbox::{FaultPlan, invoices_for};
use fapiao_invoicing::redflush::Request;
use fapiao_jobs::metrics::Metrics;
use fapiao_jobs::{JobContext, Registry, runner};
use fapiao_schemas::enterprise::SyncScheme;
use fapiao_schemas::{Money, TaxNo};
use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::{Actor, App, red_flush};
use invoicing_world::{BUYER, SELLER, World, line, world};

const FAULTS: &str = "http5xx=0.3,drop=0.3,expire=0.3,logout=0.3,repairing=0.3,unstable=0.3";
const ROUNDS: u32 = 4;
const SYNC_JOBS: [&str; 4] = ["apply-cache", "download-apply", "fetch", "deal-task"];

struct Chaos {
    w: World,
    app: App,
    jobs: JobContext,
    registry: Registry,
}

impl Chaos {
    async fn new() -> Chaos {
        let w = world(FAULTS, &[("FAPIAO__INVOICING__SETTLE_WITHIN_SECS", "2")]).await;
        // Repair times a minute ahead: auto-reissue finds them due only once the faults stop.
        w.sandbox.world().config.repair_after = Duration::from_secs(60);
        for tax_no in [SELLER, BUYER] {
            let scheme = SyncScheme {
                code: format!("S-{tax_no}"),
                tax_no: TaxNo::parse(tax_no).unwrap(),
                start_date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                active: true,
                verify_changed: false,
            };
            fapiao_store::schemes::insert(&w.db.pool, &scheme).await.unwrap();
        }
        // Auto-reissue takes failures whose message holds a configured fragment (自动重开配置).
        fapiao_store::params::set(&w.db.pool, "sim_auto_issue_config", "repairing", "局端内部错误")
            .await
            .unwrap();
        let settings = (*w.inv.settings).clone();
        let app = App::new(w.db.pool.clone(), w.inv.channel.clone(), w.inv.settings.clone());
        let jobs =
            JobContext::new(w.db.pool.clone(), w.inv.channel.clone(), settings.clone(), "chaos".into());
        let registry = Registry::from_settings(&settings).unwrap();
        Chaos { w, app, jobs, registry }
    }

    async fn sync(&self, date: NaiveDate) {
        for job in SYNC_JOBS {
            let (_, outcome) =
                runner::run_now(&self.jobs, self.registry.get(job).unwrap(), Some(date), &Metrics::default())
                    .await
                    .unwrap();
            assert_ne!(outcome.state.as_str(), "failed", "{job} on {date}: {outcome:?}");
        }
    }

    /// Red-flush 50.00 of up to two blue invoices never red-flushed before (one request each, so
    /// a failed red invoice always still fits when it is reissued: the case where it no longer
    /// does is `invoicing/tests/red_flush.rs`).
    async fn red_flush_some(&self) {
        let nums: Vec<String> = sqlx::query_scalar(
            "SELECT b.invoice_num FROM issued_invoice b
              WHERE b.invoice_property = 0 AND NOT EXISTS (SELECT 1 FROM pending_invoice r WHERE r.blue_invoice_id = b.id)
              ORDER BY b.id LIMIT 2",
        )
        .fetch_all(&self.w.db.pool)
        .await
        .unwrap();
        let requests: Vec<Request> = nums
            .into_iter()
            .map(|n| Request {
                invoice_num: n,
                amount: Some(Money::parse("50.00").unwrap()),
                reason: Some("04".into()),
                ..Request::default()
            })
            .collect();
        if !requests.is_empty() {
            red_flush::invoices(&self.app, &Actor::cli(), &requests, &|_| {}).await.unwrap();
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.w.scalar::<i64>(sql).await
    }
}

fn business_date(round: u32) -> NaiveDate {
    // Days of the month divisible by 3: download-apply's default days.
    NaiveDate::from_ymd_opt(2026, 11, 18 + 3 * round).unwrap()
}

#[tokio::test]
async fn thirty_percent_faults_of_every_kind_end_with_the_ledger_and_our_tables_agreeing() {
    let c = Chaos::new().await;
    let actor = Actor::cli();
    for round in 0..ROUNDS {
        let lines: Vec<String> = (0..8)
            .map(|n| line(&format!("C{round}-{n}"), "数电普票", BUYER, 1 + n % 3, "100.00", "正常", "ERP1"))
            .collect();
        c.w.import(&format!("round-{round}.csv"), &lines).await;
        issuing::issue(&c.app, &actor, &Selection::All, &|_| {}).await.unwrap();
        issuing::reissue(&c.app, &actor, chrono::Utc::now(), false, None, &|_| {}).await.unwrap();
        c.red_flush_some().await;
        red_flush::poll(&c.app, &actor).await.unwrap();
        c.sync(business_date(round)).await;
    }

    // The faults stop; the jobs' work goes on until nothing is left (repair times have passed).
    c.w.sandbox.world().dice.set_plan(FaultPlan::none());
    let last = business_date(ROUNDS - 1);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    for _ in 0..6 {
        issuing::issue(&c.app, &actor, &Selection::All, &|_| {}).await.unwrap();
        issuing::reissue(&c.app, &actor, later, false, None, &|_| {}).await.unwrap();
        red_flush::poll(&c.app, &actor).await.unwrap();
        c.sync(last).await;
    }

    // The dice did strike: answers were lost and settled by query, repairs were reissued.
    assert!(c.count("SELECT count(*) FROM pending_event WHERE event = 'answer_lost'").await > 0);
    assert!(c.count("SELECT coalesce(sum(reissue_count), 0)::bigint FROM pending_invoice").await > 0);

    // Nothing issued twice: the channel's ledger shows at most one success per pending invoice,
    // and every success is recorded here with the channel's own number.
    let per = c.w.succeeded_at_channel().await;
    assert!(per.values().all(|n| *n <= 1), "issued twice: {per:?}");
    let issued: Vec<(String, String)> = sqlx::query_as("SELECT serial_no, invoice_num FROM issued_invoice")
        .fetch_all(&c.w.db.pool)
        .await
        .unwrap();
    assert_eq!(issued.len(), per.values().sum::<usize>(), "every invoice the channel issued is recorded");
    {
        let ledger = c.w.sandbox.world();
        for (serial, num) in &issued {
            let r = ledger.outcome(serial).expect("recorded serials are the channel's");
            assert_eq!((r.issue_status, r.invoice_num.as_str()), (IssueStatus::Succeeded, num.as_str()));
        }
    }
    // Nothing lost, nothing stuck: every bill line is on an issued invoice, every invoice and
    // red-flush request is final, every staged row pooled.
    let unfinished: Vec<(i64, String, i16, Option<String>, i32)> = sqlx::query_as(
        "SELECT id, status, invoice_property, error_message, reissue_count FROM pending_invoice
          WHERE deleted_at IS NULL AND status <> 'succeeded'",
    )
    .fetch_all(&c.w.db.pool)
    .await
    .unwrap();
    assert!(unfinished.is_empty(), "{unfinished:#?}");
    assert_eq!(
        c.count("SELECT count(*) FROM pending_invoice WHERE deleted_at IS NULL AND invoice_property = 0")
            .await,
        c.count("SELECT count(*) FROM issued_invoice WHERE invoice_property = 0").await
    );
    assert_eq!(c.count("SELECT count(*) FROM application_line l WHERE NOT EXISTS (SELECT 1 FROM pending_line p WHERE p.bill_no = l.bill_no AND p.bill_line_no = l.line_no)").await, 0, "every imported line is on an invoice");
    assert_eq!(
        c.count("SELECT count(*) FROM red_flush WHERE state NOT IN ('succeeded', 'refused')").await,
        0
    );
    assert!(c.count("SELECT count(*) FROM red_flush WHERE state = 'succeeded'").await > 0);
    assert_eq!(
        c.count(
            "SELECT count(*) FROM download_staging WHERE state NOT IN ('done_verified', 'done_unverified')"
        )
        .await,
        0,
        "no row given up, none left pending"
    );
    assert_eq!(c.count("SELECT count(*) FROM download_application WHERE state <> 'done'").await, 0);
    assert_eq!(c.count("SELECT count(*) FROM download_log WHERE state <> 'fetched'").await, 0);
    // The pool holds exactly what the bureau has for the days applied for.
    let days: Vec<(String, NaiveDate)> =
        sqlx::query_as("SELECT tax_no, invoice_date FROM download_application")
            .fetch_all(&c.w.db.pool)
            .await
            .unwrap();
    let expected: BTreeSet<(String, String)> = days
        .iter()
        .flat_map(|(tax_no, day)| invoices_for(tax_no, *day, 7))
        .map(|inv| (inv.header.invoice_code, inv.header.invoice_num))
        .collect();
    let pooled: Vec<(String, String)> = sqlx::query_as("SELECT invoice_code, invoice_num FROM invoice_pool")
        .fetch_all(&c.w.db.pool)
        .await
        .unwrap();
    assert_eq!(pooled.into_iter().collect::<BTreeSet<_>>(), expected);
}
