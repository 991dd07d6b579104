//! Issuing (SPEC.md "Invoicing"): the issuing pass — push the selected bills into pending
//! invoices, drive each unfinished invoice as far as it goes now (settling what a killed run left
//! 已提交/开票中), deliver the callbacks that became due — and auto-reissue (自动重开). The CLI's
//! `issue`, the `auto-issue` job and the demo all run [`issue`]; `reissue` and the
//! `auto-reissue` job run [`reissue`].

use chrono::{DateTime, Utc};
use fapiao_invoicing::callbacks;
use fapiao_invoicing::issue;
use fapiao_invoicing::push;
use fapiao_invoicing::reissue::{self as auto, ReissueReport as Reissued};
use fapiao_schemas::PendingStatus;
use serde::Serialize;
use tracing::Instrument;

pub use fapiao_invoicing::callbacks::DeliveryReport;
pub use fapiao_invoicing::issue::IssueOutcome;
pub use fapiao_invoicing::push::{PushReport, Selection};
pub use fapiao_invoicing::reissue::ReissueItem;

use crate::{Actor, App, Progress, Result};

/// What one issuing pass did.
#[derive(Clone, Debug, Serialize)]
pub struct IssueReport {
    pub pushed: PushReport,
    /// Every pending invoice the pass drove, as it stands now.
    pub invoices: Vec<IssueOutcome>,
    pub succeeded: usize,
    pub failed: usize,
    /// Still 已提交/开票中 at the channel: a later pass (or the auto-issue job) settles them.
    pub unsettled: usize,
    pub callbacks: DeliveryReport,
}

impl IssueReport {
    /// Nothing to push, nothing to drive, no callback due.
    pub fn idle(&self) -> bool {
        self.invoices.is_empty() && self.callbacks.attempted == 0
    }

    /// Invoices that failed plus bills that could not be pushed.
    pub fn rejected(&self) -> usize {
        self.failed + self.pushed.refused.len()
    }
}

/// The issuing pass over `selection`: bills named (and their unfinished invoices), everything
/// open, or the bills flagged 自动开票 (the job).
pub async fn issue(
    app: &App,
    actor: &Actor,
    selection: &Selection,
    progress: Progress<'_, IssueOutcome>,
) -> Result<IssueReport> {
    let span = tracing::info_span!("issue", actor = %actor);
    async {
        let inv = app.invoicing();
        let pushed = push::push(&inv, selection).await?;
        let ids = match selection {
            Selection::Bills(bills) => issue::candidates_of_bills(&inv, bills).await?,
            Selection::All => issue::candidates(&inv, false).await?,
            Selection::AutoIssue => issue::candidates(&inv, true).await?,
        };
        let invoices = issue::issue(&inv, &ids, progress).await?;
        let callbacks = callbacks::deliver(&inv).await?;
        let count = |s: PendingStatus| invoices.iter().filter(|o| o.status == s).count();
        let (succeeded, failed) = (count(PendingStatus::Succeeded), count(PendingStatus::Failed));
        tracing::info!(
            bills = pushed.bills.len(),
            invoices = invoices.len(),
            succeeded,
            failed,
            "issuing pass"
        );
        Ok(IssueReport {
            unsettled: invoices.len() - succeeded - failed,
            succeeded,
            failed,
            pushed,
            invoices,
            callbacks,
        })
    }
    .instrument(span)
    .await
}

/// What auto-reissue did, and the callbacks it made due (none in a dry run).
#[derive(Clone, Debug, Serialize)]
pub struct ReissueReport {
    pub report: Reissued,
    pub callbacks: Option<DeliveryReport>,
}

impl ReissueReport {
    /// Every failed invoice looked at.
    pub fn looked_at(&self) -> usize {
        let r = &self.report;
        r.reissued.len() + r.skipped.len() + r.still_failing.len() + r.left_alone.len()
    }
}

/// 自动重开 as of `now`: failed invoices whose message matches a `sim_auto_issue_config`
/// fragment, not before their "请<time>后再试", at most `invoicing.max_reissues` each; `only`
/// aims it at chosen invoices under the same rules. A dry run lists what would go and changes
/// nothing.
pub async fn reissue(
    app: &App,
    actor: &Actor,
    now: DateTime<Utc>,
    dry_run: bool,
    only: Option<&[i64]>,
    progress: Progress<'_, IssueOutcome>,
) -> Result<ReissueReport> {
    let span = tracing::info_span!("reissue", actor = %actor, dry_run, ?only);
    async {
        let inv = app.invoicing();
        let report = auto::reissue_some(&inv, now, dry_run, only, progress).await?;
        let callbacks = if dry_run { None } else { Some(callbacks::deliver(&inv).await?) };
        Ok(ReissueReport { report, callbacks })
    }
    .instrument(span)
    .await
}
