//! Issued invoices (已开发票查询): find them by what a finance user knows — seller, buyer,
//! bill number, invoice number, dates, kind, blue or red, red-flush state, status — and see one
//! whole: its lines, the bills it serves, every issuing attempt with its serial number, the
//! callbacks of its bills, its red invoices and red-flush requests, and its deliveries.

use chrono::{DateTime, NaiveDate, Utc};
use fapiao_schemas::{AttemptOutcome, InvoiceKind, InvoiceStatus, RedFlushRequestState, RedFlushState};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{Invoicing, InvoicingError, Result};

/// Blue (蓝字, invoice_property 0) or red (红字, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Blue,
    Red,
}

impl Colour {
    fn property(self) -> i16 {
        match self {
            Colour::Blue => 0,
            Colour::Red => 1,
        }
    }
}

/// What to look for; every field narrows the search, `None` does not.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub seller_tax_no: Option<String>,
    /// Part of the buyer's name, or the buyer's tax number.
    pub buyer: Option<String>,
    pub bill_no: Option<String>,
    pub invoice_num: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub kind: Option<InvoiceKind>,
    pub colour: Option<Colour>,
    pub red_flush: Option<RedFlushState>,
    /// 正常, 作废中 or 作废.
    pub status: Option<InvoiceStatus>,
    /// Only these sellers (a user's tenant scope); `None`: all.
    pub scope: Option<Vec<String>>,
    pub limit: i64,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct IssuedRow {
    pub id: i64,
    pub invoice_code: String,
    pub invoice_num: String,
    pub invoice_kind: InvoiceKind,
    pub red: bool,
    pub invoice_date: NaiveDate,
    pub seller_tax_no: String,
    pub buyer_name: String,
    pub buyer_tax_no: Option<String>,
    pub amount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub status: InvoiceStatus,
    pub red_flush_state: RedFlushState,
    /// What can still be red-flushed (blue invoices).
    pub remaining: Decimal,
    pub bills: Vec<String>,
    /// For a red invoice: the blue invoice it red-flushes.
    pub blue_invoice_num: Option<String>,
    pub serial_no: String,
    /// 开票人, 收款人, 复核人 as the invoice was sent.
    pub drawer: Option<String>,
    pub payee: Option<String>,
    pub reviewer: Option<String>,
    pub invoice_file_url: Option<String>,
    pub ofd_file_url: Option<String>,
    pub xml_file_url: Option<String>,
}

const ROW: &str = "SELECT i.id, i.invoice_code, i.invoice_num, i.invoice_kind, i.invoice_property = 1 AS red, i.invoice_date,
        i.seller_tax_no, i.buyer_name, i.buyer_tax_no, i.amount, i.tax, i.total, i.status, i.red_flush_state, i.remaining,
        ARRAY(SELECT b.bill_no FROM pending_bill b WHERE b.pending_id = coalesce(bp.pending_id, i.pending_id) ORDER BY b.bill_no) AS bills,
        bp.invoice_num AS blue_invoice_num, i.serial_no, p.drawer, p.payee, p.reviewer,
        i.invoice_file_url, i.ofd_file_url, i.xml_file_url
   FROM issued_invoice i JOIN pending_invoice p ON p.id = i.pending_id
   LEFT JOIN issued_invoice bp ON bp.id = i.blue_invoice_id";

/// Issued invoices matching `filter`, newest first.
pub async fn list(inv: &Invoicing, filter: &Filter) -> Result<Vec<IssuedRow>> {
    let sql = format!(
        "{ROW}
          WHERE ($1::text IS NULL OR i.seller_tax_no = $1)
            AND ($2::text IS NULL OR i.buyer_tax_no = $2 OR strpos(i.buyer_name, $2) > 0)
            AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM pending_bill b
                                              WHERE b.pending_id = coalesce(bp.pending_id, i.pending_id) AND b.bill_no = $3))
            AND ($4::text IS NULL OR i.invoice_num = $4)
            AND ($5::date IS NULL OR i.invoice_date >= $5) AND ($6::date IS NULL OR i.invoice_date <= $6)
            AND ($7::text IS NULL OR i.invoice_kind = $7)
            AND ($8::smallint IS NULL OR i.invoice_property = $8)
            AND ($9::text IS NULL OR (i.invoice_property = 0 AND i.red_flush_state = $9))
            AND ($10::text IS NULL OR i.status = $10)
            AND ($11::text[] IS NULL OR i.seller_tax_no = ANY($11))
          ORDER BY i.invoice_date DESC, i.id DESC LIMIT $12"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&filter.seller_tax_no)
        .bind(&filter.buyer)
        .bind(&filter.bill_no)
        .bind(&filter.invoice_num)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.kind)
        .bind(filter.colour.map(Colour::property))
        .bind(filter.red_flush)
        .bind(filter.status)
        .bind(&filter.scope)
        .bind(filter.limit)
        .fetch_all(&inv.pool)
        .await?)
}

/// The invoices of one bill (开票申请单发票查询), blue and red.
pub async fn of_bill(inv: &Invoicing, bill_no: &str) -> Result<Vec<IssuedRow>> {
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM application WHERE bill_no = $1)")
        .bind(bill_no)
        .fetch_one(&inv.pool)
        .await?;
    if !known {
        return Err(InvoicingError::not_found("BILL_NOT_FOUND", format!("开票申请单{bill_no}不存在")));
    }
    let filter = Filter { bill_no: Some(bill_no.to_string()), limit: i64::MAX, ..Filter::default() };
    list(inv, &filter).await
}

/// One invoice by its number (a 数电 number alone, or a tax-control number: then the code tells
/// two apart, if given).
pub async fn find(inv: &Invoicing, invoice_num: &str, invoice_code: Option<&str>) -> Result<IssuedRow> {
    let sql = format!(
        "{ROW} WHERE i.invoice_num = $1 AND ($2::text IS NULL OR i.invoice_code = $2) ORDER BY i.id LIMIT 1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(invoice_num)
        .bind(invoice_code)
        .fetch_optional(&inv.pool)
        .await?
        .ok_or_else(|| InvoicingError::not_found("INVOICE_NOT_FOUND", format!("发票{invoice_num}不存在")))
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct LineRow {
    pub seq: i32,
    pub bill_no: Option<String>,
    pub bill_line_no: Option<i32>,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub goods: crate::Goods,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub serial_no: String,
    pub attempt: i32,
    pub outcome: AttemptOutcome,
    pub message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct RedFlushRow {
    pub id: i64,
    pub state: RedFlushRequestState,
    pub requested: Option<Decimal>,
    pub reason: Option<String>,
    pub document_id: Option<String>,
    pub red_invoice_num: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct DeliveryRow {
    pub channel: String,
    pub address: String,
    pub delivered_at: DateTime<Utc>,
}

/// One invoice whole.
#[derive(Clone, Debug, Serialize)]
pub struct Detail {
    pub invoice: IssuedRow,
    pub lines: Vec<LineRow>,
    pub attempts: Vec<AttemptRow>,
    pub callbacks: Vec<crate::callbacks::CallbackRow>,
    pub red_invoices: Vec<IssuedRow>,
    pub red_flushes: Vec<RedFlushRow>,
    pub deliveries: Vec<DeliveryRow>,
}

pub async fn show(inv: &Invoicing, invoice_num: &str, invoice_code: Option<&str>) -> Result<Detail> {
    let invoice = find(inv, invoice_num, invoice_code).await?;
    let pending_id: i64 = sqlx::query_scalar("SELECT pending_id FROM issued_invoice WHERE id = $1")
        .bind(invoice.id)
        .fetch_one(&inv.pool)
        .await?;
    let lines = sqlx::query_as(
        "SELECT seq, bill_no, bill_line_no, line_property, goods_name, revenue_code, specification, unit, quantity, price,
                amount, tax_rate, tax, privilege_flag, privilege_content, zero_rate_mark
           FROM pending_line WHERE pending_id = $1 ORDER BY seq",
    )
    .bind(pending_id)
    .fetch_all(&inv.pool)
    .await?;
    let attempts = sqlx::query_as(
        "SELECT serial_no, attempt, outcome, message, started_at, settled_at FROM issue_attempt
          WHERE pending_id = $1 ORDER BY attempt",
    )
    .bind(pending_id)
    .fetch_all(&inv.pool)
    .await?;
    let callbacks = crate::callbacks::of_bills(inv, &invoice.bills).await?;
    let red_invoices = if invoice.red {
        Vec::new()
    } else {
        let sql = format!("{ROW} WHERE i.blue_invoice_id = $1 ORDER BY i.id");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(invoice.id).fetch_all(&inv.pool).await?
    };
    let red_flushes = sqlx::query_as(
        "SELECT r.id, r.state, r.requested, r.red_reason AS reason, r.document_id, ri.invoice_num AS red_invoice_num, r.message
           FROM red_flush r LEFT JOIN issued_invoice ri ON ri.pending_id = r.pending_id
          WHERE r.blue_invoice_id = $1 ORDER BY r.id",
    )
    .bind(invoice.id)
    .fetch_all(&inv.pool)
    .await?;
    let deliveries = sqlx::query_as(
        "SELECT channel, address, delivered_at FROM invoice_delivery WHERE issued_invoice_id = $1 ORDER BY id",
    )
    .bind(invoice.id)
    .fetch_all(&inv.pool)
    .await?;
    Ok(Detail { invoice, lines, attempts, callbacks, red_invoices, red_flushes, deliveries })
}
