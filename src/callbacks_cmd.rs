//! `fapiao callbacks list [--failed]` and `fapiao callbacks retry [ID ...]`: 按单回调 and its log.

use clap::Subcommand;
use fapiao_usecases::{Actor, App, callbacks};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum CallbacksCommand {
    /// Callbacks with their state and attempts.
    List {
        /// Only those that gave up after callbacks.max_attempts.
        #[arg(long)]
        failed: bool,
    },
    /// Start failed callbacks (all, or these ids) again, and deliver every due callback now.
    Retry { ids: Vec<i64> },
}

pub async fn run(command: CallbacksCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        CallbacksCommand::List { failed } => {
            let rows = callbacks::list(&app, failed).await?;
            output::list(
                ctx.json,
                &rows,
                &["ID", "BILL", "INTERFACE", "RETURN", "STATE", "ATTEMPTS", "NEXT", "LAST ERROR"],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.bill_no.clone(),
                        r.interface_code.clone(),
                        r.return_code.clone(),
                        r.state.to_string(),
                        r.attempts.to_string(),
                        r.next_attempt_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.last_error.clone().unwrap_or_default().chars().take(60).collect(),
                    ]
                },
            )?;
            Ok(Outcome::Done)
        }
        CallbacksCommand::Retry { ids } => {
            let report = callbacks::retry(&app, &Actor::cli(), &ids).await?;
            let (restarted, delivered) = (report.restarted, &report.delivery);
            if ctx.json {
                output::json(&report)?;
            } else {
                println!(
                    "{restarted} restarted; sent {}, succeeded {}, retrying {}, failed {}",
                    delivered.attempted, delivered.succeeded, delivered.retrying, delivered.gave_up
                );
            }
            Ok(if delivered.attempted == delivered.succeeded { Outcome::Done } else { Outcome::SomeRejected })
        }
    }
}
