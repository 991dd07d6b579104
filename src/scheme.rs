//! `fapiao scheme add|list`: sync schemes (全量发票数据同步设置).

use chrono::NaiveDate;
use clap::Subcommand;
use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::SyncScheme;
use fapiao_usecases::{Actor, App, tenant};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum SchemeCommand {
    /// Add a scheme: apply-cache downloads for its enterprise from the start date on.
    Add {
        /// 方案编码.
        #[arg(long)]
        code: String,
        /// The enterprise's tax number (add the enterprise first).
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        tax_no: TaxNo,
        /// First day to download (YYYY-MM-DD).
        #[arg(long)]
        start: NaiveDate,
        /// Create it switched off.
        #[arg(long)]
        inactive: bool,
    },
    /// List the schemes.
    List,
}

pub async fn run(command: SchemeCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        SchemeCommand::Add { code, tax_no, start, inactive } => {
            let code = code.trim().to_string();
            if code.is_empty() {
                return Err(crate::exit::UsageError("--code is empty".into()).into());
            }
            let s = SyncScheme { code, tax_no, start_date: start, active: !inactive };
            tenant::add_scheme(&app, &Actor::cli(), &s).await?;
            if ctx.json {
                output::json(&s)?;
            } else {
                println!("added scheme {} for {} from {}", s.code, s.tax_no, s.start_date);
            }
        }
        SchemeCommand::List => print(&tenant::schemes(&app).await?, ctx.json)?,
    }
    Ok(Outcome::Done)
}

pub fn print(list: &[SyncScheme], json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(list);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.code.clone(),
                s.tax_no.to_string(),
                s.start_date.to_string(),
                if s.active { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    output::table(&["CODE", "TAX_NO", "START", "ACTIVE"], &rows);
    Ok(())
}
