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

/// The shape of a decompression-bomb-like workbook ([`write_bomb_xlsx`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bomb {
    /// A header, `valid` lines, then empty rows padded with runs of 30,000 spaces up to the
    /// inflated size: nothing beyond a per-cell limit, so it imports when the sheet is within
    /// `import.max_inflated_mib`.
    Padded,
    /// A header and one line whose 规格型号 is a single text of the inflated size (the shape of
    /// issue 14.3's 316 KB workbook).
    OneCell,
}

/// Write an applications workbook whose sheet inflates to about `inflated_mib` MiB from a file
/// a thousandth of that, with `valid` good lines (bill `{prefix}0000000`, like [`write_xlsx`]'s).
/// Inline strings, no shared strings table.
pub fn write_bomb_xlsx(
    path: &Path,
    bomb: Bomb,
    inflated_mib: u64,
    prefix: &str,
    valid: usize,
    seller: &str,
    buyer: &str,
) -> std::io::Result<()> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    const NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_string(),
        ),
        (
            "_rels/.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#),
        ),
        (
            "xl/workbook.xml",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{NS}" xmlns:r="{REL}"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#),
        ),
    ];
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(inflated_mib >= 4000);
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(path)?));
    for (name, text) in parts {
        zip.start_file(name, options).map_err(std::io::Error::other)?;
        zip.write_all(text.as_bytes())?;
    }
    zip.start_file("xl/worksheets/sheet1.xml", options).map_err(std::io::Error::other)?;
    let cell = |row: usize, col: usize, value: &str, number: bool| {
        let r = format!("{}{}", (b'A' + col as u8) as char, row);
        if number {
            format!(r#"<c r="{r}"><v>{value}</v></c>"#)
        } else {
            format!(r#"<c r="{r}" t="inlineStr"><is><t>{value}</t></is></c>"#)
        }
    };
    write!(
        zip,
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{NS}"><sheetData><row r="1">"#
    )?;
    for (c, h) in HEADERS.iter().enumerate() {
        zip.write_all(cell(1, c, h, false).as_bytes())?;
    }
    zip.write_all(b"</row>")?;
    let target = inflated_mib << 20;
    let mut written = 0u64;
    let lines = if bomb == Bomb::OneCell { valid.max(1) } else { valid };
    for n in 0..lines {
        let row = n + 2;
        write!(zip, r#"<row r="{row}">"#)?;
        for (c, v) in line(prefix, n, seller, buyer, false).iter().enumerate() {
            if bomb == Bomb::OneCell && n == 0 && c == 8 {
                let r = format!("I{row}");
                write!(zip, r#"<c r="{r}" t="inlineStr"><is><t>"#)?;
                let block = vec![b'A'; 1 << 20];
                while written < target {
                    zip.write_all(&block)?;
                    written += block.len() as u64;
                }
                zip.write_all(b"</t></is></c>")?;
            } else {
                zip.write_all(cell(row, c, v, matches!(c, 10 | 11 | 12 | 14 | 15)).as_bytes())?;
            }
        }
        zip.write_all(b"</row>")?;
    }
    let padding = vec![b' '; 30_000];
    let mut row = lines + 2;
    while written < target {
        write!(zip, r#"<row r="{row}">"#)?;
        zip.write_all(&padding)?;
        zip.write_all(b"</row>")?;
        written += padding.len() as u64 + 20;
        row += 1;
    }
    zip.write_all(b"</sheetData></worksheet>")?;
    zip.finish().map_err(std::io::Error::other)?.flush()
}

/// Make every entry of the zip at `path` declare `size` bytes inflated, in its local header and
/// in the central directory (the CRC is left alone): a lying header, as a crafted file has it.
/// Entries must not be zip64.
pub fn lie_about_sizes(path: &Path, size: u32) -> std::io::Result<()> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut bytes = std::fs::read(path)?;
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    let eocd = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .ok_or_else(|| invalid("no end of central directory"))?;
    let entries = u16_at(&bytes, eocd + 10);
    let mut at = u32_at(&bytes, eocd + 16);
    for _ in 0..entries {
        if bytes.get(at..at + 4) != Some(&b"PK\x01\x02"[..]) {
            return Err(invalid("not a central directory entry"));
        }
        if u32_at(&bytes, at + 24) == 0xFFFF_FFFF {
            return Err(invalid("a zip64 entry"));
        }
        let local = u32_at(&bytes, at + 42);
        bytes[at + 24..at + 28].copy_from_slice(&size.to_le_bytes());
        bytes[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        at += 46 + u16_at(&bytes, at + 28) + u16_at(&bytes, at + 30) + u16_at(&bytes, at + 32);
    }
    std::fs::write(path, bytes)
}
