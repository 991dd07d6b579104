//! The console's long actions on many items, run as background tasks (`console_task`, like
//! imports and exports): issue every pending invoice matching a filter, push and issue every
//! application matching one, red-flush an uploaded list. Each keeps one line per item on its
//! task, counts as it goes (the page's progress) and writes its audit row when it ends.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

use crate::audit::{self, Entry, Outcome};
use crate::issuing::{self, Selection};
use crate::red_flush::{self, RedFlushReport};
use crate::tasks::{self, finish};
use crate::{Actor, App, Result, pending};

/// One item of a bulk task's outcome, as its page lists it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ItemLine {
    /// The pending invoice, the bill or the list's row.
    pub item: String,
    pub ok: bool,
    /// 开票成功 with its number, why not, …
    pub message: String,
}

/// A bulk task's outcome: every item's line and the counts.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct BulkResult {
    pub total: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub lines: Vec<ItemLine>,
}

impl BulkResult {
    fn of(lines: Vec<ItemLine>) -> BulkResult {
        let succeeded = lines.iter().filter(|l| l.ok).count();
        BulkResult { total: lines.len(), succeeded, failed: lines.len() - succeeded, lines }
    }

    fn summary(&self) -> String {
        format!("共{}项：成功{}，未成功{}", self.total, self.succeeded, self.failed)
    }
}

fn issued_line(o: &crate::pending::IssueOutcome) -> ItemLine {
    let message = match (&o.invoice_num, &o.message) {
        (Some(n), _) => format!("{}，发票号码{n}", o.status_zh),
        (None, Some(m)) => format!("{}：{m}", o.status_zh),
        (None, None) => o.status_zh.to_string(),
    };
    ItemLine { item: format!("待开发票{}", o.pending_id), ok: o.status.as_str() == "succeeded", message }
}

/// Tells a task's progress how many items are done, one more at each call.
struct Counted<'a> {
    done: AtomicU64,
    progress: &'a (dyn Fn(u64) + Send + Sync),
}

impl<'a> Counted<'a> {
    fn new(progress: &'a (dyn Fn(u64) + Send + Sync)) -> Counted<'a> {
        Counted { done: AtomicU64::new(0), progress }
    }

    fn one_more(&self) {
        (self.progress)(self.done.fetch_add(1, Ordering::Relaxed) + 1);
    }
}

/// Record the end of task `id`: its result (or error) on the task, and the audit row (refused
/// when an item did not succeed).
async fn end(
    app: &App,
    actor: &Actor,
    id: i64,
    action: &str,
    target: &str,
    tax_nos: &[String],
    outcome: Result<BulkResult>,
) -> Result<()> {
    let (detail, audited) = match &outcome {
        Ok(r) => {
            let value = serde_json::to_value(r).unwrap_or(Value::Null);
            finish(app, id, "done", Some(value), None, None, None).await?;
            (r.summary(), if r.failed > 0 { Outcome::Refused } else { Outcome::Ok })
        }
        Err(e) => {
            finish(app, id, "failed", None, Some((e.code(), e.to_string())), None, None).await?;
            (format!("{}：{e}", e.code()), Outcome::of_kind(Some(e.kind())))
        }
    };
    let entry = Entry { actor, action, target, outcome: audited, detail: &detail, tax_nos };
    audit::record(&app.pool, entry).await;
    Ok(())
}

/// Task `id`: 开票 on every pending invoice of `ids` (the filter's matches, counted and confirmed
/// by the user), as `pending::issue` does for chosen ones; `progress` is told how many are done.
pub async fn run_issue_pending(
    app: &App,
    actor: &Actor,
    id: i64,
    ids: &[i64],
    tax_nos: &[String],
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<()> {
    let counted = Counted::new(progress);
    let tick = |_: &pending::IssueOutcome| counted.one_more();
    let outcome = pending::issue(app, actor, ids, &tick).await.map(|r| {
        let mut lines: Vec<ItemLine> = r.report.issued.iter().map(issued_line).collect();
        lines.extend(r.report.refused.iter().map(|x| ItemLine {
            item: format!("待开发票{}", x.pending_id),
            ok: false,
            message: x.reason.clone(),
        }));
        BulkResult::of(lines)
    });
    let target = format!("{}张待开发票（全部符合条件）", ids.len());
    end(app, actor, id, "pending.issue_all", &target, tax_nos, outcome).await
}

/// Task `id`: push and issue every bill of `bills` (the filter's matches), as
/// `fapiao issue --bill` does; `progress` is told how many invoices are done.
pub async fn run_issue_bills(
    app: &App,
    actor: &Actor,
    id: i64,
    bills: &[String],
    tax_nos: &[String],
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<()> {
    let counted = Counted::new(progress);
    let tick = |_: &pending::IssueOutcome| counted.one_more();
    let outcome = issuing::issue(app, actor, &Selection::Bills(bills.to_vec()), &tick).await.map(|r| {
        let mut lines: Vec<ItemLine> = r.invoices.iter().map(issued_line).collect();
        lines.extend(r.pushed.refused.iter().map(|x| ItemLine {
            item: format!("单据{}", x.bill_no),
            ok: false,
            message: format!("未推送：{}", x.message),
        }));
        BulkResult::of(lines)
    });
    let target = format!("{}张开票申请单（全部符合条件）", bills.len());
    end(app, actor, id, "application.issue_all", &target, tax_nos, outcome).await
}

/// Task `id`: red-flush the uploaded list `file` (its rows in batches of ten; the same list again
/// resumes its unprocessed rows), only invoices of `scope` for a scoped user; the report as xlsx
/// at `report` and one line per row on the task.
pub async fn run_red_flush_list(
    app: &App,
    actor: &Actor,
    id: i64,
    file: &Path,
    report: &Path,
    scope: Option<&[String]>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<()> {
    let counted = Counted::new(progress);
    let tick = |_: &red_flush::Outcome| counted.one_more();
    let outcome = red_flush::list_in_scope(app, actor, file, None, scope, &|_: usize| {}, &tick).await;
    let outcome = outcome.and_then(|r: RedFlushReport| {
        red_flush::write_report(report, &r.results)?;
        Ok(BulkResult::of(
            r.results
                .iter()
                .map(|l| {
                    let o = &l.outcome;
                    let row = l.row.map(|r| format!("第{r}行 ")).unwrap_or_default();
                    let red = o.red_invoice_num.clone().map(|n| format!("，红字发票{n}")).unwrap_or_default();
                    let why = o.message.clone().map(|m| format!("（{m}）")).unwrap_or_default();
                    ItemLine {
                        item: format!("{row}{}", o.invoice_num),
                        ok: !o.failed(),
                        message: format!("{}{why}{red}", red_flush::state_zh(o.state)),
                    }
                })
                .collect(),
        ))
    });
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tax_nos = scope.map(<[String]>::to_vec).unwrap_or_default();
    end(app, actor, id, "red_flush.list", &name, &tax_nos, outcome).await
}

/// What a bulk task asked for (kept on the task): the filter as its query string and how many
/// items the user confirmed.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct BulkAsked {
    /// `pending`, `applications` or the red-flush list's file name.
    pub what: String,
    pub filter: String,
    pub count: usize,
}

pub use tasks::TaskKind;
