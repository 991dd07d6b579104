//! The bodies inside the envelope's `data`, in the documented field names (reference/
//! domain-facts.md §1 "What real ERP clients send"): BILL.PUSH bills and their `billDetail`
//! lines, BILL.WITHDRAW and BILL.INVOICE.QUERY requests.
//!
//! Senders differ in types: amounts come as JSON numbers or strings, flags as "0"/"1" or 0/1.
//! Every scalar is read from the JSON text itself (`RawValue`), so `1398.10` is the decimal
//! 1398.10 and never an f64; each becomes the `Cell` the Excel reader would hand over, and the
//! importer's columns convert it.

use std::collections::BTreeMap;

use fapiao_pipelines::import::erp::{BillProblem, ErpBill};
use fapiao_schemas::template::Cell;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Bill header: wire name → template field.
const HEADER: [(&str, &str); 11] = [
    ("billNo", "bill_no"),
    ("billDate", "bill_date"),
    ("sellerTaxpayerId", "seller_tax_no"),
    ("buyerName", "buyer_name"),
    ("buyerTaxpayerId", "buyer_tax_no"),
    ("buyerAddressAndTel", "buyer_address_phone"),
    ("buyerBankAndAccount", "buyer_bank_account"),
    ("invoiceType", "invoice_kind"),
    ("remark", "remark"),
    ("autoInvoice", "auto_issue"),
    ("includeTaxFlag", "tax_included"),
];

/// `billDetail` line: wire name → template field (`totalAmount` is ours: a line's 价税合计 when
/// the sender has it; otherwise it is derived from amount and taxAmount, see `line_total`).
const LINE: [(&str, &str); 14] = [
    ("goodsName", "goods_name"),
    ("revenueCode", "revenue_code"),
    ("specification", "specification"),
    ("units", "unit"),
    ("quantity", "quantity"),
    ("price", "price"),
    ("amount", "amount"),
    ("taxRate", "tax_rate"),
    ("taxAmount", "tax"),
    ("totalAmount", "total"),
    ("lineProperty", "line_property"),
    // 税收优惠政策标识 (0/1), 优惠政策内容, 零税率标识 (0–3): the importer's columns and rule.
    ("privilegeFlag", "privilege_flag"),
    ("privilegeContent", "privilege_content"),
    ("zeroRateFlag", "zero_rate_mark"),
];

/// A template field's wire name, for answers (`billDetail.` for line fields).
pub fn wire_name(field: &str) -> String {
    if let Some((w, _)) = HEADER.iter().find(|(_, f)| *f == field) {
        return (*w).to_string();
    }
    if let Some((w, _)) = LINE.iter().find(|(_, f)| *f == field) {
        return format!("billDetail.{w}");
    }
    if field == "lines" {
        return "billDetail".into();
    }
    field.to_string()
}

/// Why `data` could not be read as bills at all (the whole request is refused, 9400).
#[derive(Debug)]
pub struct Unreadable(pub String);

type RawObject = BTreeMap<String, Box<RawValue>>;

/// One scalar as the Excel reader would give it; `Err` for an object or array.
fn cell(raw: &RawValue) -> Result<Cell, ()> {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|_| ())?;
            Ok(if s.trim().is_empty() { Cell::Empty } else { Cell::Text(s) })
        }
        Some(b'n') => Ok(Cell::Empty),
        Some(b't') => Ok(Cell::Bool(true)),
        Some(b'f') => Ok(Cell::Bool(false)),
        Some(b'-' | b'0'..=b'9') => Ok(Cell::Number(text.to_string())),
        _ => Err(()),
    }
}

fn shape_problem(line: Option<u32>, wire: &str) -> BillProblem {
    BillProblem {
        line,
        field: wire.to_string(),
        code: "FIELD_SHAPE".into(),
        message: format!("字段{wire}的类型不正确（应为文本、数字或布尔值）"),
    }
}

/// The bills of a BILL.PUSH `data`: a JSON array of bills (a single bill object is taken as one).
pub fn bills(json: &str) -> Result<Vec<(ErpBill, String)>, Unreadable> {
    let trimmed = json.trim_start();
    let objects: Vec<RawObject> = if trimmed.starts_with('{') {
        vec![serde_json::from_str(json).map_err(|e| Unreadable(format!("data不是单据JSON：{e}")))?]
    } else {
        serde_json::from_str(json).map_err(|e| Unreadable(format!("data不是单据JSON数组：{e}")))?
    };
    Ok(objects.iter().map(bill).collect())
}

/// One bill, and the SHA-256 of what it says (the fields read, in a fixed order): the same bill
/// sent again with other spacing or key order is the same body.
fn bill(object: &RawObject) -> (ErpBill, String) {
    let mut problems = Vec::new();
    let mut header = Vec::new();
    for (wire, field) in HEADER {
        if let Some(raw) = object.get(wire) {
            match cell(raw) {
                Ok(c) => header.push((field, c)),
                Err(()) => problems.push(shape_problem(None, wire)),
            }
        }
    }
    let bill_no = header
        .iter()
        .find(|(f, _)| *f == "bill_no")
        .map(|(_, c)| c.display().trim().to_string())
        .unwrap_or_default();
    // includeTaxFlag as 1, "1" or true; anything else (or nothing) is 0.
    let tax_included = header.iter().find(|(f, _)| *f == "tax_included").is_some_and(|(_, c)| match c {
        Cell::Bool(b) => *b,
        Cell::Number(n) | Cell::Text(n) => n.trim() == "1",
        _ => false,
    });
    let mut lines = Vec::new();
    match object.get("billDetail").map(|raw| serde_json::from_str::<Vec<RawObject>>(raw.get())) {
        None => {}
        Some(Err(_)) => problems.push(shape_problem(None, "billDetail")),
        Some(Ok(details)) => {
            for (i, detail) in details.iter().enumerate() {
                let n = Some(i as u32 + 1);
                let mut cells = Vec::new();
                for (wire, field) in LINE {
                    if let Some(raw) = detail.get(wire) {
                        match cell(raw) {
                            Ok(c) => cells.push((field, c)),
                            Err(()) => problems.push(shape_problem(n, &format!("billDetail.{wire}"))),
                        }
                    }
                }
                line_total(&mut cells, tax_included);
                lines.push(cells);
            }
        }
    }
    if let Some(problem) = bill_total(object, &lines) {
        problems.push(problem);
    }
    let hash = {
        let mut h = Sha256::new();
        h.update(format!("{header:?}|{lines:?}"));
        hex::encode(h.finalize())
    };
    (ErpBill { bill_no, header, lines, problems }, hash)
}

/// Seed 001 常见报错3 (价税合计金额不对): a bill's `totalAmount`, when sent, is the sum of its
/// lines' totals. Lines whose amounts are not numbers are left to the rules.
fn bill_total(object: &RawObject, lines: &[Vec<(&'static str, Cell)>]) -> Option<BillProblem> {
    let declared = match cell(object.get("totalAmount")?).ok()? {
        Cell::Number(t) | Cell::Text(t) => t.trim().parse::<Decimal>().ok()?,
        _ => return None,
    };
    let sum = lines.iter().map(|l| decimal_of(l, "total")).sum::<Option<Decimal>>()?;
    (sum != declared).then(|| BillProblem {
        line: None,
        field: "totalAmount".into(),
        code: "BILL_TOTAL_MISMATCH".into(),
        message: format!("价税合计金额不对：单据{declared}，明细合计{sum}"),
    })
}

fn decimal_of(cells: &[(&'static str, Cell)], field: &str) -> Option<Decimal> {
    match cells.iter().find(|(f, _)| *f == field).map(|(_, c)| c) {
        Some(Cell::Number(t) | Cell::Text(t)) => t.trim().parse().ok(),
        _ => None,
    }
}

/// A line without `totalAmount` gets its 价税合计 from what the ERP sent: with includeTaxFlag = 1
/// the amount is gross (seed 001 / domain facts: "amount … gross if includeTaxFlag=1"), so the
/// net amount is amount − tax; otherwise the total is amount + tax. The importer's rules then
/// check the three together as they do for a sheet's row. Values that are not numbers are left
/// for the rules to refuse.
fn line_total(cells: &mut Vec<(&'static str, Cell)>, tax_included: bool) {
    if cells.iter().any(|(f, _)| *f == "total") {
        return;
    }
    let (Some(amount), Some(tax)) = (decimal_of(cells, "amount"), decimal_of(cells, "tax")) else { return };
    if tax_included {
        for (f, c) in cells.iter_mut() {
            if *f == "amount" {
                *c = Cell::Text((amount - tax).to_string());
            }
        }
        cells.push(("total", Cell::Text(amount.to_string())));
    } else {
        cells.push(("total", Cell::Text((amount + tax).to_string())));
    }
}

/// BILL.WITHDRAW and BILL.INVOICE.QUERY: a bill number (`billNo`, or `serialNo` as the query's
/// documentation names it) and the seller.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillRef {
    #[serde(alias = "serialNo")]
    pub bill_no: String,
    pub seller_taxpayer_id: String,
}

/// The bill references of `data`: one object or an array of them.
pub fn bill_refs(json: &str) -> Result<Vec<BillRef>, Unreadable> {
    let refused = |e: serde_json::Error| Unreadable(format!("data须含billNo和sellerTaxpayerId：{e}"));
    if json.trim_start().starts_with('[') {
        serde_json::from_str(json).map_err(refused)
    } else {
        serde_json::from_str(json).map(|r| vec![r]).map_err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_the_text_never_through_f64() {
        let (bill, _) =
            &bills(r#"[{"billNo":"B1","billDetail":[{"amount":1234567890123.10,"taxAmount":"0.1"}]}]"#)
                .unwrap()[0];
        let amount = bill.lines[0].iter().find(|(f, _)| *f == "amount").unwrap();
        assert_eq!(amount.1, Cell::Number("1234567890123.10".into()));
        let total = bill.lines[0].iter().find(|(f, _)| *f == "total").unwrap();
        assert_eq!(total.1, Cell::Text("1234567890123.20".into()));
    }

    #[test]
    fn gross_amounts_are_split_when_tax_is_included() {
        let (bill, _) =
            &bills(r#"{"billNo":"B1","includeTaxFlag":"1","billDetail":[{"amount":"106","taxAmount":"6"}]}"#)
                .unwrap()[0];
        let get = |f: &str| bill.lines[0].iter().find(|(g, _)| *g == f).unwrap().1.clone();
        assert_eq!((get("amount"), get("total")), (Cell::Text("100".into()), Cell::Text("106".into())));
    }

    #[test]
    fn spacing_and_key_order_do_not_change_the_body_a_value_does() {
        let a = &bills(r#"[{"billNo":"B1","buyerName":"甲","billDetail":[{"amount":"1"}]}]"#).unwrap()[0].1;
        let b = &bills(r#"[ { "buyerName" : "甲", "billNo":"B1", "billDetail":[{"amount":"1"}]} ]"#).unwrap()
            [0]
        .1;
        let c = &bills(r#"[{"billNo":"B1","buyerName":"乙","billDetail":[{"amount":"1"}]}]"#).unwrap()[0].1;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_bill_total_that_does_not_add_up_is_refused() {
        let json = r#"[{"billNo":"B1","totalAmount":"107.00","billDetail":[{"amount":"100","taxAmount":"6"}]},
                       {"billNo":"B2","totalAmount":106,"billDetail":[{"amount":"100","taxAmount":"6"}]}]"#;
        let read = bills(json).unwrap();
        assert_eq!(read[0].0.problems[0].code, "BILL_TOTAL_MISMATCH");
        assert_eq!(read[0].0.problems[0].message, "价税合计金额不对：单据107.00，明细合计106");
        assert!(read[1].0.problems.is_empty());
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_named() {
        let (bill, _) =
            &bills(r#"[{"billNo":"B1","buyerName":{"x":1},"billDetail":[{"amount":[1]}]}]"#).unwrap()[0];
        let named: Vec<_> = bill.problems.iter().map(|p| (p.line, p.field.as_str())).collect();
        assert_eq!(named, vec![(None, "buyerName"), (Some(1), "billDetail.amount")]);
    }
}
