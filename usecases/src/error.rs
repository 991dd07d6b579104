//! One error for the use cases: each domain crate's error as it is, plus the use cases' own, and
//! the one place that says what kind of failure each is and its stable code. The CLI turns a kind
//! into an exit code, the web surfaces into a status (`ErrorKind::exit_code`, `http_status`).

use fapiao_export::ExportError;
use fapiao_invoicing::InvoicingError;
use fapiao_pipelines::import::ImportError;
use fapiao_schemas::Coded;
pub use fapiao_schemas::ErrorKind;
use fapiao_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Invoicing(#[from] InvoicingError),
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The request cannot be carried out as given; `code` is stable, the message says why.
    #[error("{message}")]
    BadInput { code: &'static str, message: String },
    /// Something the request names does not exist (e.g. an enterprise to export).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A rule said no (a login refused, a password too weak); `code` is stable.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// It exists already (a user name taken).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("password hashing: {0}")]
    Password(String),
    #[error("report: {0}")]
    Report(#[from] rust_xlsxwriter::XlsxError),
    /// The channel failed or refused a call made for the user (a status query, say).
    #[error("{0}")]
    Channel(fapiao_channel::ChannelError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        Error::Store(StoreError::Sql(e))
    }
}

impl Error {
    pub(crate) fn bad_input(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadInput { code, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Store(e) => e.kind(),
            Error::Import(e) => match e {
                ImportError::AlreadyImported(_) => ErrorKind::Conflict,
                ImportError::Template(_) | ImportError::Read(_) => ErrorKind::Refused,
                ImportError::Channel(_) => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Error::Invoicing(e) => e.kind(),
            Error::Export(ExportError::Invalid(_)) => ErrorKind::BadInput,
            Error::Export(_) | Error::Report(_) => ErrorKind::Internal,
            Error::BadInput { .. } => ErrorKind::BadInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Refused { .. } => ErrorKind::Refused,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Password(_) => ErrorKind::Internal,
            Error::Channel(e) => match e.disposition() {
                fapiao_channel::error::Disposition::BadInput => ErrorKind::BadInput,
                fapiao_channel::error::Disposition::NeverRetry => ErrorKind::Refused,
                _ => ErrorKind::Unavailable,
            },
        }
    }

    /// The stable English code shown next to the message (`--json` `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Store(e) => e.code(),
            Error::Import(e) => match e {
                ImportError::AlreadyImported(_) => "DUPLICATE_FILE",
                ImportError::Template(t) => t.code(),
                ImportError::Read(r) => r.code(),
                ImportError::NoChannel => "CONFIG",
                ImportError::Channel(_) => "VERIFY_PERMISSION",
                _ => "IMPORT_FAILED",
            },
            Error::Invoicing(e) => e.code(),
            Error::Export(ExportError::Invalid(_)) => "INVALID_INPUT",
            Error::Export(_) => "EXPORT_FAILED",
            Error::BadInput { code, .. }
            | Error::NotFound { code, .. }
            | Error::Refused { code, .. }
            | Error::Conflict { code, .. } => code,
            Error::Password(_) => "PASSWORD_HASH",
            Error::Report(_) => "REPORT_FAILED",
            Error::Channel(_) => "CHANNEL",
        }
    }
}

#[cfg(test)]
mod tests {
    use fapiao_schemas::params::ParamError;

    use super::*;

    fn kind_code_exit(e: Error) -> (ErrorKind, &'static str, u8) {
        (e.kind(), e.code(), e.kind().exit_code())
    }

    #[test]
    fn each_failure_keeps_its_code_and_exit_code() {
        let unknown = ParamError::Unknown { ptype: "x".into(), key: "y".into(), known: String::new() };
        assert_eq!(
            kind_code_exit(Error::Store(StoreError::Param(unknown))),
            (ErrorKind::BadInput, "PARAM_UNKNOWN", 2)
        );
        assert_eq!(
            kind_code_exit(Error::Import(ImportError::AlreadyImported(7))),
            (ErrorKind::Conflict, "DUPLICATE_FILE", 1)
        );
        assert_eq!(
            kind_code_exit(Error::Invoicing(InvoicingError::not_found(
                "PENDING_NOT_FOUND",
                "待开发票9不存在"
            ))),
            (ErrorKind::NotFound, "PENDING_NOT_FOUND", 2)
        );
        assert_eq!(
            kind_code_exit(Error::Invoicing(InvoicingError::refused("PENDING_NOT_REFUNDABLE", "…"))),
            (ErrorKind::Refused, "PENDING_NOT_REFUNDABLE", 1)
        );
        assert_eq!(
            kind_code_exit(Error::Export(ExportError::Invalid("--from after --to".into()))),
            (ErrorKind::BadInput, "INVALID_INPUT", 2)
        );
        assert_eq!(
            kind_code_exit(Error::bad_input("USAGE", "at most 10")),
            (ErrorKind::BadInput, "USAGE", 2)
        );
    }

    #[test]
    fn messages_are_the_domain_errors_own() {
        let e = Error::Invoicing(InvoicingError::not_found("PENDING_NOT_FOUND", "待开发票9不存在"));
        assert_eq!(e.to_string(), "待开发票9不存在");
    }
}
