//! Import templates as data (`schemas/templates/*.toml`): header → field, type, required, with
//! Chinese headers and aliases; and the one place where a cell becomes a typed value.
//!
//! Spreadsheet numbers arrive as f64. They are turned into text with the shortest
//! representation that round-trips (what the cell shows) and only then parsed as `Decimal`;
//! amounts are rounded half-up to 2 decimals, quantities and prices to 8 — never f64 arithmetic.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::invoice_kind::InvoiceKind;
use crate::messages::{Coded, REQUIRED_FIELD_EMPTY};
use crate::money::{MONEY_SCALE, QUANTITY_SCALE, TaxRate, round_half_up};
use crate::taxpayer_id::TaxNo;

const APPLICATIONS: &str = include_str!("../templates/applications.toml");
const POOL: &str = include_str!("../templates/pool.toml");
const RED_FLUSH: &str = include_str!("../templates/red-flush.toml");

/// What a file holds, and so its template (`schemas/templates/KIND.toml`) and where it lands.
/// Named in text as `import_batch.kind`, the CLI's `--kind` and the JSON summary spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportKind {
    /// 开票申请单 and their lines.
    Applications,
    /// Received invoices for the pool (票池).
    Pool,
    /// A list of invoices to red-flush.
    RedFlush,
}

impl ImportKind {
    pub const ALL: [ImportKind; 3] = [ImportKind::Applications, ImportKind::Pool, ImportKind::RedFlush];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Applications => "applications",
            ImportKind::Pool => "pool",
            ImportKind::RedFlush => "red-flush",
        }
    }
}

impl fmt::Display for ImportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImportKind {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<ImportKind, TemplateError> {
        ImportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| TemplateError::UnknownKind(s.into()))
    }
}

/// For reading `import_batch.kind` (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for ImportKind {
    type Error = TemplateError;

    fn try_from(s: String) -> Result<ImportKind, TemplateError> {
        s.parse()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    /// Digits kept as text (codes, numbers with leading zeros, 19-digit revenue codes).
    Digits,
    /// A 税控 invoice code (10 or 12 digits) or nothing (数电): digits kept as text; typed as a
    /// number, an 11-digit value gets back the one leading zero every 12-digit code has.
    InvoiceCode,
    /// An invoice number (税控 8 digits, 数电 20): digits kept as text; typed as a number, a
    /// value shorter than 8 digits gets back its leading zeros.
    InvoiceNumber,
    TaxNo,
    Date,
    Money,
    /// Quantities and unit prices (8 decimals).
    Quantity,
    Rate,
    InvoiceKind,
    /// 是/否, Y/N, 1/0, true/false.
    Flag,
    /// 正常 / 折扣 / 被折扣.
    LineProperty,
    /// 01–04.
    RedReason,
    /// 零税率标识: 出口零税 / 免税 / 不征税 / 普通零税率 (or the channel's 0–3).
    ZeroRateMark,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub field: String,
    pub header: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub required: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub kind: ImportKind,
    #[serde(rename = "column")]
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown import kind {0:?}; kinds: applications, pool, red-flush")]
    UnknownKind(String),
    #[error("missing required column {header} ({field})")]
    MissingColumn { header: String, field: String },
    #[error("column {0} appears twice")]
    DuplicateColumn(String),
}

impl Coded for TemplateError {
    fn code(&self) -> &'static str {
        match self {
            TemplateError::UnknownKind(_) => "IMPORT_KIND_UNKNOWN",
            TemplateError::MissingColumn { .. } => "COLUMN_MISSING",
            TemplateError::DuplicateColumn(_) => "COLUMN_DUPLICATE",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            TemplateError::UnknownKind(k) => format!("不支持的导入类型：{k}"),
            TemplateError::MissingColumn { header, .. } => format!("缺少必填列：{header}"),
            TemplateError::DuplicateColumn(h) => format!("列重复：{h}"),
        }
    }
}

/// Where each template field sits in the file, and the headers nobody asked for.
#[derive(Clone, Debug)]
pub struct ColumnMap {
    /// field → (column index in the file, column)
    pub fields: BTreeMap<String, (usize, Column)>,
    pub unknown: Vec<String>,
}

impl Template {
    pub fn for_kind(kind: ImportKind) -> Template {
        let text = match kind {
            ImportKind::Applications => APPLICATIONS,
            ImportKind::Pool => POOL,
            ImportKind::RedFlush => RED_FLUSH,
        };
        toml::from_str(text).expect("templates in schemas/templates are valid")
    }

    /// Match the file's header row (any order, headers or aliases, full-width spaces trimmed).
    pub fn resolve(&self, headers: &[String]) -> Result<ColumnMap, TemplateError> {
        let mut fields = BTreeMap::new();
        let mut unknown = Vec::new();
        for (i, raw) in headers.iter().enumerate() {
            let h = normalize_text(raw).replace('*', "");
            if h.is_empty() {
                continue;
            }
            match self.columns.iter().find(|c| c.header == h || c.aliases.contains(&h)) {
                Some(c) if fields.contains_key(&c.field) => {
                    return Err(TemplateError::DuplicateColumn(c.header.clone()));
                }
                Some(c) => {
                    fields.insert(c.field.clone(), (i, c.clone()));
                }
                None => unknown.push(h),
            }
        }
        if let Some(c) = self.columns.iter().find(|c| c.required && !fields.contains_key(&c.field)) {
            return Err(TemplateError::MissingColumn { header: c.header.clone(), field: c.field.clone() });
        }
        Ok(ColumnMap { fields, unknown })
    }
}

/// A spreadsheet or CSV cell, as the readers hand it over.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A numeric cell, as the shortest text that round-trips its f64 (e.g. `100.1`, `1e+20`).
    Number(String),
    Bool(bool),
    /// A date-formatted cell (1900 or 1904 system already applied by the reader).
    Date(NaiveDate),
    /// `#DIV/0!`, `#N/A`, …
    Error(String),
    /// Bytes of a CSV field its encoding cannot decode: what could be read, undecodable bytes
    /// shown as U+FFFD — for the report only, never a value.
    Undecodable(String),
}

impl Cell {
    /// A numeric cell from its f64 — the only place a float is looked at.
    pub fn from_f64(v: f64) -> Cell {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            Cell::Number(format!("{}", v as i64))
        } else {
            Cell::Number(format!("{v}"))
        }
    }

    /// What the cell shows, for the error report.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) | Cell::Number(s) | Cell::Error(s) | Cell::Undecodable(s) => s.clone(),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Cell::Date(d) => d.to_string(),
        }
    }
}

/// A typed value of one field.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Date(NaiveDate),
    Decimal(Decimal),
    Bool(bool),
}

impl Value {
    /// The value as text for COPY (`None` = NULL).
    pub fn into_copy_text(self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Text(s) => Some(s),
            Value::Date(d) => Some(d.to_string()),
            Value::Decimal(d) => Some(d.normalize().to_string()),
            Value::Bool(b) => Some(b.to_string()),
        }
    }
}

/// Why a cell was refused: a stable code and the Chinese message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellProblem {
    pub code: &'static str,
    pub message: String,
}

fn problem(code: &'static str, message: impl Into<String>) -> CellProblem {
    CellProblem { code, message: message.into() }
}

/// Full-width digits, letters and spaces to half-width; trimmed.
pub fn normalize_text(s: &str) -> String {
    // Most cells hold nothing to change: one copy, no per-character pass.
    if !s.chars().any(|c| c == '\u{3000}' || ('\u{FF01}'..='\u{FF5E}').contains(&c)) {
        return s.trim().to_string();
    }
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

impl Column {
    /// Convert one cell of this column.
    pub fn convert(&self, cell: &Cell) -> Result<Value, CellProblem> {
        let text = match cell {
            Cell::Error(e) => return Err(problem("CELL_ERROR", format!("单元格错误值{e}"))),
            Cell::Undecodable(shown) => {
                return Err(problem(
                    "INVALID_ENCODING",
                    format!("含无法识别的字符（文件应为UTF-8或GBK编码）：{}", echo(shown)),
                ));
            }
            Cell::Empty => String::new(),
            Cell::Text(s) => normalize_text(s),
            Cell::Number(s) => s.clone(),
            Cell::Bool(b) => if *b { "1" } else { "0" }.into(),
            Cell::Date(d) => d.to_string(),
        };
        if text.is_empty() {
            return if self.required {
                Err(problem("REQUIRED_FIELD_EMPTY", format!("{REQUIRED_FIELD_EMPTY}（{}）", self.header)))
            } else {
                Ok(Value::Null)
            };
        }
        let numeric = matches!(cell, Cell::Number(_));
        match self.ty {
            FieldType::Text => Ok(Value::Text(text)),
            FieldType::Digits => digits(&text, numeric),
            FieldType::InvoiceCode => {
                digits(&text, numeric).map(|v| restore_zeros(v, numeric, |n| n == 11, 12))
            }
            FieldType::InvoiceNumber => {
                digits(&text, numeric).map(|v| restore_zeros(v, numeric, |n| n < 8, 8))
            }
            FieldType::TaxNo => TaxNo::parse(&text)
                .map(|t| Value::Text(t.to_string()))
                .map_err(|e| problem(e.code(), e.message_zh())),
            FieldType::Date => date(cell, &text),
            FieldType::Money => decimal(&text, numeric, MONEY_SCALE),
            FieldType::Quantity => decimal(&text, numeric, QUANTITY_SCALE),
            FieldType::Rate => TaxRate::parse(&text)
                .map(|r| Value::Decimal(r.value()))
                .map_err(|e| problem(e.code(), e.message_zh())),
            FieldType::InvoiceKind => text
                .parse::<InvoiceKind>()
                .map(|k| Value::Text(k.as_str().into()))
                .map_err(|e| problem(e.code(), e.message_zh())),
            FieldType::Flag => match text.to_ascii_lowercase().as_str() {
                "是" | "y" | "yes" | "1" | "true" => Ok(Value::Bool(true)),
                "否" | "n" | "no" | "0" | "false" => Ok(Value::Bool(false)),
                _ => Err(problem(
                    "FLAG_INVALID",
                    format!("{}只能填写是或否，实际为{}", self.header, echo(&text)),
                )),
            },
            FieldType::LineProperty => match text.as_str() {
                "正常" | "0" => Ok(Value::Text("normal".into())),
                "折扣" | "折扣行" | "1" => Ok(Value::Text("discount".into())),
                "被折扣" | "被折扣行" | "2" => Ok(Value::Text("discounted".into())),
                _ => Err(problem(
                    "LINE_PROPERTY_INVALID",
                    format!("行性质只能为正常、折扣或被折扣，实际为{}", echo(&text)),
                )),
            },
            FieldType::ZeroRateMark => crate::policy::ZeroRateMark::parse(&text)
                .map(|m| Value::Text(m.as_str().into()))
                .ok_or_else(|| {
                    problem(
                        "ZERO_RATE_MARK_INVALID",
                        format!("零税率标识只能为出口零税、免税、不征税或普通零税率，实际为{}", echo(&text)),
                    )
                }),
            FieldType::RedReason => {
                let code = match text.as_str() {
                    "01" | "1" | "开票有误" => "01",
                    "02" | "2" | "销货退回" => "02",
                    "03" | "3" | "服务中止" => "03",
                    "04" | "4" | "销售折让" => "04",
                    _ => {
                        return Err(problem(
                            "RED_REASON_INVALID",
                            format!(
                                "红冲原因须为01开票有误、02销货退回、03服务中止或04销售折让，实际为{}",
                                echo(&text)
                            ),
                        ));
                    }
                };
                Ok(Value::Text(code.into()))
            }
        }
    }
}

/// f64 can hold integers exactly only up to 2^53: a longer code typed as a number is damaged.
const EXACT_DIGITS: usize = 15;

/// At most this many characters of a cell are echoed back in a message.
const ECHO_CHARS: usize = 20;

/// The cell's text for a message: its first 20 characters, then `…` (a 309-digit `1e308` or a
/// pasted paragraph would otherwise fill the report).
fn echo(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]).into(),
        None => text.into(),
    }
}

fn digits(text: &str, numeric: bool) -> Result<Value, CellProblem> {
    if numeric && (text.contains(['e', 'E', '.']) || text.len() > EXACT_DIGITS) {
        return Err(problem(
            "NUMBER_NOT_TEXT",
            format!("{}以数字格式保存，长编码已丢失精度，请将该列设为文本格式后重新填写", echo(text)),
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem("DIGITS_INVALID", format!("{}应为数字编码", echo(text))));
    }
    Ok(Value::Text(text.into()))
}

/// A code or number typed as a number lost its leading zeros; where its fixed length says how
/// many (`lost(len)`), they are put back up to `width`. Text cells are kept as typed.
fn restore_zeros(value: Value, numeric: bool, lost: impl Fn(usize) -> bool, width: usize) -> Value {
    match value {
        Value::Text(t) if numeric && lost(t.len()) => Value::Text(format!("{t:0>width$}")),
        other => other,
    }
}

/// The columns hold 16 integer digits (numeric(18,2) money, numeric(24,8) quantities and prices).
const MAX_INTEGER_DIGITS: i64 = 16;

fn decimal(text: &str, numeric: bool, scale: u32) -> Result<Value, CellProblem> {
    let cleaned: std::borrow::Cow<'_, str> =
        if text.contains(',') { text.replace(',', "").into() } else { text.into() };
    let too_large = || problem("NUMBER_TOO_LARGE", format!("数值过大：{}（整数部分最多16位）", echo(text)));
    let v: Decimal = match cleaned.parse().or_else(|_| Decimal::from_scientific(&cleaned)) {
        Ok(v) => v,
        // Well-formed but beyond what Decimal holds (`1e308`, 32 digits): too large, not garbage.
        Err(_) if integer_digits(&cleaned).is_some_and(|n| n > MAX_INTEGER_DIGITS) => return Err(too_large()),
        Err(_) => return Err(problem("NOT_A_NUMBER", format!("不是有效数字：{}", echo(text)))),
    };
    // A larger value is this row's problem, not a failed COPY of the whole file.
    if v.abs() >= Decimal::from(10_000_000_000_000_000i64) {
        return Err(too_large());
    }
    if numeric {
        // A spreadsheet number: fix its scale here, once (binary fractions like 0.1 + 0.2).
        return Ok(Value::Decimal(round_half_up(v, scale)));
    }
    if v.normalize().scale() > scale {
        return Err(problem("TOO_MANY_DECIMALS", format!("{}小数位超过{scale}位", echo(text))));
    }
    Ok(Value::Decimal(v))
}

/// How many digits the integer part of a well-formed number has (`-12.5e3` → 5; `0.001` → 0),
/// or `None` when the text is not a number at all. Only the syntax is read, never a float.
fn integer_digits(text: &str) -> Option<i64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let digits = if int.is_empty() {
        // 0.00123: the first significant digit sits this far right of the point.
        -((frac.len() - frac.trim_start_matches('0').len()) as i64)
    } else {
        int.len() as i64
    };
    Some((digits + exponent).max(0))
}

/// The dates the import accepts (单据日期, 开票日期): years the database, the channel and finance
/// all read the same way. Year 0, negative years or year 10000 were typing errors that the
/// database refused for the whole file; now they are the row's problem.
pub const DATE_MIN: NaiveDate = NaiveDate::from_ymd_opt(1990, 1, 1).expect("a date");
pub const DATE_MAX: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).expect("a date");

fn out_of_range(shown: &str) -> CellProblem {
    problem("DATE_OUT_OF_RANGE", format!("日期{}超出范围（{DATE_MIN}至{DATE_MAX}）", echo(shown)))
}

fn in_range(d: NaiveDate, shown: &str) -> Result<Value, CellProblem> {
    if (DATE_MIN..=DATE_MAX).contains(&d) { Ok(Value::Date(d)) } else { Err(out_of_range(shown)) }
}

fn date(cell: &Cell, text: &str) -> Result<Value, CellProblem> {
    let invalid = || problem("DATE_INVALID", format!("无法识别的日期：{}", echo(text)));
    if let Cell::Date(d) = cell {
        return in_range(*d, text);
    }
    if let Cell::Number(n) = cell {
        // A date typed into a general-format cell: a 1900-system serial.
        let serial: i64 = n.parse().map_err(|_| invalid())?;
        let base = NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid");
        return match base
            .checked_add_signed(chrono::Duration::try_days(serial).unwrap_or(chrono::Duration::MAX))
        {
            Some(d) => in_range(d, &format!("{n}（{d}）")),
            None => Err(out_of_range(n)),
        };
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(d) = NaiveDate::parse_from_str(text, f) {
            return in_range(d, text);
        }
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(text, f) {
            return in_range(dt.date(), text);
        }
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn col(kind: &str, field: &str) -> Column {
        Template::for_kind(kind.parse().unwrap()).columns.into_iter().find(|c| c.field == field).unwrap()
    }

    #[test]
    fn headers_in_any_order_with_aliases_and_unknown_columns() {
        let t = Template::for_kind(ImportKind::RedFlush);
        let map = t.resolve(&["备注".into(), "冲红原因".into(), "数电号码".into()]).unwrap();
        assert_eq!(map.fields["red_reason"].0, 1);
        assert_eq!(map.fields["invoice_num"].0, 2);
        assert_eq!(map.unknown, vec!["备注".to_string()]);
        let err = t.resolve(&["发票号码".into()]).unwrap_err();
        assert_eq!(err.message_zh(), "缺少必填列：红冲原因");
    }

    #[test]
    fn import_kinds_are_spelled_as_the_cli_the_database_and_the_json_spell_them() {
        for (kind, name) in ImportKind::ALL.into_iter().zip(["applications", "pool", "red-flush"]) {
            assert_eq!((kind.to_string(), name.parse()), (name.to_string(), Ok(kind)));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        }
        let err = "invoices".parse::<ImportKind>().unwrap_err();
        assert_eq!(
            (err.code(), err.message_zh()),
            ("IMPORT_KIND_UNKNOWN", "不支持的导入类型：invoices".into())
        );
    }

    #[test]
    fn every_template_parses_and_names_its_columns_once() {
        for kind in ImportKind::ALL {
            let t = Template::for_kind(kind);
            assert_eq!(t.kind, kind);
            let headers: Vec<String> = t.columns.iter().map(|c| c.header.clone()).collect();
            assert!(t.resolve(&headers).unwrap().unknown.is_empty(), "{kind}");
        }
        assert_eq!(col("applications", "total").aliases, vec!["含税金额".to_string()]);
    }

    #[test]
    fn numbers_that_are_really_text() {
        let code = col("applications", "revenue_code");
        assert_eq!(
            code.convert(&Cell::Text("1090511030000000000".into())).unwrap(),
            Value::Text("1090511030000000000".into())
        );
        // 19 digits as a number: f64 shows 1.090511030000000e18 — refused, not silently damaged.
        assert_eq!(code.convert(&Cell::from_f64(1090511030000000000.0)).unwrap_err().code, "NUMBER_NOT_TEXT");
        let num = col("pool", "invoice_num");
        assert_eq!(num.convert(&Cell::Text("00123456".into())).unwrap(), Value::Text("00123456".into()));
        assert_eq!(
            num.convert(&Cell::Text("１２３４５６７８".into())).unwrap(),
            Value::Text("12345678".into()),
            "full-width digits"
        );
    }

    #[test]
    fn codes_and_numbers_typed_as_numbers_get_their_zeros_back_where_the_length_is_fixed() {
        for kind in ["pool", "red-flush"] {
            let code = col(kind, "invoice_code");
            let num = col(kind, "invoice_num");
            let text = |s: &str| Value::Text(s.into());
            // 12-digit 税控 codes begin with exactly one 0: 11 digits lost it.
            assert_eq!(code.convert(&Cell::from_f64(44031900111.0)).unwrap(), text("044031900111"));
            // 10-digit codes never begin with 0; a 12-digit code typed as text stays as typed.
            assert_eq!(code.convert(&Cell::from_f64(4400191130.0)).unwrap(), text("4400191130"));
            assert_eq!(code.convert(&Cell::Text("04403190011".into())).unwrap(), text("04403190011"));
            // Other lengths are left for the number-format rule to refuse.
            assert_eq!(code.convert(&Cell::from_f64(440319.0)).unwrap(), text("440319"));
            // 税控 numbers are 8 digits.
            assert_eq!(num.convert(&Cell::from_f64(12347.0)).unwrap(), text("00012347"));
            assert_eq!(num.convert(&Cell::from_f64(123456.0)).unwrap(), text("00123456"));
            assert_eq!(num.convert(&Cell::from_f64(12345678.0)).unwrap(), text("12345678"));
            assert_eq!(num.convert(&Cell::Text("12347".into())).unwrap(), text("12347"), "text is as typed");
            // A 20-digit 数电 number typed as a number lost digits: refused.
            assert_eq!(
                num.convert(&Cell::from_f64(24442000000123456789.0)).unwrap_err().code,
                "NUMBER_NOT_TEXT"
            );
        }
        // Revenue codes have no fixed zeros to restore: a 19-digit one typed as a number stays refused.
        let revenue = col("applications", "revenue_code");
        assert_eq!(
            revenue.convert(&Cell::from_f64(1090511030000000000.0)).unwrap_err().code,
            "NUMBER_NOT_TEXT"
        );
    }

    #[test]
    fn numbers_beyond_any_column_are_too_large_and_echoed_short() {
        let amount = col("applications", "amount");
        for cell in [
            Cell::from_f64(1e308),
            Cell::Text("1e308".into()),
            Cell::Text("12345678901234567890123456789012".into()),
            Cell::Text("-12345678901234567890123456789012.5".into()),
            Cell::Text("1.5E+40".into()),
        ] {
            let p = amount.convert(&cell).unwrap_err();
            assert_eq!(p.code, "NUMBER_TOO_LARGE", "{cell:?}");
            assert!(p.message.chars().count() < 50, "{}", p.message);
        }
        assert_eq!(
            amount.convert(&Cell::from_f64(1e308)).unwrap_err().message,
            "数值过大：10000000000000000000…（整数部分最多16位）"
        );
        // Text that is no number at all is still NOT_A_NUMBER, echoed short as well.
        let p = amount.convert(&Cell::Text("一百元".repeat(20))).unwrap_err();
        assert_eq!(p.code, "NOT_A_NUMBER");
        assert_eq!(
            p.message,
            format!("不是有效数字：{}…", "一百元".repeat(7).chars().take(20).collect::<String>())
        );
        assert_eq!(amount.convert(&Cell::Text("12abc".into())).unwrap_err().message, "不是有效数字：12abc");
        assert_eq!(integer_digits("0.00123e5"), Some(3));
        assert_eq!(integer_digits("1e"), None);
        assert_eq!(integer_digits("."), None);
    }

    #[test]
    fn undecodable_bytes_are_the_cells_problem() {
        let buyer = col("applications", "buyer_name");
        let p = buyer.convert(&Cell::Undecodable("深圳\u{FFFD}便利店".into())).unwrap_err();
        assert_eq!(p.code, "INVALID_ENCODING");
        assert_eq!(p.message, "含无法识别的字符（文件应为UTF-8或GBK编码）：深圳\u{FFFD}便利店");
    }

    #[test]
    fn money_from_cells_at_a_fixed_scale() {
        let amount = col("applications", "amount");
        assert_eq!(amount.convert(&Cell::from_f64(0.1 + 0.2)).unwrap(), Value::Decimal(dec!(0.30)));
        assert_eq!(
            amount.convert(&Cell::from_f64(100.005)).unwrap(),
            Value::Decimal(dec!(100.01)),
            "f64 100.005 shows as 100.005, half-up"
        );
        assert_eq!(amount.convert(&Cell::Text("1,234.50".into())).unwrap(), Value::Decimal(dec!(1234.50)));
        assert_eq!(amount.convert(&Cell::Text("12.345".into())).unwrap_err().code, "TOO_MANY_DECIMALS");
        assert_eq!(
            amount.convert(&Cell::Text("10000000000000000".into())).unwrap_err().code,
            "NUMBER_TOO_LARGE"
        );
        assert_eq!(
            amount.convert(&Cell::Text("9999999999999999.99".into())).unwrap(),
            Value::Decimal(dec!(9999999999999999.99))
        );
        assert_eq!(amount.convert(&Cell::from_f64(1e20)).unwrap_err().code, "NUMBER_TOO_LARGE");
        assert_eq!(amount.convert(&Cell::Error("#DIV/0!".into())).unwrap_err().code, "CELL_ERROR");
        let err = amount.convert(&Cell::Empty).unwrap_err();
        assert_eq!(err.message, "必填字段为空，请补充！（金额）");
        let price = col("applications", "price");
        assert_eq!(price.convert(&Cell::from_f64(1.0 / 3.0)).unwrap(), Value::Decimal(dec!(0.33333333)));
    }

    #[test]
    fn dates_as_serials_cells_or_text() {
        let d = col("applications", "bill_date");
        let nov1 = Value::Date(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(d.convert(&Cell::from_f64(46327.0)).unwrap(), nov1);
        for text in ["2026-11-01", "2026/11/01", "20261101", "2026年11月1日", "２０２６－１１－０１"]
        {
            assert_eq!(d.convert(&Cell::Text(text.into())).unwrap(), nov1, "{text}");
        }
        assert_eq!(d.convert(&Cell::Text("next week".into())).unwrap_err().code, "DATE_INVALID");
    }

    #[test]
    fn dates_outside_1990_to_2099_are_the_rows_problem() {
        let d = col("applications", "bill_date");
        let ymd = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        for edge in [DATE_MIN, DATE_MAX] {
            assert_eq!(d.convert(&Cell::Date(edge)).unwrap(), Value::Date(edge));
            assert_eq!(d.convert(&Cell::Text(edge.to_string())).unwrap(), Value::Date(edge));
        }
        for cell in [
            Cell::Text("0000-01-01".into()),
            Cell::Text("-0001-05-01".into()),
            Cell::Text("1989-12-31".into()),
            Cell::Text("2100-01-01".into()),
            Cell::Date(ymd(0, 1, 1)),
            Cell::Date(ymd(10000, 1, 1)),
            // Serials: 1 is 1899-12-31, 0 and negatives before it, 3,000,000 past 9999.
            Cell::from_f64(1.0),
            Cell::from_f64(0.0),
            Cell::from_f64(-5.0),
            Cell::from_f64(3_000_000.0),
            Cell::from_f64(1e14),
        ] {
            let p = d.convert(&cell).unwrap_err();
            assert_eq!(p.code, "DATE_OUT_OF_RANGE", "{cell:?}");
            assert!(p.message.ends_with("超出范围（1990-01-01至2099-12-31）"), "{}", p.message);
        }
        assert_eq!(
            d.convert(&Cell::Text("2100-01-01".into())).unwrap_err().message,
            "日期2100-01-01超出范围（1990-01-01至2099-12-31）"
        );
        assert_eq!(d.convert(&Cell::Text("2024-02-30".into())).unwrap_err().code, "DATE_INVALID");
        // chrono reads no five-digit year from text: a row problem all the same.
        assert_eq!(d.convert(&Cell::Text("10000-01-01".into())).unwrap_err().code, "DATE_INVALID");
        let pool_date = col("pool", "invoice_date");
        assert_eq!(
            pool_date.convert(&Cell::Text("0000-01-01".into())).unwrap_err().code,
            "DATE_OUT_OF_RANGE"
        );
    }

    #[test]
    fn flags_kinds_rates_and_line_properties() {
        assert_eq!(
            col("applications", "auto_issue").convert(&Cell::Text("是".into())).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            col("applications", "invoice_kind").convert(&Cell::Text("数电普票".into())).unwrap(),
            Value::Text("digital_ordinary".into())
        );
        assert_eq!(
            col("applications", "tax_rate").convert(&Cell::from_f64(0.13)).unwrap(),
            Value::Decimal(dec!(0.13))
        );
        assert_eq!(
            col("applications", "tax_rate").convert(&Cell::Text("17%".into())).unwrap_err().code,
            "TAX_RATE_NOT_ALLOWED"
        );
        assert_eq!(
            col("applications", "line_property").convert(&Cell::Text("被折扣".into())).unwrap(),
            Value::Text("discounted".into())
        );
        assert_eq!(
            col("red-flush", "red_reason").convert(&Cell::Text("销货退回".into())).unwrap(),
            Value::Text("02".into())
        );
    }
}
