//! Generated applications workbooks, for the demo, the benchmark and load tests: bills of five
//! lines with 18-char taxpayer ids and quantities/prices of 2–8 decimals, like the anchors'.

use std::path::Path;

use rust_xlsxwriter::{Workbook, XlsxError};

pub const HEADERS: [&str; 16] = [
    "单据编号",
    "单据日期",
    "销方税号",
    "购方名称",
    "购方税号",
    "发票种类",
    "商品名称",
    "税收分类编码",
    "规格型号",
    "单位",
    "数量",
    "单价",
    "金额",
    "税率",
    "税额",
    "价税合计",
];

/// One line's cells as text; `bad` makes its tax wrong by 0.07.
pub fn line(prefix: &str, n: usize, seller: &str, buyer: &str, bad: bool) -> [String; 16] {
    let quantity = 1 + n % 7;
    let price_cents = 1_000 + (n * 37) % 90_000; // 10.00 … 909.99
    let amount_cents = quantity * price_cents;
    let tax_cents = (amount_cents * 13 + 50) / 100 + if bad { 7 } else { 0 };
    let money = |c: usize| format!("{}.{:02}", c / 100, c % 100);
    [
        format!("{prefix}{:07}", n / 5),
        "2026-11-01".into(),
        seller.into(),
        format!("购方企业{:04}", (n / 5) % 1000),
        buyer.into(),
        "数电普票".into(),
        "*计算机配套产品*键盘".into(),
        "1090511030000000000".into(),
        format!("K{}", n % 10),
        "个".into(),
        quantity.to_string(),
        money(price_cents),
        money(amount_cents),
        "13%".into(),
        money(tax_cents),
        money(amount_cents + tax_cents),
    ]
}

/// Write `lines` lines (rows `bad_rows` — 0-based line indexes — with a wrong tax) as .xlsx.
/// Amounts are numbers (as finance types them); codes and tax numbers are text.
pub fn write_xlsx(
    path: &Path,
    prefix: &str,
    lines: usize,
    seller: &str,
    buyer: &str,
    bad_rows: &[usize],
) -> Result<(), XlsxError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory()?;
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for n in 0..lines {
        let row = n as u32 + 1;
        for (c, v) in line(prefix, n, seller, buyer, bad_rows.contains(&n)).iter().enumerate() {
            match c {
                10 | 11 | 12 | 14 | 15 => {
                    sheet.write_number(row, c as u16, v.parse::<f64>().expect("generated numbers"))?
                }
                _ => sheet.write_string(row, c as u16, v)?,
            };
        }
    }
    book.save(path)
}
