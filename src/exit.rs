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

pub fn finish(result: anyhow::Result<Outcome>, json: bool) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::SomeRejected) => ExitCode::from(REJECTED),
        Err(err) => {
            let (kind, code) = classify(&err);
            let exit = kind.exit_code();
            let message = format!("{err:#}");
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
