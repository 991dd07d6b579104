//! The summary sheet, shaped and summed in polars: per seller (tax number) and day — blue and
//! red counts and amounts, net, failures, pool invoices in and their deductible tax, billing
//! units. All sums over integer cents, so they are exact.

use polars::prelude::*;

use crate::ledgers::{Column, Kind};

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

pub fn summary(
    issued: &DataFrame,
    failures: &DataFrame,
    pool: &DataFrame,
    units: &DataFrame,
) -> PolarsResult<DataFrame> {
    let blue = || col("invoice_property").eq(lit(0i64));
    let red = || col("invoice_property").eq(lit(1i64));
    let invoices = issued
        .clone()
        .lazy()
        .group_by([col("seller_tax_no").alias("tax_no"), col("invoice_date").alias("day")])
        .agg([
            sum_if(blue(), lit(1i64)).alias("blue_count"),
            sum_if(blue(), col("amount")).alias("blue_amount"),
            sum_if(blue(), col("tax")).alias("blue_tax"),
            sum_if(blue(), col("total")).alias("blue_total"),
            sum_if(red(), lit(1i64)).alias("red_count"),
            sum_if(red(), abs("amount")).alias("red_amount"),
            sum_if(red(), abs("tax")).alias("red_tax"),
            sum_if(red(), abs("total")).alias("red_total"),
        ])
        .with_column((col("blue_total") - col("red_total")).alias("net_total"));
    let failed = failures
        .clone()
        .lazy()
        .group_by([col("seller_tax_no").alias("tax_no"), col("day")])
        .agg([len().cast(DataType::Int64).alias("failures")]);
    let pooled = pool.clone().lazy().group_by([col("tax_no"), col("invoice_date").alias("day")]).agg([
        len().cast(DataType::Int64).alias("pool_in"),
        col("total").sum().alias("pool_total"),
        col("deductible_tax").sum().alias("pool_deductible_tax"),
    ]);
    let charged = units
        .clone()
        .lazy()
        .filter(col("tax_no").is_not_null())
        .group_by([col("tax_no"), col("day")])
        .agg([col("units").sum().alias("billing_units")]);
    let keys = [col("tax_no"), col("day")];
    let full = || JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns);
    let numbers: Vec<Expr> = COLUMNS
        .iter()
        .skip(2)
        .map(|(name, _, _)| col(*name).fill_null(lit(0i64)).cast(DataType::Int64))
        .collect();
    invoices
        .join(failed, keys.clone(), keys.clone(), full())
        .join(pooled, keys.clone(), keys.clone(), full())
        .join(charged, keys.clone(), keys.clone(), full())
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
