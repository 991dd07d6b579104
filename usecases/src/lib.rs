//! The use cases: one function per thing a user does — import a file, push and issue, reissue,
//! deliver callbacks, red-flush a list or some invoices, decide a red confirmation form, export a
//! period, set a parameter, add an enterprise or a sync scheme. Each takes who is acting and a typed request and returns a typed
//! report; the CLI prints it, the jobs record it, the demo shows it, and the web console and ERP
//! API will render it. No front door assembles a flow of its own.
//!
//! This is a crate of its own (not a module of the binary) so that the jobs can call it and the
//! HTTP surfaces can be built on it without depending on the CLI. It sits above the domain
//! crates (`invoicing`, `pipelines`, `export`, `store`) and below `jobs`; the job runner's own
//! operations (run now, pause, resume) live in `fapiao_jobs::control` for that reason.

pub mod applications;
pub mod audit;
pub mod bulk;
pub mod callbacks;
pub mod dashboard;
pub mod deduct;
pub mod erp;
mod error;
pub mod export;
pub mod goods_import;
pub mod import;
pub mod invoices;
pub mod issuing;
pub mod params;
pub mod pending;
pub mod pool;
pub mod receipt_order;
pub mod receipts;
pub mod red_flush;
pub mod sessions;
pub mod systems;
pub mod tasks;
pub mod tenant;
pub mod users;

use std::fmt;
use std::sync::Arc;

use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_invoicing::Invoicing;
use fapiao_schemas::config::Settings;
use fapiao_store::Database;
use sqlx::PgPool;

pub use error::{Error, ErrorKind, Result};

/// What every use case works with: the database, the channel, the settings.
#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub channel: Arc<ChannelClient>,
    pub settings: Arc<Settings>,
    /// Built once, so every use case of this App shares its pool of drive locks.
    invoicing: Invoicing,
}

impl App {
    pub fn new(pool: PgPool, channel: Arc<ChannelClient>, settings: Arc<Settings>) -> App {
        let invoicing = Invoicing::new(pool.clone(), channel.clone(), settings.clone());
        App { pool, channel, settings, invoicing }
    }

    /// The configured database (embedded cluster or `DATABASE_URL`) and channel.
    pub async fn open(settings: &Settings) -> Result<App> {
        Ok(App::on(Database::open(settings).await?.pool, settings))
    }

    /// On an open database, with the configured channel.
    pub fn on(pool: PgPool, settings: &Settings) -> App {
        let channel = Arc::new(ChannelClient::new(ClientConfig::from_settings(&settings.channel)));
        App::new(pool, channel, Arc::new(settings.clone()))
    }

    pub(crate) fn invoicing(&self) -> Invoicing {
        self.invoicing.clone()
    }
}

/// Who is acting: named in the logs of every use case (and in the console's audit log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A person at the command line, by their login name.
    Cli { user: String },
    /// A job run (scheduled or `jobs run`).
    Job { job: String, run_id: i64 },
    /// `fapiao demo`.
    Demo,
    /// A user of the web console, by name, and the address the request came from.
    Console { user: String, from: String },
    /// A business system calling the ERP API, by its code, and the request's address.
    Erp { system: String, from: String },
    /// A consumer on a receipt code's page (no login), by the request's address.
    Consumer { from: String },
}

impl Actor {
    /// The person running this process, as the operating system names them.
    /// Where the action came from, for the audit log: the console's client address, else the
    /// kind of front door.
    pub fn source(&self) -> &str {
        match self {
            Actor::Cli { .. } => "cli",
            Actor::Job { .. } => "job",
            Actor::Demo => "demo",
            Actor::Console { from, .. } | Actor::Erp { from, .. } | Actor::Consumer { from } => from,
        }
    }

    pub fn cli() -> Actor {
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "?".into());
        Actor::Cli { user }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli { user } => write!(f, "cli:{user}"),
            Actor::Job { job, run_id } => write!(f, "job:{job}#{run_id}"),
            Actor::Demo => f.write_str("demo"),
            Actor::Console { user, .. } => write!(f, "web:{user}"),
            Actor::Erp { system, .. } => write!(f, "erp:{system}"),
            Actor::Consumer { from } => write!(f, "receipt:{from}"),
        }
    }
}

/// Called as each item of a long use case ends (a progress bar, a job's heartbeat, a web page).
pub type Progress<'a, T> = &'a (dyn Fn(&T) + Send + Sync);

/// A progress callback that listens to nothing.
pub fn quiet<T>(_: &T) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_name_themselves_for_the_log() {
        assert_eq!(Actor::Cli { user: "wang".into() }.to_string(), "cli:wang");
        assert_eq!(Actor::Job { job: "auto-issue".into(), run_id: 7 }.to_string(), "job:auto-issue#7");
        assert_eq!(Actor::Demo.to_string(), "demo");
        let web = Actor::Console { user: "li".into(), from: "10.0.0.7".into() };
        assert_eq!((web.to_string().as_str(), web.source()), ("web:li", "10.0.0.7"));
    }
}
