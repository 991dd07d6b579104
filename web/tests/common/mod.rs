//! A console on a fresh database: two enterprises, a user of every role (and two scoped to one
//! enterprise each), a pending invoice of each enterprise.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::NaiveDate;
use fapiao_jobs::{JobContext, Registry};
use fapiao_schemas::TaxNo;
use fapiao_schemas::config::Settings;
use fapiao_schemas::enterprise::{Channel, Enterprise, TaxpayerKind};
use fapiao_store::enterprises;
use fapiao_store::testing::TestDb;
use fapiao_usecases::users::{self, Role};
use fapiao_usecases::{Actor, App};
use fapiao_web::Console;
use tower::ServiceExt;

pub const A: &str = "91310000MA1FL2AB09";
pub const B: &str = "92440300MA5DXY7K3W";
pub const PASSWORD: &str = "correct-horse-42";

/// (name, role, scope)
pub const USERS: [(&str, Role, Option<&str>); 6] = [
    ("admin", Role::Admin, None),
    ("ops", Role::Ops, None),
    ("finance", Role::Finance, None),
    ("auditor", Role::Auditor, None),
    ("auditor_a", Role::Auditor, Some(A)),
    ("finance_b", Role::Finance, Some(B)),
];

pub struct World {
    pub db: TestDb,
    pub console: Arc<Console>,
    pub router: Router,
    /// The console's uploads and exports (its `root`).
    pub files: tempfile::TempDir,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

/// A world whose settings `change` adjusts first.
pub async fn world_with(change: impl FnOnce(&mut Settings)) -> World {
    let db = TestDb::new().await;
    let mut settings = Settings::load_from(None, Vec::new()).unwrap();
    change(&mut settings);
    for (tax_no, name) in [(A, "上海示例贸易有限公司"), (B, "深圳示例便利店")] {
        let e = Enterprise {
            tax_no: TaxNo::parse(tax_no).unwrap(),
            name: name.into(),
            taxpayer_kind: TaxpayerKind::General,
            etax_account: "acct".into(),
            channel: Channel::Etax,
        };
        enterprises::insert(&db.pool, &e).await.unwrap();
        sqlx::query(
            "INSERT INTO sync_scheme (code, tax_no, start_date, active) VALUES ($1, $2, '2026-01-01', true)",
        )
        .bind(if tax_no == A { "S-A" } else { "S-B" })
        .bind(tax_no)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    for (tax_no, total) in [(A, "113.00"), (B, "222.22")] {
        sqlx::query(
            "INSERT INTO pending_invoice (seller_tax_no, buyer_name, invoice_kind, data_source, amount, tax, total)
             VALUES ($1, '购方', 'digital_ordinary', '批量导入', 0, 0, $2::numeric)",
        )
        .bind(tax_no)
        .bind(total)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let app = App::on(db.pool.clone(), &settings);
    for (name, role, scope) in USERS {
        let scope: Vec<String> = scope.into_iter().map(String::from).collect();
        users::add(&app, &Actor::Demo, name, role, &scope, PASSWORD).await.unwrap();
    }
    let jobs = JobContext::new(db.pool.clone(), app.channel.clone(), settings.clone(), "test-worker".into());
    let registry = Registry::from_settings(&settings).unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut console = Console::new(app, jobs, registry);
    console.root = files.path().to_path_buf();
    let console = Arc::new(console);
    let router = fapiao_web::router(console.clone());
    World { db, console, router, files }
}

pub struct Answer {
    pub status: StatusCode,
    pub location: String,
    pub set_cookie: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl World {
    pub async fn send(&self, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Answer {
        self.send_with(method, path, cookie, form, &[]).await
    }

    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if method == "POST" {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(form.unwrap_or("").to_string())).unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let get = |h| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let (location, set_cookie) = (get(header::LOCATION), get(header::SET_COOKIE));
        let bytes = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
        Answer { status, location, set_cookie, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// Log in as `name`; the Cookie header value of the session.
    pub async fn login(&self, name: &str) -> String {
        let a =
            self.send("POST", "/login", None, Some(&format!("username={name}&password={PASSWORD}"))).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "login of {name}: {}", a.body);
        a.set_cookie.split(';').next().unwrap().to_string()
    }

    /// A multipart POST: text `fields`, then a `file` field named `file_name` holding `bytes`.
    pub async fn upload(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &[u8])>,
    ) -> Answer {
        const BOUNDARY: &str = "----fapiao-test-boundary-7d3a";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .unwrap();
        self.answer(req).await
    }

    async fn answer(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let get = |h| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let (location, set_cookie) = (get(header::LOCATION), get(header::SET_COOKIE));
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20).await.unwrap();
        Answer { status, location, set_cookie, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// The raw bytes of a GET (downloads).
    pub async fn bytes(&self, path: &str, cookie: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let req = Request::builder().uri(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = axum::body::to_bytes(res.into_body(), 256 << 20).await.unwrap();
        (status, headers, bytes.to_vec())
    }

    /// Wait for console task `id` to leave `running`; its state.
    pub async fn finished(&self, id: i64) -> String {
        for _ in 0..1200 {
            let state: String = sqlx::query_scalar("SELECT state FROM console_task WHERE id = $1")
                .bind(id)
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
            if state != "running" {
                return state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("task {id} still running after a minute");
    }

    /// An issued blue invoice for each pending invoice of the world: 26310000000000000001 for A's
    /// (113.00), 26440000000000000002 for B's (222.22), issued 2026-11-03, nothing red-flushed.
    pub async fn issue_each_pending(&self) {
        sqlx::query(
            "INSERT INTO issued_invoice (pending_id, serial_no, invoice_kind, invoice_property, invoice_num, invoice_date,
                                         seller_tax_no, buyer_name, amount, tax, total, remaining)
             SELECT id, 'SN-' || id, invoice_kind, 0, CASE WHEN total = 113.00 THEN '26310000000000000001' ELSE '26440000000000000002' END,
                    '2026-11-03', seller_tax_no, buyer_name, total - 13, 13, total, total
               FROM pending_invoice",
        )
        .execute(&self.db.pool)
        .await
        .unwrap();
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.unwrap()
    }

    /// `n` finished runs of `job`, one a minute back from 2026-11-01 00:00 UTC, every third failed.
    pub async fn runs(&self, job: &str, n: i64) {
        sqlx::query(
            "INSERT INTO job_run (job, scheduled_for, trigger, state, started_at, finished_at, rows_read, error)
             SELECT $1, t, 'schedule', CASE WHEN i % 3 = 0 THEN 'failed' ELSE 'succeeded' END, t, t + interval '1 second',
                    CASE WHEN i % 2 = 0 THEN 5 ELSE 0 END, CASE WHEN i % 3 = 0 THEN 'boom' END
             FROM generate_series(1, $2) i, LATERAL (SELECT timestamptz '2026-11-01 00:00Z' - i * interval '1 minute' AS t) s",
        )
        .bind(job)
        .bind(n)
        .execute(&self.db.pool)
        .await
        .unwrap();
    }
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
