//! Fresh, migrated databases for tests: one database per test, safe to run in parallel.
//!
//! All test processes share one private cluster (under `$FAPIAO_TEST_HOME`, default
//! `/tmp/fapiao-test-<uid>`), started on first use through the same locked start as
//! `fapiao db start`. Each `TestDb` is its own database, dropped when the value is dropped;
//! databases left behind by test processes that died are dropped at the next start.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection, PgPool};

use crate::cluster::Cluster;
use crate::{MIGRATOR, create_database_if_missing, quote_ident};

pub const TEST_HOME_ENV: &str = "FAPIAO_TEST_HOME";
const PREFIX: &str = "fapiao_test_";

/// The home folder of the shared test cluster.
pub fn test_home() -> PathBuf {
    std::env::var_os(TEST_HOME_ENV)
        .map(PathBuf::from)
        // SAFETY: getuid has no preconditions.
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/fapiao-test-{}", unsafe { libc::getuid() })))
}

fn shared_cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = Cluster::at(&test_home()).expect("test cluster folder");
        cluster.start().unwrap_or_else(|e| panic!("starting the test cluster: {e}"));
        cluster
    })
}

pub struct TestDb {
    pub pool: PgPool,
    /// URL of this test's database (give it to a `fapiao` process as DATABASE_URL).
    pub url: String,
    name: String,
}

impl TestDb {
    /// A new database with every migration applied.
    pub async fn new() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static SWEPT: OnceLock<()> = OnceLock::new();
        let cluster = shared_cluster();
        let mut admin =
            PgConnection::connect(&cluster.url("postgres")).await.expect("connect to test cluster");
        if SWEPT.set(()).is_ok() {
            drop_abandoned(&mut admin).await;
        }
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name =
            format!("{PREFIX}{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        create_database_if_missing(&mut admin, &name).await.expect("create test database");
        let _ = admin.close().await;
        let url = cluster.url(&name);
        let pool = crate::connect(&url, 5, 60).await.expect("connect to test database");
        MIGRATOR.run(&pool).await.expect("migrate test database");
        TestDb { pool, url, name }
    }

    /// A new database whose enterprises are these tax numbers: general taxpayers named
    /// 企业<tax number> on one e-tax account, the tenant most tests need.
    pub async fn with_enterprises(tax_nos: &[&str]) -> TestDb {
        use fapiao_schemas::enterprise::{Channel, Enterprise, TaxpayerKind};
        let db = TestDb::new().await;
        for tax_no in tax_nos {
            let e = Enterprise {
                tax_no: fapiao_schemas::TaxNo::parse(tax_no).expect("a valid test tax number"),
                name: format!("企业{tax_no}"),
                taxpayer_kind: TaxpayerKind::General,
                etax_account: "a".into(),
                channel: Channel::Etax,
            };
            crate::enterprises::insert(&db.pool, &e).await.expect("insert test enterprise");
        }
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = shared_cluster().url("postgres");
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name));
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// Drop test databases whose process no longer exists (killed or crashed test runs).
async fn drop_abandoned(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'fapiao\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name[PREFIX.len()..].split('_').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name));
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *admin).await;
        }
    }
}
