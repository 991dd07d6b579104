//! download-apply (rim_invoiceDownloadApply_SKDP_S): on allowed days only — the days of
//! `newetax_inputout_days`, or when unset day-of-month % 3 == 0 in the configured time zone —
//! send open applications to the channel and write `download_log`. One download at a time per
//! e-tax account (two at once log the account out, seed 004). Synchronous tax numbers wait for
//! the download to become ready; those in `rim_down_async/taxnos` are fetched later.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use fapiao_channel::codes::error as code;
use fapiao_channel::wire::DownloadApply;
use fapiao_schemas::params::{DownloadDays, INPUTOUT_DAYS, RIM_CONFIG, RIM_DOWN_ASYNC, TAXNOS};
use fapiao_store::params;

use super::fail_if_permanent;
use crate::job::{JobContext, JobError, JobKind, RunInfo, RunReport};

#[derive(sqlx::FromRow)]
struct Open {
    id: i64,
    tax_no: String,
    name: String,
    invoice_date: NaiveDate,
    etax_account: String,
    taxpayer_kind: String,
}

pub async fn run(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let day = run.business_date.day();
    let rule =
        DownloadDays::from_param(params::value(&ctx.pool, RIM_CONFIG, INPUTOUT_DAYS).await?.as_deref());
    if !rule.allows(day) {
        let reason = format!("{} is not a download day: runs only on {rule}", run.business_date);
        return Ok(RunReport { skipped: true, reason: Some(reason), ..RunReport::default() });
    }
    let async_taxnos: HashSet<String> = params::value(&ctx.pool, RIM_DOWN_ASYNC, TAXNOS)
        .await?
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let open: Vec<Open> = sqlx::query_as(
        "SELECT a.id, a.tax_no, e.name, a.invoice_date, e.etax_account, e.taxpayer_kind
         FROM download_application a JOIN enterprise e USING (tax_no)
         WHERE a.state = 'open' AND a.invoice_date < $1 ORDER BY e.etax_account, a.invoice_date, a.tax_no",
    )
    .bind(run.business_date)
    .fetch_all(&ctx.pool)
    .await?;
    // Accounts with a download still running (from an earlier run, or async) wait.
    let mut busy: HashSet<String> =
        sqlx::query_scalar("SELECT DISTINCT etax_account FROM download_log WHERE state = 'processing'")
            .fetch_all(&ctx.pool)
            .await?
            .into_iter()
            .collect();
    let mut report = RunReport::default();
    let mut deferred = 0;
    let mut input_only: Vec<String> = Vec::new();
    for app in open {
        if let Some(reason) = ctx.should_stop(JobKind::DownloadApply).await? {
            report.reason = Some(reason);
            break;
        }
        report.read += 1;
        if busy.contains(&app.etax_account) {
            deferred += 1;
            continue;
        }
        // 抵扣类勾选数据 where the enterprise may have it; a small-scale taxpayer never asks
        // (the bureau refuses it, seed 004): input invoices only, and the run says why.
        let small_scale = app.taxpayer_kind == "small_scale";
        let scope = if small_scale { "all" } else { "deduction" };
        if small_scale {
            input_only.push(format!("{} ({})", app.name, app.tax_no));
        }
        let request = DownloadApply {
            taxpayer_id: app.tax_no.clone(),
            etax_account: app.etax_account.clone(),
            invoice_date: app.invoice_date,
            scope: scope.into(),
            small_scale,
        };
        match ctx.channel.download_apply(&request).await {
            Ok(task) => {
                let mut tx = ctx.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO download_log (application_id, tax_no, etax_account, invoice_date, task_id, scope)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(app.id)
                .bind(&app.tax_no)
                .bind(&app.etax_account)
                .bind(app.invoice_date)
                .bind(&task.task_id)
                .bind(scope)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE download_application SET state = 'applied', attempts = attempts + 1, last_error = NULL, updated_at = now() WHERE id = $1")
                    .bind(app.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                report.written += 1;
                if async_taxnos.contains(&app.tax_no) || !wait_ready(ctx, &app, &task.task_id).await? {
                    busy.insert(app.etax_account.clone());
                }
            }
            Err(e) => {
                fail_if_permanent(&e, &app.tax_no, &app.name)?;
                // 9605 (small-scale, deduction data) will never work: close the application.
                // A fault of the moment (the client already retried it with backoff) leaves the
                // application open for the next run and is not counted as one of its attempts.
                let state =
                    if e.api_code() == Some(code::SMALL_SCALE_NO_DEDUCTION) { "failed" } else { "open" };
                let counted = !e.is_transient();
                sqlx::query("UPDATE download_application SET state = $2, attempts = attempts + $4, last_error = $3, updated_at = now() WHERE id = $1")
                    .bind(app.id)
                    .bind(state)
                    .bind(e.to_string())
                    .bind(i32::from(counted))
                    .execute(&ctx.pool)
                    .await?;
                if counted {
                    report.reject(&e);
                } else {
                    report.put_off(&e);
                }
                tracing::warn!(tax_no = %app.tax_no, date = %app.invoice_date, error = %e, state, "download application not accepted");
                if e.api_code() == Some(code::ACCOUNT_LOGGED_OUT) {
                    busy.insert(app.etax_account.clone()); // logged out: leave the account alone this run
                }
            }
        }
    }
    let mut notes: Vec<String> = report.reason.take().into_iter().collect();
    if deferred > 0 {
        notes
            .push(format!("{deferred} application(s) wait for a running download on the same e-tax account"));
    }
    input_only.dedup();
    if !input_only.is_empty() {
        notes.push(format!(
            "{}: {}（进项发票 only）",
            input_only.join(", "),
            fapiao_schemas::messages::SMALL_SCALE_NO_DEDUCTION_DOWNLOAD
        ));
    }
    report.reason = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(report)
}

/// Poll a synchronous download until it is ready (recorded), failed, or the wait runs out.
/// `true` when the account is free again. A poll that fails leaves the download to fetch,
/// which polls it again: the application was accepted, so the run has done its part.
async fn wait_ready(ctx: &JobContext, app: &Open, task_id: &str) -> Result<bool, JobError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(ctx.settings.jobs.download_wait_secs);
    loop {
        let task = match ctx.channel.download_poll(task_id).await {
            Ok(task) => task,
            Err(e) => {
                fail_if_permanent(&e, &app.tax_no, &app.name)?;
                tracing::warn!(task = task_id, error = %e, "download not polled; fetch polls it later");
                return Ok(false);
            }
        };
        match task.state.as_str() {
            "ready" => {
                sqlx::query("UPDATE download_log SET state = 'ready', total = $2 WHERE task_id = $1 AND state = 'processing'")
                    .bind(task_id)
                    .bind(task.total as i64)
                    .execute(&ctx.pool)
                    .await?;
                return Ok(true);
            }
            "failed" => {
                super::fetch::mark_failed(&ctx.pool, task_id, &task.message).await?;
                return Ok(true);
            }
            _ if tokio::time::Instant::now() >= deadline || ctx.cancel.is_cancelled() => return Ok(false),
            _ => tokio::time::sleep(Duration::from_millis(ctx.settings.jobs.poll_ms.min(200))).await,
        }
    }
}
