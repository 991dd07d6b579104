//! `fapiao db start|stop|status|url`: the private cluster under $FAPIAO_HOME/pg.

use clap::Subcommand;
use fapiao_store::cluster::{Cluster, StartOutcome, StopOutcome};
use fapiao_store::{EMBEDDED_DATABASE, MIGRATOR, external_url, redact_url};
use serde_json::json;

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum DbCommand {
    /// Create (first time) and start the cluster, create the database, apply migrations.
    Start,
    /// Stop the cluster (fast shutdown: open transactions roll back).
    Stop,
    /// Whether the cluster runs, its pid, folders and log.
    Status,
    /// Print the URL fapiao connects to (DATABASE_URL with the password hidden, or the cluster's).
    Url,
}

pub async fn run(command: DbCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let cluster = Cluster::from_env()?;
    if let (Some(url), DbCommand::Start | DbCommand::Stop | DbCommand::Status) =
        (external_url(&ctx.settings), &command)
    {
        tracing::warn!(url = %redact_url(&url), "DATABASE_URL is set: other commands use it, not the embedded cluster");
    }
    match command {
        DbCommand::Start => start(&cluster, ctx).await,
        DbCommand::Stop => {
            let outcome = blocking(&cluster, |c| c.stop()).await?;
            let stopped = outcome == StopOutcome::Stopped;
            if ctx.json {
                output::json(&json!({ "action": if stopped { "stopped" } else { "not_running" } }))?;
            } else {
                println!("{}", if stopped { "stopped" } else { "not running" });
            }
            Ok(Outcome::Done)
        }
        DbCommand::Status => {
            let status = blocking(&cluster, |c| c.status()).await?;
            if ctx.json {
                output::json(&json!({ "status": status, "url": cluster.url(EMBEDDED_DATABASE) }))?;
            } else {
                let state = match (status.running, status.pid) {
                    (true, Some(pid)) => format!("running (pid {pid})"),
                    (true, None) => "running".into(),
                    (false, _) if status.initialized => "stopped".into(),
                    (false, _) => "not created yet (any command that needs it creates it)".into(),
                };
                println!("state:   {state}");
                println!("data:    {}", status.data_dir.display());
                println!("socket:  {}", status.socket_dir.display());
                println!("log:     {}", status.log_file.display());
                println!("url:     {}", cluster.url(EMBEDDED_DATABASE));
            }
            Ok(Outcome::Done)
        }
        DbCommand::Url => {
            let url = external_url(&ctx.settings)
                .map(|u| redact_url(&u))
                .unwrap_or_else(|| cluster.url(EMBEDDED_DATABASE));
            if ctx.json {
                output::json(&json!({ "url": url }))?;
            } else {
                println!("{url}");
            }
            Ok(Outcome::Done)
        }
    }
}

async fn start(cluster: &Cluster, ctx: &Context) -> anyhow::Result<Outcome> {
    let outcome = blocking(cluster, |c| c.start()).await?;
    fapiao_store::ensure_database(cluster, EMBEDDED_DATABASE).await?;
    let url = cluster.url(EMBEDDED_DATABASE);
    let pool = fapiao_store::connect(&url, 1, ctx.settings.database.acquire_timeout_secs).await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    let (action, initialized) = match outcome {
        StartOutcome::AlreadyRunning => ("already_running", false),
        StartOutcome::Started { initialized } => ("started", initialized),
    };
    if ctx.json {
        output::json(&json!({
            "action": action,
            "initialized": initialized,
            "data_dir": cluster.data_dir(),
            "url": url,
        }))?;
    } else {
        let what = match (action, initialized) {
            ("already_running", _) => "already running",
            (_, true) => "created and started",
            _ => "started",
        };
        println!("{what}: {} (socket {})", cluster.data_dir().display(), cluster.socket_dir().display());
        println!("url: {url}");
    }
    Ok(Outcome::Done)
}

/// Cluster operations run programs and wait; keep them off the async threads.
async fn blocking<T: Send + 'static>(
    cluster: &Cluster,
    f: impl FnOnce(&Cluster) -> Result<T, fapiao_store::ClusterError> + Send + 'static,
) -> anyhow::Result<T> {
    let cluster = cluster.clone();
    Ok(tokio::task::spawn_blocking(move || f(&cluster)).await??)
}
