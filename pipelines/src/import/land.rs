//! Applications land while the file is still being read. Each chunk's new bills and their lines
//! go by COPY straight into `application` and `application_line`, inside the import's
//! transaction, so the database writes them while the reading thread converts the next rows;
//! an `INSERT … SELECT` from the staging table after the whole file was read took longer than
//! reading it. The staging table keeps every row for the checks across rows and the report.
//!
//! What COPY into the real tables cannot meet is settled before a row is sent: a bill number
//! that exists already (in another batch), a seller outside the tenant, a refused row — such a
//! bill sends nothing more. Bills the checks across rows reject afterwards leave again with
//! [`Lander::drop_rejected`] (`--accept-valid`), or with the whole transaction (the default).

use fapiao_schemas::messages::{NOT_IN_TENANT_CODE, not_in_tenant};
use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;

use super::convert::{StagedRow, write_csv_record};
use super::{Problem, copy_in};

/// `application` columns taken from a bill's first line, in COPY order; `source` and
/// `batch_id` follow.
pub(super) const BILL_FIELDS: [&str; 11] = [
    "bill_no",
    "bill_date",
    "seller_tax_no",
    "buyer_name",
    "buyer_tax_no",
    "buyer_address_phone",
    "buyer_bank_account",
    "invoice_kind",
    "remark",
    "auto_issue",
    "business_system_code",
];
pub(super) const COPY_BILLS: &str = "COPY application (bill_no, bill_date, seller_tax_no, buyer_name, buyer_tax_no, buyer_address_phone,
    buyer_bank_account, invoice_kind, remark, auto_issue, business_system_code, source, batch_id) FROM STDIN (FORMAT csv)";

/// `application_line` columns after `bill_no, line_no`, in COPY order; `source_row` follows.
pub(super) const LINE_FIELDS: [&str; 15] = [
    "goods_name",
    "revenue_code",
    "specification",
    "unit",
    "quantity",
    "price",
    "amount",
    "tax_rate",
    "tax",
    "total",
    "tax_included",
    "line_property",
    "privilege_flag",
    "privilege_content",
    "zero_rate_mark",
];
pub(super) const COPY_LINES: &str =
    "COPY application_line (bill_no, line_no, goods_name, revenue_code, specification, unit, quantity, price,
    amount, tax_rate, tax, total, tax_included, line_property, privilege_flag, privilege_content, zero_rate_mark,
    source_row) FROM STDIN (FORMAT csv)";

/// What an empty optional cell lands as.
pub(super) fn default_of(field: &str) -> Option<&'static str> {
    match field {
        "auto_issue" | "tax_included" | "privilege_flag" => Some("false"),
        "line_property" => Some("normal"),
        _ => None,
    }
}

#[derive(Default)]
struct Bill {
    /// Lines landed so far (the next line's number is one more; none yet: the bill itself has
    /// not landed either).
    lines: u32,
    /// The bill number belongs to an earlier batch: none of its lines land.
    exists: bool,
    /// One of its rows was refused: no more of its lines land.
    refused: bool,
    /// What every line must share (`BILL_MIXED`), as first seen.
    identity: Identity,
    /// Two of its lines disagree on seller, buyer or invoice kind.
    mixed: bool,
}

/// The fields one bill's lines must agree on — seller, buyer name, buyer tax number, invoice
/// kind — each kept as a hash of the first value a line gave (0: none yet). A line that leaves a
/// field empty agrees with any value, as the SQL form's min/max ignore NULLs; an empty buyer tax
/// number counts as a value (the SQL form's `coalesce(…, '')`). Checking while landing replaced a
/// GROUP BY over the whole stage after the read: 1.3 s of a million lines, on one core, with the
/// other idle. 32 bytes a bill, where the four strings would be a hundred or more.
#[derive(Default)]
struct Identity([u64; 4]);

impl Identity {
    /// Take one line's values; whether they disagree with an earlier line's.
    fn disagrees(&mut self, values: [Option<&str>; 4]) -> bool {
        let mut disagree = false;
        for (seen, value) in self.0.iter_mut().zip(values) {
            let Some(value) = value else { continue };
            let hash = hash_of(value);
            if *seen == 0 {
                *seen = hash;
            } else {
                disagree |= *seen != hash;
            }
        }
        disagree
    }
}

/// A value's hash, never 0 (0 marks "none yet").
fn hash_of(value: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(value).max(1)
}

pub(super) struct Lander {
    batch_id: i64,
    /// The batch id as COPY text.
    batch_text: String,
    accept_valid: bool,
    /// Taxpayer numbers of the tenant's enterprises.
    tenant: HashSet<String>,
    /// The tenant's id, for the 1130 message.
    tenant_id: String,
    /// The importing user's enterprises, when limited to some.
    scope: Option<HashSet<String>>,
    bills: HashMap<String, Bill>,
    /// Positions of the template fields in a staged row.
    bill_no: usize,
    seller: usize,
    /// Seller, buyer name, buyer tax number, invoice kind (see [`Identity`]).
    identity_fields: [usize; 4],
    bill_fields: Vec<usize>,
    line_fields: Vec<usize>,
    /// Sheet headers of 单据编号 and 销方税号, for problems.
    bill_header: String,
    seller_header: String,
}

impl Lander {
    /// `fields` are the template's fields in staged order, `header` gives a field's sheet header.
    pub async fn new(
        db: &mut PgConnection,
        batch_id: i64,
        fields: &[String],
        header: impl Fn(&str) -> String,
        accept_valid: bool,
        tenant_id: &str,
        scope: Option<&[String]>,
    ) -> Result<Lander, sqlx::Error> {
        let at = |name: &str| {
            fields
                .iter()
                .position(|f| f == name)
                .unwrap_or_else(|| panic!("the applications template has no field {name}"))
        };
        let tenant = sqlx::query_scalar::<_, String>("SELECT tax_no FROM enterprise")
            .fetch_all(&mut *db)
            .await?
            .into_iter()
            .collect();
        Ok(Lander {
            batch_id,
            batch_text: batch_id.to_string(),
            accept_valid,
            tenant,
            tenant_id: tenant_id.to_string(),
            scope: scope.map(|s| s.iter().cloned().collect()),
            bills: HashMap::new(),
            bill_no: at("bill_no"),
            seller: at("seller_tax_no"),
            identity_fields: ["seller_tax_no", "buyer_name", "buyer_tax_no", "invoice_kind"].map(at),
            bill_fields: BILL_FIELDS.iter().map(|f| at(f)).collect(),
            line_fields: LINE_FIELDS.iter().map(|f| at(f)).collect(),
            bill_header: header("bill_no"),
            seller_header: header("seller_tax_no"),
        })
    }

    /// Distinct bill numbers seen.
    pub fn bills(&self) -> u64 {
        self.bills.len() as u64
    }

    /// The bills whose lines disagree on seller, buyer or invoice kind (`BILL_MIXED`).
    pub fn mixed(&self) -> Vec<String> {
        self.bills.iter().filter(|(_, b)| b.mixed).map(|(n, _)| n.clone()).collect()
    }

    /// Land one chunk of staged rows; problems found here (unknown seller, bill number taken)
    /// are added to `problems`. With all-or-nothing and a problem already known nothing more
    /// lands — the transaction will be rolled back — but every row is still checked.
    pub async fn land(
        &mut self,
        db: &mut PgConnection,
        rows: &[StagedRow],
        problems: &mut Vec<Problem>,
    ) -> Result<(), sqlx::Error> {
        let mut new_bills = Vec::new();
        for bill_no in rows.iter().filter_map(|r| r.values[self.bill_no].as_ref()) {
            if !self.bills.contains_key(bill_no) {
                self.bills.insert(bill_no.clone(), Bill::default());
                new_bills.push(bill_no.clone());
            }
        }
        if !new_bills.is_empty() {
            let taken: Vec<String> =
                sqlx::query_scalar("SELECT bill_no FROM application WHERE bill_no = ANY($1)")
                    .bind(&new_bills)
                    .fetch_all(&mut *db)
                    .await?;
            for bill_no in taken {
                if let Some(bill) = self.bills.get_mut(&bill_no) {
                    bill.exists = true;
                }
            }
        }

        let landing = self.accept_valid || problems.is_empty();
        let (mut bills_csv, mut lines_csv) = (Vec::new(), Vec::new());
        for row in rows {
            let Some(bill_no) = row.values[self.bill_no].as_deref() else { continue };
            let mut refused = row.refused;
            if let Some(seller) = row.values[self.seller].as_deref()
                && !self.tenant.contains(seller)
            {
                problems.push(Problem {
                    row: row.row_no,
                    column: self.seller_header.clone(),
                    code: NOT_IN_TENANT_CODE.into(),
                    message: not_in_tenant(seller, &self.tenant_id),
                });
                refused = true;
            } else if let (Some(seller), Some(scope)) = (row.values[self.seller].as_deref(), &self.scope)
                && !scope.contains(seller)
            {
                problems.push(Problem {
                    row: row.row_no,
                    column: self.seller_header.clone(),
                    code: "SELLER_NOT_IN_SCOPE".into(),
                    message: format!("销方税号{seller}不在您负责的企业范围内"),
                });
                refused = true;
            }
            let bill = self.bills.get_mut(bill_no).expect("registered above");
            let value = |i: usize| row.values[i].as_deref().filter(|v| !v.is_empty());
            let [seller, buyer, buyer_tax_no, kind] = self.identity_fields;
            bill.mixed |= bill.identity.disagrees([
                value(seller),
                value(buyer),
                Some(value(buyer_tax_no).unwrap_or_default()),
                value(kind),
            ]);
            if bill.exists {
                problems.push(Problem {
                    row: row.row_no,
                    column: self.bill_header.clone(),
                    code: "BILL_EXISTS".into(),
                    message: format!("单据编号{bill_no}已存在"),
                });
                continue;
            }
            bill.refused |= refused;
            if bill.refused || !landing {
                continue;
            }
            let value = |i: usize, field: &str| row.values[i].as_deref().or_else(|| default_of(field));
            if bill.lines == 0 {
                let fields = self.bill_fields.iter().zip(BILL_FIELDS).map(|(&i, f)| value(i, f));
                write_csv_record(
                    &mut bills_csv,
                    fields.chain([Some("批量导入"), Some(self.batch_text.as_str())]),
                );
            }
            bill.lines += 1;
            let (line_no, source_row) = (bill.lines.to_string(), row.row_no.to_string());
            let fields = self.line_fields.iter().zip(LINE_FIELDS).map(|(&i, f)| value(i, f));
            write_csv_record(
                &mut lines_csv,
                [Some(bill_no), Some(line_no.as_str())]
                    .into_iter()
                    .chain(fields)
                    .chain([Some(source_row.as_str())]),
            );
        }
        // Bills first: every line's foreign key finds its bill.
        copy_in(db, COPY_BILLS, bills_csv).await?;
        copy_in(db, COPY_LINES, lines_csv).await
    }

    /// Remove the bills of this batch that the checks across rows rejected (`--accept-valid`):
    /// the staging table's `rejected` rows name them.
    pub async fn drop_rejected(&self, db: &mut PgConnection) -> Result<(), sqlx::Error> {
        // The rejected bills first, as a list: the staging table is a temp table without
        // statistics, and `IN (SELECT … FROM import_stage)` inside the DELETEs was once planned as
        // a nested loop that ran for minutes over a large import. Nothing rejected: nothing to do.
        let rejected: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT bill_no FROM import_stage WHERE rejected AND bill_no IS NOT NULL",
        )
        .fetch_all(&mut *db)
        .await?;
        if rejected.is_empty() {
            return Ok(());
        }
        for statement in [
            "DELETE FROM application_line l USING application a
              WHERE a.batch_id = $1 AND a.bill_no = ANY($2) AND l.bill_no = a.bill_no",
            "DELETE FROM application WHERE batch_id = $1 AND bill_no = ANY($2)",
        ] {
            sqlx::query(statement).bind(self.batch_id).bind(&rejected).execute(&mut *db).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Identity;

    #[test]
    fn a_bill_is_mixed_when_two_lines_give_different_values_and_empty_agrees_with_any() {
        let mut bill = Identity::default();
        assert!(!bill.disagrees([Some("S1"), Some("买方"), Some(""), Some("digital_ordinary")]));
        // Empty fields (refused or left blank) agree with whatever the other lines say.
        assert!(!bill.disagrees([None, None, Some(""), Some("digital_ordinary")]));
        assert!(!bill.disagrees([Some("S1"), Some("买方"), Some(""), None]));
        // A buyer tax number where the first line had none is a different buyer.
        assert!(bill.disagrees([
            Some("S1"),
            Some("买方"),
            Some("91110000600037341L"),
            Some("digital_ordinary")
        ]));

        // The first value a field is given is the one the later lines must repeat.
        let mut other = Identity::default();
        assert!(!other.disagrees([None, Some("买方"), Some(""), None]));
        assert!(!other.disagrees([Some("S1"), Some("买方"), Some(""), Some("digital_special")]));
        assert!(other.disagrees([Some("S1"), Some("买方"), Some(""), Some("digital_ordinary")]));
        assert!(other.disagrees([Some("S2"), Some("买方"), Some(""), Some("digital_special")]));
    }
}
