//! The scheduled side of fapiao: schedules and misfire policies, the durable run ledger, the
//! runner that claims and executes runs, `serve` (tokio-cron-scheduler records due ticks; a
//! worker loop executes them), metrics, the four input-invoice sync jobs and the three invoicing
//! jobs (auto-issue, auto-reissue, red-flush-poll) and deduct-poll (asynchronous selection batches).

pub mod control;
pub mod invoicing;
pub mod job;
pub mod ledger;
pub mod metrics;
pub mod runner;
pub mod schedule;
pub mod serve;
pub mod sync;
pub mod synthetic;

pub use job::{JobContext, JobError, JobKind, JobSpec, Registry, RunInfo, RunReport};
