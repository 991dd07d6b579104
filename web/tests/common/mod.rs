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
}

pub async fn world() -> World {
    let db = TestDb::new().await;
    let settings = Settings::load_from(None, Vec::new()).unwrap();
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
             VALUES ($1, '购方', '数电普票', '批量导入', 0, 0, $2::numeric)",
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
    let console = Arc::new(Console::new(app, jobs, registry));
    let router = fapiao_web::router(console.clone());
    World { db, console, router }
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
