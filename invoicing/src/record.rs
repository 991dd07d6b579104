//! Writes shared by push, issue, exceptions and reissue: events, bill states, outcomes.

use fapiao_channel::wire::IssueResult;
use sqlx::PgConnection;

use fapiao_schemas::{AttemptOutcome, PendingStatus};

/// Append to a pending invoice's history.
pub(crate) async fn event(
    db: &mut PgConnection,
    pending_id: i64,
    event: &str,
    detail: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO pending_event (pending_id, event, detail) VALUES ($1, $2, $3)")
        .bind(pending_id)
        .bind(event)
        .bind(detail)
        .execute(db)
        .await?;
    Ok(())
}

/// Recompute the states of these applications from their live pending invoices:
/// issued (every line covered, all succeeded), partially issued (some succeeded), pushed (live
/// pending invoices), returned (lines went back after a push), else as they were.
pub(crate) async fn refresh_bill_states(db: &mut PgConnection, bills: &[String]) -> sqlx::Result<()> {
    sqlx::query(
        "WITH s AS (
            SELECT a.bill_no, a.state,
                   count(p.id) AS live,
                   count(p.id) FILTER (WHERE p.status = 'succeeded') AS ok,
                   EXISTS (SELECT 1 FROM application_line l WHERE l.bill_no = a.bill_no AND NOT EXISTS (
                           SELECT 1 FROM pending_line pl JOIN pending_invoice q ON q.id = pl.pending_id
                            WHERE pl.bill_no = l.bill_no AND pl.bill_line_no = l.line_no AND q.deleted_at IS NULL AND q.released_at IS NULL AND q.invoice_property = 0)) AS open
              FROM application a
              LEFT JOIN pending_bill pb ON pb.bill_no = a.bill_no
              LEFT JOIN pending_invoice p ON p.id = pb.pending_id AND p.deleted_at IS NULL AND p.released_at IS NULL AND p.invoice_property = 0
             WHERE a.bill_no = ANY($1) AND a.state <> 'withdrawn'
             GROUP BY a.bill_no, a.state)
         UPDATE application a
            SET state = n.state, state_changed_at = now()
           FROM (SELECT bill_no, state AS old,
                        CASE WHEN ok > 0 AND ok = live AND NOT open THEN 'issued'
                             WHEN ok > 0 THEN 'partially_issued'
                             WHEN live > 0 THEN 'pushed'
                             WHEN state IN ('pushed', 'partially_issued', 'issued') THEN 'returned'
                             ELSE state END AS state
                   FROM s) n
          WHERE a.bill_no = n.bill_no AND n.state <> n.old",
    )
    .bind(bills)
    .execute(db)
    .await?;
    Ok(())
}

/// A pending invoice no longer holds its application lines (its invoice was fully red-flushed
/// or voided): `event` is kept with `detail`, and its bills' states follow, so the lines can be
/// pushed and invoiced again.
pub(crate) async fn release(
    db: &mut PgConnection,
    pending_id: i64,
    event_name: &str,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE pending_invoice SET released_at = now() WHERE id = $1")
        .bind(pending_id)
        .execute(&mut *db)
        .await?;
    event(&mut *db, pending_id, event_name, Some(detail)).await?;
    let bills = bills_of(&mut *db, pending_id).await?;
    refresh_bill_states(db, &bills).await
}

/// The bills a pending invoice serves.
pub(crate) async fn bills_of(db: &mut PgConnection, pending_id: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT bill_no FROM pending_bill WHERE pending_id = $1 ORDER BY bill_no")
        .bind(pending_id)
        .fetch_all(db)
        .await
}

/// The channel says `result.serial_no` was issued: record the invoice, once.
pub(crate) async fn succeeded(
    db: &mut PgConnection,
    pending_id: i64,
    result: &IssueResult,
) -> sqlx::Result<()> {
    let date = result.invoice_date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let inserted = sqlx::query(
        "INSERT INTO issued_invoice (pending_id, serial_no, invoice_kind, invoice_property, invoice_code, invoice_num, invoice_date,
                                     seller_tax_no, buyer_name, buyer_tax_no, amount, tax, total, invoice_file_url, ofd_file_url, xml_file_url,
                                     remaining, blue_invoice_id)
         SELECT p.id, $2, p.invoice_kind, p.invoice_property, $3, $4, $5, p.seller_tax_no, p.buyer_name, p.buyer_tax_no,
                p.amount, p.tax, p.total, $6, $7, $8, abs(p.total), p.blue_invoice_id
           FROM pending_invoice p WHERE p.id = $1
         ON CONFLICT (pending_id) DO NOTHING",
    )
    .bind(pending_id)
    .bind(&result.serial_no)
    .bind(&result.invoice_code)
    .bind(&result.invoice_num)
    .bind(date)
    .bind(&result.invoice_file_url)
    .bind(&result.ofd_file_url)
    .bind(&result.xml_file_url)
    .execute(&mut *db)
    .await?
    .rows_affected();
    // An invoice that succeeded shows no error: an earlier attempt's message (9401, 局端…) and its
    // "not before" time go; the history of failures stays in `pending_event`.
    sqlx::query(
        "UPDATE pending_invoice SET status = $2, error_message = NULL, retry_not_before = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(pending_id)
    .bind(PendingStatus::Succeeded)
    .execute(&mut *db)
    .await?;
    settle_attempt(db, &result.serial_no, AttemptOutcome::Succeeded, None).await?;
    if inserted > 0 {
        event(db, pending_id, "succeeded", Some(&format!("{}{}", result.invoice_code, result.invoice_num)))
            .await?;
        crate::redflush::red_issued(db, pending_id).await?;
    }
    finalized(db, pending_id).await
}

/// A pending invoice became final: its bills' states follow, and each bill whose invoices are
/// now all final has its callback enqueued — in the same transaction. The bills are locked
/// first: two invoices of one bill finishing at once would otherwise each see the other as
/// unfinished, and the bill would never be reported.
async fn finalized(db: &mut PgConnection, pending_id: i64) -> sqlx::Result<()> {
    let bills = bills_of(db, pending_id).await?;
    sqlx::query("SELECT 1 FROM application WHERE bill_no = ANY($1) ORDER BY bill_no FOR UPDATE")
        .bind(&bills)
        .execute(&mut *db)
        .await?;
    refresh_bill_states(db, &bills).await?;
    crate::callbacks::enqueue(db, &bills).await?;
    crate::callbacks::enqueue_red(db, pending_id).await?;
    Ok(())
}

/// The channel says the attempt failed (or refused it): the pending invoice is 开票失败 with
/// the message, and not retried before a "请<time>后再试" time in it.
pub(crate) async fn failed(
    db: &mut PgConnection,
    pending_id: i64,
    serial_no: &str,
    outcome: AttemptOutcome,
    message: &str,
) -> sqlx::Result<()> {
    let not_before = fapiao_channel::codes::retry_not_before(message);
    sqlx::query(
        "UPDATE pending_invoice SET status = 'failed', error_message = $2, retry_not_before = $3, updated_at = now() WHERE id = $1",
    )
    .bind(pending_id)
    .bind(message)
    .bind(not_before)
    .execute(&mut *db)
    .await?;
    settle_attempt(db, serial_no, outcome, Some(message)).await?;
    event(db, pending_id, "failed", Some(message)).await?;
    sqlx::query("UPDATE red_flush SET state = 'failed', code = 'ISSUE_FAILED', message = $2, updated_at = now() WHERE pending_id = $1")
        .bind(pending_id)
        .bind(message)
        .execute(&mut *db)
        .await?;
    finalized(db, pending_id).await
}

pub(crate) async fn set_status(
    db: &mut PgConnection,
    pending_id: i64,
    status: PendingStatus,
    message: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE pending_invoice SET status = $2, error_message = coalesce($3, error_message), updated_at = now() WHERE id = $1")
        .bind(pending_id)
        .bind(status)
        .bind(message)
        .execute(db)
        .await?;
    Ok(())
}

pub(crate) async fn settle_attempt(
    db: &mut PgConnection,
    serial_no: &str,
    outcome: AttemptOutcome,
    message: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE issue_attempt SET outcome = $2, message = $3, settled_at = clock_timestamp() WHERE serial_no = $1")
        .bind(serial_no)
        .bind(outcome)
        .bind(message)
        .execute(db)
        .await?;
    Ok(())
}
