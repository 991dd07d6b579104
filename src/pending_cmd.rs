//! `fapiao pending list|show|issue|submit|approve|reject|return|delete|edit`: 开票异常处理 and 审批.

use chrono::NaiveDate;
use clap::Subcommand;
use fapiao_schemas::DataSource;
use fapiao_usecases::pending::{self, ApprovalStep, ItemResult, PendingFilter, SellerEdit};
use fapiao_usecases::{Actor, App};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum PendingCommand {
    /// Pending invoices (待开发票) with data source, status, error and file.
    List {
        /// Only this status: not_issued, submitted, issuing, failed, succeeded (or 未开票 … 开票成功).
        #[arg(long)]
        status: Option<String>,
        /// Seller tax number.
        #[arg(long, value_parser = crate::enterprise::parse_tax_no)]
        seller: Option<fapiao_schemas::TaxNo>,
        /// 数据来源: 批量导入, 直接开票接口, 单据拆合, 单张开票, ….
        #[arg(long, value_parser = parse_source)]
        source: Option<DataSource>,
        /// Created on or after this date.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Created on or before this date.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Part of the error message, e.g. 购买方纳税人识别号.
        #[arg(long)]
        error: Option<String>,
    },
    /// 上查: one pending invoice with the application lines it came from, and its history.
    Show { id: i64 },
    /// 开票 on chosen invoices now (未开票 or 开票失败): a failed one's old serial is asked about
    /// first, then it goes again whatever its message says.
    Issue {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// 提交审批: 暂存 → 已提交 (where sim_issue_approval asks for approval).
    Submit {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// 审核: 已提交 → 已审核; the invoice may then be issued.
    Approve {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// 驳回: 已提交 → 暂存, with the reason.
    Reject {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long)]
        reason: String,
    },
    /// 返回开票申请单 (退回): only 未开票 and 开票失败 (the channel is asked first); lines reopen on
    /// the application and the bill's ERP is told, with the reason (a callback, returnCode 9999).
    Return {
        #[arg(required = true)]
        ids: Vec<i64>,
        /// Why, for the ERP and the invoice's history.
        #[arg(long, default_value = "开票异常，退回开票申请单")]
        reason: String,
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
        PendingCommand::List { status, seller, source, from, to, error } => {
            let filter = PendingFilter {
                status,
                seller_tax_no: seller.map(|t| t.as_str().to_string()),
                source,
                from,
                to,
                error,
                ..PendingFilter::default()
            };
            let rows = pending::list(&app, &filter).await?;
            output::list(
                ctx.json,
                &rows,
                &[
                    "ID", "BILLS", "STATUS", "SOURCE", "APPROVAL", "SERIAL", "TOTAL", "REISSUES", "ERROR",
                    "FILE",
                ],
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
                        r.invoice_file_url.clone().unwrap_or_default(),
                    ]
                },
            )?;
            Ok(Outcome::Done)
        }
        PendingCommand::Show { id } => {
            let d = pending::show(&app, id).await?;
            if ctx.json {
                output::json(&d)?;
            } else {
                let p = &d.pending;
                println!(
                    "#{} {} {} {} {} {}",
                    p.id,
                    p.status_zh,
                    p.data_source,
                    p.buyer_name,
                    p.total,
                    p.error_message.clone().unwrap_or_default()
                );
                output::table(
                    &[
                        "SEQ",
                        "GOODS",
                        "AMOUNT",
                        "TAX",
                        "BILL",
                        "LINE",
                        "BILL DATE",
                        "SOURCE",
                        "BILL LINE TOTAL",
                    ],
                    &d.lines
                        .iter()
                        .map(|l| {
                            vec![
                                l.seq.to_string(),
                                l.goods_name.clone(),
                                l.amount.to_string(),
                                l.tax.to_string(),
                                l.bill_no.clone().unwrap_or_default(),
                                l.bill_line_no.map(|n| n.to_string()).unwrap_or_default(),
                                l.bill_date.map(|d| d.to_string()).unwrap_or_default(),
                                l.bill_source.map(|s| s.to_string()).unwrap_or_default(),
                                l.bill_line_total.map(|t| t.to_string()).unwrap_or_default(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
                for e in &d.events {
                    println!(
                        "  {} {} {}",
                        e.at.with_timezone(&ctx.settings.time_zone()).format("%Y-%m-%d %H:%M:%S"),
                        e.event,
                        e.detail.clone().unwrap_or_default()
                    );
                }
            }
            Ok(Outcome::Done)
        }
        PendingCommand::Issue { ids } => {
            let r = pending::issue(&app, &Actor::cli(), &ids, &|_| {}).await?;
            if ctx.json {
                output::json(&r)?;
            } else {
                for o in &r.report.issued {
                    println!(
                        "{}: {} {}{}",
                        o.pending_id,
                        o.status_zh,
                        o.invoice_num.clone().unwrap_or_default(),
                        o.message.as_deref().map(|m| format!(" {m}")).unwrap_or_default()
                    );
                }
                for i in &r.report.refused {
                    println!("{}: refused {}", i.pending_id, i.reason);
                }
            }
            let all_issued = r.report.refused.is_empty()
                && r.report.issued.iter().all(|o| o.status != fapiao_schemas::PendingStatus::Failed);
            Ok(if all_issued { Outcome::Done } else { Outcome::SomeRejected })
        }
        PendingCommand::Submit { ids } => {
            report(ctx, pending::approval(&app, &Actor::cli(), &ids, &ApprovalStep::Submit).await?)
        }
        PendingCommand::Approve { ids } => {
            report(ctx, pending::approval(&app, &Actor::cli(), &ids, &ApprovalStep::Approve).await?)
        }
        PendingCommand::Reject { ids, reason } => {
            report(ctx, pending::approval(&app, &Actor::cli(), &ids, &ApprovalStep::Reject { reason }).await?)
        }
        PendingCommand::Return { ids, reason } => {
            report(ctx, pending::return_to_application(&app, &Actor::cli(), &ids, &reason).await?)
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

fn parse_source(s: &str) -> Result<DataSource, String> {
    DataSource::from_db(s).ok_or_else(|| {
        let all: Vec<&str> = DataSource::ALL.iter().map(|d| d.as_str()).collect();
        format!("{s:?}: one of {}", all.join(", "))
    })
}
