//! `fapiao enterprise add|list`: the tenant's enterprises.

use clap::Subcommand;
use fapiao_schemas::TaxNo;
use fapiao_schemas::enterprise::{Channel, Enterprise, TaxpayerKind};
use fapiao_usecases::{Actor, App, tenant};

use crate::exit::Outcome;
use crate::{Context, output};

#[derive(Subcommand)]
pub enum EnterpriseCommand {
    /// Add an enterprise; its tax number must pass the GB 32100-2015 check (18 chars) or the legacy format (15/20).
    Add {
        /// 税号 (taxpayer id).
        #[arg(long, value_parser = parse_tax_no)]
        tax_no: TaxNo,
        /// 企业名称.
        #[arg(long)]
        name: String,
        /// 纳税人性质: general (一般纳税人) or small-scale (小规模纳税人).
        #[arg(long, default_value = "general", value_parser = parse_kind)]
        kind: TaxpayerKind,
        /// 电子税局账号; enterprises sharing one account download one at a time.
        #[arg(long)]
        etax_account: String,
        /// 收票通道: leqi (乐企) or etax (电子税局).
        #[arg(long, default_value = "etax", value_parser = parse_channel)]
        channel: Channel,
    },
    /// Change an enterprise: name, 纳税人性质, 电子税局账号 or 收票通道 (what is not given stays).
    Set {
        #[arg(long, value_parser = parse_tax_no)]
        tax_no: TaxNo,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_parser = parse_kind)]
        kind: Option<TaxpayerKind>,
        #[arg(long)]
        etax_account: Option<String>,
        #[arg(long, value_parser = parse_channel)]
        channel: Option<Channel>,
    },
    /// List the enterprises.
    List,
    /// 开票人 (required), 收款人 and 复核人 on the enterprise's invoices from now on (without one,
    /// the configured `invoicing.drawer`).
    Issuers {
        #[arg(long, value_parser = parse_tax_no)]
        tax_no: TaxNo,
        #[arg(long)]
        drawer: String,
        #[arg(long)]
        payee: Option<String>,
        #[arg(long)]
        reviewer: Option<String>,
    },
}

/// clap value parser for `--tax-no` (shared by `scheme add`).
pub fn parse_tax_no(s: &str) -> Result<TaxNo, String> {
    TaxNo::parse(s).map_err(|e| e.to_string())
}
fn parse_kind(s: &str) -> Result<TaxpayerKind, String> {
    s.parse().map_err(|e: fapiao_schemas::enterprise::UnknownName| e.to_string())
}
fn parse_channel(s: &str) -> Result<Channel, String> {
    s.parse().map_err(|e: fapiao_schemas::enterprise::UnknownName| e.to_string())
}

pub async fn run(command: EnterpriseCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        EnterpriseCommand::Add { tax_no, name, kind, etax_account, channel } => {
            let e = Enterprise {
                tax_no,
                name: name.trim().to_string(),
                taxpayer_kind: kind,
                etax_account,
                channel,
            };
            tenant::add_enterprise(&app, &Actor::cli(), &e).await?;
            if ctx.json {
                output::json(&e)?;
            } else {
                println!("added {} {}", e.tax_no, e.name);
            }
        }
        EnterpriseCommand::Set { tax_no, name, kind, etax_account, channel } => {
            let change = tenant::EnterpriseChange { name, taxpayer_kind: kind, etax_account, channel };
            let e = tenant::change_enterprise(&app, &Actor::cli(), &tax_no, change).await?;
            print(std::slice::from_ref(&e), ctx.json)?;
        }
        EnterpriseCommand::List => print(&tenant::enterprises(&app).await?, ctx.json)?,
        EnterpriseCommand::Issuers { tax_no, drawer, payee, reviewer } => {
            let issuers = fapiao_store::enterprises::Issuers { drawer, payee, reviewer };
            tenant::set_issuers(&app, &Actor::cli(), &tax_no, &issuers).await?;
            if ctx.json {
                output::json(&issuers)?;
            } else {
                println!("{tax_no}: issuers set");
            }
        }
    }
    Ok(Outcome::Done)
}

pub fn print(list: &[Enterprise], json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(list);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.tax_no.to_string(),
                e.name.clone(),
                e.taxpayer_kind.label_zh().into(),
                e.etax_account.clone(),
                e.channel.label_zh().into(),
            ]
        })
        .collect();
    output::table(&["TAX_NO", "NAME", "KIND", "ETAX_ACCOUNT", "CHANNEL"], &rows);
    Ok(())
}
