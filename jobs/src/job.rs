//! A job is a value: name, schedule, time zone, misfire and retry policy, and what it runs.
//! The registry holds each name once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use fapiao_channel::{ChannelClient, ChannelError};
use fapiao_schemas::config::Settings;
use fapiao_schemas::params::{RIM_CONFIG, SYNC_HIS};
use fapiao_store::StoreError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::schedule::{Misfire, Schedule};
use crate::sync;

/// The four sync jobs (SPEC.md "Scheduled jobs") and the two invoicing jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    ApplyCache,
    DownloadApply,
    Fetch,
    DealTask,
    AutoIssue,
    AutoReissue,
    RedFlushPoll,
    DeductPoll,
}

impl JobKind {
    pub const ALL: [JobKind; 8] = [
        JobKind::ApplyCache,
        JobKind::DownloadApply,
        JobKind::Fetch,
        JobKind::DealTask,
        JobKind::AutoIssue,
        JobKind::AutoReissue,
        JobKind::RedFlushPoll,
        JobKind::DeductPoll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobKind::ApplyCache => "apply-cache",
            JobKind::DownloadApply => "download-apply",
            JobKind::Fetch => "fetch",
            JobKind::DealTask => "deal-task",
            JobKind::AutoIssue => "auto-issue",
            JobKind::AutoReissue => "auto-reissue",
            JobKind::RedFlushPoll => "red-flush-poll",
            JobKind::DeductPoll => "deduct-poll",
        }
    }

    /// Whether the kill switch `rim_config_sync_his = 0` stops this job: the input sync tasks
    /// only (seed 004 documents it for them). Auto-issue, auto-reissue and red-flush-poll keep
    /// their own pause (`jobs pause`).
    pub fn under_sync_switch(self) -> bool {
        match self {
            JobKind::ApplyCache | JobKind::DownloadApply | JobKind::Fetch | JobKind::DealTask => true,
            JobKind::AutoIssue | JobKind::AutoReissue | JobKind::RedFlushPoll | JobKind::DeductPoll => false,
        }
    }

    /// Whether a run works for a business date ("today", `jobs run NAME --date D`): the sync
    /// jobs that apply for a day's invoices.
    pub fn takes_date(self) -> bool {
        matches!(self, JobKind::ApplyCache | JobKind::DownloadApply)
    }

    /// The documented task this job is (seed 004).
    pub fn documented_as(self) -> &'static str {
        match self {
            JobKind::ApplyCache => "rim_tableHeadApplyTask_SKDP_S 税局发票同步申请缓存",
            JobKind::DownloadApply => "rim_invoiceDownloadApply_SKDP_S",
            JobKind::Fetch => "rim_inputdowload_SKDJ_S 进销项发票下载",
            JobKind::DealTask => "rim_InputInvoiceDownDealTask_SKDP_S",
            JobKind::AutoIssue => "自动开票（按单据自动开票标志）",
            JobKind::AutoReissue => "自动重开（sim_auto_issue_config）",
            JobKind::RedFlushPoll => "红冲：待确认的红字确认单、待审核的红字信息表",
            JobKind::DeductPoll => "抵扣类勾选：异步勾选批次的处理结果",
        }
    }

    async fn run(self, ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
        match self {
            JobKind::ApplyCache => sync::apply_cache::run(ctx, run).await,
            JobKind::DownloadApply => sync::download_apply::run(ctx, run).await,
            JobKind::Fetch => sync::fetch::run(ctx, run).await,
            JobKind::DealTask => sync::deal_task::run(ctx, run).await,
            JobKind::AutoIssue => crate::invoicing::auto_issue(ctx, run).await,
            JobKind::AutoReissue => crate::invoicing::auto_reissue(ctx, run).await,
            JobKind::RedFlushPoll => crate::invoicing::red_flush_poll(ctx, run).await,
            JobKind::DeductPoll => crate::invoicing::deduct_poll(ctx, run).await,
        }
    }
}

#[derive(Clone, Debug)]
pub struct JobSpec {
    pub kind: JobKind,
    pub schedule: Schedule,
    pub misfire: Misfire,
    pub max_attempts: u32,
}

impl JobSpec {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
    pub async fn run(&self, ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
        self.kind.run(ctx, run).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("job {0} registered twice")]
    Duplicate(&'static str),
    #[error(
        "unknown job {0:?}; jobs: apply-cache, download-apply, fetch, deal-task, auto-issue, auto-reissue, red-flush-poll, deduct-poll"
    )]
    Unknown(String),
}

/// The jobs of this deployment, each name once.
#[derive(Clone, Debug)]
pub struct Registry {
    jobs: Vec<JobSpec>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry { jobs: Vec::new() }
    }

    pub fn register(&mut self, spec: JobSpec) -> Result<(), RegistryError> {
        if self.jobs.iter().any(|j| j.name() == spec.name()) {
            return Err(RegistryError::Duplicate(spec.name()));
        }
        self.jobs.push(spec);
        Ok(())
    }

    /// The eight jobs with the schedules, time zone and policies of `settings`.
    pub fn from_settings(settings: &Settings) -> Result<Registry, RegistryError> {
        let tz: Tz = settings.time_zone();
        let s = &settings.schedules;
        let j = &settings.jobs;
        let mut registry = Registry::new();
        for (kind, expr, misfire) in [
            (JobKind::ApplyCache, &s.apply_cache, &j.apply_cache_misfire),
            (JobKind::DownloadApply, &s.download_apply, &j.download_apply_misfire),
            (JobKind::Fetch, &s.fetch, &j.fetch_misfire),
            (JobKind::DealTask, &s.deal_task, &j.deal_task_misfire),
            (JobKind::AutoIssue, &s.auto_issue, &j.auto_issue_misfire),
            (JobKind::AutoReissue, &s.auto_reissue, &j.auto_reissue_misfire),
            (JobKind::RedFlushPoll, &s.red_flush_poll, &j.red_flush_poll_misfire),
            (JobKind::DeductPoll, &s.deduct_poll, &j.deduct_poll_misfire),
        ] {
            registry.register(JobSpec {
                kind,
                schedule: Schedule::new(expr.clone(), tz),
                misfire: *misfire,
                max_attempts: j.max_attempts,
            })?;
        }
        Ok(registry)
    }

    pub fn get(&self, name: &str) -> Result<&JobSpec, RegistryError> {
        self.jobs.iter().find(|j| j.name() == name).ok_or_else(|| RegistryError::Unknown(name.into()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &JobSpec> {
        self.jobs.iter()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// What a running job may use.
#[derive(Clone)]
pub struct JobContext {
    pub pool: PgPool,
    pub channel: Arc<ChannelClient>,
    pub settings: Arc<Settings>,
    pub tz: Tz,
    /// This process's worker id (in the ledger and on staged rows it handled).
    pub worker: String,
    /// Set on shutdown, or when the run lost its lease: stop at the next item boundary.
    pub cancel: CancellationToken,
}

impl JobContext {
    /// A context on `pool` and `channel` with the settings' time zone and a fresh stop token.
    pub fn new(pool: PgPool, channel: Arc<ChannelClient>, settings: Settings, worker: String) -> JobContext {
        JobContext {
            pool,
            channel,
            tz: settings.time_zone(),
            settings: Arc::new(settings),
            worker,
            cancel: CancellationToken::new(),
        }
    }

    /// Whether a job of `kind` should stop before the next item: shutdown, lost lease, or — for
    /// the input sync jobs ([`JobKind::under_sync_switch`]) — the kill switch
    /// `rim_config_sync_his = 0` (read at every boundary, so it acts without a restart).
    pub async fn should_stop(&self, kind: JobKind) -> Result<Option<String>, JobError> {
        if self.cancel.is_cancelled() {
            return Ok(Some("stopped: shutdown or lease lost".into()));
        }
        if !kind.under_sync_switch() {
            return Ok(None);
        }
        let switch = fapiao_store::params::value(&self.pool, RIM_CONFIG, SYNC_HIS).await?;
        Ok((switch.as_deref() == Some("0")).then(|| "stopped: rim_config_sync_his = 0 (kill switch)".into()))
    }
}

/// The run being executed.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_id: i64,
    pub scheduled_for: DateTime<Utc>,
    /// "Today" for this run, in the configured time zone (or the `--date` of a manual run).
    pub business_date: NaiveDate,
}

/// What a run did; `skipped` with a reason when it decided not to work (e.g. not a download day).
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub read: i64,
    pub written: i64,
    pub rejected: i64,
    pub skipped: bool,
    pub reason: Option<String>,
    /// Why rows were rejected or put off, tallied by cause: the run's reason in `jobs history`
    /// says it, so nobody has to look for it in the tables the job wrote.
    pub(crate) rejected_for: BTreeMap<String, u32>,
    pub(crate) put_off_for: BTreeMap<String, u32>,
}

impl RunReport {
    /// A row refused for good (until someone sends it again: `fapiao sync retry`).
    pub fn reject(&mut self, cause: impl fmt::Display) {
        self.rejected += 1;
        *self.rejected_for.entry(short(cause)).or_default() += 1;
    }

    /// A row left for a later run by a fault of the moment; it is not counted as rejected.
    pub fn put_off(&mut self, cause: impl fmt::Display) {
        *self.put_off_for.entry(short(cause)).or_default() += 1;
    }

    /// The reason the run gave, then the tallied causes: `rejected: 2 × …; put off: 1 × …`.
    pub fn full_reason(&self) -> Option<String> {
        let tally = |label: &str, causes: &BTreeMap<String, u32>| {
            (!causes.is_empty()).then(|| {
                let list: Vec<String> = causes.iter().map(|(c, n)| format!("{n} × {c}")).collect();
                format!("{label}: {}", list.join(", "))
            })
        };
        let parts: Vec<String> =
            [self.reason.clone(), tally("rejected", &self.rejected_for), tally("put off", &self.put_off_for)]
                .into_iter()
                .flatten()
                .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// A cause as one short line (channel messages can be long).
fn short(cause: impl fmt::Display) -> String {
    const MAX: usize = 120;
    let text = cause.to_string().replace('\n', " ");
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The run fails loudly; the message names what (e.g. the enterprise) and why.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Invoicing(#[from] fapiao_invoicing::InvoicingError),
    #[error(transparent)]
    UseCase(#[from] fapiao_usecases::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_switch_is_the_input_syncs_only() {
        let under: Vec<&str> =
            JobKind::ALL.iter().filter(|k| k.under_sync_switch()).map(|k| k.name()).collect();
        assert_eq!(under, ["apply-cache", "download-apply", "fetch", "deal-task"]);
    }
}
