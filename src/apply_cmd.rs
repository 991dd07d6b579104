//! `fapiao apply list|show|withdraw`: 开票申请单.

use clap::Subcommand;
use fapiao_usecases::{Actor, App, applications, invoices};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum ApplyCommand {
    /// Applications with their state and how many lines are still open (to push).
    List {
        /// received, pushed, partially_issued, issued, withdrawn or returned.
        #[arg(long)]
        state: Option<String>,
    },
    /// 开票申请单发票查询: the invoices of one bill (blue and red), with their file URLs in --json.
    Show { bill_no: String },
    /// 撤回: an application never pushed, or returned (退回); its number may come again.
    Withdraw { bill_no: String },
}

pub async fn run(command: ApplyCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        ApplyCommand::List { state } => {
            let rows = applications::list(&app, state.as_deref()).await?;
            output::list(
                ctx.json,
                &rows,
                &["BILL", "STATE", "SOURCE", "KIND", "BUYER", "LINES", "OPEN", "TOTAL", "AUTO", "SYSTEM"],
                |a| {
                    vec![
                        a.bill_no.clone(),
                        a.state.to_string(),
                        a.source.to_string(),
                        a.invoice_kind.to_string(),
                        a.buyer_name.clone(),
                        a.lines.to_string(),
                        a.open_lines.to_string(),
                        a.total.to_string(),
                        if a.auto_issue { "是" } else { "否" }.into(),
                        a.business_system_code.clone().unwrap_or_default(),
                    ]
                },
            )?;
        }
        ApplyCommand::Show { bill_no } => {
            crate::invoices_cmd::print_rows(ctx.json, &invoices::of_bill(&app, &bill_no).await?)?;
        }
        ApplyCommand::Withdraw { bill_no } => {
            applications::withdraw(&app, &Actor::cli(), &bill_no).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "bill_no": bill_no, "state": "withdrawn" }))?;
            } else {
                println!("{bill_no} withdrawn");
            }
        }
    }
    Ok(Outcome::Done)
}
