//! `fapiao user add|list|disable|passwd` (the console's users) and `fapiao audit list`.

use std::io::BufRead;

use clap::{Subcommand, ValueEnum};
use fapiao_usecases::users::{self, Role};
use fapiao_usecases::{Actor, App, audit};

use crate::exit::{Outcome, UsageError};
use crate::{Context, output};

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Ops,
    Finance,
    Auditor,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Ops => Role::Ops,
            RoleArg::Finance => Role::Finance,
            RoleArg::Auditor => Role::Auditor,
        }
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// A new console user; the password (at least 10 characters) is read from stdin.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Limit the user to this enterprise (repeatable); none: every enterprise.
        #[arg(long = "tax-no")]
        tax_no: Vec<String>,
        /// Read the password from the first line of stdin (required: never on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user with role, scope and whether disabled.
    List,
    /// The user can no longer log in; their sessions end.
    Disable { name: String },
    /// A new password from stdin; the user's sessions end.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The audit log, newest first.
    List {
        /// Only this actor (a console user's name, or e.g. cli:root).
        #[arg(long)]
        actor: Option<String>,
        /// Only actions starting with this (login, job., param.set, user.).
        #[arg(long)]
        action: Option<String>,
        /// ok, refused or failed.
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
}

fn password_from_stdin(asked: bool) -> anyhow::Result<String> {
    if !asked {
        return Err(UsageError("give the password on stdin with --password-stdin".into()).into());
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(command: UserCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let actor = Actor::cli();
    match command {
        UserCommand::Add { name, role, tax_no, password_stdin } => {
            let password = password_from_stdin(password_stdin)?;
            let app = App::open(&ctx.settings).await?;
            let user = users::add(&app, &actor, &name, role.into(), &tax_no, &password).await?;
            if ctx.json {
                output::json(&user)?;
            } else {
                println!("user {} added ({})", user.name, user.role);
            }
        }
        UserCommand::List => {
            let app = App::open(&ctx.settings).await?;
            let all = users::list(&app).await?;
            output::list(ctx.json, &all, &["NAME", "ROLE", "ENTERPRISES", "DISABLED", "CREATED"], |u| {
                vec![
                    u.name.clone(),
                    u.role.to_string(),
                    if u.tax_nos.is_empty() { "all".into() } else { u.tax_nos.join(",") },
                    if u.disabled { "yes".into() } else { "no".into() },
                    u.created_at
                        .with_timezone(&ctx.settings.time_zone())
                        .format("%Y-%m-%d %H:%M")
                        .to_string(),
                ]
            })?;
        }
        UserCommand::Disable { name } => {
            let app = App::open(&ctx.settings).await?;
            users::disable(&app, &actor, &name).await?;
            println!("user {name} disabled");
        }
        UserCommand::Passwd { name, password_stdin } => {
            let password = password_from_stdin(password_stdin)?;
            let app = App::open(&ctx.settings).await?;
            users::passwd(&app, &actor, &name, &password).await?;
            println!("password of {name} changed; their sessions ended");
        }
    }
    Ok(Outcome::Done)
}

pub async fn audit(command: AuditCommand, ctx: &Context) -> anyhow::Result<Outcome> {
    let AuditCommand::List { actor, action, outcome, limit } = command;
    let app = App::open(&ctx.settings).await?;
    let filter = audit::Filter { actor, action, outcome, before: None, limit };
    let rows = audit::list(&app, None, &filter).await?;
    let tz = ctx.settings.time_zone();
    output::list(
        ctx.json,
        &rows,
        &["ID", "AT", "ACTOR", "FROM", "ACTION", "TARGET", "OUTCOME", "DETAIL"],
        |r| {
            vec![
                r.id.to_string(),
                r.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string(),
                r.actor.clone(),
                r.source.clone(),
                r.action.clone(),
                r.target.clone(),
                r.outcome.clone(),
                r.detail.clone(),
            ]
        },
    )?;
    Ok(Outcome::Done)
}
