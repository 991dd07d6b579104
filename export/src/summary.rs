//! The summary sheet, shaped and summed in polars: per seller (tax number) and day — blue and
//! red counts and amounts, net, failures, pool invoices in and their deductible tax, billing
//! units. All sums over integer cents, so they are exact; each ledger is summed chunk by chunk as
//! it streams past, and the partial sums are added up at the end.

use polars::prelude::*;

use crate::ledgers::{self, Column, Kind, Ledger};

/// Columns of the summary, with their headers; all but the first two are integer cents or counts.
pub const COLUMNS: [(&str, &str, bool); 16] = [
    ("tax_no", "税号", false),
    ("day", "日期", false),
    ("blue_count", "蓝字张数", false),
    ("blue_amount", "蓝字金额", true),
    ("blue_tax", "蓝字税额", true),
    ("blue_total", "蓝字价税合计", true),
    ("red_count", "红字张数", false),
    ("red_amount", "红字金额", true),
    ("red_tax", "红字税额", true),
    ("red_total", "红字价税合计", true),
    ("net_total", "净额（蓝−红）", true),
    ("failures", "开票失败", false),
    ("pool_in", "进项发票入池张数", false),
    ("pool_total", "进项价税合计", true),
    ("pool_deductible_tax", "可抵扣税额", true),
    ("billing_units", "票量", true),
];

/// The summary's columns as ledger columns (for the CSV and sheet writers).
pub fn columns() -> Vec<Column> {
    COLUMNS
        .iter()
        .map(|(name, header, money)| Column {
            name,
            header,
            kind: if *money {
                Kind::Money
            } else if *name == "tax_no" || *name == "day" {
                Kind::Text
            } else {
                Kind::Int
            },
            sql: "",
        })
        .collect()
}

/// `|x|` without the `abs` feature.
fn abs(c: &str) -> Expr {
    when(col(c).lt(lit(0i64))).then(lit(0i64) - col(c)).otherwise(col(c))
}

fn sum_if(cond: Expr, value: Expr) -> Expr {
    when(cond).then(value).otherwise(lit(0i64)).sum()
}

/// One chunk of a ledger summed per seller and day: the partial sums of the ledgers the summary
/// reads (`None` for the others). Every column but the keys adds up across chunks (`combined`).
pub fn partial(ledger: &Ledger, chunk: &DataFrame) -> PolarsResult<Option<DataFrame>> {
    let rows = chunk.clone().lazy();
    let part = if ledger.file == ledgers::ISSUED.file {
        let blue = || col("invoice_property").eq(lit(0i64));
        let red = || col("invoice_property").eq(lit(1i64));
        rows.group_by([col("seller_tax_no").alias("tax_no"), col("invoice_date").alias("day")]).agg([
            sum_if(blue(), lit(1i64)).alias("blue_count"),
            sum_if(blue(), col("amount")).alias("blue_amount"),
            sum_if(blue(), col("tax")).alias("blue_tax"),
            sum_if(blue(), col("total")).alias("blue_total"),
            sum_if(red(), lit(1i64)).alias("red_count"),
            sum_if(red(), abs("amount")).alias("red_amount"),
            sum_if(red(), abs("tax")).alias("red_tax"),
            sum_if(red(), abs("total")).alias("red_total"),
        ])
    } else if ledger.file == ledgers::FAILURES.file {
        rows.group_by([col("seller_tax_no").alias("tax_no"), col("day")])
            .agg([len().cast(DataType::Int64).alias("failures")])
    } else if ledger.file == ledgers::POOL.file {
        rows.group_by([col("tax_no"), col("invoice_date").alias("day")]).agg([
            len().cast(DataType::Int64).alias("pool_in"),
            col("total").sum().alias("pool_total"),
            col("deductible_tax").sum().alias("pool_deductible_tax"),
        ])
    } else if ledger.file == ledgers::BILLING_UNITS.file {
        rows.filter(col("tax_no").is_not_null())
            .group_by([col("tax_no"), col("day")])
            .agg([col("units").sum().alias("billing_units")])
    } else {
        return Ok(None);
    };
    part.collect().map(Some)
}

/// The partial sums of one ledger (at least one, perhaps empty) added up per seller and day.
fn combined(parts: &[DataFrame]) -> PolarsResult<LazyFrame> {
    let (first, rest) = parts.split_first().expect("every ledger has at least one partial");
    let mut all = first.clone();
    for p in rest {
        all.vstack_mut(p)?;
    }
    let sums: Vec<Expr> = all
        .get_column_names()
        .into_iter()
        .filter(|c| c.as_str() != "tax_no" && c.as_str() != "day")
        .map(|c| col(c.clone()).sum())
        .collect();
    Ok(all.lazy().group_by([col("tax_no"), col("day")]).agg(sums))
}

/// The partial sums of each ledger the summary reads, as `partial` returned them chunk by chunk.
pub struct Partials<'a> {
    pub issued: &'a [DataFrame],
    pub failures: &'a [DataFrame],
    pub pool: &'a [DataFrame],
    pub units: &'a [DataFrame],
}

pub fn summary(parts: Partials<'_>) -> PolarsResult<DataFrame> {
    let invoices =
        combined(parts.issued)?.with_column((col("blue_total") - col("red_total")).alias("net_total"));
    let keys = [col("tax_no"), col("day")];
    let full = || JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns);
    let numbers: Vec<Expr> = COLUMNS
        .iter()
        .skip(2)
        .map(|(name, _, _)| col(*name).fill_null(lit(0i64)).cast(DataType::Int64))
        .collect();
    invoices
        .join(combined(parts.failures)?, keys.clone(), keys.clone(), full())
        .join(combined(parts.pool)?, keys.clone(), keys.clone(), full())
        .join(combined(parts.units)?, keys.clone(), keys.clone(), full())
        .with_columns(numbers)
        .select(COLUMNS.iter().map(|(name, _, _)| col(*name)).collect::<Vec<_>>())
        .sort(["tax_no", "day"], SortMultipleOptions::default())
        .collect()
}

/// Net total per day over all sellers, for the chart.
pub fn daily_net(summary: &DataFrame) -> PolarsResult<DataFrame> {
    summary
        .clone()
        .lazy()
        .group_by([col("day")])
        .agg([col("net_total").sum()])
        .sort(["day"], SortMultipleOptions::default())
        .collect()
}
