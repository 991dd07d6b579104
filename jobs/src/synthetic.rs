//! Synthetic staged rows for benchmarks and load tests: distinct 数电 invoices for one buyer,
//! made by the database itself (generate_series), so staging a million rows takes seconds.

use sqlx::PgPool;

/// Stage `count` rows numbered from `first` for `tax_no`. Returns the rows staged.
pub async fn stage(pool: &PgPool, tax_no: &str, first: i64, count: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO download_staging (tax_no, invoice_kind, invoice_code, invoice_num, invoice_date, seller_name,
             seller_tax_no, buyer_name, amount, tax, total, status, invoice_property, special_business)
         SELECT $1, CASE WHEN g % 3 = 0 THEN 'digital_special' ELSE 'digital_ordinary' END, '',
                '26442' || lpad(g::text, 15, '0'), DATE '2026-11-01' + (g % 28)::int, '中国东方航空股份有限公司',
                '91310000132617750X', '购方', 100.00 + (g % 1000), round((100.00 + (g % 1000)) * 0.09, 2),
                100.00 + (g % 1000) + round((100.00 + (g % 1000)) * 0.09, 2),
                CASE WHEN g % 50 = 0 THEN 'void' ELSE 'normal' END, 0,
                CASE WHEN g % 40 = 0 THEN '农产品收购' ELSE '' END
         FROM generate_series($2::bigint, $2::bigint + $3::bigint - 1) AS g",
    )
    .bind(tax_no)
    .bind(first)
    .bind(count)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
