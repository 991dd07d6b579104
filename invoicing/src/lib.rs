//! Invoicing (SPEC.md "Invoicing", "Exception handling"): applications are pushed into pending
//! invoices (merged and split within the limits), issued through the channel with serial numbers
//! stored before every call, settled by query, recorded, and reported to each bill's ERP.
//!
//! The one promise everything here keeps: **no invoice is ever issued twice.** A serial number is
//! written (with its attempt row) before the call that uses it; a lost answer is settled by
//! querying that serial; a new serial is only taken once the channel has confirmed that the old
//! one failed. Resending the *same* serial is always safe: the channel refuses duplicates (10127).

pub mod applications;
pub mod callbacks;
pub mod exceptions;
pub mod issue;
pub mod push;
mod record;
pub mod redflush;
pub mod reissue;

use std::sync::Arc;

use fapiao_channel::{ChannelClient, ChannelError};
use fapiao_schemas::Coded;
use fapiao_schemas::config::Settings;
use sqlx::PgPool;

/// What the invoicing operations work with.
#[derive(Clone)]
pub struct Invoicing {
    pub pool: PgPool,
    pub channel: Arc<ChannelClient>,
    pub settings: Arc<Settings>,
}

impl Invoicing {
    pub fn new(pool: PgPool, channel: Arc<ChannelClient>, settings: Arc<Settings>) -> Invoicing {
        Invoicing { pool, channel, settings }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvoicingError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The operation is not allowed on this item as it stands (wrong state, unknown id, …).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
}

impl InvoicingError {
    pub fn refused(code: &'static str, message: impl Into<String>) -> InvoicingError {
        InvoicingError::Refused { code, message: message.into() }
    }
}

impl Coded for InvoicingError {
    fn code(&self) -> &'static str {
        match self {
            InvoicingError::Sql(_) => "DATABASE",
            InvoicingError::Channel(_) => "CHANNEL",
            InvoicingError::Refused { code, .. } => code,
        }
    }
    fn message_zh(&self) -> String {
        self.to_string()
    }
}

pub type Result<T> = std::result::Result<T, InvoicingError>;

/// Pending invoice statuses (待开发票状态) with their documented names.
pub mod status {
    pub const NOT_ISSUED: &str = "not_issued";
    pub const SUBMITTED: &str = "submitted";
    pub const ISSUING: &str = "issuing";
    pub const FAILED: &str = "failed";
    pub const SUCCEEDED: &str = "succeeded";

    pub fn label_zh(status: &str) -> &'static str {
        match status {
            NOT_ISSUED => "未开票",
            SUBMITTED => "已提交",
            ISSUING => "开票中",
            FAILED => "开票失败",
            SUCCEEDED => "开票成功",
            _ => "未知",
        }
    }
}
