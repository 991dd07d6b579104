//! What each kind of import checks and where it lands. Row rules run in Rust on typed values
//! (the pure rules of `schemas`); rules across rows and against existing data are set-based
//! SQL over the batch's staging table `import_stage`; the merge is `INSERT … SELECT`.

use std::collections::BTreeMap;

use fapiao_schemas::policy::{self, PolicyMarks, ZeroRateMark};
use fapiao_schemas::template::Value;
use fapiao_schemas::{Coded, ImportKind, InvoiceKind, Money, Quantity, TaxRate, UnitPrice, tax};
use rust_decimal::Decimal;

/// A row's converted values by field.
pub type Values<'f> = BTreeMap<&'f str, Value>;

/// A problem a rule found: (field, code, message).
pub type RowProblem = (&'static str, &'static str, String);

/// What each kind checks and where it lands; the kind itself is a domain type of `schemas`
/// (it names the template), these are the import's own rules about it.
pub trait KindRules {
    /// Applications are accepted or rejected a bill at a time; the others a row at a time.
    fn group_field(self) -> Option<&'static str>;
    /// The fields the staging table keeps: what the checks across rows and the merge read.
    fn staged_fields(self, all: &[String]) -> Vec<String>;
    /// Rules within one row, on the values that converted.
    fn row_rules(self, v: &Values<'_>) -> Vec<RowProblem>;
    /// Set-based checks: each query returns (row_no, column, code, message).
    fn checks(self) -> &'static [&'static str];
    /// Statements that land the rows not rejected: `$1` is the batch id; for the pool, `$2`
    /// says whether imported invoices are signed (`einvoice_auto_sign`).
    fn merge(self) -> &'static [&'static str];
}

impl KindRules for ImportKind {
    fn group_field(self) -> Option<&'static str> {
        (self == ImportKind::Applications).then_some("bill_no")
    }

    /// Applications land from the rows in memory (`land`), so their stage holds only what the
    /// checks compare — a third of the columns to COPY.
    fn staged_fields(self, all: &[String]) -> Vec<String> {
        match self {
            ImportKind::Applications => [
                "bill_no",
                "seller_tax_no",
                "buyer_name",
                "buyer_tax_no",
                "invoice_kind",
                "line_property",
                "amount",
                "tax_rate",
            ]
            .map(String::from)
            .to_vec(),
            ImportKind::Pool | ImportKind::RedFlush => all.to_vec(),
        }
    }

    fn row_rules(self, v: &Values<'_>) -> Vec<RowProblem> {
        match self {
            ImportKind::Applications => application_line(v),
            ImportKind::Pool => pool_invoice(v),
            ImportKind::RedFlush => red_flush_row(v),
        }
    }

    fn checks(self) -> &'static [&'static str] {
        match self {
            ImportKind::Applications => APPLICATION_CHECKS,
            ImportKind::Pool => POOL_CHECKS,
            ImportKind::RedFlush => RED_FLUSH_CHECKS,
        }
    }

    fn merge(self) -> &'static [&'static str] {
        match self {
            // Applications land while the file is read (`land`).
            ImportKind::Applications => &[],
            ImportKind::Pool => POOL_MERGE,
            ImportKind::RedFlush => RED_FLUSH_MERGE,
        }
    }
}

fn money(v: &Values<'_>, f: &str) -> Option<Money> {
    match v.get(f) {
        Some(Value::Decimal(d)) => Money::exact(*d).ok(),
        _ => None,
    }
}

fn decimal(v: &Values<'_>, f: &str) -> Option<Decimal> {
    match v.get(f) {
        Some(Value::Decimal(d)) => Some(*d),
        _ => None,
    }
}

fn text<'a>(v: &'a Values<'_>, f: &str) -> Option<&'a str> {
    match v.get(f) {
        Some(Value::Text(t)) => Some(t),
        _ => None,
    }
}

fn total_rule(v: &Values<'_>, out: &mut Vec<RowProblem>) {
    if let (Some(a), Some(t), Some(total)) = (money(v, "amount"), money(v, "tax"), money(v, "total"))
        && let Err(e) = tax::check_total(a, t, total)
    {
        out.push(("total", e.code(), e.message_zh()));
    }
}

fn application_line(v: &Values<'_>) -> Vec<RowProblem> {
    let mut out = Vec::new();
    if let Some(kind) = text(v, "invoice_kind").and_then(|k| k.parse::<InvoiceKind>().ok())
        && !kind.is_issuable()
    {
        out.push((
            "invoice_kind",
            "INVOICE_KIND_NOT_ISSUABLE",
            format!("{}为收票票种，不能开具", kind.label_zh()),
        ));
    }
    let rate = decimal(v, "tax_rate").and_then(|r| TaxRate::try_from(r).ok());
    if let (Some(a), Some(r), Some(t)) = (money(v, "amount"), rate, money(v, "tax"))
        && let Err(e) = tax::check_line_tax(a, r, t)
    {
        out.push(("tax", e.code(), e.message_zh()));
    }
    total_rule(v, &mut out);
    // 含税标志 = 是: the unit price includes tax, so quantity × price is the line's total.
    let tax_included = matches!(v.get("tax_included"), Some(Value::Bool(true)));
    let target = if tax_included { "total" } else { "amount" };
    if let (Some(q), Some(p), Some(a)) = (decimal(v, "quantity"), decimal(v, "price"), money(v, target))
        && let (Ok(q), Ok(p)) = (Quantity::exact(q), UnitPrice::exact(p))
        && let Err(e) = tax::check_quantity_price(q, p, a)
    {
        out.push(("amount", e.code(), e.message_zh()));
    }
    if let Some(rate) = rate {
        let marks = PolicyMarks {
            privilege: matches!(v.get("privilege_flag"), Some(Value::Bool(true))),
            content: text(v, "privilege_content"),
            zero_rate: text(v, "zero_rate_mark").and_then(ZeroRateMark::from_db),
        };
        out.extend(policy::check(rate, marks).into_iter().map(|(f, code, msg)| (f, code, msg.to_string())));
    }
    if text(v, "line_property") == Some("discount") && money(v, "amount").is_some_and(|a| !a.is_negative()) {
        out.push(("amount", "DISCOUNT_NOT_NEGATIVE", "折扣行金额必须小于0".into()));
    }
    out
}

fn invoice_number(v: &Values<'_>, out: &mut Vec<RowProblem>) {
    let Some(num) = text(v, "invoice_num") else { return };
    let code = text(v, "invoice_code");
    let kind = text(v, "invoice_kind").and_then(|k| k.parse::<InvoiceKind>().ok());
    let result = match kind {
        Some(k) => k.validate_number(code, num),
        // Red-flush lists carry no kind: 20 digits without a code is 数电, else 税控.
        None if code.is_none() => InvoiceKind::DigitalOrdinary.validate_number(None, num),
        None => InvoiceKind::TaxctlOrdinary.validate_number(code, num),
    };
    if let Err(e) = result {
        out.push(("invoice_num", e.code(), e.message_zh()));
    }
}

fn pool_invoice(v: &Values<'_>) -> Vec<RowProblem> {
    let mut out = Vec::new();
    invoice_number(v, &mut out);
    total_rule(v, &mut out);
    out
}

fn red_flush_row(v: &Values<'_>) -> Vec<RowProblem> {
    let mut out = Vec::new();
    invoice_number(v, &mut out);
    match money(v, "red_amount") {
        Some(a) if !a.is_positive() => {
            out.push(("red_amount", "RED_AMOUNT_NOT_POSITIVE", "红冲金额须大于0（留空为全额红冲）".into()))
        }
        Some(_) if text(v, "red_reason") == Some("01") => out.push((
            "red_amount",
            "RED_REASON_FULL_ONLY",
            "红冲原因为开票有误时只能全额红冲，红冲金额须留空".into(),
        )),
        _ => {}
    }
    out
}

/// The seller in the tenant and a bill number not taken are checked as the bills land (`land`).
///
/// One seller, buyer and invoice kind per bill, over the whole stage. A file import finds mixed
/// bills while it lands them (`land`) and lists their rows with [`BILL_MIXED_ROWS`]; this form
/// is for the ERP API's stage of a few bills.
pub(super) const BILL_MIXED: &str = "SELECT row_no, 'bill_no', 'BILL_MIXED', format('单据%s的销方、购方或发票种类不一致', bill_no)
     FROM import_stage WHERE bill_no IN (
         SELECT bill_no FROM import_stage GROUP BY bill_no
         HAVING min(seller_tax_no) <> max(seller_tax_no) OR min(buyer_name) <> max(buyer_name)
             OR min(coalesce(buyer_tax_no, '')) <> max(coalesce(buyer_tax_no, '')) OR min(invoice_kind) <> max(invoice_kind))";

/// The rows of the bills `$1` names, refused as [`BILL_MIXED`] refuses them.
pub(super) const BILL_MIXED_ROWS: &str =
    "SELECT row_no, 'bill_no', 'BILL_MIXED', format('单据%s的销方、购方或发票种类不一致', bill_no)
     FROM import_stage WHERE bill_no = ANY($1)";

/// The checks across an application's lines besides [`BILL_MIXED`].
pub(super) const APPLICATION_CHECKS: &[&str] = &[
    // A discount line right after its discounted line, negative, not larger, same rate
    // (the window pass is skipped when the file has no discount lines at all).
    "SELECT row_no, 'line_property', 'DISCOUNT_PLACEMENT', '折扣行须紧跟其被折扣行，金额不超过被折扣行且税率相同'
     FROM (SELECT row_no, line_property, amount::numeric AS amount, tax_rate,
                  lag(line_property) OVER w AS prev_property, lag(amount::numeric) OVER w AS prev_amount,
                  lag(tax_rate) OVER w AS prev_rate, lag(row_no) OVER w AS prev_row
           FROM import_stage WHERE EXISTS (SELECT 1 FROM import_stage d WHERE d.line_property IN ('discount', 'discounted'))
           WINDOW w AS (PARTITION BY bill_no ORDER BY row_no)) o
     WHERE line_property = 'discount'
       AND (prev_property IS DISTINCT FROM 'discounted' OR prev_row <> row_no - 1
            OR -amount > prev_amount OR prev_rate IS DISTINCT FROM tax_rate)",
    "SELECT row_no, 'line_property', 'DISCOUNTED_WITHOUT_DISCOUNT', '被折扣行之后须紧跟折扣行'
     FROM (SELECT row_no, line_property, lead(line_property) OVER w AS next_property
           FROM import_stage WHERE EXISTS (SELECT 1 FROM import_stage d WHERE d.line_property IN ('discount', 'discounted'))
           WINDOW w AS (PARTITION BY bill_no ORDER BY row_no)) o
     WHERE line_property = 'discounted' AND next_property IS DISTINCT FROM 'discount'",
];

const POOL_CHECKS: &[&str] = &[
    // 合规性校验 报销期限 (seed 004 超过企业设置的报销期限): before verification, so a refused
    // invoice is neither verified nor charged.
    "SELECT s.row_no, 'invoice_date', 'REIMBURSEMENT_PERIOD_EXCEEDED', '超过企业设置的报销期限'
     FROM import_stage s JOIN sys_param p ON p.type = 'rim_compliance_reimburse_days' AND p.key = s.buyer_tax_no
     WHERE s.invoice_date IS NOT NULL AND s.invoice_date::date < current_date - p.value::int",
    // 合规性校验 购买方名称 (ours): the buyer named as the enterprise is named.
    "SELECT s.row_no, 'buyer_name', 'BUYER_NAME_MISMATCH', format('购买方名称%s与企业名称%s不一致', s.buyer_name, e.name)
     FROM import_stage s JOIN enterprise e ON e.tax_no = s.buyer_tax_no
     JOIN sys_param p ON p.type = 'rim_compliance_buyer_name' AND p.key = s.buyer_tax_no AND p.value = '1'
     WHERE btrim(coalesce(s.buyer_name, '')) <> e.name",
    // Seed 004 识别失败 FAQ: code 1130.
    "SELECT row_no, 'buyer_tax_no', '1130', format('税号:%s,不在租户:%s 范围内', buyer_tax_no, current_setting('fapiao.tenant_id', true))
     FROM import_stage s WHERE buyer_tax_no IS NOT NULL AND NOT EXISTS (SELECT 1 FROM enterprise e WHERE e.tax_no = s.buyer_tax_no)",
    "SELECT row_no, 'invoice_num', 'DUPLICATE_IN_FILE', format('发票%s%s在文件中重复（首次出现在第%s行）', coalesce(invoice_code, ''), invoice_num, first_row)
     FROM (SELECT row_no, invoice_code, invoice_num,
                  min(row_no) OVER (PARTITION BY buyer_tax_no, coalesce(invoice_code, ''), invoice_num) AS first_row
           FROM import_stage WHERE invoice_num IS NOT NULL) d WHERE row_no <> first_row",
    "SELECT row_no, 'invoice_num', 'ALREADY_IN_POOL', format('发票%s%s已在票池中', coalesce(invoice_code, ''), invoice_num)
     FROM import_stage s WHERE EXISTS (SELECT 1 FROM invoice_pool p WHERE p.tax_no = s.buyer_tax_no
         AND p.invoice_code = coalesce(s.invoice_code, '') AND p.invoice_num = s.invoice_num)",
];

const POOL_MERGE: &[&str] = &["INSERT INTO invoice_pool (tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name,
         seller_tax_no, buyer_name, amount, tax, total, check_code, status, invoice_property, source, verified,
         deductible, deductible_reason, signed, signed_at, import_batch_id)
     SELECT buyer_tax_no, coalesce(invoice_code, ''), invoice_num, invoice_kind, invoice_date::date, seller_name, seller_tax_no,
         buyer_name, amount::numeric, tax::numeric, total::numeric, coalesce(check_code, ''), st.status,
         CASE WHEN total::numeric < 0 THEN 1 ELSE 0 END, 'import', verified,
         -- Verified: the rule on the bureau's lines (verify.rs); else the header alone.
         CASE WHEN verified THEN verified_reason ELSE d.reason END IS NULL, CASE WHEN verified THEN verified_reason ELSE d.reason END,
         $2, CASE WHEN $2 THEN now() END, $1
     FROM import_stage s
     CROSS JOIN LATERAL (SELECT CASE coalesce(s.status, '正常') WHEN '正常' THEN 'normal' WHEN '作废' THEN 'void'
                                  WHEN '红冲' THEN 'red_flushed' WHEN '全额红冲' THEN 'fully_red_flushed'
                                  WHEN '部分红冲' THEN 'partially_red_flushed' WHEN '失控' THEN 'out_of_control'
                                  ELSE 'abnormal' END AS status) st
     CROSS JOIN LATERAL (SELECT deductibility_without_lines(s.invoice_kind, CASE WHEN s.total::numeric < 0 THEN 1 ELSE 0 END::smallint,
                                  false, st.status, s.invoice_date::date, '') AS reason) d
     WHERE NOT rejected AND $1::bigint IS NOT NULL",
    // The compliance rules each landed invoice passed (refused ones are the import's problems).
    "INSERT INTO compliance_trace (tax_no, invoice_code, invoice_num, stage, rule, passed, detail)
     SELECT s.buyer_tax_no, coalesce(s.invoice_code, ''), s.invoice_num, 'import', r.rule, true, r.detail
       FROM import_stage s
       JOIN LATERAL (
           SELECT 'REIMBURSEMENT_PERIOD' AS rule, format('报销期限%s天：开票日期%s', p.value, s.invoice_date) AS detail
             FROM sys_param p WHERE p.type = 'rim_compliance_reimburse_days' AND p.key = s.buyer_tax_no
           UNION ALL
           SELECT 'BUYER_NAME', format('购买方名称%s与企业名称一致', s.buyer_name)
             FROM sys_param p WHERE p.type = 'rim_compliance_buyer_name' AND p.key = s.buyer_tax_no AND p.value = '1'
       ) r ON true
      WHERE NOT s.rejected AND $1::bigint IS NOT NULL AND $2::boolean IS NOT NULL",
    // The verified lines, kept as deal-task keeps them ($2 is bound to every pool statement).
    "INSERT INTO invoice_pool_line (tax_no, invoice_code, invoice_num, seq, goods_name, tax_rate, amount, tax, business_type)
     SELECT s.buyer_tax_no, coalesce(s.invoice_code, ''), s.invoice_num, l.seq, l.v->>'goodsName', (l.v->>'taxRate')::numeric,
            (l.v->>'amount')::numeric, (l.v->>'taxAmount')::numeric, coalesce(l.v->>'businessType', '')
       FROM import_stage s CROSS JOIN LATERAL jsonb_array_elements(s.verified_lines) WITH ORDINALITY AS l(v, seq)
      WHERE NOT s.rejected AND s.verified AND $1::bigint IS NOT NULL AND $2::boolean IS NOT NULL"];

const RED_FLUSH_CHECKS: &[&str] = &["SELECT row_no, 'invoice_num', 'DUPLICATE_IN_FILE', format('发票%s%s在文件中重复（首次出现在第%s行）', coalesce(invoice_code, ''), invoice_num, first_row)
     FROM (SELECT row_no, invoice_code, invoice_num,
                  min(row_no) OVER (PARTITION BY coalesce(invoice_code, ''), invoice_num) AS first_row
           FROM import_stage WHERE invoice_num IS NOT NULL) d WHERE row_no <> first_row"];

const RED_FLUSH_MERGE: &[&str] =
    &["INSERT INTO red_flush_request (batch_id, row_no, invoice_code, invoice_num, red_amount, red_reason)
     SELECT $1, row_no, coalesce(invoice_code, ''), invoice_num, red_amount::numeric, red_reason
     FROM import_stage WHERE NOT rejected"];
