//! The reconciliation checks. Each compares two things that must agree and names what does not.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;
use sqlx::PgPool;

use crate::ExportError;
use crate::ledgers::Filter;
use crate::package::yuan;

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub description: &'static str,
    pub ok: bool,
    /// How many items disagree.
    pub failures: usize,
    /// The first of them, named.
    pub examples: Vec<String>,
}

/// Disagreements found so far, chunk by chunk: how many, and the first twenty named.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    failures: usize,
    examples: Vec<String>,
}

impl Tally {
    pub fn push(&mut self, bad: String) {
        self.failures += 1;
        if self.examples.len() < 20 {
            self.examples.push(bad);
        }
    }

    pub fn check(self, name: &'static str, description: &'static str) -> Check {
        Check { name, description, ok: self.failures == 0, failures: self.failures, examples: self.examples }
    }
}

pub const RED_POINTS_TO_BLUE: (&str, &str) =
    ("red_points_to_blue", "every red invoice points at an existing blue invoice");
pub const REMAINING_AGREES: (&str, &str) =
    ("remaining_agrees", "every blue invoice's remaining red-flushable amount = |total| − its red invoices");

fn strs(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df.column(c)?.str()?.iter().map(|s| s.map(str::to_string)).collect())
}

fn ints(df: &DataFrame, c: &str) -> PolarsResult<Vec<Option<i64>>> {
    Ok(df.column(c)?.i64()?.iter().collect())
}

/// Blue − red = net per seller and day, against the invoice ledger summed by the database.
pub async fn net_matches_ledger(
    pool: &PgPool,
    filter: &Filter,
    summary: &DataFrame,
) -> Result<Check, ExportError> {
    let sql = format!(
        "SELECT seller_tax_no, invoice_date::text, (sum(total) * 100)::bigint FROM issued_invoice
          WHERE invoice_date BETWEEN {} AND {} AND ({} IS NULL OR seller_tax_no = ANY({}))
          GROUP BY 1, 2",
        filter.from, filter.to, filter.taxnos, filter.taxnos
    );
    let rows: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?;
    let ledger: BTreeMap<(String, String), i64> = rows.into_iter().map(|(t, d, c)| ((t, d), c)).collect();
    let (taxes, days, nets, counts) = (
        strs(summary, "tax_no")?,
        strs(summary, "day")?,
        ints(summary, "net_total")?,
        ints(summary, "blue_count")?,
    );
    let reds = ints(summary, "red_count")?;
    let mut bad = Tally::default();
    let mut seen = 0;
    for i in 0..summary.height() {
        if counts[i].unwrap_or(0) + reds[i].unwrap_or(0) == 0 {
            continue;
        }
        seen += 1;
        let key = (taxes[i].clone().unwrap_or_default(), days[i].clone().unwrap_or_default());
        let expected = ledger.get(&key).copied().unwrap_or(0);
        let net = nets[i].unwrap_or(0);
        if net != expected {
            bad.push(format!("{} {}: 蓝−红 {} ≠ 发票台账 {}", key.0, key.1, yuan(net), yuan(expected)));
        }
    }
    if seen != ledger.len() {
        bad.push(format!("汇总有{seen}个销方日期，发票台账有{}个", ledger.len()));
    }
    Ok(bad.check(
        "net_matches_ledger",
        "blue − red = net for every seller and day, as the invoice ledger sums it",
    ))
}

/// Every red invoice of this chunk of the red-flush ledger points at an existing blue invoice.
pub fn red_points_to_blue(red_flushes: &DataFrame, bad: &mut Tally) -> PolarsResult<()> {
    let (reds, blues) =
        (red_flushes.column("red_invoice_num")?.str()?, red_flushes.column("blue_invoice_num")?.str()?);
    for (r, _) in reds.iter().zip(blues.iter()).filter(|(_, b)| b.is_none()) {
        bad.push(format!("红字发票{}没有对应的蓝字发票", r.unwrap_or_default()));
    }
    Ok(())
}

/// The remaining red-flushable amount of every blue invoice of this chunk of the invoice ledger
/// = |total| − the red ledger against it.
pub fn remaining_agrees(issued: &DataFrame, bad: &mut Tally) -> PolarsResult<()> {
    let blue = issued.clone().lazy().filter(col("invoice_property").eq(lit(0i64))).collect()?;
    let (nums, totals, reds, remaining) = (
        blue.column("invoice_num")?.str()?,
        blue.column("total")?.i64()?,
        blue.column("red_total_all")?.i64()?,
        blue.column("remaining")?.i64()?,
    );
    for (((num, total), red), left) in nums.iter().zip(totals.iter()).zip(reds.iter()).zip(remaining.iter()) {
        let expected = total.unwrap_or(0).abs() - red.unwrap_or(0);
        if left.unwrap_or(0) != expected {
            bad.push(format!(
                "发票{}：剩余可红冲{} ≠ 价税合计−已红冲 {}",
                num.unwrap_or_default(),
                yuan(left.unwrap_or(0)),
                yuan(expected)
            ));
        }
    }
    Ok(())
}

/// Every issued bill (with an invoice in the period) has a successful callback enqueued.
pub async fn issued_bills_have_callback(pool: &PgPool, filter: &Filter) -> Result<Check, ExportError> {
    let sql = format!(
        "SELECT a.bill_no FROM application a
          WHERE a.state = 'issued' AND ({taxnos} IS NULL OR a.seller_tax_no = ANY({taxnos}))
            AND EXISTS (SELECT 1 FROM pending_bill b JOIN issued_invoice i ON i.pending_id = b.pending_id
                         WHERE b.bill_no = a.bill_no AND i.invoice_date BETWEEN {from} AND {to})
            AND NOT EXISTS (SELECT 1 FROM callback c WHERE c.bill_no = a.bill_no AND c.body->>'returnCode' = '0')
          ORDER BY a.bill_no",
        taxnos = filter.taxnos,
        from = filter.from,
        to = filter.to
    );
    let bills: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?;
    let mut bad = Tally::default();
    for b in bills {
        bad.push(format!("单据{b}已开票但没有回调"));
    }
    Ok(bad.check("issued_bills_have_callback", "every issued bill has a callback with its result"))
}
