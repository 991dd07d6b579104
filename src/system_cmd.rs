//! `fapiao system add|list|disable|rotate-secret|set-callback` (业务系统: the ERPs that call the
//! inbound API) and `fapiao api log` (its request log).

use clap::Subcommand;
use fapiao_schemas::TaxNo;
use fapiao_usecases::systems::{self, Credentials, NewSystem};
use fapiao_usecases::{Actor, App, erp};

use crate::exit::{Outcome, UsageError};
use crate::{Context, output};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// A new business system; prints its appId and appSecret once (only a hash is kept).
    Add {
        /// The 业务系统编码 (letters, digits, . _ -): the bills it pushes carry it.
        code: String,
        #[arg(long)]
        name: String,
        /// Its own callback URL (按单回调); none: `callbacks.url` with {system} = CODE.
        #[arg(long)]
        callback_url: Option<String>,
        /// A seller it may push for (repeatable): one of the tenant's enterprises.
        #[arg(long = "tax-no")]
        tax_no: Vec<String>,
        /// Its `data` is AES-GCM encrypted with a generated password (printed once); else Base64.
        #[arg(long)]
        aes: bool,
    },
    /// Every business system (never its secret).
    List,
    /// No new tokens; its tokens end now.
    Disable { code: String },
    /// A new appSecret, printed once; the old one and every token end.
    RotateSecret { code: String },
    /// Its own callback URL, or back to the template with --clear.
    SetCallback {
        code: String,
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        clear: bool,
    },
    /// Also call back when a pushed bill is received (seed 001: 开票接收到开票请求时), not only
    /// once it is invoiced: on or off.
    CallbackOnReceipt {
        code: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Subcommand)]
pub enum ApiCommand {
    /// The ERP API's request log, newest first (never a token, secret or body).
    Log {
        /// Only this business system.
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10000))]
        limit: i64,
    },
}

fn print_credentials(ctx: &Context, c: &Credentials) -> anyhow::Result<()> {
    if ctx.json {
        return output::json(c);
    }
    println!("business system {}", c.code);
    println!("appId:     {}", c.app_id);
    println!("appSecret: {}", c.app_secret);
    println!("accountId: {}", c.account_id);
    if let Some(p) = &c.data_password {
        println!("AES password of data: {p}");
    }
    println!("The appSecret is shown only now: keep it in the ERP's configuration.");
    Ok(())
}

pub async fn run(command: SystemCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let actor = Actor::cli();
    let app = App::open(&ctx.settings).await?;
    match command {
        SystemCommand::Add { code, name, callback_url, tax_no, aes } => {
            let tax_nos = tax_no
                .iter()
                .map(|t| TaxNo::parse(t).map_err(|e| UsageError(format!("--tax-no {t}: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let new = NewSystem { code, name, callback_url, tax_nos, aes };
            print_credentials(ctx, &systems::add(&app, &actor, &new).await?)?;
        }
        SystemCommand::List => {
            let all = systems::list(&app).await?;
            output::list(
                ctx.json,
                &all,
                &["CODE", "NAME", "APP ID", "DATA", "SELLERS", "CALLBACK", "DISABLED"],
                |s| {
                    vec![
                        s.code.clone(),
                        s.name.clone(),
                        s.app_id.clone(),
                        if s.aes { "aes".into() } else { "base64".into() },
                        s.tax_nos.join(","),
                        s.callback_url.clone().unwrap_or_else(|| "(callbacks.url)".into()),
                        if s.disabled { "yes".into() } else { "no".into() },
                    ]
                },
            )?;
        }
        SystemCommand::Disable { code } => {
            systems::disable(&app, &actor, &code).await?;
            println!("business system {code} disabled");
        }
        SystemCommand::RotateSecret { code } => {
            print_credentials(ctx, &systems::rotate_secret(&app, &actor, &code).await?)?;
        }
        SystemCommand::SetCallback { code, url, clear } => {
            if url.is_none() && !clear {
                return Err(UsageError("give the URL, or --clear for callbacks.url".into()).into());
            }
            systems::set_callback(&app, &actor, &code, url.as_deref()).await?;
            println!("business system {code}: callbacks to {}", url.as_deref().unwrap_or("callbacks.url"));
        }
        SystemCommand::CallbackOnReceipt { code, state } => {
            systems::set_callback_on_receipt(&app, &actor, &code, state == "on").await?;
            println!("business system {code}: callback on receipt {state}");
        }
    }
    Ok(Outcome::Done)
}

pub async fn api(command: ApiCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let app = App::open(&ctx.settings).await?;
    match command {
        ApiCommand::Log { system, limit } => {
            let rows = erp::log_rows(&app, system.as_deref(), limit).await?;
            let tz = ctx.settings.time_zone();
            output::list(
                ctx.json,
                &rows,
                &[
                    "ID",
                    "AT",
                    "SYSTEM",
                    "INTERFACE",
                    "REQUEST",
                    "BILLS",
                    "OK",
                    "REFUSED",
                    "OUTCOME",
                    "MS",
                    "MESSAGE",
                ],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string(),
                        r.system_code.clone().unwrap_or_default(),
                        r.interface_code.clone(),
                        r.request_id.clone().unwrap_or_default(),
                        r.bills.to_string(),
                        r.accepted.to_string(),
                        r.refused.to_string(),
                        r.outcome.clone(),
                        r.duration_ms.to_string(),
                        r.message.clone(),
                    ]
                },
            )?;
        }
    }
    Ok(Outcome::Done)
}
