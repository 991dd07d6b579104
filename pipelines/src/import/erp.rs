//! Bills pushed by an ERP (BILL.PUSH, issue 17) are checked by the importer's own rules — the
//! same template columns convert each field (`Column::convert`), the same row rules run
//! (`convert::check_row`), the same checks across lines run in SQL over a staging table of the
//! same shape (`rules::BILL_MIXED`, `rules::APPLICATION_CHECKS`) — and land by the same COPY as imported bills, with
//! the source 直接开票接口 and the business system's code. All or nothing per bill: a bill with
//! any problem lands nothing, the others land.
//!
//! The caller owns the transaction (the ERP API records its idempotency keys in it).

use std::collections::{BTreeSet, HashMap, HashSet};

use fapiao_schemas::messages::{NOT_IN_TENANT_CODE, not_in_tenant};
use fapiao_schemas::template::{Cell, Template, Value};
use fapiao_schemas::{DataSource, ImportKind};
use serde::Serialize;
use sqlx::PgConnection;

use super::convert::{check_row, write_csv_record};
use super::copy_in;
use super::land::{BILL_FIELDS, COPY_BILLS, COPY_LINES, LINE_FIELDS, default_of};
use super::rules::{APPLICATION_CHECKS, BILL_MIXED, KindRules};

/// One bill as the ERP sent it, its fields already named by template field (the wire names are
/// the API's business): header cells once, and each line's cells.
#[derive(Clone, Debug)]
pub struct ErpBill {
    pub bill_no: String,
    pub header: Vec<(&'static str, Cell)>,
    pub lines: Vec<Vec<(&'static str, Cell)>>,
    /// What the wire found already (a field of the wrong shape, a bill total that does not add
    /// up): the bill is refused with these besides the rules' own.
    pub problems: Vec<BillProblem>,
}

/// Why a bill was refused: the line (from 1; `None`: the bill's header), the template field,
/// the importer's code and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BillProblem {
    pub line: Option<u32>,
    pub field: String,
    pub code: String,
    pub message: String,
}

/// A bill after the rules of its lines: the lines as COPY text in template order, or problems.
#[derive(Clone, Debug)]
pub struct CheckedBill {
    pub bill_no: String,
    pub seller_tax_no: Option<String>,
    lines: Vec<Vec<Option<String>>>,
    pub problems: Vec<BillProblem>,
}

/// The applications template, parsed once (a push of 1,000 bills checks each).
fn template() -> &'static Template {
    static TEMPLATE: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| Template::for_kind(ImportKind::Applications))
}

/// The rules within each line (no database): every template field of a line is read from the
/// line's cells, else the header's, else empty (so a required field missing anywhere gets the
/// importer's 必填字段为空 message).
pub fn check(bill: &ErpBill) -> CheckedBill {
    let template = template();
    let mut problems = bill.problems.clone();
    let mut seen_header_problems = BTreeSet::new();
    let mut lines = Vec::with_capacity(bill.lines.len());
    let mut seller = None;
    let empty = Cell::Empty;
    for (i, line) in bill.lines.iter().enumerate() {
        let cell_of = |field: &str| {
            line.iter().chain(bill.header.iter()).find(|(f, _)| *f == field).map(|(_, c)| c).unwrap_or(&empty)
        };
        let present = template.columns.iter().map(|c| (c.field.as_str(), c, cell_of(&c.field)));
        let (mut values, found) = check_row(present, ImportKind::Applications);
        for (field, code, message) in found {
            let on_header = !line.iter().any(|(f, _)| *f == field);
            // A header field is one problem of the bill, not one per line.
            if on_header && !seen_header_problems.insert((field.to_string(), code)) {
                continue;
            }
            problems.push(BillProblem {
                line: (!on_header).then_some(i as u32 + 1),
                field: field.to_string(),
                code: code.to_string(),
                message,
            });
        }
        if let Some(Value::Text(t)) = values.get("seller_tax_no") {
            seller = Some(t.clone());
        }
        lines.push(
            template
                .columns
                .iter()
                .map(|c| values.remove(c.field.as_str()).and_then(Value::into_copy_text))
                .collect(),
        );
    }
    if bill.lines.is_empty() {
        problems.push(BillProblem {
            line: None,
            field: "lines".into(),
            code: "BILL_WITHOUT_LINES".into(),
            message: format!("单据{}没有明细行", bill.bill_no),
        });
    }
    CheckedBill { bill_no: bill.bill_no.clone(), seller_tax_no: seller, lines, problems }
}

/// Who is landing: the business system's code, the sellers it may act for, and the tenant's id
/// (named by the 1130 message); the source the bills land with (数据来源: 直接开票接口 for the
/// ERP API, 小票码开票 for a consumer's receipt).
pub struct Lander<'a> {
    pub source: DataSource,
    /// `None`: no business system (a consumer's receipt: no callback).
    pub system_code: Option<&'a str>,
    pub allowed_sellers: &'a [String],
    pub tenant_id: &'a str,
}

/// Check across lines and against the data, then land every bill without problems, inside the
/// caller's transaction. Returns each bill's problems (empty: landed), in the order given.
pub async fn land(
    db: &mut PgConnection,
    who: &Lander<'_>,
    bills: &mut [CheckedBill],
) -> Result<(), sqlx::Error> {
    let template = template();
    let fields: Vec<String> = template.columns.iter().map(|c| c.field.clone()).collect();
    let at = |name: &str| fields.iter().position(|f| f == name).expect("an applications template field");

    // Sellers: one of the tenant's enterprises and one of the system's (1130 otherwise).
    let tenant: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT tax_no FROM enterprise")
        .fetch_all(&mut *db)
        .await?
        .into_iter()
        .collect();
    for bill in bills.iter_mut() {
        if let Some(seller) = bill.seller_tax_no.clone()
            && (!tenant.contains(&seller) || !who.allowed_sellers.contains(&seller))
        {
            bill.problems.push(BillProblem {
                line: None,
                field: "seller_tax_no".into(),
                code: NOT_IN_TENANT_CODE.into(),
                message: not_in_tenant(&seller, who.tenant_id),
            });
        }
    }

    // A number taken already (an imported bill, or another system's) is refused.
    let wanted: Vec<String> =
        bills.iter().filter(|b| b.problems.is_empty()).map(|b| b.bill_no.clone()).collect();
    let taken: HashSet<String> =
        sqlx::query_scalar("SELECT bill_no FROM application WHERE bill_no = ANY($1)")
            .bind(&wanted)
            .fetch_all(&mut *db)
            .await?
            .into_iter()
            .collect();
    for bill in bills.iter_mut().filter(|b| taken.contains(&b.bill_no)) {
        bill.problems.push(BillProblem {
            line: None,
            field: "bill_no".into(),
            code: "BILL_EXISTS".into(),
            message: format!("单据编号{}已存在", bill.bill_no),
        });
    }

    check_across_lines(db, &fields, bills).await?;

    let bill_at: Vec<usize> = BILL_FIELDS.iter().map(|f| at(f)).collect();
    let line_at: Vec<usize> = LINE_FIELDS.iter().map(|f| at(f)).collect();
    let (mut bills_csv, mut lines_csv) = (Vec::new(), Vec::new());
    for bill in bills.iter().filter(|b| b.problems.is_empty()) {
        for (n, line) in bill.lines.iter().enumerate() {
            let value = |i: usize, field: &str| line[i].as_deref().or_else(|| default_of(field));
            if n == 0 {
                let head = bill_at.iter().zip(BILL_FIELDS).map(|(&i, f)| match f {
                    "business_system_code" => who.system_code,
                    _ => value(i, f),
                });
                write_csv_record(&mut bills_csv, head.chain([Some(who.source.as_str()), None]));
            }
            let line_no = (n + 1).to_string();
            let body = line_at.iter().zip(LINE_FIELDS).map(|(&i, f)| value(i, f));
            write_csv_record(
                &mut lines_csv,
                [Some(bill.bill_no.as_str()), Some(line_no.as_str())].into_iter().chain(body).chain([None]),
            );
        }
    }
    copy_in(db, COPY_BILLS, bills_csv).await?;
    copy_in(db, COPY_LINES, lines_csv).await
}

/// The importer's checks across rows (discount placement, one seller/buyer/kind per bill) over a
/// staging table of the importer's shape holding the bills still without problems.
async fn check_across_lines(
    db: &mut PgConnection,
    fields: &[String],
    bills: &mut [CheckedBill],
) -> Result<(), sqlx::Error> {
    let staged = ImportKind::Applications.staged_fields(fields);
    let positions: Vec<usize> =
        staged.iter().map(|f| fields.iter().position(|g| g == f).expect("a template field")).collect();
    let mut csv = Vec::new();
    // row_no → (bill index, line from 1)
    let mut rows: HashMap<i32, (usize, u32)> = HashMap::new();
    for (b, bill) in bills.iter().enumerate().filter(|(_, b)| b.problems.is_empty()) {
        for (n, line) in bill.lines.iter().enumerate() {
            let row_no = rows.len() as i32 + 1;
            rows.insert(row_no, (b, n as u32 + 1));
            let row_text = row_no.to_string();
            write_csv_record(
                &mut csv,
                std::iter::once(Some(row_text.as_str())).chain(positions.iter().map(|&i| line[i].as_deref())),
            );
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let columns: String = staged.iter().map(|f| format!("{f} text")).collect::<Vec<_>>().join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE IF NOT EXISTS import_stage (row_no integer PRIMARY KEY, {columns},
             verified boolean NOT NULL DEFAULT false, rejected boolean NOT NULL DEFAULT false) ON COMMIT DROP"
    )))
    .execute(&mut *db)
    .await?;
    copy_in(db, &format!("COPY import_stage (row_no, {}) FROM STDIN (FORMAT csv)", staged.join(", ")), csv)
        .await?;
    for check in std::iter::once(&BILL_MIXED).chain(APPLICATION_CHECKS) {
        let found: Vec<(i32, String, String, String)> = sqlx::query_as(*check).fetch_all(&mut *db).await?;
        for (row, field, code, message) in found {
            if let Some(&(b, line)) = rows.get(&row) {
                bills[b].problems.push(BillProblem { line: Some(line), field, code, message });
            }
        }
    }
    sqlx::query("DROP TABLE import_stage").execute(&mut *db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(amount: &str, tax: &str, total: &str) -> Vec<(&'static str, Cell)> {
        vec![
            ("goods_name", Cell::Text("服务费".into())),
            ("revenue_code", Cell::Text("3040201000000000000".into())),
            ("amount", Cell::Number(amount.into())),
            ("tax_rate", Cell::Text("0.06".into())),
            ("tax", Cell::Number(tax.into())),
            ("total", Cell::Number(total.into())),
        ]
    }

    fn bill(lines: Vec<Vec<(&'static str, Cell)>>) -> ErpBill {
        ErpBill {
            bill_no: "B1".into(),
            header: vec![
                ("bill_no", Cell::Text("B1".into())),
                ("bill_date", Cell::Text("2026-11-30".into())),
                ("seller_tax_no", Cell::Text("91310000MA1FL2AB09".into())),
                ("buyer_name", Cell::Text("购方".into())),
                ("invoice_kind", Cell::Text("10xdp".into())),
            ],
            lines,
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_clean_bill_has_no_problems_and_its_seller() {
        let checked = check(&bill(vec![line("100", "6", "106")]));
        assert_eq!(checked.problems, vec![]);
        assert_eq!(checked.seller_tax_no.as_deref(), Some("91310000MA1FL2AB09"));
    }

    #[test]
    fn a_bad_tax_line_gets_the_importers_code_on_its_line() {
        let checked = check(&bill(vec![line("100", "6", "106"), line("100", "9", "109")]));
        assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
        let p = &checked.problems[0];
        assert_eq!((p.line, p.field.as_str()), (Some(2), "tax"));
        assert_eq!(p.code, "TAX_LINE_MISMATCH");
    }

    #[test]
    fn a_missing_header_field_is_one_problem_of_the_bill() {
        let mut b = bill(vec![line("100", "6", "106"), line("50", "3", "53")]);
        b.header.retain(|(f, _)| *f != "buyer_name");
        let checked = check(&b);
        assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
        assert_eq!(checked.problems[0].line, None);
        assert_eq!(checked.problems[0].code, "REQUIRED_FIELD_EMPTY");
        assert_eq!(checked.problems[0].message, "必填字段为空，请补充！（购方名称）");
    }
}
