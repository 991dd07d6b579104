//! `fapiao param list|get|set|unset`: the documented parameters (参数配置单据).

use clap::Subcommand;
use fapiao_usecases::{Actor, App, params};
use serde_json::json;

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum ParamCommand {
    /// Every documented parameter with the value in effect and where it comes from.
    List,
    /// The value in effect (printed alone, for scripts).
    Get { r#type: String, key: String },
    /// Validate and store a value; an invalid one exits 2 and changes nothing.
    Set { r#type: String, key: String, value: String },
    /// Remove a stored value: the default applies again.
    Unset { r#type: String, key: String },
}

pub async fn run(command: ParamCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        ParamCommand::List => {
            let all = params::list(&app).await?;
            if ctx.json {
                output::json(&all)?;
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|p| {
                        vec![
                            p.ptype.clone(),
                            p.key.clone(),
                            p.value.clone().unwrap_or_else(|| "(unset)".into()),
                            p.source.into(),
                            p.doc.into(),
                        ]
                    })
                    .collect();
                output::table(&["TYPE", "KEY", "VALUE", "SOURCE", "MEANING"], &rows);
            }
        }
        ParamCommand::Get { r#type, key } => {
            let p = params::get(&app, &r#type, &key).await?;
            if ctx.json {
                output::json(&p)?;
            } else {
                println!("{}", p.value.as_deref().unwrap_or(""));
            }
        }
        ParamCommand::Set { r#type, key, value } => {
            let stored = params::set(&app, &Actor::cli(), &r#type, &key, &value).await?;
            if ctx.json {
                output::json(&json!({ "type": r#type, "key": key, "value": stored }))?;
            } else {
                println!("{type}/{key} = {stored}", type = r#type);
            }
        }
        ParamCommand::Unset { r#type, key } => {
            let params::Unset { removed: existed, value: now } =
                params::unset(&app, &Actor::cli(), &r#type, &key).await?;
            if ctx.json {
                output::json(&json!({ "type": r#type, "key": key, "removed": existed, "value": now }))?;
            } else {
                let shown = now.as_deref().unwrap_or("(unset)");
                let what = if existed { "unset" } else { "was not set" };
                println!("{type}/{key} {what}; in effect: {shown}", type = r#type);
            }
        }
    }
    Ok(Outcome::Done)
}
