//! Exit codes and how errors are shown: 0 ok, 1 failed, 2 usage error, 3 some items rejected.
//! What kind of failure an error is comes from its crate (`kind()`); the exit code of a kind is
//! `ErrorKind::exit_code`, the same table the web surfaces take their statuses from.

use std::process::ExitCode;

use fapiao_schemas::ErrorKind;

/// How a command that did not fail ended.
pub enum Outcome {
    Done,
    /// Finished, but some items were rejected (exit 3).
    SomeRejected,
}

/// A command line that cannot be carried out as given (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

const REJECTED: u8 = 3;

/// The kind and stable code of a failure.
fn classify(err: &anyhow::Error) -> (ErrorKind, &'static str) {
    if fapiao_store::is_unavailable(err.as_ref()) {
        return (ErrorKind::Unavailable, "DATABASE_UNAVAILABLE");
    }
    if let Some(e) = err.downcast_ref::<fapiao_usecases::Error>() {
        return (e.kind(), e.code());
    }
    if let Some(e) = err.downcast_ref::<fapiao_jobs::control::ControlError>() {
        return (e.kind(), e.code());
    }
    if let Some(e) = err.downcast_ref::<fapiao_store::StoreError>() {
        // Commands on the foundation's tables (enterprise, scheme, db) use the store directly.
        return (e.kind(), e.code());
    }
    if err.downcast_ref::<UsageError>().is_some() {
        return (ErrorKind::BadInput, "USAGE");
    }
    if err.downcast_ref::<fapiao_jobs::job::RegistryError>().is_some()
        || err.downcast_ref::<fapiao_schemas::config::ConfigError>().is_some()
    {
        return (ErrorKind::Internal, "CONFIG");
    }
    (ErrorKind::Internal, "FAILED")
}

/// Arguments clap refused: its message on stderr as clap prints it, and with `--json` the same
/// `{"error": …}` body on stdout as any other failure (code `USAGE`, exit 2). `--help` and
/// `--version` are "errors" to clap too: they print and exit 0 as usual.
pub fn arguments_refused(err: clap::Error, json: bool) -> ExitCode {
    if err.exit_code() == 0 {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let exit = ErrorKind::BadInput.exit_code();
    if json {
        let message = if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            "a subcommand or argument is missing (see --help)".to_string()
        } else {
            // The error's own paragraph, without clap's usage and "try --help" lines.
            let text = err.render().to_string();
            let first = text.split("\n\n").next().unwrap_or_default().trim();
            first.strip_prefix("error:").unwrap_or(first).trim().to_string()
        };
        let body = serde_json::json!({ "error": { "code": "USAGE", "message": message, "exit_code": exit } });
        println!("{body}");
    }
    let _ = err.print();
    ExitCode::from(exit)
}

/// `database_whereabouts` names the database for the message that it is unavailable.
pub fn finish(
    result: anyhow::Result<Outcome>,
    json: bool,
    database_whereabouts: impl FnOnce() -> String,
) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::SomeRejected) => ExitCode::from(REJECTED),
        Err(err) => {
            let (kind, code) = classify(&err);
            let exit = kind.exit_code();
            let message = if code == "DATABASE_UNAVAILABLE" {
                format!(
                    "数据库不可用 (the database is unavailable): {}. Where: {}",
                    root_cause(&err),
                    database_whereabouts()
                )
            } else {
                message(&err)
            };
            if json {
                let body =
                    serde_json::json!({ "error": { "code": code, "message": message, "exit_code": exit } });
                println!("{body}");
            }
            eprintln!("error: {message}");
            ExitCode::from(exit)
        }
    }
}

/// The error and its causes, each said once: layers that already quote their cause in their own
/// message (`database: {0}`) would otherwise repeat it, once per layer.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn root_cause(err: &anyhow::Error) -> String {
    err.chain().last().map(ToString::to_string).unwrap_or_default()
}
