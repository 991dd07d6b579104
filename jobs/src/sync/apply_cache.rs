//! apply-cache (rim_tableHeadApplyTask_SKDP_S 税局发票同步申请缓存): for every active sync scheme,
//! an application for each of the previous 3 days (never today: the bureau refuses it), every
//! earlier date whose application failed, and — after `sync reset-start` — the next chunk of the
//! backfill. Applications are unique per (tax number, date): nothing is ever duplicated.

use chrono::{Duration, NaiveDate};

use crate::job::{JobContext, JobError, JobKind, RunInfo, RunReport};

pub async fn run(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let today = run.business_date;
    let schemes: Vec<(String, String, NaiveDate, Option<NaiveDate>)> = sqlx::query_as(
        "SELECT s.code, s.tax_no, s.start_date, s.backfill_next FROM sync_scheme s JOIN enterprise e USING (tax_no)
         WHERE s.active ORDER BY s.code",
    )
    .fetch_all(&ctx.pool)
    .await?;
    let chunk = i64::from(ctx.settings.jobs.backfill_chunk_days);
    let mut report = RunReport::default();
    for (code, tax_no, start, backfill_next) in schemes {
        if let Some(reason) = ctx.should_stop(JobKind::ApplyCache).await? {
            report.reason = Some(reason);
            break;
        }
        report.read += 1;
        let mut dates: Vec<NaiveDate> =
            (1..=3).map(|d| today - Duration::days(d)).filter(|d| *d >= start).collect();
        let mut next = None;
        if let Some(from) = backfill_next {
            let until = (from + Duration::days(chunk - 1)).min(today - Duration::days(1));
            dates.extend(from.iter_days().take_while(|d| *d <= until));
            next = Some(until + Duration::days(1)).filter(|n| *n < today - Duration::days(3));
        }
        let mut tx = ctx.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO download_application (tax_no, invoice_date) SELECT $1, d FROM unnest($2::date[]) AS d
             ON CONFLICT (tax_no, invoice_date) DO NOTHING",
        )
        .bind(&tax_no)
        .bind(&dates)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let reopened = sqlx::query(
            "UPDATE download_application SET state = 'open', updated_at = now()
             WHERE tax_no = $1 AND state = 'failed' AND invoice_date < $2",
        )
        .bind(&tax_no)
        .bind(today)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if backfill_next.is_some() {
            sqlx::query("UPDATE sync_scheme SET backfill_next = $2, updated_at = now() WHERE code = $1")
                .bind(&code)
                .bind(next)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(scheme = %code, tax_no = %tax_no, created, reopened, "applications cached");
        report.written += (created + reopened) as i64;
    }
    Ok(report)
}
