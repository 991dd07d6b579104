//! fetch (rim_inputdowload_SKDJ_S 进销项发票下载): poll unfinished downloads and page through the
//! ready ones into `download_staging`. Each page lands with the log's page counter in one
//! transaction, so a run that stops resumes at the next page and a page never lands twice.

use fapiao_channel::wire::InvoiceHeader;
use sqlx::PgPool;

use super::fail_if_permanent;
use crate::job::{JobContext, JobError, JobKind, RunInfo, RunReport};

#[derive(sqlx::FromRow)]
struct Log {
    id: i64,
    application_id: i64,
    tax_no: String,
    task_id: String,
    state: String,
    pages_fetched: i32,
    /// `deduction`: the pages carry each invoice's selection at the bureau.
    scope: String,
}

pub async fn run(ctx: &JobContext, _run: &RunInfo) -> Result<RunReport, JobError> {
    let logs: Vec<Log> = sqlx::query_as(
        "SELECT id, application_id, tax_no, task_id, state, pages_fetched, scope FROM download_log
         WHERE state IN ('processing', 'ready') ORDER BY id",
    )
    .fetch_all(&ctx.pool)
    .await?;
    let page_size = ctx.settings.jobs.fetch_page_size;
    let mut report = RunReport::default();
    'logs: for log in logs {
        if log.state == "processing" {
            let task = match ctx.channel.download_poll(&log.task_id).await {
                Ok(t) => t,
                Err(e) => {
                    fail_if_permanent(&e, &log.tax_no, "")?;
                    tracing::warn!(task = %log.task_id, error = %e, "poll failed; next run tries again");
                    report.put_off(&e);
                    continue;
                }
            };
            match task.state.as_str() {
                "ready" => {}
                "failed" => {
                    mark_failed(&ctx.pool, &log.task_id, &task.message).await?;
                    continue;
                }
                _ => continue,
            }
        }
        let mut page_no = log.pages_fetched as u32;
        loop {
            if let Some(reason) = ctx.should_stop(JobKind::Fetch).await? {
                report.reason = Some(reason);
                break 'logs;
            }
            let page = match ctx.channel.download_fetch(&log.task_id, page_no, page_size).await {
                Ok(p) => p,
                Err(e) => {
                    fail_if_permanent(&e, &log.tax_no, "")?;
                    tracing::warn!(task = %log.task_id, page = page_no, error = %e, "page not fetched; the next run resumes here");
                    report.put_off(&e);
                    continue 'logs;
                }
            };
            let last =
                page.list.is_empty() || u64::from(page_no + 1) * u64::from(page.page_size) >= page.total;
            report.read += page.list.len() as i64;
            report.written += land_page(&ctx.pool, &log, page_no, &page.list).await? as i64;
            page_no += 1;
            if last {
                break;
            }
        }
        let mut tx = ctx.pool.begin().await?;
        sqlx::query("UPDATE download_log SET state = 'fetched', finished_at = now() WHERE id = $1")
            .bind(log.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE download_application SET state = 'done', updated_at = now() WHERE id = $1")
            .bind(log.application_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// One page into staging and the page counter forward, together.
async fn land_page(pool: &PgPool, log: &Log, page_no: u32, list: &[InvoiceHeader]) -> Result<u64, JobError> {
    let col = |f: fn(&InvoiceHeader) -> String| list.iter().map(f).collect::<Vec<String>>();
    let mut tx = pool.begin().await?;
    let landed = sqlx::query(
        "INSERT INTO download_staging (tax_no, download_log_id, invoice_kind, invoice_code, invoice_num, invoice_date,
             seller_name, seller_tax_no, buyer_name, amount, tax, total, check_code, status, invoice_property,
             blockchain, special_business, select_period, select_known)
         SELECT $1, $2, *, $19 FROM unnest($3::text[], $4::text[], $5::text[], $6::date[], $7::text[], $8::text[], $9::text[],
             $10::numeric[], $11::numeric[], $12::numeric[], $13::text[], $14::text[], $15::smallint[], $16::bool[], $17::text[],
             $18::text[])
         ON CONFLICT (download_log_id, invoice_code, invoice_num) DO NOTHING",
    )
    .bind(&log.tax_no)
    .bind(log.id)
    .bind(col(|h| h.invoice_kind.to_string()))
    .bind(col(|h| h.invoice_code.clone()))
    .bind(col(|h| h.invoice_num.clone()))
    .bind(list.iter().map(|h| h.invoice_date).collect::<Vec<_>>())
    .bind(col(|h| h.seller_name.clone()))
    .bind(col(|h| h.seller_taxpayer_id.clone()))
    .bind(col(|h| h.buyer_name.clone()))
    .bind(list.iter().map(|h| h.amount.value()).collect::<Vec<_>>())
    .bind(list.iter().map(|h| h.tax_amount.value()).collect::<Vec<_>>())
    .bind(list.iter().map(|h| h.total_amount.value()).collect::<Vec<_>>())
    .bind(col(|h| h.check_code.clone()))
    .bind(col(|h| h.status.clone()))
    .bind(list.iter().map(|h| i16::from(h.invoice_property)).collect::<Vec<_>>())
    .bind(list.iter().map(|h| h.blockchain).collect::<Vec<_>>())
    .bind(col(|h| h.special_business.clone()))
    .bind(list.iter().map(|h| h.select_period.map(|p| p.to_string())).collect::<Vec<_>>())
    .bind(log.scope == "deduction")
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE download_log SET pages_fetched = $2, state = 'ready' WHERE id = $1")
        .bind(log.id)
        .bind(page_no as i32 + 1)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(landed)
}

/// A download the channel reports failed: its application fails (apply-cache reopens it).
pub async fn mark_failed(pool: &PgPool, task_id: &str, message: &str) -> Result<(), JobError> {
    let mut tx = pool.begin().await?;
    let app: Option<i64> = sqlx::query_scalar(
        "UPDATE download_log SET state = 'failed', error = $2, finished_at = now() WHERE task_id = $1 RETURNING application_id",
    )
    .bind(task_id)
    .bind(message)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = app {
        sqlx::query("UPDATE download_application SET state = 'failed', last_error = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(message)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
