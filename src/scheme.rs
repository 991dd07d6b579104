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
        /// 进项状态更新的发票是否查验入库: verify again a pooled invoice a download reports with another status.
        #[arg(long)]
        verify_changed: bool,
    },
    /// List the schemes.
    List,
    /// Change a scheme's switches.
    Set {
        code: String,
        /// 进项状态更新的发票是否查验入库: yes or no.
        #[arg(long, value_parser = crate::pool_cmd::parse_yes_no)]
        verify_changed: bool,
    },
}

pub async fn run(command: SchemeCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        SchemeCommand::Add { code, tax_no, start, inactive, verify_changed } => {
            let code = code.trim().to_string();
            if code.is_empty() {
                return Err(crate::exit::UsageError("--code is empty".into()).into());
            }
            let s = SyncScheme { code, tax_no, start_date: start, active: !inactive, verify_changed };
            tenant::add_scheme(&app, &Actor::cli(), &s).await?;
            if ctx.json {
                output::json(&s)?;
            } else {
                println!("added scheme {} for {} from {}", s.code, s.tax_no, s.start_date);
            }
        }
        SchemeCommand::List => print(&tenant::schemes(&app).await?, ctx.json)?,
        SchemeCommand::Set { code, verify_changed } => {
            tenant::set_verify_changed(&app, &Actor::cli(), &code, verify_changed).await?;
            if !ctx.json {
                println!("scheme {code}: verify changed invoices again = {verify_changed}");
            } else {
                output::json(&serde_json::json!({ "code": code, "verify_changed": verify_changed }))?;
            }
        }
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
                if s.verify_changed { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    output::table(&["CODE", "TAX_NO", "START", "ACTIVE", "VERIFY CHANGED"], &rows);
    Ok(())
}
