//! The guard against decompression bombs: every part of a zipped workbook (xlsx, xlsm, xlsb, ods)
//! is inflated once, block by block, before calamine opens the file, and refused when it is
//! beyond what an import may hold.
//!
//! Why before and not alongside: calamine's XML reader buffers a whole event — a text node, a
//! tag — and keeps the shared strings table whole. A sheet that is one 300 MiB text node, or a
//! shared string of 1.2 GB, cost twice its size in memory (issue 14.3). Once this pass has seen
//! every part, what calamine reads is bounded: no part inflates beyond
//! [`ReadLimits::max_inflated_bytes`], no text beyond [`ReadLimits::max_cell_chars`] characters
//! (the text of one cell, one shared string or inline string including its rich-text runs, or any
//! text between two tags), no tag beyond [`MAX_TAG_BYTES`], the shared strings table within
//! [`ReadLimits::max_shared_strings_bytes`] and a sheet within [`MAX_MERGED_REGIONS`]. The bytes
//! are counted as they come out of the inflater, so a zip header that declares a small size does
//! not let a large part through (the zip crate also stops a part at its declared size: that is
//! refused as a size mismatch); a declared size beyond the limit is refused before inflating.
//!
//! The same pass tells whether a worksheet has merged regions (`mergeCells`), which a streaming
//! read only sees after all the cells.

use std::io::Read;
use std::path::Path;

use super::read::ReadError;

/// The limits of what one file may hold (`[import]` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// No part of a zipped workbook may inflate beyond this (`import.max_inflated_mib`).
    pub max_inflated_bytes: u64,
    /// No cell (shared or inline string, value) may hold more characters (`import.max_cell_chars`).
    pub max_cell_chars: u64,
    /// The memory the shared strings table may take, estimated (`import.max_shared_strings_mib`).
    pub max_shared_strings_bytes: u64,
}

impl ReadLimits {
    pub fn from_settings(s: &fapiao_schemas::config::ImportSettings) -> ReadLimits {
        ReadLimits {
            max_inflated_bytes: s.max_inflated_mib << 20,
            max_cell_chars: s.max_cell_chars,
            max_shared_strings_bytes: s.max_shared_strings_mib << 20,
        }
    }
}

/// The defaults of `config/default.toml`.
impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits::from_settings(&fapiao_schemas::config::ImportSettings::default())
    }
}

/// No tag (element with its attributes) may be longer: the longest an Excel file has is its
/// root element with a dozen namespaces, about 1 KiB.
pub const MAX_TAG_BYTES: u64 = 64 << 10;
/// No sheet may list more merged regions (16 bytes each in memory).
pub const MAX_MERGED_REGIONS: u64 = 1 << 20;
/// What one shared string costs besides its text: the `String` itself and the allocator's
/// rounding (calamine keeps them in a `Vec<String>`).
const BYTES_PER_SHARED_STRING: u64 = 32;

/// What the guard learnt about a file it let through.
#[derive(Debug, Default)]
pub struct Inspection {
    /// A worksheet has merged regions.
    pub merged_cells: bool,
}

/// A refusal: which limit, in which part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The part inflates (or declares it inflates) beyond `limit_mib`.
    PartTooLarge { part: String, limit_mib: u64 },
    /// The part inflates beyond the size its zip headers declare (`declared` bytes): crafted or
    /// damaged.
    SizeMismatch { part: String, declared: u64 },
    /// A cell (or text between tags) longer than `limit` characters; `cell` its reference when known.
    CellTooLong { part: String, cell: Option<String>, limit: u64 },
    /// A tag longer than [`MAX_TAG_BYTES`].
    TagTooLong { part: String },
    /// The shared strings table would take more than `limit_mib` in memory.
    SharedStringsTooLarge { part: String, limit_mib: u64 },
    /// More than [`MAX_MERGED_REGIONS`] merged regions in one sheet.
    TooManyMergedRegions { part: String },
}

impl Refusal {
    /// Stable English code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::PartTooLarge { .. } => "FILE_PART_TOO_LARGE",
            Refusal::SizeMismatch { .. } => "FILE_PART_SIZE_MISMATCH",
            Refusal::CellTooLong { .. } => "CELL_TOO_LONG",
            Refusal::TagTooLong { .. } => "FILE_TAG_TOO_LONG",
            Refusal::SharedStringsTooLarge { .. } => "SHARED_STRINGS_TOO_LARGE",
            Refusal::TooManyMergedRegions { .. } => "TOO_MANY_MERGED_CELLS",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::PartTooLarge { part, limit_mib } => write!(
                f,
                "文件中的 {part} 解压后超过 {limit_mib} MiB，拒绝导入（{part} inflates beyond import.max_inflated_mib = {limit_mib}）"
            ),
            Refusal::SizeMismatch { part, declared } => write!(
                f,
                "文件中的 {part} 解压后大于 zip 目录声明的 {declared} 字节，文件被篡改或已损坏，拒绝导入（{part} inflates beyond its declared size）"
            ),
            Refusal::CellTooLong { part, cell: Some(cell), limit } => write!(
                f,
                "单元格 {cell} 的内容超过 {limit} 个字符，拒绝导入（a cell of {part} is longer than import.max_cell_chars = {limit}）"
            ),
            Refusal::CellTooLong { part, cell: None, limit } => write!(
                f,
                "文件中的 {part} 有超过 {limit} 个字符的单元格或文本，拒绝导入（text in {part} longer than import.max_cell_chars = {limit}）"
            ),
            Refusal::TagTooLong { part } => write!(
                f,
                "文件中的 {part} 有超过 {} KiB 的 XML 标签，不是正常的表格文件，拒绝导入（an XML tag beyond {} KiB）",
                MAX_TAG_BYTES >> 10,
                MAX_TAG_BYTES >> 10
            ),
            Refusal::SharedStringsTooLarge { part, limit_mib } => write!(
                f,
                "文件中的共享字符串表（{part}）读入需要超过 {limit_mib} MiB 内存，拒绝导入（beyond import.max_shared_strings_mib = {limit_mib}）"
            ),
            Refusal::TooManyMergedRegions { part } => write!(
                f,
                "文件中的 {part} 有超过 {MAX_MERGED_REGIONS} 个合并单元格区域，拒绝导入（more than {MAX_MERGED_REGIONS} merged regions）"
            ),
        }
    }
}

/// Inflate every part of the zipped workbook at `path` once and refuse it when a part is beyond
/// `limits`; otherwise say what was learnt on the way.
pub fn inspect(path: &Path, limits: &ReadLimits) -> Result<Inspection, ReadError> {
    let open_err = |e: &dyn std::fmt::Display| ReadError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| open_err(&e))?;
    // Not a zip (an encrypted workbook is an OLE file, a renamed .xls, …): nothing is inflated;
    // calamine says what it is.
    let Ok(mut archive) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Ok(Inspection::default());
    };
    let mut inspection = Inspection::default();
    let mut buf = vec![0u8; 1 << 16];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| open_err(&e))?;
        let part = entry.name().map_err(|e| open_err(&e))?.to_string();
        let too_large = || {
            ReadError::Refused(Refusal::PartTooLarge {
                part: part.clone(),
                limit_mib: limits.max_inflated_bytes >> 20,
            })
        };
        // The declared size, before inflating anything; the bytes are counted below all the same.
        if entry.size() > limits.max_inflated_bytes {
            return Err(too_large());
        }
        let declared = entry.size();
        let mut scan = Scan::new(&part, limits);
        let mut inflated = 0u64;
        loop {
            // The zip crate stops a part that inflates beyond its declared size; the bytes are
            // counted here all the same, whatever a header says.
            let n = match entry.read(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::InvalidData
                        && e.to_string().contains("larger than its declared") =>
                {
                    return Err(ReadError::Refused(Refusal::SizeMismatch { part, declared }));
                }
                Err(e) => return Err(open_err(&e)),
            };
            if n == 0 {
                break;
            }
            inflated += n as u64;
            if inflated > limits.max_inflated_bytes {
                return Err(too_large());
            }
            if let Some(scan) = &mut scan {
                scan.feed(&buf[..n]).map_err(ReadError::Refused)?;
            }
        }
        if let Some(scan) = scan {
            inspection.merged_cells |= scan.finish().map_err(ReadError::Refused)?;
        }
    }
    Ok(inspection)
}

/// The lexical pass over one XML part: tags and text, with nothing kept but counters.
struct Scan<'a> {
    part: &'a str,
    limits: &'a ReadLimits,
    shared_strings: bool,
    sheet: bool,
    in_tag: bool,
    tag_len: u64,
    /// The first bytes of the current tag (enough for its name and a few attributes).
    head: Vec<u8>,
    /// Characters of text since the cell, string or text run began.
    text_chars: u64,
    /// Inside `<si>` / `<is>`: a string's rich-text runs add up.
    in_string: bool,
    /// Inside `&…;`: an entity is one character.
    in_entity: bool,
    /// Inside `<c …>`, whose tag's head is `last_cell` (for naming the cell).
    in_cell: bool,
    last_cell: Vec<u8>,
    merged: bool,
    merged_regions: u64,
    strings: u64,
    string_bytes: u64,
    unique_count: u64,
}

const HEAD_BYTES: usize = 256;

impl<'a> Scan<'a> {
    /// A scan for XML parts; `None` for the others (only counted).
    fn new(part: &'a str, limits: &'a ReadLimits) -> Option<Scan<'a>> {
        let lower = part.to_ascii_lowercase();
        if !(lower.ends_with(".xml") || lower.ends_with(".rels") || lower.ends_with(".vml")) {
            return None;
        }
        Some(Scan {
            part,
            limits,
            shared_strings: lower.ends_with("sharedstrings.xml"),
            sheet: lower.contains("worksheets/"),
            in_tag: false,
            tag_len: 0,
            head: Vec::with_capacity(HEAD_BYTES),
            text_chars: 0,
            in_string: false,
            in_entity: false,
            in_cell: false,
            last_cell: Vec::new(),
            merged: false,
            merged_regions: 0,
            strings: 0,
            string_bytes: 0,
            unique_count: 0,
        })
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refusal> {
        while !bytes.is_empty() {
            if self.in_tag {
                let (inside, rest, closed) = match memchr::memchr(b'>', bytes) {
                    Some(k) => (&bytes[..k], &bytes[k + 1..], true),
                    None => (bytes, &[][..], false),
                };
                self.tag_len += inside.len() as u64;
                if self.tag_len > MAX_TAG_BYTES {
                    return Err(Refusal::TagTooLong { part: self.part.into() });
                }
                if closed && self.head.is_empty() {
                    // The whole tag lies in this block (nearly every tag): read it where it is.
                    // Copying each tag's head first took a tenth of the guard's time.
                    self.in_tag = false;
                    self.tag(&inside[..inside.len().min(HEAD_BYTES)])?;
                } else {
                    let room = HEAD_BYTES.saturating_sub(self.head.len());
                    self.head.extend_from_slice(&inside[..inside.len().min(room)]);
                    if closed {
                        self.in_tag = false;
                        let head = std::mem::take(&mut self.head);
                        self.tag(&head)?;
                        self.head = head;
                        self.head.clear();
                    }
                }
                bytes = rest;
            } else {
                let (text, rest, opened) = match memchr::memchr(b'<', bytes) {
                    Some(k) => (&bytes[..k], &bytes[k + 1..], true),
                    None => (bytes, &[][..], false),
                };
                self.text(text)?;
                if opened {
                    self.in_tag = true;
                    self.tag_len = 0;
                    self.head.clear();
                }
                bytes = rest;
            }
        }
        Ok(())
    }

    /// Text between tags: counted in characters (UTF-8 continuation bytes and the bytes of an
    /// entity after its `&` do not count).
    fn text(&mut self, mut text: &[u8]) -> Result<(), Refusal> {
        if text.is_empty() {
            return Ok(()); // between two tags, most often
        }
        if self.in_string && self.shared_strings {
            self.string_bytes += text.len() as u64;
        }
        while !text.is_empty() {
            if self.in_entity {
                match memchr::memchr(b';', text) {
                    Some(k) => {
                        self.in_entity = false;
                        text = &text[k + 1..];
                    }
                    None => text = &[],
                }
                continue;
            }
            let (plain, rest) = match memchr::memchr(b'&', text) {
                Some(k) => {
                    self.in_entity = true;
                    // The `&` counts as the entity's one character.
                    (&text[..=k], &text[k + 1..])
                }
                None => (text, &[][..]),
            };
            self.text_chars += plain.iter().filter(|&&b| (b & 0xC0) != 0x80).count() as u64;
            text = rest;
        }
        if self.text_chars > self.limits.max_cell_chars {
            let cell = if self.in_cell { cell_ref(&self.last_cell) } else { None };
            return Err(Refusal::CellTooLong {
                part: self.part.into(),
                cell,
                limit: self.limits.max_cell_chars,
            });
        }
        Ok(())
    }

    /// A tag just ended; `head` is its first bytes (at most [`HEAD_BYTES`]).
    fn tag(&mut self, head: &[u8]) -> Result<(), Refusal> {
        let (end, name) = match head.strip_prefix(b"/") {
            Some(rest) => (true, rest),
            None => (false, head),
        };
        let name_end = name
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
            .unwrap_or(name.len());
        let full = &name[..name_end];
        // A name is a few bytes: a plain loop beats memrchr's set-up.
        let local = match full.iter().rposition(|&b| b == b':') {
            Some(k) => &full[k + 1..],
            None => full,
        };
        let string = local == b"si" || local == b"is";
        let self_closing = !end && name.last() == Some(&b'/');
        if string {
            self.in_string = !end && !self_closing;
            self.text_chars = 0;
            if !end && self.shared_strings {
                self.strings += 1;
            }
        } else if !self.in_string {
            // Outside a string every text run stands alone.
            self.text_chars = 0;
        }
        if end {
            if local == b"c" {
                self.in_cell = false;
            }
            return Ok(());
        }
        match local {
            b"c" if self.sheet => {
                self.in_cell = !self_closing;
                self.last_cell.clear();
                self.last_cell.extend_from_slice(name);
            }
            b"mergeCells" if self.sheet => self.merged = true,
            b"mergeCell" if self.sheet => {
                self.merged_regions += 1;
                if self.merged_regions > MAX_MERGED_REGIONS {
                    return Err(Refusal::TooManyMergedRegions { part: self.part.into() });
                }
            }
            b"sst" if self.shared_strings => {
                self.unique_count = attribute(name, b"uniqueCount").unwrap_or(0);
                self.check_shared_strings()?;
            }
            _ => {}
        }
        if string && self.shared_strings {
            self.check_shared_strings()?;
        }
        Ok(())
    }

    /// The memory calamine's table of shared strings takes: one `String` per string (reserved up
    /// front from `uniqueCount`) plus the text.
    fn check_shared_strings(&self) -> Result<(), Refusal> {
        let estimate =
            self.unique_count.max(self.strings).saturating_mul(BYTES_PER_SHARED_STRING) + self.string_bytes;
        if estimate > self.limits.max_shared_strings_bytes {
            return Err(Refusal::SharedStringsTooLarge {
                part: self.part.into(),
                limit_mib: self.limits.max_shared_strings_bytes >> 20,
            });
        }
        Ok(())
    }

    /// The part was read to its end: whether it was a sheet with merged regions.
    fn finish(self) -> Result<bool, Refusal> {
        if self.shared_strings {
            self.check_shared_strings()?;
        }
        Ok(self.merged)
    }
}

/// `name="digits"` in a tag's head.
fn attribute(head: &[u8], name: &[u8]) -> Option<u64> {
    let mut pattern = Vec::with_capacity(name.len() + 2);
    pattern.extend_from_slice(name);
    pattern.extend_from_slice(b"=\"");
    let at = memchr::memmem::find(head, &pattern)? + pattern.len();
    let digits: Vec<u8> = head[at..].iter().copied().take_while(u8::is_ascii_digit).collect();
    // Too many digits for a u64: as large as can be.
    Some(std::str::from_utf8(&digits).ok()?.parse().unwrap_or(u64::MAX))
}

/// The `r="I2"` of a `<c …` tag's head.
fn cell_ref(head: &[u8]) -> Option<String> {
    let at = memchr::memmem::find(head, b" r=\"")? + 4;
    let end = memchr::memchr(b'"', &head[at..])?;
    String::from_utf8(head[at..at + end].to_vec()).ok().filter(|r| !r.is_empty() && r.len() <= 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ReadLimits {
        ReadLimits { max_inflated_bytes: 1 << 20, max_cell_chars: 10, max_shared_strings_bytes: 4096 }
    }

    fn scan(part: &str, xml: &str, block: usize) -> Result<bool, Refusal> {
        let limits = limits();
        let mut s = Scan::new(part, &limits).unwrap();
        for chunk in xml.as_bytes().chunks(block) {
            s.feed(chunk)?;
        }
        s.finish()
    }

    const SHEET: &str = "xl/worksheets/sheet1.xml";

    #[test]
    fn cells_are_counted_in_characters_across_blocks() {
        for block in [1, 3, 7, 4096] {
            // Ten Chinese characters (30 bytes) and an entity are within ten characters.
            let ok = "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>一二三四五六七八九&amp;</t></is></c></row></sheetData></worksheet>";
            assert_eq!(scan(SHEET, ok, block), Ok(false), "block {block}");
            // Rich-text runs of one string add up.
            let rich = "<worksheet><row><c r=\"B7\" t=\"inlineStr\"><is><r><t>abcdef</t></r><r><t>ghijk</t></r></is></c></row></worksheet>";
            assert_eq!(
                scan(SHEET, rich, block),
                Err(Refusal::CellTooLong { part: SHEET.into(), cell: Some("B7".into()), limit: 10 }),
                "block {block}"
            );
            // Whitespace between rows is text too; each run stands alone.
            let spaces =
                format!("<worksheet><row>{}</row><row>{}</row></worksheet>", " ".repeat(10), " ".repeat(10));
            assert_eq!(scan(SHEET, &spaces, block), Ok(false));
            let merged = "<worksheet><sheetData/><mergeCells count=\"1\"><mergeCell ref=\"A1:A2\"/></mergeCells></worksheet>";
            assert_eq!(scan(SHEET, merged, block), Ok(true));
        }
    }

    #[test]
    fn shared_strings_are_estimated_with_their_declared_count() {
        let part = "xl/sharedStrings.xml";
        let ok = "<sst xmlns=\"x\" count=\"2\" uniqueCount=\"2\"><si><t>a</t></si><si><t>b</t></si></sst>";
        assert_eq!(scan(part, ok, 5), Ok(false));
        let lying =
            "<sst xmlns=\"x\" count=\"2\" uniqueCount=\"99999999999999999999999\"><si><t>a</t></si></sst>";
        assert!(matches!(scan(part, lying, 5), Err(Refusal::SharedStringsTooLarge { .. })));
        let many = format!("<sst>{}</sst>", "<si><t>a</t></si>".repeat(200));
        assert!(matches!(scan(part, &many, 64), Err(Refusal::SharedStringsTooLarge { .. })));
    }

    #[test]
    fn a_long_tag_is_refused() {
        let xml = format!("<worksheet a=\"{}\"/>", "x".repeat(MAX_TAG_BYTES as usize));
        assert_eq!(scan(SHEET, &xml, 4096), Err(Refusal::TagTooLong { part: SHEET.into() }));
    }
}
