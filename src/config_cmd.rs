//! `fapiao config show`: the configuration in effect, secrets redacted.

use clap::Subcommand;

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the merged configuration (defaults, $FAPIAO_CONFIG, FAPIAO__… variables); secrets show as ******.
    Show,
}

pub fn run(command: ConfigCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    match command {
        ConfigCommand::Show if ctx.json => output::json(&ctx.settings)?,
        ConfigCommand::Show => print!("{}", toml::to_string(&ctx.settings)?),
    }
    Ok(Outcome::Done)
}
