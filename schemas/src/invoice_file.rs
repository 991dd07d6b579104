//! Invoice files: the formats the channel serves (版式文件 PDF/OFD, and XML), and the names a
//! user gives downloaded files with a template such as `{发票号码}_{购方名称}`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Pdf,
    Ofd,
    Xml,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Pdf => "pdf",
            FileFormat::Ofd => "ofd",
            FileFormat::Xml => "xml",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a file format: pdf, ofd or xml")]
pub struct UnknownFormat(pub String);

impl FromStr for FileFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pdf" => Ok(FileFormat::Pdf),
            "ofd" => Ok(FileFormat::Ofd),
            "xml" => Ok(FileFormat::Xml),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// The fields a name template may use, by their documented names.
pub const FIELDS: &[&str] =
    &["发票号码", "发票代码", "开票日期", "购方名称", "购方税号", "销方税号", "价税合计", "单据编号"];

/// The default name: the invoice number.
pub const DEFAULT_TEMPLATE: &str = "{发票号码}";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown field {{{0}}} in the name template; known: {known}", known = FIELDS.join(", "))]
    UnknownField(String),
    #[error("unclosed {{ in the name template")]
    Unclosed,
    #[error("the name template is empty")]
    Empty,
}

/// A checked name template: literal text and `{field}`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(&'static str),
}

impl NameTemplate {
    pub fn parse(template: &str) -> Result<NameTemplate, TemplateError> {
        if template.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or(TemplateError::Unclosed)? + open;
            let name = rest[open + 1..close].trim();
            let field = FIELDS
                .iter()
                .find(|f| **f == name)
                .ok_or_else(|| TemplateError::UnknownField(name.to_string()))?;
            parts.push(Part::Field(field));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(NameTemplate(parts))
    }

    /// The file's name without extension: fields filled from `values` (missing ones empty),
    /// characters unsafe in a file name replaced by `_`.
    pub fn render(&self, values: &HashMap<&str, String>) -> String {
        let raw: String = self
            .0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Field(f) => values.get(f).cloned().unwrap_or_default(),
            })
            .collect();
        let safe: String = raw
            .chars()
            .map(|c| {
                if matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let trimmed = safe.trim().trim_matches('.').to_string();
        if trimmed.is_empty() { "_".into() } else { trimmed }
    }
}

/// Names made unique in the order they come: the second `a` is `a(2)`, the third `a(3)`.
#[derive(Debug, Default)]
pub struct UniqueNames(HashMap<String, u32>);

impl UniqueNames {
    pub fn take(&mut self, stem: &str, format: FileFormat) -> String {
        let n = self.0.entry(stem.to_string()).or_insert(0);
        *n += 1;
        match *n {
            1 => format!("{stem}.{format}"),
            k => format!("{stem}({k}).{format}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> HashMap<&'static str, String> {
        HashMap::from([
            ("发票号码", "26312000000000000001".to_string()),
            ("购方名称", "深圳/示例:公司*".to_string()),
        ])
    }

    #[test]
    fn fields_are_filled_and_unsafe_characters_replaced() {
        let t = NameTemplate::parse("{发票号码}_{购方名称}").unwrap();
        assert_eq!(t.render(&values()), "26312000000000000001_深圳_示例_公司_");
        let t = NameTemplate::parse("发票-{开票日期}").unwrap();
        assert_eq!(t.render(&values()), "发票-", "a missing field is empty");
        assert_eq!(
            NameTemplate::parse("../{发票代码}").unwrap().render(&values()),
            "_",
            "no way out of the folder"
        );
    }

    #[test]
    fn unknown_fields_and_broken_templates_are_refused() {
        assert_eq!(NameTemplate::parse("{金额}"), Err(TemplateError::UnknownField("金额".into())));
        assert_eq!(NameTemplate::parse("{发票号码"), Err(TemplateError::Unclosed));
        assert_eq!(NameTemplate::parse("  "), Err(TemplateError::Empty));
    }

    #[test]
    fn duplicates_are_numbered() {
        let mut names = UniqueNames::default();
        assert_eq!(names.take("a", FileFormat::Pdf), "a.pdf");
        assert_eq!(names.take("a", FileFormat::Pdf), "a(2).pdf");
        assert_eq!(names.take("b", FileFormat::Pdf), "b.pdf");
        assert_eq!(names.take("a", FileFormat::Pdf), "a(3).pdf");
    }
}
