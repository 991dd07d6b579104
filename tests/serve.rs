//! `fapiao serve` and `fapiao jobs run` as real processes on one database.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{code, stderr};
use fapiao_store::testing::TestDb;

const BUYER: &str = "91310000MA1FL2AB09";

fn fapiao(db: &TestDb, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fapiao"));
    c.args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("FAPIAO_CONFIG")
        .env("RUST_LOG", "warn")
        .env("FAPIAO__METRICS__LISTEN", "")
        .env("FAPIAO__CHANNEL__BASE_URL", "http://127.0.0.1:9")
        .env("FAPIAO__JOBS__POLL_MS", "100")
        .env("FAPIAO__JOBS__HEARTBEAT_SECS", "1")
        .env("FAPIAO__JOBS__LEASE_SECS", "3")
        .env("FAPIAO__JOBS__DEAL_BATCH_SIZE", "500");
    c
}

fn serve(db: &TestDb) -> Child {
    let every_second = "* * * * * *"; // every second
    fapiao(db, &["serve"])
        .env("FAPIAO__SCHEDULES__APPLY_CACHE", every_second)
        .env("FAPIAO__SCHEDULES__DOWNLOAD_APPLY", every_second)
        .env("FAPIAO__SCHEDULES__FETCH", every_second)
        .env("FAPIAO__SCHEDULES__DEAL_TASK", every_second)
        // A slow machine must not mistake a busy worker for a dead one here.
        .env("FAPIAO__JOBS__LEASE_SECS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: kill(2) with a pid we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

async fn scalar(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap()
}

async fn key_element_check_off(db: &TestDb) {
    fapiao_store::params::set(&db.pool, "rim_config", "key_element_check", "0").await.unwrap();
}

#[tokio::test]
async fn two_serve_processes_run_every_tick_once_never_overlap_and_share_the_staged_rows() {
    let db = TestDb::new().await;
    key_element_check_off(&db).await;
    let mut a = serve(&db);
    let mut b = serve(&db);
    // Rows arrive in waves while both serve, so successive deal-task runs find work; which
    // process claims a tick is a race (jittered polls), so ~25 working runs share them.
    let mut staged = 0;
    for wave in 0..25 {
        staged += fapiao_jobs::synthetic::stage(&db.pool, BUYER, wave * 1000, 1000).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(terminate(&mut a).success());
    assert!(terminate(&mut b).success());

    // Every tick ran once (unique), by one worker, and nothing is left claimed.
    assert_eq!(scalar(&db, "SELECT count(*) FROM job_run WHERE state IN ('running', 'due') AND trigger = 'schedule' AND scheduled_for < now() - interval '3 seconds'").await, 0);
    assert!(scalar(&db, "SELECT count(*) FROM job_run WHERE job = 'deal-task'").await >= 5);
    // No job ran twice at the same time.
    let overlaps: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT a.id, b.id, a.job, concat_ws(' ', a.state, a.worker, a.started_at, a.finished_at, a.error),
                concat_ws(' ', b.state, b.worker, b.started_at, b.finished_at, b.error)
         FROM job_run a JOIN job_run b ON a.job = b.job AND a.id < b.id
         WHERE a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(overlaps.is_empty(), "{overlaps:#?}");
    // Both processes ran something.
    assert_eq!(scalar(&db, "SELECT count(DISTINCT worker) FROM job_run WHERE state = 'succeeded'").await, 2);
    // Every staged row processed exactly once, into the pool once.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM download_staging WHERE state = 'done_unverified' AND handle_num = 1"
        )
        .await,
        staged as i64
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM invoice_pool").await, staged as i64);
    let runs: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT state, worker, rows_read FROM job_run WHERE job = 'deal-task' ORDER BY scheduled_for",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        scalar(&db, "SELECT count(DISTINCT handled_by) FROM download_staging").await,
        2,
        "the rows were shared: {runs:?}"
    );
}

/// Every schedule every 2 s, in two processes: each process fires on its own clock, a few ms
/// apart; a tick must still be the schedule's nominal instant so that both record the same row.
#[tokio::test]
async fn two_serve_processes_record_each_nominal_tick_once() {
    let db = TestDb::new().await;
    let every_2s = "*/2 * * * * *";
    let start = || {
        let mut c = fapiao(&db, &["serve"]);
        for job in [
            "APPLY_CACHE",
            "DOWNLOAD_APPLY",
            "FETCH",
            "DEAL_TASK",
            "AUTO_ISSUE",
            "AUTO_REISSUE",
            "RED_FLUSH_POLL",
            "DEDUCT_POLL",
        ] {
            c.env(format!("FAPIAO__SCHEDULES__{job}"), every_2s);
        }
        c.env("FAPIAO__JOBS__LEASE_SECS", "10").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (mut a, mut b) = (start(), start());
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(terminate(&mut a).success());
    assert!(terminate(&mut b).success());

    let fractional = scalar(
        &db,
        "SELECT count(*) FROM job_run WHERE trigger = 'schedule' AND scheduled_for <> date_trunc('second', scheduled_for)",
    )
    .await;
    assert_eq!(fractional, 0, "a tick is a whole second");
    let twice: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT job, date_trunc('second', scheduled_for)::text, count(*) FROM job_run WHERE trigger = 'schedule'
          GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 2, 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(twice.is_empty(), "ticks recorded more than once: {twice:?}");
    let off_schedule = scalar(
        &db,
        "SELECT count(*) FROM job_run WHERE trigger = 'schedule' AND extract(second FROM scheduled_for)::int % 2 <> 0",
    )
    .await;
    assert_eq!(off_schedule, 0, "ticks fall on the schedule's even seconds");
    for job in ["apply-cache", "fetch", "deal-task", "auto-issue", "red-flush-poll", "deduct-poll"] {
        let ticks: i64 =
            sqlx::query_scalar("SELECT count(*) FROM job_run WHERE job = $1 AND trigger = 'schedule'")
                .bind(job)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert!(ticks >= 4, "{job}: {ticks} ticks in 15 s");
    }
}

#[tokio::test]
async fn kill_9_mid_deal_task_then_a_rerun_finishes_every_row_once() {
    let db = TestDb::new().await;
    key_element_check_off(&db).await;
    let staged = fapiao_jobs::synthetic::stage(&db.pool, BUYER, 0, 200_000).await.unwrap() as i64;
    let mut victim = fapiao(&db, &["jobs", "run", "deal-task"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pooled = scalar(&db, "SELECT count(*) FROM invoice_pool").await;
        if pooled > 0 {
            assert!(pooled < staged, "killed too late to prove anything");
            break;
        }
        assert!(Instant::now() < deadline, "deal-task never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM job_run WHERE state = 'running'").await,
        1,
        "the dead run still looks alive"
    );

    // The re-run waits for the dead run's lease to expire, rescues it, and finishes the work.
    let rerun = fapiao(&db, &["jobs", "run", "deal-task"]).output().unwrap();
    assert_eq!(code(&rerun), 0, "{}", stderr(&rerun));
    assert_eq!(scalar(&db, "SELECT count(*) FROM invoice_pool").await, staged);
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM download_staging WHERE state = 'done_unverified'").await,
        staged
    );
    let rescued: String =
        sqlx::query_scalar("SELECT error FROM job_run WHERE job = 'deal-task' ORDER BY id LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(rescued.contains("lease expired"), "{rescued}");
}

#[tokio::test]
async fn misfired_ticks_follow_the_policy_and_appear_in_history() {
    let db = TestDb::new().await;
    // A tick recorded two minutes ago, then nobody served: fetch (every 10 s here) missed ~11 ticks.
    sqlx::query("INSERT INTO job_run (job, scheduled_for, trigger, state) VALUES ('fetch', date_trunc('minute', now()) - interval '2 minutes', 'schedule', 'succeeded')")
        .execute(&db.pool)
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut p = fapiao(&db, &["serve"])
        .env("FAPIAO__SCHEDULES__FETCH", "*/10 * * * * *")
        .env("FAPIAO__JOBS__FETCH_MISFIRE", "catch_up:2")
        .env("FAPIAO__METRICS__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = http_get(port, "/metrics");
    assert!(terminate(&mut p).success());
    assert!(metrics.contains("fapiao_job_runs_total{job=\"fetch\",state=\"succeeded\"}"), "{metrics}");
    assert!(metrics.contains("fapiao_job_schedule_lag_seconds{job=\"fetch\"}"), "{metrics}");
    let missed = scalar(&db, "SELECT count(*) FROM job_run WHERE job = 'fetch' AND state = 'missed'").await;
    assert!(missed >= 9, "{missed}");
    let caught_up = scalar(
        &db,
        "SELECT count(*) FROM job_run WHERE job = 'fetch' AND state IN ('succeeded', 'due', 'running')
        AND scheduled_for > date_trunc('minute', now()) - interval '2 minutes'",
    )
    .await;
    assert!(caught_up >= 2, "{caught_up}");
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply
}
