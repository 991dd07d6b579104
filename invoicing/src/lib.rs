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
pub mod files;
pub mod issue;
pub mod issued;
pub mod push;
mod record;
pub mod redflush;
pub mod reissue;
pub mod void;

use std::sync::Arc;
use std::time::Duration;

use fapiao_channel::{ChannelClient, ChannelError};
use fapiao_schemas::config::Settings;
use fapiao_schemas::split::LineProperty;
use fapiao_schemas::{Coded, ErrorKind, UnknownValue};
use rust_decimal::Decimal;
use sqlx::PgPool;

/// What the invoicing operations work with.
#[derive(Clone)]
pub struct Invoicing {
    pub pool: PgPool,
    pub channel: Arc<ChannelClient>,
    pub settings: Arc<Settings>,
    /// Connections that hold, for each invoice being driven, a transaction-scoped advisory lock
    /// (`issue::drive`): one worker drives an invoice at a time, and a worker that dies or drops
    /// the drive lets go at once. Opened lazily, at most `issue_concurrency` (+1).
    locks: PgPool,
}

impl Invoicing {
    pub fn new(pool: PgPool, channel: Arc<ChannelClient>, settings: Arc<Settings>) -> Invoicing {
        let locks = sqlx::postgres::PgPoolOptions::new()
            .max_connections(settings.invoicing.issue_concurrency + 1)
            .min_connections(0)
            .connect_lazy_with((*pool.connect_options()).clone());
        Invoicing { pool, channel, settings, locks }
    }

    /// Hold invoice `id` for this worker while the transaction lives; `None` when another
    /// worker holds it.
    pub(crate) async fn hold(&self, id: i64) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>> {
        /// The advisory-lock namespace of pending invoices (ASCII "FPPI").
        const PENDING: i32 = 0x4650_5049;
        let mut tx = self.locks.begin().await?;
        // Two int4 keys: ids past 2^31 wrap onto others, which only makes a rare invoice wait.
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
            .bind(PENDING)
            .bind(id as i32)
            .fetch_one(&mut *tx)
            .await?;
        Ok(held.then_some(tx))
    }

    /// Ask the channel about `serial` until it is final, every `invoicing.settle_poll_ms`, for
    /// at most `invoicing.settle_within_secs`.
    pub(crate) async fn wait_final(
        &self,
        serial: &str,
        seller: &str,
    ) -> std::result::Result<fapiao_channel::wire::IssueResult, ChannelError> {
        let s = &self.settings.invoicing;
        let (every, within) =
            (Duration::from_millis(s.settle_poll_ms), Duration::from_secs(s.settle_within_secs));
        self.channel.wait_final(serial, seller, every, within).await
    }
}

/// What went wrong, in invoicing's terms. `code()` gives each case its stable code.
#[derive(Debug, thiserror::Error)]
pub enum InvoicingError {
    #[error("database: {0}")]
    Sql(sqlx::Error),
    /// A stored value that its type does not admit (the row was written outside fapiao).
    #[error("{0}")]
    Corrupt(UnknownValue),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The channel could not be asked whether an invoice was issued, so nothing was done.
    #[error("无法向渠道确认开票结果，未做处理：{0}")]
    Unconfirmed(ChannelError),
    /// A business rule said no: not allowed on this item as it stands.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// No such pending invoice, bill or red document.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// An argument that names nothing known (e.g. an unknown status filter).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The HTTP client for callbacks could not be built.
    #[error("{0}")]
    Http(reqwest::Error),
    /// A parameter (系统参数) could not be read.
    #[error("{0}")]
    Param(fapiao_store::StoreError),
}

impl InvoicingError {
    pub fn refused(code: &'static str, message: impl Into<String>) -> InvoicingError {
        InvoicingError::Refused { code, message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> InvoicingError {
        InvoicingError::NotFound { code, message: message.into() }
    }

    /// What kind of failure this is, for the front doors (exit code, HTTP status).
    pub fn kind(&self) -> ErrorKind {
        match self {
            InvoicingError::Refused { .. } => ErrorKind::Refused,
            InvoicingError::NotFound { .. } => ErrorKind::NotFound,
            InvoicingError::Invalid { .. } => ErrorKind::BadInput,
            InvoicingError::Channel(_) | InvoicingError::Unconfirmed(_) => ErrorKind::Unavailable,
            InvoicingError::Sql(_)
            | InvoicingError::Corrupt(_)
            | InvoicingError::Http(_)
            | InvoicingError::Param(_) => ErrorKind::Internal,
        }
    }

    /// Refused, not found or not confirmable: an answer about one item of a batch, which the
    /// batch reports and goes on.
    pub fn is_about_the_item(&self) -> bool {
        matches!(
            self,
            InvoicingError::Refused { .. } | InvoicingError::NotFound { .. } | InvoicingError::Unconfirmed(_)
        )
    }
}

/// A decoded column that is not one of its type's values is [`InvoicingError::Corrupt`].
impl From<sqlx::Error> for InvoicingError {
    fn from(e: sqlx::Error) -> InvoicingError {
        if let sqlx::Error::ColumnDecode { source, .. } = &e
            && let Some(unknown) = source.downcast_ref::<UnknownValue>()
        {
            return InvoicingError::Corrupt(unknown.clone());
        }
        InvoicingError::Sql(e)
    }
}

impl Coded for InvoicingError {
    fn code(&self) -> &'static str {
        match self {
            InvoicingError::Sql(_) => "DATABASE",
            InvoicingError::Corrupt(u) if u.what == "invoice kind" => "INVOICE_KIND_UNKNOWN",
            InvoicingError::Corrupt(_) => "DATABASE",
            InvoicingError::Channel(_) => "CHANNEL",
            InvoicingError::Unconfirmed(_) => "CHANNEL_UNREACHABLE",
            InvoicingError::Refused { code, .. }
            | InvoicingError::NotFound { code, .. }
            | InvoicingError::Invalid { code, .. } => code,
            InvoicingError::Http(_) => "HTTP_CLIENT",
            InvoicingError::Param(_) => "PARAM",
        }
    }
    fn message_zh(&self) -> String {
        self.to_string()
    }
}

pub type Result<T> = std::result::Result<T, InvoicingError>;

/// The goods columns every invoice line carries, in `application_line` and `pending_line` alike;
/// the line structs read them with `#[sqlx(flatten)]`.
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct Goods {
    pub line_property: LineProperty,
    pub goods_name: String,
    pub revenue_code: String,
    pub specification: Option<String>,
    pub unit: Option<String>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub amount: Decimal,
    pub tax_rate: Decimal,
    pub tax: Decimal,
    /// 税收优惠政策标识, 优惠政策内容, 零税率标识.
    pub privilege_flag: bool,
    pub privilege_content: Option<String>,
    pub zero_rate_mark: Option<fapiao_schemas::policy::ZeroRateMark>,
}
