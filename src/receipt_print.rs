//! `fapiao receipt print` (打印, seed 003): a receipt code's QR code as a PNG, and a PDF page with
//! the QR code, the seller, serial, totals, validity and the bottom remark.
//!
//! Crates: `qrcode` (the QR matrix, no image features), `png` (encoding the PNG), `pdf-writer`
//! (typst's maintained PDF writer: no PDF written by hand). They live in the binary, the only
//! place that prints. Chinese text in the PDF uses the standard Adobe-GB1 font STSong-Light with
//! the UniGB-UCS2-H encoding, which PDF readers supply themselves, so no font is embedded.

use std::path::{Path, PathBuf};

use fapiao_usecases::receipts::{ReceiptDetail, ReceiptPreview};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module in the PNG, and the quiet zone in modules (the standard's 4).
const SCALE: usize = 8;
const QUIET: usize = 4;

pub struct Printed {
    pub png: PathBuf,
    pub pdf: PathBuf,
}

/// The QR code of `link`: its width in modules and the dark modules, row by row.
pub fn matrix(link: &str) -> anyhow::Result<(usize, Vec<bool>)> {
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M)?;
    let dark = code.to_colors().into_iter().map(|c| c == Color::Dark).collect();
    Ok((code.width(), dark))
}

/// A grayscale PNG of the QR code with its quiet zone.
pub fn png(width: usize, dark: &[bool]) -> anyhow::Result<Vec<u8>> {
    png_inked(width, dark, 0)
}

/// The PNG with modules of gray level `ink` (0 black).
fn png_inked(width: usize, dark: &[bool], ink: u8) -> anyhow::Result<Vec<u8>> {
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..width {
        for x in 0..width {
            if dark[y * width + x] {
                for py in 0..SCALE {
                    let row = (y + QUIET) * SCALE + py;
                    let start = row * side + (x + QUIET) * SCALE;
                    pixels[start..start + SCALE].fill(ink);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(out)
}

/// UCS-2 big-endian, as UniGB-UCS2-H wants (every character of the BMP; others become '?').
fn ucs2(text: &str) -> Vec<u8> {
    text.chars()
        .flat_map(|c| {
            let u = u16::try_from(u32::from(c)).unwrap_or(u16::from(b'?'));
            u.to_be_bytes()
        })
        .collect()
}

/// One A6 page (297 × 420 pt): texts above, the QR code, the link below.
pub fn pdf(d: &ReceiptDetail, width: usize, dark: &[bool]) -> Vec<u8> {
    let (catalog, tree, page, content_id, font, cid, descriptor) =
        (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5), Ref::new(6), Ref::new(7));
    let font_name = Name(b"F1");
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let (w, h) = (297.0_f32, 420.0_f32);
    {
        let mut p = pdf.page(page);
        p.parent(tree).media_box(Rect::new(0.0, 0.0, w, h)).contents(content_id);
        p.resources().fonts().pair(font_name, font);
    }
    pdf.type0_font(font)
        .base_font(Name(b"STSong-Light-UniGB-UCS2-H"))
        .encoding_predefined(Name(b"UniGB-UCS2-H"))
        .descendant_font(cid);
    {
        let mut cid_font = pdf.cid_font(cid);
        cid_font
            .subtype(CidFontType::Type0)
            .base_font(Name(b"STSong-Light"))
            .system_info(SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"GB1"), supplement: 2 })
            .font_descriptor(descriptor)
            .default_width(1000.0);
        // UniGB-UCS2-H maps ASCII (U+0020–U+007E) to CIDs 1–95: half-width. Without these widths
        // a reader spaced every digit a full em and the totals line ran off the page.
        cid_font.widths().same(1, 95, 500.0);
    }
    pdf.font_descriptor(descriptor)
        .name(Name(b"STSong-Light"))
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(-25.0, -254.0, 1000.0, 880.0))
        .italic_angle(0.0)
        .ascent(880.0)
        .descent(-120.0)
        .cap_height(880.0)
        .stem_v(93.0);

    let r = &d.receipt;
    let mut c = Content::new();
    let mut y = h - 36.0;
    let line = |c: &mut Content, size: f32, text: &str, y: &mut f32| {
        let bytes = ucs2(text);
        c.begin_text();
        c.set_font(font_name, size);
        c.next_line(24.0, *y);
        c.show(Str(&bytes));
        c.end_text();
        *y -= size + 8.0;
    };
    line(&mut c, 16.0, "扫码开具发票", &mut y);
    line(&mut c, 10.0, &format!("销方税号 {}", r.tax_no), &mut y);
    line(&mut c, 10.0, &format!("小票流水号 {}", r.serial_no), &mut y);
    line(&mut c, 12.0, &format!("价税合计 ¥{}（金额 {} 税额 {}）", r.total, r.amount, r.tax), &mut y);
    line(&mut c, 10.0, &format!("有效期至 {}", r.valid_until.format("%Y-%m-%d %H:%M UTC")), &mut y);
    // The QR code, 180 pt wide with its quiet zone, centred.
    let side = 180.0_f32;
    let module = side / (width + 2 * QUIET) as f32;
    let left = (w - side) / 2.0;
    let top = y - 4.0;
    c.set_fill_gray(0.0);
    for row in 0..width {
        for col in 0..width {
            if dark[row * width + col] {
                let x = left + (col + QUIET) as f32 * module;
                let yy = top - (row + QUIET + 1) as f32 * module;
                c.rect(x, yy, module, module);
            }
        }
    }
    c.fill_nonzero();
    let mut y = top - side - 16.0;
    if let Some(remark) = &r.bottom_remark {
        line(&mut c, 10.0, remark, &mut y);
    }
    line(&mut c, 8.0, "请使用手机扫描二维码，填写抬头后提交", &mut y);
    let content = c.finish();
    pdf.stream(content_id, &content);
    pdf.finish()
}

/// Write `{dir}/receipt-{id}-{serial}.png` and `.pdf`.
pub fn print(d: &ReceiptDetail, dir: &Path) -> anyhow::Result<Printed> {
    std::fs::create_dir_all(dir)?;
    let (width, dark) = matrix(&d.link)?;
    let stem = format!("receipt-{}-{}", d.receipt.id, d.receipt.serial_no);
    let png_path = dir.join(format!("{stem}.png"));
    let pdf_path = dir.join(format!("{stem}.pdf"));
    std::fs::write(&png_path, png(width, &dark)?)?;
    std::fs::write(&pdf_path, pdf(d, width, &dark))?;
    Ok(Printed { png: png_path, pdf: pdf_path })
}

/// 预览: `{dir}/receipt-preview-{serial}.png`, the layout of the code before it is saved. No
/// link is signed for a preview, so its QR code (in gray) holds a note saying so, not a link.
pub fn preview_png(p: &ReceiptPreview, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let r = &p.receipt;
    let note = format!("预览（未保存，不能开票）{} {} 价税合计{}", r.tax_no, r.serial_no, p.total);
    let (width, dark) = matrix(&note)?;
    let path = dir.join(format!("receipt-preview-{}.png", r.serial_no));
    std::fs::write(&path, png_inked(width, &dark, 128)?)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_holds_the_qr_code_at_its_scale() {
        let (width, dark) = matrix("http://127.0.0.1:8080/r?s=91310000MA1FL2AB09&o=RC-1").unwrap();
        assert_eq!(dark.len(), width * width);
        // Finder pattern: the top-left module is dark, the quiet zone white.
        assert!(dark[0]);
        let bytes = png(width, &dark).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let side = (width + 2 * QUIET) * SCALE;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        assert_eq!(buf[0], 255, "quiet zone");
        assert_eq!(buf[(QUIET * SCALE) * side + QUIET * SCALE], 0, "first module");
    }

    #[test]
    fn ascii_is_half_width_in_the_pdf_font() {
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let receipt = fapiao_store::receipts::ReceiptRow {
            id: 1,
            tax_no: "91310000MA1FL2AB09".into(),
            serial_no: "P-1".into(),
            origin: "manual".into(),
            device_no: None,
            etax_account: None,
            kinds: vec!["digital_ordinary".into()],
            default_kind: "digital_ordinary".into(),
            valid_until: at("2026-12-02T00:00:00Z"),
            bottom_remark: Some("谢谢".into()),
            drawer: "张三".into(),
            payee: None,
            reviewer: None,
            remark: None,
            amount: "51.88".parse().unwrap(),
            tax: "3.12".parse().unwrap(),
            total: "55.00".parse().unwrap(),
            disabled_at: None,
            created_by: "cli".into(),
            created_at: at("2026-12-01T00:00:00Z"),
        };
        let detail = ReceiptDetail {
            receipt,
            lines: Vec::new(),
            link: "http://127.0.0.1/r?s=1".into(),
            claimed_by: None,
        };
        let (width, dark) = matrix(&detail.link).unwrap();
        let bytes = pdf(&detail, width, &dark);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/W [1 95 500]"), "{text}");
        assert!(text.contains("/DW 1000"));
    }

    #[test]
    fn ucs2_is_big_endian() {
        assert_eq!(ucs2("票A"), vec![0x79, 0x68, 0x00, 0x41]);
    }
}
