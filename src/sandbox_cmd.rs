//! `fapiao sandbox`: serve the channel protocol locally (invoice cloud, tax bureau and an ERP).

use std::time::Duration;

use clap::Args;
use fapiao_channel::codec::Codec;
use fapiao_channel::sandbox::{FaultPlan, Sandbox, SandboxConfig};
use fapiao_schemas::config::DataEncoding;

use crate::Context;
use crate::exit::{Outcome, UsageError};

#[derive(Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: String,
    /// Seed of generated invoices and of fault rolls: same seed, same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults, e.g. `latency=20ms,http5xx=0.1,drop@ALLE.INVOICE.OPEN=0.05` (see schemas/channel.md).
    #[arg(long, default_value = "")]
    faults: String,
    /// Milliseconds an issue stays 开票中 before its result shows.
    #[arg(long, default_value_t = 500)]
    issue_delay_ms: u64,
    /// Milliseconds a download takes to become ready.
    #[arg(long, default_value_t = 2000)]
    download_delay_ms: u64,
    /// Seconds an access token lives.
    #[arg(long, default_value_t = 7200)]
    token_ttl_secs: u64,
}

pub fn config_from(args: &SandboxArgs, ctx: &Context) -> anyhow::Result<SandboxConfig> {
    let faults = FaultPlan::parse(&args.faults).map_err(|e| UsageError(e.to_string()))?;
    let channel = &ctx.settings.channel;
    Ok(SandboxConfig {
        seed: args.seed,
        faults,
        token_ttl: Duration::from_secs(args.token_ttl_secs),
        issue_delay: Duration::from_millis(args.issue_delay_ms),
        download_delay: Duration::from_millis(args.download_delay_ms),
        // The sandbox accepts the credentials and encoding fapiao is configured with.
        app_id: channel.app_id.clone(),
        app_secret: channel.app_secret.expose().to_string(),
        codec: match channel.data_encoding {
            DataEncoding::Base64 => Codec::Base64,
            DataEncoding::Aes => Codec::aes(channel.encryption_password.expose()),
        },
        ..SandboxConfig::default()
    })
}

pub async fn run(args: SandboxArgs, ctx: &Context) -> anyhow::Result<Outcome> {
    let sandbox = Sandbox::start(config_from(&args, ctx)?, &args.listen).await?;
    println!("sandbox listening on {} (seed {}); Ctrl-C stops it", sandbox.base_url(), args.seed);
    sandbox.wait().await;
    Ok(Outcome::Done)
}
