//! The invoicing jobs, each one use case run on a schedule: `auto-issue` (the issuing pass over
//! the bills flagged 自动开票: push, issue, settle unfinished invoices, deliver due callbacks),
//! `auto-reissue` (自动重开) and `red-flush-poll` (waiting red confirmation forms and red info
//! sheets, red invoices still 开票中).

use fapiao_usecases::issuing::{self, Selection};
use fapiao_usecases::{Actor, App, deduct, quiet, red_flush};

use crate::job::{JobContext, JobError, RunInfo, RunReport};

fn app(ctx: &JobContext) -> App {
    App::new(ctx.pool.clone(), ctx.channel.clone(), ctx.settings.clone())
}

fn actor(job: &str, run: &RunInfo) -> Actor {
    Actor::Job { job: job.into(), run_id: run.run_id }
}

pub async fn auto_issue(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let r = issuing::issue(&app(ctx), &actor("auto-issue", run), &Selection::AutoIssue, &quiet).await?;
    Ok(RunReport {
        read: r.invoices.len() as i64,
        written: r.succeeded as i64,
        rejected: r.rejected() as i64,
        skipped: r.idle(),
        reason: Some(format!(
            "{} bills pushed into {} invoices; callbacks sent {}, succeeded {}",
            r.pushed.bills.len(),
            r.pushed.pending_ids.len(),
            r.callbacks.attempted,
            r.callbacks.succeeded
        )),
        ..RunReport::default()
    })
}

pub async fn auto_reissue(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let now = chrono::Utc::now();
    let r = issuing::reissue(&app(ctx), &actor("auto-reissue", run), now, false, None, &quiet).await?;
    let (report, sent) = (&r.report, r.callbacks.as_ref().map_or(0, |c| c.attempted));
    Ok(RunReport {
        read: r.looked_at() as i64,
        written: report.reissued.len() as i64,
        rejected: report.still_failing.len() as i64,
        skipped: report.reissued.is_empty() && report.still_failing.is_empty(),
        reason: Some(format!(
            "reissued {}, skipped {}, still failing {}, left alone {}; callbacks sent {sent}",
            report.reissued.len(),
            report.skipped.len(),
            report.still_failing.len(),
            report.left_alone.len(),
        )),
        ..RunReport::default()
    })
}

pub async fn red_flush_poll(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let r = red_flush::poll(&app(ctx), &actor("red-flush-poll", run)).await?;
    Ok(RunReport {
        read: r.polled as i64,
        written: r.succeeded as i64,
        rejected: r.failed as i64,
        skipped: r.polled == 0,
        reason: Some(format!("{} still waiting", r.waiting)),
        ..RunReport::default()
    })
}

/// deduct-poll: ask the bureau about every open asynchronous selection batch (rpa_select_syn ≠ 1).
pub async fn deduct_poll(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let r = deduct::poll(&app(ctx), &actor("deduct-poll", run)).await?;
    Ok(RunReport {
        read: r.polled as i64,
        written: r.finished as i64,
        skipped: r.polled == 0,
        reason: Some(format!("{} still open, {} sent again", r.still_open, r.resent)),
        ..RunReport::default()
    })
}
