//! 开票申请单: list them with their states, withdraw (撤回) one not yet pushed.

use fapiao_schemas::{BillState, DataSource, InvoiceKind};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{Invoicing, InvoicingError, Result};

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ApplicationRow {
    pub bill_no: String,
    pub state: BillState,
    pub source: DataSource,
    pub seller_tax_no: String,
    pub buyer_name: String,
    pub invoice_kind: InvoiceKind,
    pub lines: i64,
    /// Lines not covered by a live pending invoice (to push).
    pub open_lines: i64,
    pub total: Decimal,
    pub auto_issue: bool,
    pub business_system_code: Option<String>,
}

/// Which applications to list; every field narrows, `None` does not.
#[derive(Clone, Debug, Default)]
pub struct ApplicationFilter {
    /// A state's name (one that names no state matches none).
    pub state: Option<String>,
    pub seller_tax_no: Option<String>,
    /// Part of the bill number.
    pub bill: Option<String>,
    /// Exactly these bills.
    pub bill_nos: Option<Vec<String>>,
    /// Only these sellers (a console user's tenant scope); `None`: all.
    pub scope: Option<Vec<String>>,
    /// Keyset page: bills after this number (the last of the previous page).
    pub after: Option<String>,
    /// At most this many; `None`: every match.
    pub limit: Option<i64>,
}

impl ApplicationFilter {
    /// The state asked for: `Some(None)` for any, `None` when the name is no state (none match).
    fn state(&self) -> Option<Option<BillState>> {
        match self.state.as_deref().map(BillState::from_db) {
            None => Some(None),
            Some(None) => None,
            Some(known) => Some(known),
        }
    }
}

/// Applications, all or those in `state` (a state's name: one that names no state matches none).
pub async fn list(inv: &Invoicing, state: Option<&str>) -> Result<Vec<ApplicationRow>> {
    page(inv, &ApplicationFilter { state: state.map(str::to_string), ..ApplicationFilter::default() }).await
}

/// Applications matching `filter` in bill number order, a page of them with `after`/`limit`: the
/// bills are picked first (the primary key serves the order), their lines counted after.
pub async fn page(inv: &Invoicing, filter: &ApplicationFilter) -> Result<Vec<ApplicationRow>> {
    let Some(state) = filter.state() else { return Ok(Vec::new()) };
    let rows = sqlx::query_as(
        "SELECT a.bill_no, a.state, a.source, a.seller_tax_no, a.buyer_name, a.invoice_kind, a.auto_issue, a.business_system_code,
                l.lines, l.total, l.open_lines
           FROM (SELECT * FROM application a
                  WHERE ($1::text IS NULL OR a.state = $1::text) AND ($2::text IS NULL OR a.seller_tax_no = $2)
                    AND ($3::text IS NULL OR strpos(a.bill_no, $3) > 0) AND ($4::text[] IS NULL OR a.bill_no = ANY($4))
                    AND ($5::text[] IS NULL OR a.seller_tax_no = ANY($5)) AND ($6::text IS NULL OR a.bill_no > $6)
                  ORDER BY a.bill_no LIMIT $7) a,
         LATERAL (SELECT count(l.line_no) AS lines, coalesce(sum(l.total), 0) AS total,
                         count(l.line_no) FILTER (WHERE NOT EXISTS (
                             SELECT 1 FROM pending_line pl JOIN pending_invoice p ON p.id = pl.pending_id
                              WHERE pl.bill_no = l.bill_no AND pl.bill_line_no = l.line_no AND p.deleted_at IS NULL
                                AND p.released_at IS NULL AND p.invoice_property = 0)) AS open_lines
                    FROM application_line l WHERE l.bill_no = a.bill_no) l
          WHERE l.lines > 0
          ORDER BY a.bill_no",
    )
    .bind(state)
    .bind(&filter.seller_tax_no)
    .bind(&filter.bill)
    .bind(&filter.bill_nos)
    .bind(&filter.scope)
    .bind(&filter.after)
    .bind(filter.limit)
    .fetch_all(&inv.pool)
    .await?;
    Ok(rows)
}

/// The bill numbers of every application matching `filter` (its page fields ignored) that still
/// has lines to push or invoices to issue: what "all matching" acts on.
pub async fn matching_bills(inv: &Invoicing, filter: &ApplicationFilter) -> Result<Vec<String>> {
    let Some(state) = filter.state() else { return Ok(Vec::new()) };
    Ok(sqlx::query_scalar(
        "SELECT a.bill_no FROM application a
          WHERE ($1::text IS NULL OR a.state = $1::text) AND ($2::text IS NULL OR a.seller_tax_no = $2)
            AND ($3::text IS NULL OR strpos(a.bill_no, $3) > 0) AND ($4::text[] IS NULL OR a.seller_tax_no = ANY($4))
            AND a.state NOT IN ('issued', 'withdrawn')
          ORDER BY a.bill_no",
    )
    .bind(state)
    .bind(&filter.seller_tax_no)
    .bind(&filter.bill)
    .bind(&filter.scope)
    .fetch_all(&inv.pool)
    .await?)
}

/// 撤回: an application never pushed (received) or returned (退回: no live pending invoice holds
/// its lines). The bill is gone afterwards — its number may be imported again — and what it was
/// is kept as JSON in `application_withdrawal`: the application, its lines, and the lines the
/// deleted (returned) pending invoices once took from it.
pub async fn withdraw(inv: &Invoicing, bill_no: &str) -> Result<()> {
    let mut tx = inv.pool.begin().await?;
    let state: Option<BillState> =
        sqlx::query_scalar("SELECT state FROM application WHERE bill_no = $1 FOR UPDATE")
            .bind(bill_no)
            .fetch_optional(&mut *tx)
            .await?;
    match state {
        None => Err(InvoicingError::not_found("BILL_NOT_FOUND", format!("开票申请单{bill_no}不存在"))),
        Some(BillState::Received | BillState::Returned) => {
            // The state says no live pending invoice holds a line; the rows say it for certain
            // (a push between reading the state and here is held off by the row lock).
            let held: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pending_bill b JOIN pending_invoice p ON p.id = b.pending_id
                                 WHERE b.bill_no = $1 AND p.deleted_at IS NULL)",
            )
            .bind(bill_no)
            .fetch_one(&mut *tx)
            .await?;
            if held {
                return Err(already_pushed(bill_no, BillState::Pushed));
            }
            sqlx::query(
                "INSERT INTO application_withdrawal (bill_no, batch_id, application, lines, released)
                 SELECT a.bill_no, a.batch_id, to_jsonb(a),
                        (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.line_no), '[]') FROM application_line l WHERE l.bill_no = a.bill_no),
                        (SELECT coalesce(jsonb_agg(to_jsonb(pl) ORDER BY pl.pending_id, pl.seq), '[]') FROM pending_line pl WHERE pl.bill_no = a.bill_no)
                   FROM application a WHERE a.bill_no = $1",
            )
            .bind(bill_no)
            .execute(&mut *tx)
            .await?;
            // Children first: the links of the deleted pending invoices, then the bill itself.
            for delete in [
                "DELETE FROM pending_line WHERE bill_no = $1",
                "DELETE FROM pending_bill WHERE bill_no = $1",
                "DELETE FROM application_line WHERE bill_no = $1",
                "DELETE FROM application WHERE bill_no = $1",
            ] {
                sqlx::query(delete).bind(bill_no).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        Some(other) => Err(already_pushed(bill_no, other)),
    }
}

fn already_pushed(bill_no: &str, state: BillState) -> InvoicingError {
    InvoicingError::refused(
        "BILL_ALREADY_PUSHED",
        format!("开票申请单{bill_no}已推送（状态{state}），只有未推送或已退回的申请单可以撤回"),
    )
}
