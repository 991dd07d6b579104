//! PostgreSQL for fapiao: where the database is (an external URL or the private cluster),
//! the migrations of `schemas/migrations`, and the tables of the foundation.

pub mod binaries;
pub mod cluster;
pub mod deduct;
pub mod enterprises;
pub mod input_sync;
pub mod params;
pub mod pool;
pub mod receipts;
pub mod schemes;
pub mod testing;

use std::time::Duration;

use fapiao_schemas::config::Settings;
use fapiao_schemas::params::ParamError;
use fapiao_schemas::{Coded, ErrorKind};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

pub use cluster::{Cluster, ClusterError};

/// The schema, compiled in; applied on every start (forward-only; concurrent starts take
/// PostgreSQL's advisory lock inside sqlx's migrator).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../schemas/migrations");

/// The database the embedded cluster serves.
pub const EMBEDDED_DATABASE: &str = "fapiao";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Param(#[from] ParamError),
    /// Input that cannot be stored as given; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A rule said no; `code` is stable, the message is the documented one.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Param(_) | StoreError::Invalid(_) => ErrorKind::BadInput,
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Refused { .. } => ErrorKind::Refused,
            StoreError::Cluster(_) | StoreError::Sql(_) | StoreError::Migrate(_) => ErrorKind::Internal,
        }
    }

    /// The stable English code shown next to the message.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Param(p) => p.code(),
            StoreError::Invalid(_) => "INVALID_INPUT",
            StoreError::NotFound(_) => "NOT_FOUND",
            StoreError::Refused { code, .. } => code,
            StoreError::Cluster(_) => "DATABASE_CLUSTER",
            StoreError::Sql(_) | StoreError::Migrate(_) => "DATABASE",
        }
    }
}

/// Where the database came from, for messages (never with a password).
#[derive(Debug, Clone)]
pub enum Origin {
    /// `database.url` or DATABASE_URL.
    External { url: String },
    /// The private cluster under FAPIAO_HOME.
    Embedded { url: String, started: bool },
}

pub struct Database {
    pub pool: PgPool,
    pub origin: Origin,
}

/// The URL to use: `database.url`, else DATABASE_URL, else none (the embedded cluster).
pub fn external_url(settings: &Settings) -> Option<String> {
    let configured = settings.database.url.expose();
    if !configured.is_empty() {
        return Some(configured.to_string());
    }
    std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// Where the configured database is, for a message that it is unavailable: the URL (no
/// password), or the embedded cluster's log file (the next command starts the cluster again).
pub fn whereabouts(settings: &Settings) -> String {
    match external_url(settings) {
        Some(url) => format!("database {}", redact_url(&url)),
        None => match Cluster::from_env() {
            Ok(c) => format!(
                "the embedded cluster; its log: {} (the next command starts it again)",
                c.log_file().display()
            ),
            Err(e) => format!("the embedded cluster ({e})"),
        },
    }
}

/// Whether `err` (or any error it was caused by) says the database cannot be reached: the
/// server gone, the connection cut, no connection to be had in time. One message then says so,
/// instead of whatever each layer made of it.
pub fn is_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(sql) = e.downcast_ref::<sqlx::Error>() {
            match sql {
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => return true,
                sqlx::Error::Io(io) if io_gone(io) => return true,
                sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("57P")) => return true,
                _ => {}
            }
        }
        next = e.source();
    }
    false
}

/// I/O failures of a database connection that mean the server went away (57P0x above: it is
/// shutting down or crashed). Only inside `sqlx::Error::Io`: a missing import file is not this.
fn io_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotFound
    )
}

/// A URL with its password replaced, fit for printing.
pub fn redact_url(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(_) => match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &url[scheme_end + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{}{user}:******{}", &url[..scheme_end + 3], &url[at..]),
                    None => url.to_string(),
                }
            }
            _ => url.to_string(),
        },
        Err(_) => "(unparseable database URL)".into(),
    }
}

impl Database {
    /// Connect (starting the private cluster on demand) and apply pending migrations.
    pub async fn open(settings: &Settings) -> Result<Database, StoreError> {
        let (url, origin) = match external_url(settings) {
            Some(url) => (url.clone(), Origin::External { url: redact_url(&url) }),
            None => {
                let cluster = Cluster::from_env()?;
                let started = start_embedded(&cluster).await?;
                let url = cluster.url(EMBEDDED_DATABASE);
                (url.clone(), Origin::Embedded { url, started })
            }
        };
        let pool =
            connect(&url, settings.database.max_connections, settings.database.acquire_timeout_secs).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Database { pool, origin })
    }
}

/// Start the private cluster if it is not running and make sure our database exists; `true`
/// when this call started it. A server that died a moment ago can still look running (its
/// pid file and process linger until it is reaped) and refuse connections: then it is asked
/// again, for a few seconds, until it is really gone and can be started afresh.
async fn start_embedded(cluster: &Cluster) -> Result<bool, StoreError> {
    const PATIENCE: Duration = Duration::from_secs(10);
    let since = std::time::Instant::now();
    loop {
        let outcome = tokio::task::spawn_blocking({
            let cluster = cluster.clone();
            move || cluster.start()
        })
        .await
        .expect("cluster start does not panic")?;
        match ensure_database(cluster, EMBEDDED_DATABASE).await {
            Ok(()) => return Ok(matches!(outcome, cluster::StartOutcome::Started { .. })),
            Err(e) if is_unavailable(&e) && since.elapsed() < PATIENCE => {
                tracing::debug!(error = %e, "the embedded server looks running but refuses connections; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A throwaway, migrated database beside the configured one (for benchmarks); dropped by `drop`.
pub struct Scratch {
    pub pool: PgPool,
    /// The scratch database's URL, for processes a benchmark starts.
    pub url: String,
    admin: PgConnectOptions,
    name: String,
}

impl Scratch {
    pub async fn create(settings: &Settings, name: &str) -> Result<Scratch, StoreError> {
        let base = Database::open(settings).await?;
        let url = match &base.origin {
            Origin::Embedded { url, .. } => url.clone(),
            Origin::External { .. } => external_url(settings).expect("external origin has a URL"),
        };
        base.pool.close().await;
        let options: PgConnectOptions = url.parse()?;
        let admin = options.clone().database("postgres");
        let mut conn = sqlx::PgConnection::connect_with(&admin).await?;
        let drop_sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
        sqlx::query(sqlx::AssertSqlSafe(drop_sql)).execute(&mut conn).await?;
        create_database_if_missing(&mut conn, name).await?;
        conn.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .connect_with(options.database(name))
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Scratch { pool, url: with_database(&url, name), admin, name: name.into() })
    }

    pub async fn drop(self) -> Result<(), StoreError> {
        self.pool.close().await;
        let mut conn = sqlx::PgConnection::connect_with(&self.admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// `url` naming database `name` instead of its own (`postgresql://u@h:p/db?q` → `…/name?q`).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A pool on `url` (no migrations).
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout_secs: u64,
) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(acquire_timeout_secs))
        .connect_with(options)
        .await?)
}

/// Create database `name` on the cluster unless it exists; a concurrent creator is not an error.
pub async fn ensure_database(cluster: &Cluster, name: &str) -> Result<(), StoreError> {
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    create_database_if_missing(&mut admin, name).await?;
    admin.close().await?;
    Ok(())
}

pub(crate) async fn create_database_if_missing(
    admin: &mut sqlx::PgConnection,
    name: &str,
) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut *admin)
        .await?;
    if exists {
        return Ok(());
    }
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *admin).await {
        Ok(_) => Ok(()),
        // 42P04 duplicate_database; 23505 when two CREATEs race on pg_database's unique index.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04" | "23505")) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Quote an identifier we generated (database names); never used on outside input.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/fapiao"),
            "postgres://app:******@db:5432/fapiao"
        );
        let local = "postgresql://postgres@localhost/fapiao?host=/tmp/x";
        assert_eq!(redact_url(local), local);
    }
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn a_url_names_another_database() {
        use super::with_database;
        assert_eq!(
            with_database("postgresql://postgres@localhost/fapiao?host=/tmp/x/run", "scratch"),
            "postgresql://postgres@localhost/scratch?host=/tmp/x/run"
        );
        assert_eq!(with_database("postgres://u:p@db:5432/app", "s"), "postgres://u:p@db:5432/s");
        assert_eq!(with_database("postgres://db", "s"), "postgres://db/s");
    }
}
