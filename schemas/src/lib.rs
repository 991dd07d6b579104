//! The vocabulary of fapiao: domain newtypes and the pure rules over them, the documented
//! parameters, the configuration, and (in `../migrations`) the database schema.
//!
//! Nothing here does I/O except reading configuration files; every rule is a pure function
//! with unit tests beside it.

pub mod billing_units;
pub mod config;
pub mod deductibility;
pub mod deduction;
pub mod enterprise;
pub mod error_kind;
pub mod invoice_file;
pub mod invoice_kind;
pub mod messages;
pub mod money;
pub mod params;
pub mod policy;
pub mod receipt_link;
pub mod red_flush;
pub mod schedule;
pub mod split;
pub mod states;
pub mod tax;
pub mod taxpayer_id;
pub mod template;

pub use error_kind::ErrorKind;
pub use invoice_kind::InvoiceKind;
pub use messages::Coded;
pub use money::{Money, Quantity, TaxRate, UnitPrice};
pub use states::{
    ApprovalState, AttemptOutcome, BillState, CallbackState, DataSource, FormState, InvoiceStatus,
    PendingStatus, RedDocumentKind, RedDocumentState, RedFlushRequestState, RedFlushState, RunState,
    RunTrigger, SelectAction, SelectBatchState, SelectOutcome, SelectState, SheetState, UnknownValue,
};
pub use taxpayer_id::TaxNo;
pub use template::ImportKind;
