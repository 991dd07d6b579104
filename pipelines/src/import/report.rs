//! The error report: the original columns, then 行号 and 错误原因 (code and Chinese message),
//! one line per problem. Text that would start a formula is neutralized.

use std::collections::BTreeMap;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::Problem;

/// Text that a spreadsheet would read as a formula gets a leading apostrophe (kept as text).
pub fn neutralize(text: &str) -> String {
    let looks_like_number = text.parse::<f64>().is_ok();
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !looks_like_number => format!("'{text}"),
        _ => text.to_string(),
    }
}

pub fn write(
    path: &Path,
    headers: &[String],
    raw: &BTreeMap<u32, Vec<String>>,
    problems: &[Problem],
) -> Result<(), XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("错误报告")?;
    let bold = Format::new().set_bold();
    let width = headers.len() as u16;
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, neutralize(h), &bold)?;
    }
    sheet.write_string_with_format(0, width, "行号", &bold)?;
    sheet.write_string_with_format(0, width + 1, "错误原因", &bold)?;
    for (i, p) in problems.iter().enumerate() {
        let r = i as u32 + 1;
        if let Some(cells) = raw.get(&p.row) {
            for (c, v) in cells.iter().enumerate() {
                sheet.write_string(r, c as u16, neutralize(v))?;
            }
        }
        sheet.write_number(r, width, f64::from(p.row))?;
        sheet.write_string(r, width + 1, neutralize(&format!("[{}] {}：{}", p.code, p.column, p.message)))?;
    }
    book.save(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_are_neutralized_numbers_are_not() {
        assert_eq!(super::neutralize("=HYPERLINK(\"http://x\",\"y\")"), "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(super::neutralize("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::neutralize("-50.00"), "-50.00");
        assert_eq!(super::neutralize("正常"), "正常");
    }
}
