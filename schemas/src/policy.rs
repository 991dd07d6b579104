//! 税收优惠政策标识 and 零税率标识 of an invoice line (seed 000; SPEC "0 needs a
//! preferential-policy mark"). One rule, used by the importer's row rules and by the sandbox
//! when it receives an invoice body.

use std::fmt;

use crate::TaxRate;

/// 零税率标识: why a 0% line carries no tax. The channel's codes are 0–3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroRateMark {
    /// 0 出口零税 (export at zero rate).
    Export,
    /// 1 免税 (exempt).
    Exempt,
    /// 2 不征税 (outside the scope of VAT).
    NotTaxed,
    /// 3 普通零税率.
    Ordinary,
}

impl ZeroRateMark {
    pub const ALL: [ZeroRateMark; 4] =
        [ZeroRateMark::Export, ZeroRateMark::Exempt, ZeroRateMark::NotTaxed, ZeroRateMark::Ordinary];

    /// The stored text (`*_line.zero_rate_mark`).
    pub fn as_str(self) -> &'static str {
        match self {
            ZeroRateMark::Export => "export",
            ZeroRateMark::Exempt => "exempt",
            ZeroRateMark::NotTaxed => "not_taxed",
            ZeroRateMark::Ordinary => "ordinary",
        }
    }

    pub fn from_db(s: &str) -> Option<ZeroRateMark> {
        ZeroRateMark::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The documents' word.
    pub fn label_zh(self) -> &'static str {
        match self {
            ZeroRateMark::Export => "出口零税",
            ZeroRateMark::Exempt => "免税",
            ZeroRateMark::NotTaxed => "不征税",
            ZeroRateMark::Ordinary => "普通零税率",
        }
    }

    /// The channel's `zeroRateFlag`.
    pub fn wire(self) -> &'static str {
        match self {
            ZeroRateMark::Export => "0",
            ZeroRateMark::Exempt => "1",
            ZeroRateMark::NotTaxed => "2",
            ZeroRateMark::Ordinary => "3",
        }
    }

    /// What a person types (the word, or the channel's code) or the wire sends.
    pub fn parse(s: &str) -> Option<ZeroRateMark> {
        let s = s.trim();
        ZeroRateMark::ALL.into_iter().find(|m| m.label_zh() == s || m.wire() == s || m.as_str() == s)
    }
}

impl fmt::Display for ZeroRateMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_zh())
    }
}

/// A line's policy marks as a rule sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyMarks<'a> {
    /// 优惠政策标识: the line uses a preferential policy.
    pub privilege: bool,
    /// 优惠政策内容 (增值税特殊管理), e.g. 免税, 简易征收.
    pub content: Option<&'a str>,
    pub zero_rate: Option<ZeroRateMark>,
}

/// What is wrong with a line's marks: (field, code, message). Fields are the import template's.
pub type PolicyProblem = (&'static str, &'static str, &'static str);

pub const ZERO_RATE_UNMARKED: PolicyProblem =
    ("tax_rate", "ZERO_RATE_UNMARKED", "税率为0的商品行须填写零税率标识或税收优惠政策标识");
pub const PRIVILEGE_CONTENT_MISSING: PolicyProblem =
    ("privilege_content", "PRIVILEGE_CONTENT_MISSING", "税收优惠政策标识为是时须填写优惠政策内容");
pub const ZERO_RATE_MARK_ON_TAXED_LINE: PolicyProblem =
    ("zero_rate_mark", "ZERO_RATE_MARK_ON_TAXED_LINE", "零税率标识只能用于税率为0的商品行");

/// The rule: a 0% line names why (a zero-rate mark or a preferential policy); a policy names
/// its content; a zero-rate mark only on a 0% line.
pub fn check(rate: TaxRate, marks: PolicyMarks<'_>) -> Vec<PolicyProblem> {
    let mut out = Vec::new();
    let zero = rate.value().is_zero();
    if zero && marks.zero_rate.is_none() && !marks.privilege {
        out.push(ZERO_RATE_UNMARKED);
    }
    if marks.privilege && marks.content.is_none_or(|c| c.trim().is_empty()) {
        out.push(PRIVILEGE_CONTENT_MISSING);
    }
    if !zero && marks.zero_rate.is_some() {
        out.push(ZERO_RATE_MARK_ON_TAXED_LINE);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> TaxRate {
        TaxRate::parse(s).unwrap()
    }

    #[test]
    fn a_zero_rate_line_needs_a_reason_and_a_reason_needs_a_zero_rate() {
        let none = PolicyMarks::default();
        assert_eq!(check(rate("0%"), none), [ZERO_RATE_UNMARKED]);
        assert!(check(rate("13%"), none).is_empty());
        let exempt = PolicyMarks { zero_rate: Some(ZeroRateMark::Exempt), ..none };
        assert!(check(rate("0"), exempt).is_empty());
        assert_eq!(check(rate("6%"), exempt), [ZERO_RATE_MARK_ON_TAXED_LINE]);
        let policy = PolicyMarks { privilege: true, content: Some("免税"), ..none };
        assert!(check(rate("0%"), policy).is_empty());
        assert!(check(rate("3%"), PolicyMarks { content: Some("简易征收"), ..policy }).is_empty());
        assert_eq!(
            check(rate("0%"), PolicyMarks { content: Some(" "), ..policy }),
            [PRIVILEGE_CONTENT_MISSING]
        );
    }

    #[test]
    fn marks_parse_from_words_codes_and_stored_text() {
        for m in ZeroRateMark::ALL {
            assert_eq!(ZeroRateMark::parse(m.label_zh()), Some(m));
            assert_eq!(ZeroRateMark::parse(m.wire()), Some(m));
            assert_eq!(ZeroRateMark::from_db(m.as_str()), Some(m));
        }
        assert_eq!(ZeroRateMark::parse("零税"), None);
    }
}
