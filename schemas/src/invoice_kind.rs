//! Invoice kinds (发票种类) and their code/number formats.
//!
//! 税控 (tax-control) invoices carry a 10- or 12-digit code and an 8-digit number; 数电 (fully
//! digital) invoices a 20-digit number and no code (reference/domain-facts.md §2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::messages::Coded;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// 数电票（增值税专用发票）
    DigitalSpecial,
    /// 数电票（普通发票）
    DigitalOrdinary,
    /// 增值税专用发票 (paper)
    TaxctlSpecial,
    /// 增值税普通发票 (paper)
    TaxctlOrdinary,
    /// 增值税普通发票（卷式）
    TaxctlRoll,
    /// 增值税电子普通发票
    TaxctlEOrdinary,
    /// 增值税电子专用发票
    TaxctlESpecial,
    /// 电子发票（航空运输电子客票行程单）: an input kind only (we never issue it).
    DigitalAirTicket,
    /// 电子发票（铁路电子客票）: an input kind only (we never issue it).
    DigitalRailTicket,
}

/// How an invoice of this kind is red-flushed (SPEC.md "Red-flush", three tracks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedFlushTrack {
    /// Tax-control ordinary: red-flush directly.
    Direct,
    /// Tax-control special: a red info sheet (红字信息表) approved by the bureau first.
    RedInfoSheet,
    /// 数电: a red confirmation form (红字确认单).
    ConfirmationForm,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceNumberError {
    #[error("unknown invoice kind {0:?}")]
    UnknownKind(String),
    #[error("invoice code {0:?} must be 10 or 12 digits")]
    Code(String),
    #[error("invoice number {0:?} must be 8 digits")]
    TaxctlNumber(String),
    #[error("数电 invoice number {0:?} must be 20 digits")]
    DigitalNumber(String),
    #[error("数电 invoices have no invoice code, got {0:?}")]
    UnexpectedCode(String),
}

impl Coded for InvoiceNumberError {
    fn code(&self) -> &'static str {
        match self {
            InvoiceNumberError::UnknownKind(_) => "INVOICE_KIND_UNKNOWN",
            InvoiceNumberError::Code(_) => "INVOICE_CODE_FORMAT",
            InvoiceNumberError::TaxctlNumber(_) | InvoiceNumberError::DigitalNumber(_) => {
                "INVOICE_NUMBER_FORMAT"
            }
            InvoiceNumberError::UnexpectedCode(_) => "INVOICE_CODE_UNEXPECTED",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            InvoiceNumberError::UnknownKind(k) => format!("无法识别的发票种类：{k}"),
            InvoiceNumberError::Code(c) => format!("发票代码{c}应为10位或12位数字"),
            InvoiceNumberError::TaxctlNumber(n) => format!("发票号码{n}应为8位数字"),
            InvoiceNumberError::DigitalNumber(n) => format!("数电发票号码{n}应为20位数字"),
            InvoiceNumberError::UnexpectedCode(c) => format!("数电发票不应有发票代码：{c}"),
        }
    }
}

impl InvoiceKind {
    pub const ALL: [InvoiceKind; 9] = [
        InvoiceKind::DigitalSpecial,
        InvoiceKind::DigitalOrdinary,
        InvoiceKind::TaxctlSpecial,
        InvoiceKind::TaxctlOrdinary,
        InvoiceKind::TaxctlRoll,
        InvoiceKind::TaxctlEOrdinary,
        InvoiceKind::TaxctlESpecial,
        InvoiceKind::DigitalAirTicket,
        InvoiceKind::DigitalRailTicket,
    ];

    /// The kinds fapiao issues (the output side): all but the 数电 transport tickets, which are
    /// received only.
    pub const ISSUABLE: &'static [InvoiceKind] = InvoiceKind::ALL.split_at(7).0;

    /// The identifier used in code, config and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::DigitalSpecial => "digital_special",
            InvoiceKind::DigitalOrdinary => "digital_ordinary",
            InvoiceKind::TaxctlSpecial => "taxctl_special",
            InvoiceKind::TaxctlOrdinary => "taxctl_ordinary",
            InvoiceKind::TaxctlRoll => "taxctl_roll",
            InvoiceKind::TaxctlEOrdinary => "taxctl_e_ordinary",
            InvoiceKind::TaxctlESpecial => "taxctl_e_special",
            InvoiceKind::DigitalAirTicket => "digital_air_ticket",
            InvoiceKind::DigitalRailTicket => "digital_rail_ticket",
        }
    }

    /// The name finance sees (and writes in Excel).
    pub fn label_zh(self) -> &'static str {
        match self {
            InvoiceKind::DigitalSpecial => "数电票（增值税专用发票）",
            InvoiceKind::DigitalOrdinary => "数电票（普通发票）",
            InvoiceKind::TaxctlSpecial => "增值税专用发票",
            InvoiceKind::TaxctlOrdinary => "增值税普通发票",
            InvoiceKind::TaxctlRoll => "增值税普通发票（卷式）",
            InvoiceKind::TaxctlEOrdinary => "增值税电子普通发票",
            InvoiceKind::TaxctlESpecial => "增值税电子专用发票",
            InvoiceKind::DigitalAirTicket => "电子发票（航空运输电子客票行程单）",
            InvoiceKind::DigitalRailTicket => "电子发票（铁路电子客票）",
        }
    }

    /// Other names the same kind goes by in files: short forms and the application-path codes
    /// (028 电子专票, 004 纸质专票, 026 电子普票, 007 纸质普票, 025 卷票, 08xdp / 10xdp 数电).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            InvoiceKind::DigitalSpecial => {
                &["数电专票", "数电票(增值税专用发票)", "全电专票", "电子发票（增值税专用发票）", "08xdp"]
            }
            InvoiceKind::DigitalOrdinary => {
                &["数电普票", "数电票(普通发票)", "全电普票", "电子发票（普通发票）", "10xdp"]
            }
            InvoiceKind::TaxctlSpecial => &["专票", "纸质专票", "004"],
            InvoiceKind::TaxctlOrdinary => &["普票", "纸质普票", "007"],
            InvoiceKind::TaxctlRoll => &["卷票", "卷式发票", "025"],
            InvoiceKind::TaxctlEOrdinary => &["电子普票", "电普", "026"],
            InvoiceKind::TaxctlESpecial => &["电子专票", "电专", "028"],
            InvoiceKind::DigitalAirTicket => &["航空运输电子客票行程单", "数电机票", "电子行程单", "61"],
            InvoiceKind::DigitalRailTicket => &["铁路电子客票", "数电火车票", "电子火车票", "51"],
        }
    }

    pub fn is_digital(self) -> bool {
        matches!(
            self,
            InvoiceKind::DigitalSpecial
                | InvoiceKind::DigitalOrdinary
                | InvoiceKind::DigitalAirTicket
                | InvoiceKind::DigitalRailTicket
        )
    }

    /// 航空运输电子客票行程单 and 铁路电子客票: passenger transport documents of the 数电 era,
    /// deductible as such (公告2019年第39号), received only.
    pub fn is_transport_ticket(self) -> bool {
        matches!(self, InvoiceKind::DigitalAirTicket | InvoiceKind::DigitalRailTicket)
    }

    /// Whether fapiao issues this kind (applications of another kind are refused).
    pub fn is_issuable(self) -> bool {
        !self.is_transport_ticket()
    }

    /// 作废 is for paper tax-control invoices (of the month); 数电 and electronic invoices are
    /// corrected by a red invoice only.
    pub fn is_voidable(self) -> bool {
        matches!(self, InvoiceKind::TaxctlSpecial | InvoiceKind::TaxctlOrdinary | InvoiceKind::TaxctlRoll)
    }

    pub fn is_special(self) -> bool {
        matches!(self, InvoiceKind::DigitalSpecial | InvoiceKind::TaxctlSpecial | InvoiceKind::TaxctlESpecial)
    }

    pub fn red_flush_track(self) -> RedFlushTrack {
        match self {
            k if k.is_digital() => RedFlushTrack::ConfirmationForm,
            k if k.is_special() => RedFlushTrack::RedInfoSheet,
            _ => RedFlushTrack::Direct,
        }
    }

    /// Check an invoice's code and number against this kind's format.
    pub fn validate_number(self, code: Option<&str>, number: &str) -> Result<(), InvoiceNumberError> {
        let digits =
            |s: &str, lens: &[usize]| s.bytes().all(|b| b.is_ascii_digit()) && lens.contains(&s.len());
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let number = number.trim();
        if self.is_digital() {
            if let Some(c) = code {
                return Err(InvoiceNumberError::UnexpectedCode(c.to_string()));
            }
            if !digits(number, &[20]) {
                return Err(InvoiceNumberError::DigitalNumber(number.to_string()));
            }
        } else {
            let c = code.unwrap_or("");
            if !digits(c, &[10, 12]) {
                return Err(InvoiceNumberError::Code(c.to_string()));
            }
            if !digits(number, &[8]) {
                return Err(InvoiceNumberError::TaxctlNumber(number.to_string()));
            }
        }
        Ok(())
    }
}

impl FromStr for InvoiceKind {
    type Err = InvoiceNumberError;
    /// Accepts the identifier, the Chinese label, or a known alias (brackets full- or half-width).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('(', "（").replace(')', "）");
        InvoiceKind::ALL
            .into_iter()
            .find(|k| {
                k.as_str() == wanted
                    || k.label_zh() == wanted
                    || k.aliases().iter().any(|a| a.replace('(', "（").replace(')', "）") == wanted)
            })
            .ok_or_else(|| InvoiceNumberError::UnknownKind(s.to_string()))
    }
}

impl fmt::Display for InvoiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_identifier_label_and_alias() {
        for k in InvoiceKind::ALL {
            assert_eq!(k.as_str().parse::<InvoiceKind>().unwrap(), k);
            assert_eq!(k.label_zh().parse::<InvoiceKind>().unwrap(), k);
        }
        assert_eq!("数电票(普通发票)".parse::<InvoiceKind>().unwrap(), InvoiceKind::DigitalOrdinary);
        assert_eq!("028".parse::<InvoiceKind>().unwrap(), InvoiceKind::TaxctlESpecial);
        assert!("机动车发票".parse::<InvoiceKind>().is_err());
    }

    #[test]
    fn every_kind_but_the_transport_tickets_is_issued() {
        let received_only: Vec<_> =
            InvoiceKind::ALL.into_iter().filter(|k| !InvoiceKind::ISSUABLE.contains(k)).collect();
        assert_eq!(received_only, [InvoiceKind::DigitalAirTicket, InvoiceKind::DigitalRailTicket]);
        assert!(InvoiceKind::ISSUABLE.iter().all(|k| k.is_issuable() && !k.is_transport_ticket()));
        assert_eq!("铁路电子客票".parse::<InvoiceKind>().unwrap(), InvoiceKind::DigitalRailTicket);
        assert_eq!("61".parse::<InvoiceKind>().unwrap(), InvoiceKind::DigitalAirTicket);
    }

    #[test]
    fn number_formats() {
        use InvoiceKind::*;
        assert!(DigitalOrdinary.validate_number(None, "24442000000123456789").is_ok());
        assert!(DigitalOrdinary.validate_number(Some(""), "24442000000123456789").is_ok());
        assert_eq!(
            DigitalOrdinary.validate_number(Some("044031900111"), "24442000000123456789").unwrap_err().code(),
            "INVOICE_CODE_UNEXPECTED"
        );
        assert!(DigitalSpecial.validate_number(None, "2444200000012345678").is_err());
        assert!(TaxctlSpecial.validate_number(Some("4400191130"), "01234567").is_ok());
        assert!(TaxctlEOrdinary.validate_number(Some("044031900111"), "00123456").is_ok());
        assert_eq!(
            TaxctlEOrdinary.validate_number(Some("04403190011"), "00123456").unwrap_err().code(),
            "INVOICE_CODE_FORMAT"
        );
        assert_eq!(
            TaxctlOrdinary.validate_number(Some("044031900111"), "0012345").unwrap_err().code(),
            "INVOICE_NUMBER_FORMAT"
        );
        assert!(TaxctlOrdinary.validate_number(None, "00123456").is_err());
    }

    #[test]
    fn red_flush_tracks() {
        assert_eq!(InvoiceKind::TaxctlOrdinary.red_flush_track(), RedFlushTrack::Direct);
        assert_eq!(InvoiceKind::TaxctlEOrdinary.red_flush_track(), RedFlushTrack::Direct);
        assert_eq!(InvoiceKind::TaxctlSpecial.red_flush_track(), RedFlushTrack::RedInfoSheet);
        assert_eq!(InvoiceKind::TaxctlESpecial.red_flush_track(), RedFlushTrack::RedInfoSheet);
        assert_eq!(InvoiceKind::DigitalSpecial.red_flush_track(), RedFlushTrack::ConfirmationForm);
        assert_eq!(InvoiceKind::DigitalOrdinary.red_flush_track(), RedFlushTrack::ConfirmationForm);
    }
}
