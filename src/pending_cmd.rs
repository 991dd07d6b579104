//! `fapiao pending list|return|delete|edit`: 开票异常处理.

use clap::Subcommand;
use fapiao_usecases::pending::{self, ItemResult, SellerEdit};
use fapiao_usecases::{Actor, App};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum PendingCommand {
    /// Pending invoices (待开发票) with data source, status and error.
    List {
        /// Only this status: not_issued, submitted, issuing, failed, succeeded (or 未开票 … 开票成功).
        #[arg(long)]
        status: Option<String>,
    },
    /// 返回开票申请单: only 未开票 and 开票失败 (the channel is asked first); lines reopen on the application.
    Return {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Delete failed (abnormal) pending invoices (the channel is asked first).
    Delete {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Change the seller's address/phone or bank (暂存 or 无需审批 only).
    Edit {
        id: i64,
        /// 销方地址电话.
        #[arg(long)]
        seller_address_phone: Option<String>,
        /// 销方开户行及账号.
        #[arg(long)]
        seller_bank_account: Option<String>,
    },
}

pub async fn run(command: PendingCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        PendingCommand::List { status } => {
            let rows = pending::list(&app, status.as_deref()).await?;
            output::list(
                ctx.json,
                &rows,
                &["ID", "BILLS", "STATUS", "SOURCE", "APPROVAL", "SERIAL", "TOTAL", "REISSUES", "ERROR"],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.bills.join(","),
                        r.status_zh.to_string(),
                        r.data_source.to_string(),
                        r.approval_state.to_string(),
                        r.serial_no.clone().unwrap_or_default(),
                        r.total.to_string(),
                        r.reissue_count.to_string(),
                        r.error_message.clone().unwrap_or_default(),
                    ]
                },
            )?;
            Ok(Outcome::Done)
        }
        PendingCommand::Return { ids } => {
            report(ctx, pending::return_to_application(&app, &Actor::cli(), &ids).await?)
        }
        PendingCommand::Delete { ids } => report(ctx, pending::delete(&app, &Actor::cli(), &ids).await?),
        PendingCommand::Edit { id, seller_address_phone, seller_bank_account } => {
            let edit = SellerEdit { address_phone: seller_address_phone, bank_account: seller_bank_account };
            pending::edit(&app, &Actor::cli(), id, &edit).await?;
            if ctx.json {
                output::json(&serde_json::json!({ "id": id, "ok": true }))?;
            } else {
                println!("pending invoice {id} updated");
            }
            Ok(Outcome::Done)
        }
    }
}

/// Per-id results; exit 3 when any was refused.
fn report(ctx: &Context, results: Vec<ItemResult>) -> anyhow::Result<Outcome> {
    if ctx.json {
        output::json(&results)?;
    } else {
        for r in &results {
            match &r.code {
                None => println!("{}: {}", r.id, r.message),
                Some(code) => println!("{}: refused [{code}] {}", r.id, r.message),
            }
        }
    }
    Ok(if results.iter().all(|r| r.ok) { Outcome::Done } else { Outcome::SomeRejected })
}
