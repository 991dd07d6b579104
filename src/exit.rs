//! Exit codes and how errors are shown: 0 ok, 1 failed, 2 usage error, 3 some items rejected.

use std::process::ExitCode;

use fapiao_schemas::Coded;
use fapiao_store::StoreError;

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

const FAILED: u8 = 1;
const USAGE: u8 = 2;
const REJECTED: u8 = 3;

/// The exit code and stable error code of a failure.
fn classify(err: &anyhow::Error) -> (u8, &'static str) {
    if let Some(store) = err.downcast_ref::<StoreError>() {
        return match store {
            StoreError::Param(p) => (USAGE, p.code()),
            StoreError::Invalid(_) => (USAGE, "INVALID_INPUT"),
            StoreError::NotFound(_) => (FAILED, "NOT_FOUND"),
            StoreError::Cluster(_) => (FAILED, "DATABASE_CLUSTER"),
            StoreError::Sql(_) | StoreError::Migrate(_) => (FAILED, "DATABASE"),
        };
    }
    if err.downcast_ref::<fapiao_jobs::job::RegistryError>().is_some() {
        return (FAILED, "CONFIG");
    }
    if let Some(e) = err.downcast_ref::<fapiao_pipelines::import::ImportError>() {
        use fapiao_pipelines::import::ImportError as E;
        return (
            FAILED,
            match e {
                E::AlreadyImported(_) => "DUPLICATE_FILE",
                E::Template(t) => t.code(),
                E::Read(_) => "FILE_UNREADABLE",
                E::NoChannel => "CONFIG",
                E::Channel(_) => "VERIFY_PERMISSION",
                _ => "IMPORT_FAILED",
            },
        );
    }
    if let Some(e) = err.downcast_ref::<fapiao_invoicing::InvoicingError>() {
        return (FAILED, e.code());
    }
    if let Some(e) = err.downcast_ref::<fapiao_export::ExportError>() {
        return match e {
            fapiao_export::ExportError::Invalid(_) => (USAGE, "INVALID_INPUT"),
            _ => (FAILED, "EXPORT_FAILED"),
        };
    }
    if err.downcast_ref::<UsageError>().is_some() {
        return (USAGE, "USAGE");
    }
    if err.downcast_ref::<fapiao_schemas::config::ConfigError>().is_some() {
        return (FAILED, "CONFIG");
    }
    (FAILED, "FAILED")
}

pub fn finish(result: anyhow::Result<Outcome>, json: bool) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::SomeRejected) => ExitCode::from(REJECTED),
        Err(err) => {
            let (exit, code) = classify(&err);
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
