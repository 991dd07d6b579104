//! Receipt codes' tables (migration 0035): settings and signing keys per enterprise, the goods
//! catalogue, receipt codes with their lines, the one-invoice-per-receipt claims, scans and the
//! statistics over them.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct SettingsRow {
    pub tax_no: String,
    pub kinds: Vec<String>,
    pub default_kind: String,
    pub validity_minutes: i32,
    pub base_url: String,
    pub delivery: String,
    pub mode1: bool,
    pub mode2: bool,
    pub order_query_url: Option<String>,
    pub kingdee_compat: bool,
    pub kingdee_key: Option<String>,
}

pub async fn settings(pool: &PgPool, tax_no: &str) -> sqlx::Result<Option<SettingsRow>> {
    sqlx::query_as(
        "SELECT tax_no, kinds, default_kind, validity_minutes, base_url, delivery, mode1, mode2,
                order_query_url, kingdee_compat, kingdee_key
           FROM receipt_settings WHERE tax_no = $1",
    )
    .bind(tax_no)
    .fetch_optional(pool)
    .await
}

/// The enterprise whose Kingdee-format key this is, only where compatibility is on.
pub async fn settings_by_kingdee_key(pool: &PgPool, key: &str) -> sqlx::Result<Option<SettingsRow>> {
    sqlx::query_as(
        "SELECT tax_no, kinds, default_kind, validity_minutes, base_url, delivery, mode1, mode2,
                order_query_url, kingdee_compat, kingdee_key
           FROM receipt_settings WHERE kingdee_key = $1 AND kingdee_compat",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
}

pub async fn put_settings(pool: &PgPool, s: &SettingsRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO receipt_settings (tax_no, kinds, default_kind, validity_minutes, base_url, delivery, mode1, mode2,
                                       order_query_url, kingdee_compat, kingdee_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (tax_no) DO UPDATE SET kinds = $2, default_kind = $3, validity_minutes = $4, base_url = $5,
             delivery = $6, mode1 = $7, mode2 = $8, order_query_url = $9, kingdee_compat = $10, kingdee_key = $11,
             updated_at = now()",
    )
    .bind(&s.tax_no)
    .bind(&s.kinds)
    .bind(&s.default_kind)
    .bind(s.validity_minutes)
    .bind(&s.base_url)
    .bind(&s.delivery)
    .bind(s.mode1)
    .bind(s.mode2)
    .bind(&s.order_query_url)
    .bind(s.kingdee_compat)
    .bind(&s.kingdee_key)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct KeyRow {
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

pub async fn add_key(pool: &PgPool, tax_no: &str, key_id: &str, secret: &[u8]) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO receipt_key (tax_no, key_id, secret) VALUES ($1, $2, $3)")
        .bind(tax_no)
        .bind(key_id)
        .bind(secret)
        .execute(pool)
        .await?;
    Ok(())
}

/// The key that signs new links: the newest unretired one.
pub async fn signing_key(pool: &PgPool, tax_no: &str) -> sqlx::Result<Option<(String, Vec<u8>)>> {
    sqlx::query_as(
        "SELECT key_id, secret FROM receipt_key WHERE tax_no = $1 AND retired_at IS NULL
          ORDER BY created_at DESC, key_id DESC LIMIT 1",
    )
    .bind(tax_no)
    .fetch_optional(pool)
    .await
}

/// An unretired key by its id (what verifies a link).
pub async fn verifying_key(pool: &PgPool, tax_no: &str, key_id: &str) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar(
        "SELECT secret FROM receipt_key WHERE tax_no = $1 AND key_id = $2 AND retired_at IS NULL",
    )
    .bind(tax_no)
    .bind(key_id)
    .fetch_optional(pool)
    .await
}

pub async fn retire_key(pool: &PgPool, tax_no: &str, key_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE receipt_key SET retired_at = now() WHERE tax_no = $1 AND key_id = $2 AND retired_at IS NULL",
    )
    .bind(tax_no)
    .bind(key_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn keys(pool: &PgPool, tax_no: &str) -> sqlx::Result<Vec<KeyRow>> {
    sqlx::query_as("SELECT key_id, created_at, retired_at FROM receipt_key WHERE tax_no = $1 ORDER BY created_at, key_id")
        .bind(tax_no)
        .fetch_all(pool)
        .await
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct GoodsRow {
    pub id: i64,
    pub tax_no: String,
    pub name: String,
    pub revenue_code: String,
    pub tax_rate: Decimal,
    pub specification: Option<String>,
    pub unit: Option<String>,
    pub price: Option<Decimal>,
    pub disabled: bool,
}

#[derive(Clone, Debug)]
pub struct NewGoods {
    pub tax_no: String,
    pub name: String,
    pub revenue_code: String,
    pub tax_rate: Decimal,
    pub specification: Option<String>,
    pub unit: Option<String>,
    pub price: Option<Decimal>,
}

pub async fn add_goods(db: impl sqlx::PgExecutor<'_>, g: &NewGoods) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO goods_item (tax_no, name, revenue_code, tax_rate, specification, unit, price)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&g.tax_no)
    .bind(&g.name)
    .bind(&g.revenue_code)
    .bind(g.tax_rate)
    .bind(&g.specification)
    .bind(&g.unit)
    .bind(g.price)
    .fetch_one(db)
    .await
}

const GOODS: &str =
    "SELECT id, tax_no, name, revenue_code, tax_rate, specification, unit, price, disabled FROM goods_item";

pub async fn goods(pool: &PgPool, tax_no: Option<&str>, with_disabled: bool) -> sqlx::Result<Vec<GoodsRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{GOODS} WHERE ($1::text IS NULL OR tax_no = $1) AND ($2 OR NOT disabled) ORDER BY tax_no, id"
    )))
    .bind(tax_no)
    .bind(with_disabled)
    .fetch_all(pool)
    .await
}

pub async fn goods_item(pool: &PgPool, id: i64) -> sqlx::Result<Option<GoodsRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{GOODS} WHERE id = $1"))).bind(id).fetch_optional(pool).await
}

pub async fn disable_goods(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE goods_item SET disabled = true WHERE id = $1").bind(id).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ReceiptRow {
    pub id: i64,
    pub tax_no: String,
    pub serial_no: String,
    pub origin: String,
    pub device_no: Option<String>,
    pub etax_account: Option<String>,
    pub kinds: Vec<String>,
    pub default_kind: String,
    pub valid_until: DateTime<Utc>,
    pub bottom_remark: Option<String>,
    pub drawer: String,
    pub payee: Option<String>,
    pub reviewer: Option<String>,
    pub remark: Option<String>,
    pub amount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReceiptLineRow {
    pub line_no: i32,
    pub goods_id: Option<i64>,
    pub goods_name: String,
    pub revenue_code: String,
    pub specification: Option<String>,
    pub unit: Option<String>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub amount: Decimal,
    pub tax_rate: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    /// normal, discount, discounted
    pub line_property: String,
}

/// A receipt code to store (its id comes back).
#[derive(Clone, Debug, Serialize)]
pub struct NewReceipt {
    pub tax_no: String,
    pub serial_no: String,
    pub origin: &'static str,
    pub device_no: Option<String>,
    pub etax_account: Option<String>,
    pub kinds: Vec<String>,
    pub default_kind: String,
    pub valid_until: DateTime<Utc>,
    pub bottom_remark: Option<String>,
    pub drawer: String,
    pub payee: Option<String>,
    pub reviewer: Option<String>,
    pub remark: Option<String>,
    pub created_by: String,
    pub lines: Vec<ReceiptLineRow>,
}

/// Store a receipt code and its lines; `None` when its serial number is taken for the seller.
pub async fn insert_receipt(pool: &PgPool, r: &NewReceipt) -> sqlx::Result<Option<i64>> {
    let mut tx = pool.begin().await?;
    let sum = |f: fn(&ReceiptLineRow) -> Decimal| r.lines.iter().map(f).sum::<Decimal>();
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO receipt_code (tax_no, serial_no, origin, device_no, etax_account, kinds, default_kind, valid_until,
                                   bottom_remark, drawer, payee, reviewer, remark, amount, tax, total, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         ON CONFLICT (tax_no, serial_no) DO NOTHING RETURNING id",
    )
    .bind(&r.tax_no)
    .bind(&r.serial_no)
    .bind(r.origin)
    .bind(&r.device_no)
    .bind(&r.etax_account)
    .bind(&r.kinds)
    .bind(&r.default_kind)
    .bind(r.valid_until)
    .bind(&r.bottom_remark)
    .bind(&r.drawer)
    .bind(&r.payee)
    .bind(&r.reviewer)
    .bind(&r.remark)
    .bind(sum(|l| l.amount))
    .bind(sum(|l| l.tax))
    .bind(sum(|l| l.total))
    .bind(&r.created_by)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else { return Ok(None) };
    for l in &r.lines {
        sqlx::query(
            "INSERT INTO receipt_code_line (receipt_id, line_no, goods_id, goods_name, revenue_code, specification, unit,
                                            quantity, price, amount, tax_rate, tax, total, line_property)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(id)
        .bind(l.line_no)
        .bind(l.goods_id)
        .bind(&l.goods_name)
        .bind(&l.revenue_code)
        .bind(&l.specification)
        .bind(&l.unit)
        .bind(l.quantity)
        .bind(l.price)
        .bind(l.amount)
        .bind(l.tax_rate)
        .bind(l.tax)
        .bind(l.total)
        .bind(&l.line_property)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

const RECEIPT: &str = "SELECT id, tax_no, serial_no, origin, device_no, etax_account, kinds, default_kind, valid_until,
        bottom_remark, drawer, payee, reviewer, remark, amount, tax, total, disabled_at, created_by, created_at
   FROM receipt_code";

pub async fn receipt(pool: &PgPool, id: i64) -> sqlx::Result<Option<ReceiptRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{RECEIPT} WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn receipt_by_serial(
    pool: &PgPool,
    tax_no: &str,
    serial_no: &str,
) -> sqlx::Result<Option<ReceiptRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{RECEIPT} WHERE tax_no = $1 AND serial_no = $2")))
        .bind(tax_no)
        .bind(serial_no)
        .fetch_optional(pool)
        .await
}

pub async fn receipts(pool: &PgPool, tax_no: Option<&str>, limit: i64) -> sqlx::Result<Vec<ReceiptRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECEIPT} WHERE ($1::text IS NULL OR tax_no = $1) ORDER BY id DESC LIMIT $2"
    )))
    .bind(tax_no)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn receipt_lines(pool: &PgPool, id: i64) -> sqlx::Result<Vec<ReceiptLineRow>> {
    sqlx::query_as(
        "SELECT line_no, goods_id, goods_name, revenue_code, specification, unit, quantity, price, amount, tax_rate,
                tax, total, line_property
           FROM receipt_code_line WHERE receipt_id = $1 ORDER BY line_no",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

pub async fn disable_receipt(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done =
        sqlx::query("UPDATE receipt_code SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL")
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Take the receipt's one invoice inside `tx`: `None` when taken now, else the bill number of the
/// invoice that took it first. A concurrent claim waits here for the other transaction to end.
pub async fn claim(
    tx: &mut PgConnection,
    tax_no: &str,
    order_no: &str,
    bill_no: &str,
    mode: &str,
    total: Decimal,
) -> sqlx::Result<Option<String>> {
    let fresh: Option<String> = sqlx::query_scalar(
        "INSERT INTO receipt_claim (tax_no, order_no, bill_no, mode, total) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tax_no, order_no) DO NOTHING RETURNING bill_no",
    )
    .bind(tax_no)
    .bind(order_no)
    .bind(bill_no)
    .bind(mode)
    .bind(total)
    .fetch_optional(&mut *tx)
    .await?;
    if fresh.is_some() {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT bill_no FROM receipt_claim WHERE tax_no = $1 AND order_no = $2")
        .bind(tax_no)
        .bind(order_no)
        .fetch_one(&mut *tx)
        .await
        .map(Some)
}

/// The issuers the bill of a receipt's invoice asks for (`bill_issuer`): they go on its invoice
/// instead of the seller's.
pub async fn set_bill_issuers(
    tx: &mut PgConnection,
    bill_no: &str,
    drawer: &str,
    payee: Option<&str>,
    reviewer: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO bill_issuer (bill_no, drawer, payee, reviewer) VALUES ($1, $2, $3, $4)
         ON CONFLICT (bill_no) DO UPDATE SET drawer = EXCLUDED.drawer, payee = EXCLUDED.payee, reviewer = EXCLUDED.reviewer",
    )
    .bind(bill_no)
    .bind(drawer)
    .bind(payee)
    .bind(reviewer)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The bill number of the receipt's invoice, once claimed.
pub async fn claimed(pool: &PgPool, tax_no: &str, order_no: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT bill_no FROM receipt_claim WHERE tax_no = $1 AND order_no = $2")
        .bind(tax_no)
        .bind(order_no)
        .fetch_optional(pool)
        .await
}

pub async fn record_scan(pool: &PgPool, tax_no: &str, order_no: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO receipt_scan (tax_no, order_no) VALUES ($1, $2)")
        .bind(tax_no)
        .bind(order_no)
        .execute(pool)
        .await?;
    Ok(())
}

/// Per enterprise and day (in `tz`, an IANA name): codes created, receipts scanned (distinct),
/// receipts invoiced and their amount.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct StatsRow {
    pub tax_no: String,
    pub day: NaiveDate,
    pub codes: i64,
    pub scanned: i64,
    pub invoiced: i64,
    pub invoiced_total: Decimal,
}

pub async fn stats(
    pool: &PgPool,
    tax_no: Option<&str>,
    tz: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<StatsRow>> {
    sqlx::query_as(
        "WITH c AS (SELECT tax_no, (created_at AT TIME ZONE $2)::date AS day, count(*) AS n FROM receipt_code GROUP BY 1, 2),
              s AS (SELECT tax_no, (scanned_at AT TIME ZONE $2)::date AS day, count(DISTINCT order_no) AS n FROM receipt_scan GROUP BY 1, 2),
              i AS (SELECT tax_no, (created_at AT TIME ZONE $2)::date AS day, count(*) AS n, sum(total) AS t FROM receipt_claim GROUP BY 1, 2),
              k AS (SELECT tax_no, day FROM c UNION SELECT tax_no, day FROM s UNION SELECT tax_no, day FROM i)
         SELECT k.tax_no, k.day, coalesce(c.n, 0) AS codes, coalesce(s.n, 0) AS scanned, coalesce(i.n, 0) AS invoiced,
                coalesce(i.t, 0)::numeric(18,2) AS invoiced_total
           FROM k LEFT JOIN c USING (tax_no, day) LEFT JOIN s USING (tax_no, day) LEFT JOIN i USING (tax_no, day)
          WHERE ($1::text IS NULL OR k.tax_no = $1) AND k.day BETWEEN $3 AND $4
          ORDER BY k.tax_no, k.day",
    )
    .bind(tax_no)
    .bind(tz)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}
