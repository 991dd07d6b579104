//! The goods catalogue's import template (开票项导入模板, seed 003 "开票项: 导入模板") and its import:
//! all or nothing, every bad row named by its row number as the sheet shows it (header = 1), its
//! column and why (a stable English code and a Chinese message).
//!
//! The workbook is read by the importer's reader (`fapiao_pipelines::import::read_rows`: calamine,
//! behind the decompression-bomb guard; numbers reach us as the text of their value, so a price is
//! a decimal and never an f64 here). The rules are `receipts::goods_problems`, the same as
//! `fapiao goods add`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use fapiao_pipelines::import::{ReadLimits, read_rows};
use fapiao_schemas::template::{Cell, normalize_text};
use rust_decimal::Decimal;
use rust_xlsxwriter::{Format, Workbook};
use serde::Serialize;

use crate::receipts::{self, GoodsField, GoodsRequest};
use crate::{Actor, App, Error, Result};

/// The data sheet of the template.
pub const SHEET: &str = "开票项";

/// A column of the template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Column {
    Seller,
    Name,
    RevenueCode,
    TaxRate,
    Specification,
    Unit,
    Price,
}

/// The columns in order: header, required, how to fill it in.
const COLUMNS: [(Column, &str, bool, &str); 7] = [
    (Column::Seller, "销方税号", false, "统一社会信用代码；导入时给出 --tax-no 则可不填（填了须与之相同）"),
    (Column::Name, "商品名称", true, "最长100个字"),
    (Column::RevenueCode, "税收分类编码", true, "19位数字（请以文本填写，避免被Excel改成科学计数）"),
    (Column::TaxRate, "税率", true, "如 0.13、13%、0.06、0"),
    (Column::Specification, "规格型号", false, ""),
    (Column::Unit, "单位", false, ""),
    (Column::Price, "单价", false, "含税单价，大于0；不填则开票时填写"),
];

/// Most rows one import takes (a catalogue, not a ledger).
const MAX_ROWS: usize = 10_000;

fn header_of(c: Column) -> &'static str {
    COLUMNS.iter().find(|(col, ..)| *col == c).map(|(_, h, ..)| *h).expect("every column has a header")
}

/// Write the empty template: the data sheet with its headers (required ones bold, the revenue
/// code column as text), and a sheet saying how to fill in each column.
pub fn write_template(path: &Path) -> Result<()> {
    let xlsx =
        |e: rust_xlsxwriter::XlsxError| Error::bad_input("TEMPLATE_WRITE", format!("模板写入失败：{e}"));
    let mut book = Workbook::new();
    let required = Format::new().set_bold().set_background_color(0xFFF2CC);
    let optional = Format::new().set_background_color(0xEDEDED);
    let text = Format::new().set_num_format("@");
    let sheet = book.add_worksheet().set_name(SHEET).map_err(xlsx)?;
    for (i, (col, header, req, _)) in COLUMNS.iter().enumerate() {
        let i = i as u16;
        sheet
            .write_string_with_format(0, i, *header, if *req { &required } else { &optional })
            .map_err(xlsx)?;
        sheet.set_column_width(i, if *col == Column::Name { 28.0 } else { 16.0 }).map_err(xlsx)?;
        if matches!(col, Column::Seller | Column::RevenueCode) {
            sheet.set_column_format(i, &text).map_err(xlsx)?;
        }
    }
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    let help = book.add_worksheet().set_name("填写说明").map_err(xlsx)?;
    for (i, h) in ["列", "是否必填", "说明"].iter().enumerate() {
        help.write_string_with_format(0, i as u16, *h, &required).map_err(xlsx)?;
    }
    for (row, (_, header, req, note)) in COLUMNS.iter().enumerate() {
        let row = row as u32 + 1;
        help.write_string(row, 0, *header).map_err(xlsx)?;
        help.write_string(row, 1, if *req { "必填" } else { "选填" }).map_err(xlsx)?;
        help.write_string(row, 2, *note).map_err(xlsx)?;
    }
    help.write_string(
        COLUMNS.len() as u32 + 2,
        0,
        "整个文件全部正确才会导入；有错误的行会逐行列出（行号、列、原因），一行也不会导入。",
    )
    .map_err(xlsx)?;
    help.set_column_width(0, 14.0).map_err(xlsx)?;
    help.set_column_width(2, 60.0).map_err(xlsx)?;
    book.save(path).map_err(xlsx)?;
    Ok(())
}

/// A bad cell of the workbook.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GoodsProblem {
    /// As the sheet shows it (the header is row 1).
    pub row: u32,
    /// The column's header.
    pub column: String,
    pub code: String,
    pub message: String,
}

/// What an import did: the items it added, or (then nothing was added) every problem.
#[derive(Clone, Debug, Serialize)]
pub struct GoodsImport {
    pub rows: usize,
    pub imported: Vec<i64>,
    pub problems: Vec<GoodsProblem>,
}

/// A cell's text: text trimmed (full-width forms folded), a number as written.
fn text_of(c: Option<&Cell>) -> String {
    match c {
        None | Some(Cell::Empty) => String::new(),
        Some(Cell::Text(s)) => normalize_text(s),
        Some(other) => other.display().trim().to_string(),
    }
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A decimal from a cell's text; "13%" is 0.13 for the rate.
fn decimal(s: &str, percent_allowed: bool) -> Option<Decimal> {
    match s.strip_suffix('%') {
        Some(p) if percent_allowed => p.trim().parse::<Decimal>().ok().map(|d| d / Decimal::ONE_HUNDRED),
        Some(_) => None,
        None => s.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(s).ok()),
    }
}

/// Import the workbook at `path` into the catalogue: every row checked, then all of them added in
/// one transaction — or none when any row has a problem. `tax_no` is the enterprise of every row
/// (the 销方税号 column may then be empty, or must say the same).
pub async fn import(app: &App, actor: &Actor, path: &Path, tax_no: Option<&str>) -> Result<GoodsImport> {
    let rows = read(path, ReadLimits::from_settings(&app.settings.import)).await?;
    let mut problems = Vec::new();
    let mut problem = |row: u32, column: Column, code: &str, message: String| {
        problems.push(GoodsProblem { row, column: header_of(column).into(), code: code.into(), message })
    };
    let mut requests: Vec<(u32, GoodsRequest)> = Vec::new();
    for (row, cells) in &rows.data {
        let cell = |c: Column| text_of(rows.columns.get(&c).and_then(|i| cells.get(*i)));
        let seller = match (tax_no, cell(Column::Seller)) {
            (Some(t), s) if s.is_empty() || s == t => t.to_string(),
            (Some(t), s) => {
                problem(*row, Column::Seller, "SELLER_MISMATCH", format!("销方税号{s}与导入指定的{t}不同"));
                s
            }
            (None, s) if s.is_empty() => {
                problem(
                    *row,
                    Column::Seller,
                    "REQUIRED_FIELD_EMPTY",
                    "必填字段为空，请补充！（销方税号）".into(),
                );
                s
            }
            (None, s) => s,
        };
        for c in [Column::Name, Column::RevenueCode, Column::TaxRate] {
            if cell(c).is_empty() {
                let message = format!("必填字段为空，请补充！（{}）", header_of(c));
                problem(*row, c, "REQUIRED_FIELD_EMPTY", message);
            }
        }
        let rate_text = cell(Column::TaxRate);
        let rate = decimal(&rate_text, true);
        if rate.is_none() && !rate_text.is_empty() {
            problem(*row, Column::TaxRate, "NUMBER_FORMAT", format!("税率{rate_text}不是数字"));
        }
        let price_text = cell(Column::Price);
        let price = decimal(&price_text, false);
        if price.is_none() && !price_text.is_empty() {
            problem(*row, Column::Price, "NUMBER_FORMAT", format!("单价{price_text}不是数字"));
        }
        let req = GoodsRequest {
            tax_no: seller,
            name: cell(Column::Name),
            revenue_code: cell(Column::RevenueCode),
            tax_rate: rate.unwrap_or_default(),
            specification: opt(cell(Column::Specification)),
            unit: opt(cell(Column::Unit)),
            price,
        };
        for (field, code, message) in receipts::goods_problems(&req) {
            let column = match field {
                GoodsField::Name => Column::Name,
                GoodsField::RevenueCode => Column::RevenueCode,
                GoodsField::TaxRate => Column::TaxRate,
                GoodsField::Price => Column::Price,
            };
            // An empty cell was told once, as empty.
            if !cell(column).is_empty() {
                problem(*row, column, code, message);
            }
        }
        requests.push((*row, req));
    }
    let sellers: BTreeSet<&str> =
        requests.iter().map(|(_, r)| r.tax_no.as_str()).filter(|t| !t.is_empty()).collect();
    let mut unknown = BTreeSet::new();
    for s in sellers {
        if !receipts::enterprise_exists(app, s).await? {
            unknown.insert(s.to_string());
        }
    }
    for (row, r) in &requests {
        if unknown.contains(&r.tax_no) {
            problem(*row, Column::Seller, "ENTERPRISE_UNKNOWN", format!("企业{}不存在", r.tax_no));
        }
    }
    problems.sort_by_key(|p| p.row);
    let imported = if problems.is_empty() {
        let reqs: Vec<GoodsRequest> = requests.into_iter().map(|(_, r)| r).collect();
        receipts::add_goods_all(app, actor, &reqs).await?
    } else {
        tracing::info!(actor = %actor, problems = problems.len(), "goods import refused: nothing added");
        Vec::new()
    };
    Ok(GoodsImport { rows: rows.data.len(), imported, problems })
}

/// The data rows and where each column is.
struct Rows {
    columns: HashMap<Column, usize>,
    data: Vec<(u32, Vec<Cell>)>,
}

/// Read the first sheet: its header row names the columns (a trailing `*` is allowed), the rows
/// under it are the items.
async fn read(path: &Path, limits: ReadLimits) -> Result<Rows> {
    let path = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let mut all: Vec<(u32, Vec<Cell>)> = Vec::new();
        let outcome = read_rows(&path, None, &limits, |row, cells| {
            all.push((row, cells));
            all.len() <= MAX_ROWS + 1
        });
        (outcome, all)
    })
    .await
    .map_err(|e| Error::bad_input("FILE_UNREADABLE", format!("文件读取失败：{e}")))?;
    let (outcome, mut all) = read;
    match outcome {
        Ok(()) => {}
        Err(fapiao_pipelines::import::ReadError::Stopped) => {
            return Err(Error::bad_input("TOO_MANY_ROWS", format!("一次最多导入{MAX_ROWS}行开票项")));
        }
        Err(e) => return Err(Error::bad_input(e.code(), format!("文件读取失败：{e}"))),
    }
    if all.is_empty() {
        return Err(Error::bad_input("NO_DATA_ROWS", fapiao_schemas::messages::NO_DATA_ROWS));
    }
    let (_, header) = all.remove(0);
    let names: Vec<String> =
        header.iter().map(|c| text_of(Some(c)).trim_end_matches('*').trim().to_string()).collect();
    let mut columns = HashMap::new();
    let mut missing = Vec::new();
    for (col, h, required, _) in COLUMNS {
        match names.iter().position(|n| n == h) {
            Some(i) => {
                columns.insert(col, i);
            }
            None if required => missing.push(h),
            None => {}
        }
    }
    if !missing.is_empty() {
        return Err(Error::bad_input(
            "TEMPLATE_HEADER",
            format!("不是开票项导入模板：第1行缺少列{}", missing.join("、")),
        ));
    }
    if all.is_empty() {
        return Err(Error::bad_input("NO_DATA_ROWS", fapiao_schemas::messages::NO_DATA_ROWS));
    }
    Ok(Rows { columns, data: all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_prices_are_read_as_written() {
        assert_eq!(decimal("13%", true), Some("0.13".parse().unwrap()));
        assert_eq!(decimal("0.06", true), Some("0.06".parse().unwrap()));
        assert_eq!(decimal("13%", false), None);
        assert_eq!(decimal("12.50", false), Some("12.50".parse().unwrap()));
        assert_eq!(decimal("abc", false), None);
    }
}
