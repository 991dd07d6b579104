//! The invoicing context every invoicing command shares: the database and the channel.

use std::sync::Arc;

use fapiao_channel::{ChannelClient, ClientConfig};
use fapiao_invoicing::Invoicing;
use fapiao_store::Database;

use crate::Context;

pub async fn open(ctx: &Context) -> anyhow::Result<Invoicing> {
    let db = Database::open(&ctx.settings).await?;
    let channel = Arc::new(ChannelClient::new(ClientConfig::from_settings(&ctx.settings.channel)));
    Ok(Invoicing::new(db.pool, channel, Arc::new(ctx.settings.clone())))
}

/// A spinner on a terminal (none when piped or with --json).
pub fn progress_bar(ctx: &Context, len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() && !ctx.json {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}
