//! deal-task (rim_InputInvoiceDownDealTask_SKDP_S; the manual 批量处理): staged headers →
//! `invoice_pool`, once per invoice identity. Several workers may share the rows (the verified
//! path claims with FOR UPDATE SKIP LOCKED and a lease; the unverified path's UPDATE waits for
//! and then leaves out rows another worker handled); every attempt counts in `handle_num`
//! (fhandle_num).
//!
//! * `key_element_check` ≠ 1: one set-based statement per batch marks the rows 处理完成（未自动查验）
//!   and pools what it marked, deductibility from the header (`deductibility_without_lines`).
//!   Both commit together: a crash leaves the batch pending, never half-moved.
//! * `key_element_check` = 1: a batch is claimed (lease, handle_num + 1) and committed, each
//!   invoice verified through the channel, then the verified rows (with their lines and the full
//!   deductibility rule) land and the states change in one transaction fenced by the claim.
//!   Faults of the moment (token, 5xx, lost answer, 局端…请稍后再试) go back to pending without
//!   counting; other failures count, and fail the row with the reason after `deal_max_attempts`.
//!
//! An invoice already in the pool that comes again with another status (voided, red-flushed,
//! abnormal, out of control after it entered) updates the pool row: `pool::status_changed`
//! decides deductibility again on its stored lines and logs the change.

use chrono::NaiveDate;
use fapiao_channel::codes::error as code;
use fapiao_channel::wire::VerifiedInvoice;
use fapiao_schemas::Money;
use fapiao_schemas::params::{KEY_ELEMENT_CHECK, RIM_CONFIG, TAX_FILE_AUTO_SIGN};
use fapiao_store::{deduct, params, pool};
use rust_decimal::Decimal;

use super::fail_if_permanent;
use crate::job::{JobContext, JobError, JobKind, RunInfo, RunReport};

pub async fn run(ctx: &JobContext, run: &RunInfo) -> Result<RunReport, JobError> {
    let verify = params::value(&ctx.pool, RIM_CONFIG, KEY_ELEMENT_CHECK).await?.as_deref() == Some("1");
    let auto_sign = params::value(&ctx.pool, RIM_CONFIG, TAX_FILE_AUTO_SIGN).await?.as_deref() == Some("1");
    let mut report = RunReport::default();
    // Batches walk the primary key upwards from a cursor, so no batch rescans rows an earlier
    // one handled. Rows a batch passed over (locked or leased by another worker) are met by one
    // more pass from 0 — only when there were some: over a million handled rows that pass is a
    // scan of the whole table. (A row committed late below the cursor waits for the next run.)
    let mut cursor = 0i64;
    let mut passed_over = verify; // the verified path cannot tell: it skips locked rows unseen
    let mut restarted = false;
    loop {
        if let Some(reason) = ctx.should_stop(JobKind::DealTask).await? {
            report.reason = Some(reason);
            break;
        }
        let batch = if verify {
            verified_batch(ctx, auto_sign, cursor, &mut report).await?
        } else {
            unverified_batch(ctx, run, auto_sign, cursor).await?
        };
        passed_over |= batch.passed_over;
        match batch.last_id {
            Some(id) => cursor = id,
            None if cursor > 0 && passed_over && !restarted => {
                (cursor, restarted) = (0, true);
                continue;
            }
            None => break,
        }
        report.read += batch.moved as i64;
        report.written += batch.moved as i64;
    }
    Ok(report)
}

/// What one batch did.
struct Batch {
    /// Rows handled.
    moved: u64,
    /// The highest id the batch reached; `None` when nothing was left after the cursor.
    last_id: Option<i64>,
    /// Pending rows in the batch's range that it left (another worker's lock or lease).
    passed_over: bool,
}

/// Columns of `invoice_pool` filled from a staged row `s` (shared by both paths).
const POOL_COLUMNS: &str = "tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no,
    buyer_name, amount, tax, total, check_code, status, invoice_property, blockchain, special_business, source,
    verified, deductible, deductible_reason, signed, signed_at, staging_id, select_state, select_period";

/// One batch of the pending rows after `cursor`.
async fn unverified_batch(
    ctx: &JobContext,
    run: &RunInfo,
    auto_sign: bool,
    cursor: i64,
) -> Result<Batch, JobError> {
    // The rows are marked handled first and pooled from what the UPDATE returns: one write per
    // staged row. (Claiming them `FOR UPDATE SKIP LOCKED` first wrote a row lock to every tuple
    // as well — a third pass over a million rows.) Two workers on the same rows stay apart all
    // the same: the second waits for the first's row locks, and the state, checked again on
    // each row it waited for, leaves out what the first handled. Both walk ids upwards, so they
    // cannot deadlock.
    //
    // The batch is a range of the primary key, (cursor, upper]: its upper end is the batch
    // size-th pending row after the cursor. One range scan, where `id = ANY(<the ids>)` descended
    // the index once per row (0.8 s of a million rows).
    let sql = format!(
        "WITH bounds AS (
             SELECT max(id) AS upper, count(*) AS pending
             FROM (SELECT id FROM download_staging WHERE id > $4 AND state = 'pending' ORDER BY id LIMIT $1) c
         ), handled AS (
             UPDATE download_staging s
             SET state = 'done_unverified', handle_num = s.handle_num + 1, reason = NULL, handled_by = $3,
                 claimed_by = NULL, claimed_until = NULL
             FROM bounds
             WHERE s.id > $4 AND s.id <= bounds.upper
               AND s.state = 'pending' AND (s.claimed_until IS NULL OR s.claimed_until < now())
             -- What the pool takes, not s.*: the batch is held in memory between the two statements.
             RETURNING s.id, s.tax_no, s.invoice_code, s.invoice_num, s.invoice_kind, s.invoice_date, s.seller_name,
                       s.seller_tax_no, s.buyer_name, s.amount, s.tax, s.total, s.check_code, s.status,
                       s.invoice_property, s.blockchain, s.special_business, s.select_period
         ), pooled AS (
             INSERT INTO invoice_pool ({POOL_COLUMNS})
             SELECT s.tax_no, s.invoice_code, s.invoice_num, s.invoice_kind, s.invoice_date, s.seller_name, s.seller_tax_no,
                    s.buyer_name, s.amount, s.tax, s.total, s.check_code, s.status, s.invoice_property, s.blockchain,
                    s.special_business, 'tax_bureau', false, d.reason IS NULL, d.reason, $2,
                    CASE WHEN $2 THEN now() END, s.id,
                    CASE WHEN s.select_period IS NULL THEN 'unselected' ELSE 'selected' END, s.select_period
             FROM handled s
             CROSS JOIN LATERAL (SELECT deductibility_without_lines(s.invoice_kind, s.invoice_property, s.blockchain,
                                        s.status, s.invoice_date, s.special_business) AS reason) d
             ON CONFLICT (tax_no, invoice_code, invoice_num) DO NOTHING
             RETURNING staging_id
         )
         SELECT ARRAY (SELECT id FROM handled), ARRAY (SELECT staging_id FROM pooled),
                (SELECT upper FROM bounds), (SELECT pending FROM bounds)"
    );
    let mut tx = ctx.pool.begin().await?;
    // Not a prepared statement: a generic plan for `id > $4` would not know the cursor's selectivity.
    let (ids, pooled, upper, pending): (Vec<i64>, Vec<i64>, Option<i64>, i64) =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(i64::from(ctx.settings.jobs.deal_batch_size))
            .bind(auto_sign)
            .bind(&ctx.worker)
            .bind(cursor)
            .fetch_one(&mut *tx)
            .await?;
    // Invoices already in the pool that the bureau now reports otherwise (voided, red-flushed,
    // …; selected or not, where the download carried deduction data): the news reaches the pool
    // row, in the same transaction as the batch. Only rows that did not land as new can be such
    // news: a batch of new invoices asks nothing more of the pool.
    let known = not_in(&ids, pooled);
    let changed: Vec<Reported> = if known.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
        "SELECT s.tax_no, s.invoice_code, s.invoice_num, s.status, s.select_known, s.select_period
           FROM download_staging s
           JOIN invoice_pool p ON p.tax_no = s.tax_no AND p.invoice_code = s.invoice_code AND p.invoice_num = s.invoice_num
          WHERE s.id = ANY($1)
            AND (p.status <> s.status OR (s.select_known AND p.select_period IS DISTINCT FROM s.select_period))",
        )
        .bind(&known)
        .fetch_all(&mut *tx)
        .await?
    };
    let mut status_news = Vec::new();
    for r in &changed {
        let key = (r.tax_no.as_str(), r.invoice_code.as_str(), r.invoice_num.as_str());
        if pool::status_changed(&mut tx, key, &r.status, "发票下载").await? {
            status_news.push(r);
        }
        if r.select_known {
            deduct::bureau_reports(&mut tx, key, r.select_period.as_deref(), "发票下载").await?;
        }
    }
    tx.commit().await?;
    verify_changed_again(ctx, run, &status_news).await?;
    Ok(Batch { moved: ids.len() as u64, last_id: upper, passed_over: (ids.len() as i64) < pending })
}

/// The ids of `all` that are not in `some`.
fn not_in(all: &[i64], some: Vec<i64>) -> Vec<i64> {
    let some: std::collections::HashSet<i64> = some.into_iter().collect();
    all.iter().copied().filter(|id| !some.contains(id)).collect()
}

/// 进项状态更新的发票是否查验入库 (the sync scheme's switch): invoices whose status changed are
/// verified again — their lines and deductibility renewed from what the bureau says now. A
/// verification that fails leaves the new status in place (logged); a permanent refusal fails
/// the run like any verification.
async fn verify_changed_again(
    ctx: &JobContext,
    run: &RunInfo,
    changed: &[&Reported],
) -> Result<(), JobError> {
    if changed.is_empty() {
        return Ok(());
    }
    let tax_nos: Vec<&str> = changed.iter().map(|r| r.tax_no.as_str()).collect();
    let switched: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tax_no FROM sync_scheme WHERE active AND verify_changed AND tax_no = ANY($1)",
    )
    .bind(&tax_nos)
    .fetch_all(&ctx.pool)
    .await?;
    let app = fapiao_usecases::App::new(ctx.pool.clone(), ctx.channel.clone(), ctx.settings.clone());
    let actor = fapiao_usecases::Actor::Job { job: "deal-task".into(), run_id: run.run_id };
    for r in changed.iter().filter(|r| switched.contains(&r.tax_no)) {
        let at = pool::InvoiceRef {
            invoice_num: &r.invoice_num,
            invoice_code: Some(&r.invoice_code),
            tax_no: Some(&r.tax_no),
        };
        if let Err(e) = fapiao_usecases::pool::verify_again(&app, &actor, at, "进项状态更新").await {
            if let fapiao_usecases::Error::Channel(c) = &e {
                fail_if_permanent(c, &r.tax_no, &r.tax_no)?;
            }
            tracing::warn!(invoice_num = %r.invoice_num, error = %e, "changed invoice not verified again");
        }
    }
    Ok(())
}

/// A staged row about an invoice already pooled: what the bureau says of it now.
#[derive(sqlx::FromRow)]
struct Reported {
    tax_no: String,
    invoice_code: String,
    invoice_num: String,
    status: String,
    select_known: bool,
    select_period: Option<String>,
}

#[derive(sqlx::FromRow, Clone)]
struct Staged {
    id: i64,
    tax_no: String,
    invoice_kind: String,
    invoice_code: String,
    invoice_num: String,
    invoice_date: NaiveDate,
    total: Decimal,
    amount: Decimal,
    handle_num: i32,
    select_known: bool,
    select_period: Option<String>,
}

/// What became of one claimed row.
enum Fate {
    Pooled(Box<VerifiedInvoice>, Option<&'static str>),
    Failed(String),
    /// Back to pending; `counted` when the failure was the row's (an attempt toward
    /// `deal_max_attempts`), not when it was a fault of the moment (token, 5xx, lost answer).
    Retry {
        reason: String,
        counted: bool,
    },
}

async fn verified_batch(
    ctx: &JobContext,
    auto_sign: bool,
    cursor: i64,
    report: &mut RunReport,
) -> Result<Batch, JobError> {
    let jobs = &ctx.settings.jobs;
    // Small batches: each row is a network call, and the lease must outlast the batch.
    let batch = i64::from(jobs.deal_batch_size.min(50));
    let claimed: Vec<Staged> = sqlx::query_as(
        "UPDATE download_staging s SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3), handle_num = s.handle_num + 1
         WHERE s.id IN (SELECT id FROM download_staging
                        WHERE id > $4 AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < now())
                        ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING s.id, s.tax_no, s.invoice_kind, s.invoice_code, s.invoice_num, s.invoice_date, s.total, s.amount,
                   s.handle_num, s.select_known, s.select_period",
    )
    .bind(batch)
    .bind(&ctx.worker)
    .bind(jobs.lease_secs as f64 * 4.0)
    .bind(cursor)
    .fetch_all(&ctx.pool)
    .await?;
    let Some(last_id) = claimed.iter().map(|r| r.id).max() else {
        return Ok(Batch { moved: 0, last_id: None, passed_over: false });
    };
    let mut fates = Vec::with_capacity(claimed.len());
    for row in &claimed {
        let amount =
            Money::exact(if row.invoice_kind.starts_with("digital") { row.total } else { row.amount })
                .unwrap_or_default();
        let fate =
            match ctx.channel.verify(&row.invoice_code, &row.invoice_num, row.invoice_date, amount).await {
                Ok(v) => {
                    let reason = v.not_deductible();
                    Fate::Pooled(Box::new(v), reason)
                }
                Err(e) => {
                    if let Err(fatal) = fail_if_permanent(&e, &row.tax_no, "") {
                        release(ctx, &claimed).await?;
                        return Err(fatal);
                    }
                    match e.api_code() {
                        Some(code::NOT_FOUND) | Some(code::BAD_REQUEST) => {
                            Fate::Failed(format!("查验失败：{e}"))
                        }
                        _ if e.is_transient() => Fate::Retry { reason: e.to_string(), counted: false },
                        _ if row.handle_num >= jobs.deal_max_attempts as i32 => {
                            Fate::Failed(format!("gave up after {} attempts: {e}", row.handle_num))
                        }
                        _ => Fate::Retry { reason: e.to_string(), counted: true },
                    }
                }
            };
        fates.push(fate);
    }
    let mut tx = ctx.pool.begin().await?;
    for (row, fate) in claimed.iter().zip(&fates) {
        // The claim counted an attempt; a fault of the moment gives it back.
        let (state, reason, uncount) = match fate {
            Fate::Pooled(v, deductible_reason) => {
                pool_verified(&mut tx, row, v, *deductible_reason, auto_sign).await?;
                ("done_verified", None, 0)
            }
            Fate::Failed(r) => {
                report.reject(r);
                ("failed", Some(r), 0)
            }
            Fate::Retry { reason, counted } => {
                report.put_off(reason);
                ("pending", Some(reason), i32::from(!counted))
            }
        };
        sqlx::query(
            "UPDATE download_staging SET state = $3, reason = $4, handled_by = $2, claimed_by = NULL, claimed_until = NULL,
                 handle_num = handle_num - $5
             WHERE id = $1 AND claimed_by = $2",
        )
        .bind(row.id)
        .bind(&ctx.worker)
        .bind(state)
        .bind(reason)
        .bind(uncount)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let retried = fates.iter().filter(|f| matches!(f, Fate::Retry { .. })).count();
    // Rows sent back to pending wait for the next run (the cursor has passed them).
    Ok(Batch { moved: (claimed.len() - retried) as u64, last_id: Some(last_id), passed_over: false })
}

async fn release(ctx: &JobContext, rows: &[Staged]) -> Result<(), JobError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    sqlx::query("UPDATE download_staging SET claimed_by = NULL, claimed_until = NULL WHERE id = ANY($1) AND claimed_by = $2")
        .bind(&ids)
        .bind(&ctx.worker)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

async fn pool_verified(
    tx: &mut sqlx::PgConnection,
    row: &Staged,
    v: &VerifiedInvoice,
    deductible_reason: Option<&'static str>,
    auto_sign: bool,
) -> Result<(), JobError> {
    let h = &v.header;
    let sql = format!(
        "INSERT INTO invoice_pool ({POOL_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'tax_bureau', true, $17, $18, $19,
                 CASE WHEN $19 THEN now() END, $20, CASE WHEN $21::text IS NULL THEN 'unselected' ELSE 'selected' END, $21)
         ON CONFLICT (tax_no, invoice_code, invoice_num) DO NOTHING"
    );
    let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&row.tax_no)
        .bind(&h.invoice_code)
        .bind(&h.invoice_num)
        .bind(h.invoice_kind)
        .bind(h.invoice_date)
        .bind(&h.seller_name)
        .bind(&h.seller_taxpayer_id)
        .bind(&h.buyer_name)
        .bind(h.amount.value())
        .bind(h.tax_amount.value())
        .bind(h.total_amount.value())
        .bind(&h.check_code)
        .bind(&h.status)
        .bind(i16::from(h.invoice_property))
        .bind(h.blockchain)
        .bind(&h.special_business)
        .bind(deductible_reason.is_none())
        .bind(deductible_reason)
        .bind(auto_sign)
        .bind(row.id)
        .bind(&row.select_period)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 0 {
        // In the pool already: the verification's status is the news.
        let key = (row.tax_no.as_str(), h.invoice_code.as_str(), h.invoice_num.as_str());
        pool::status_changed(&mut *tx, key, &h.status, "查验").await?;
        if row.select_known {
            deduct::bureau_reports(&mut *tx, key, row.select_period.as_deref(), "发票下载").await?;
        }
    } else {
        for (seq, l) in v.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO invoice_pool_line (tax_no, invoice_code, invoice_num, seq, goods_name, tax_rate, amount, tax, business_type)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&row.tax_no)
            .bind(&h.invoice_code)
            .bind(&h.invoice_num)
            .bind(seq as i32 + 1)
            .bind(&l.goods_name)
            .bind(l.tax_rate)
            .bind(l.amount.value())
            .bind(l.tax_amount.value())
            .bind(&l.business_type)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
