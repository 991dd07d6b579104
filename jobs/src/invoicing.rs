//! The invoicing jobs: `auto-issue` (push and issue the bills flagged 自动开票, settle unfinished
//! invoices, deliver due callbacks), `auto-reissue` (自动重开) and `red-flush-poll` (waiting red
//! confirmation forms and red info sheets, red invoices still 开票中).

use fapiao_invoicing::push::{Selection, push};
use fapiao_invoicing::{Invoicing, callbacks, issue, reissue};

use crate::job::{JobContext, JobError, RunInfo, RunReport};

fn invoicing(ctx: &JobContext) -> Invoicing {
    Invoicing::new(ctx.pool.clone(), ctx.channel.clone(), ctx.settings.clone())
}

pub async fn auto_issue(ctx: &JobContext, _run: &RunInfo) -> Result<RunReport, JobError> {
    let inv = invoicing(ctx);
    let pushed = push(&inv, &Selection::AutoIssue).await?;
    let ids = issue::candidates(&inv, true).await?;
    let outcomes = issue::issue(&inv, &ids, &|_| {}).await?;
    let delivered = callbacks::deliver(&inv).await?;
    let count = |s: &str| outcomes.iter().filter(|o| o.status.as_str() == s).count() as i64;
    Ok(RunReport {
        read: ids.len() as i64,
        written: count("succeeded"),
        rejected: count("failed") + pushed.refused.len() as i64,
        skipped: ids.is_empty() && delivered.attempted == 0,
        reason: Some(format!(
            "{} bills pushed into {} invoices; callbacks sent {}, succeeded {}",
            pushed.bills.len(),
            pushed.pending_ids.len(),
            delivered.attempted,
            delivered.succeeded
        )),
    })
}

pub async fn auto_reissue(ctx: &JobContext, _run: &RunInfo) -> Result<RunReport, JobError> {
    let inv = invoicing(ctx);
    let report = reissue::reissue(&inv, chrono::Utc::now(), false, &|_| {}).await?;
    let delivered = callbacks::deliver(&inv).await?;
    Ok(RunReport {
        read: (report.reissued.len()
            + report.skipped.len()
            + report.still_failing.len()
            + report.left_alone.len()) as i64,
        written: report.reissued.len() as i64,
        rejected: report.still_failing.len() as i64,
        skipped: report.reissued.is_empty() && report.still_failing.is_empty(),
        reason: Some(format!(
            "reissued {}, skipped {}, still failing {}, left alone {}; callbacks sent {}",
            report.reissued.len(),
            report.skipped.len(),
            report.still_failing.len(),
            report.left_alone.len(),
            delivered.attempted
        )),
    })
}

pub async fn red_flush_poll(ctx: &JobContext, _run: &RunInfo) -> Result<RunReport, JobError> {
    let r = fapiao_invoicing::redflush::documents::poll(&invoicing(ctx)).await?;
    Ok(RunReport {
        read: r.polled as i64,
        written: r.succeeded as i64,
        rejected: r.failed as i64,
        skipped: r.polled == 0,
        reason: Some(format!("{} still waiting", r.waiting)),
    })
}
