//! Whether an input invoice is deductible (可抵扣).
//!
//! Seed 004, FAQ "增值税电子普通发票和数电普票，当且仅当满足以下5个条件则发票为可抵扣", read as
//! SPEC.md "Rules" does: blue, not blockchain, status not red-flushed / void / abnormal /
//! out-of-control / fully red-flushed, issued on or after 2019-04-01 (公告2019年第39号 takes
//! effect that day), and (a qualifying transport line, or special business type 农产品收购 /
//! 资产农产品销售). Seed 004 FAQ "不可抵扣的判断标准": a refund line (业务类型 退) at 6% does not
//! qualify; rebooking fees at 9% do.
//!
//! Our reading for kinds the FAQ does not cover: special invoices (专票) are deductible when
//! blue and in a normal state; paper ordinary and roll invoices are not; the 数电 transport
//! tickets (航空运输电子客票行程单, 铁路电子客票) are deductible passenger transport on their own —
//! blue, in a normal state, issued on or after 2019-04-01 — with no line needed.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::invoice_kind::InvoiceKind;
use crate::messages::Coded;
use crate::money::TaxRate;

/// The state of an invoice as the tax bureau reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceStatus {
    Normal,
    PartiallyRedFlushed,
    RedFlushed,
    FullyRedFlushed,
    Void,
    Abnormal,
    OutOfControl,
}

impl InvoiceStatus {
    /// The channel's status words (`normal`, `void`, …); anything else reads as abnormal.
    pub fn from_channel(status: &str) -> InvoiceStatus {
        match status {
            "normal" => InvoiceStatus::Normal,
            "partially_red_flushed" => InvoiceStatus::PartiallyRedFlushed,
            "red_flushed" => InvoiceStatus::RedFlushed,
            "fully_red_flushed" => InvoiceStatus::FullyRedFlushed,
            "void" => InvoiceStatus::Void,
            "out_of_control" => InvoiceStatus::OutOfControl,
            _ => InvoiceStatus::Abnormal,
        }
    }
}

impl SpecialBusiness {
    /// 特定业务类型 as printed; empty: none.
    pub fn parse(text: &str) -> Option<SpecialBusiness> {
        match text.trim() {
            "" => None,
            "农产品收购" => Some(SpecialBusiness::AgriculturalPurchase),
            "资产农产品销售" => Some(SpecialBusiness::AgriculturalSale),
            _ => Some(SpecialBusiness::Other),
        }
    }
}

/// 特定业务类型 that make an ordinary invoice deductible on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialBusiness {
    /// 农产品收购
    AgriculturalPurchase,
    /// 资产农产品销售
    AgriculturalSale,
    /// any other special business type
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 商品名称 as printed, e.g. `*运输服务*客运服务费`.
    pub goods_name: String,
    pub rate: TaxRate,
    /// 业务类型 of the line, e.g. `退` for a refund.
    pub business_type: Option<String>,
}

impl Line {
    /// A line as stored or verified: the rate as a fraction (0.06), the business type empty when
    /// none. `None` for a rate that is not a VAT rate (such a line cannot qualify anyway).
    pub fn of(goods_name: &str, rate: rust_decimal::Decimal, business_type: &str) -> Option<Line> {
        Some(Line {
            goods_name: goods_name.to_string(),
            rate: TaxRate::try_from(rate).ok()?,
            business_type: Some(business_type.to_string()).filter(|b| !b.is_empty()),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub kind: InvoiceKind,
    pub is_blue: bool,
    pub is_blockchain: bool,
    pub status: InvoiceStatus,
    pub issue_date: NaiveDate,
    pub special_business: Option<SpecialBusiness>,
    pub lines: Vec<Line>,
}

/// Why an invoice is not deductible — the first condition it fails, in the FAQ's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotDeductible {
    #[error("paper ordinary and roll invoices are not deductible")]
    PaperOrdinary,
    #[error("not a blue invoice")]
    NotBlue,
    #[error("blockchain invoice")]
    Blockchain,
    #[error("invoice status {0:?} excludes deduction")]
    Status(InvoiceStatus),
    #[error("issued before 2019-04-01")]
    BeforePolicy,
    #[error("no transport-service line and no qualifying special business type")]
    NoQualifyingLine,
}

impl Coded for NotDeductible {
    fn code(&self) -> &'static str {
        match self {
            NotDeductible::PaperOrdinary => "NOT_DEDUCTIBLE_PAPER_ORDINARY",
            NotDeductible::NotBlue => "NOT_DEDUCTIBLE_NOT_BLUE",
            NotDeductible::Blockchain => "NOT_DEDUCTIBLE_BLOCKCHAIN",
            NotDeductible::Status(_) => "NOT_DEDUCTIBLE_STATUS",
            NotDeductible::BeforePolicy => "NOT_DEDUCTIBLE_BEFORE_2019_04_01",
            NotDeductible::NoQualifyingLine => "NOT_DEDUCTIBLE_NO_TRANSPORT_LINE",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            NotDeductible::PaperOrdinary => "纸质普通发票不可抵扣".into(),
            NotDeductible::NotBlue => "非蓝字发票不可抵扣".into(),
            NotDeductible::Blockchain => "区块链发票不可抵扣".into(),
            NotDeductible::Status(_) => "发票状态为红冲、作废、异常、失控或全额红冲，不可抵扣".into(),
            NotDeductible::BeforePolicy => "开票时间在2019-4-1之前，不可抵扣".into(),
            NotDeductible::NoQualifyingLine => {
                "无“运输服务”类商品明细（或含“货物”“港澳台”“国际”字样），且非农产品收购、资产农产品销售"
                    .into()
            }
        }
    }
}

/// The day 财政部 税务总局 海关总署公告2019年第39号 takes effect.
pub fn policy_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2019, 4, 1).expect("valid date")
}

pub fn assess(invoice: &Invoice) -> Result<(), NotDeductible> {
    use InvoiceKind::*;
    match invoice.kind {
        TaxctlOrdinary | TaxctlRoll => return Err(NotDeductible::PaperOrdinary),
        _ => {}
    }
    if !invoice.is_blue {
        return Err(NotDeductible::NotBlue);
    }
    if invoice.is_blockchain {
        return Err(NotDeductible::Blockchain);
    }
    if !matches!(invoice.status, InvoiceStatus::Normal | InvoiceStatus::PartiallyRedFlushed) {
        return Err(NotDeductible::Status(invoice.status));
    }
    if invoice.kind.is_special() {
        return Ok(());
    }
    if invoice.issue_date < policy_start() {
        return Err(NotDeductible::BeforePolicy);
    }
    // 航空运输电子客票行程单 / 铁路电子客票 are passenger transport documents themselves.
    if invoice.kind.is_transport_ticket() {
        return Ok(());
    }
    let special = matches!(
        invoice.special_business,
        Some(SpecialBusiness::AgriculturalPurchase | SpecialBusiness::AgriculturalSale)
    );
    if special || invoice.lines.iter().any(is_qualifying_transport_line) {
        Ok(())
    } else {
        Err(NotDeductible::NoQualifyingLine)
    }
}

/// A line whose category between asterisks is 运输服务 and whose name outside them has none of
/// 货物 / 港澳台 / 国际, and which is not a refund (退) at 6%.
pub fn is_qualifying_transport_line(line: &Line) -> bool {
    let Some((category, name)) = split_goods_name(&line.goods_name) else {
        return false;
    };
    let refund_at_six =
        line.business_type.as_deref().map(str::trim) == Some("退") && line.rate.value() == Decimal::new(6, 2);
    category == "运输服务" && !["货物", "港澳台", "国际"].iter().any(|w| name.contains(w)) && !refund_at_six
}

/// `*运输服务*客运服务费` → (`运输服务`, `客运服务费`). Full-width asterisks are accepted.
fn split_goods_name(goods_name: &str) -> Option<(String, String)> {
    let normalized = goods_name.trim().replace('＊', "*");
    let rest = normalized.strip_prefix('*')?;
    let (category, name) = rest.split_once('*')?;
    Some((category.trim().to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, rate: &str) -> Line {
        Line { goods_name: name.into(), rate: TaxRate::parse(rate).unwrap(), business_type: None }
    }

    fn deductible_invoice() -> Invoice {
        Invoice {
            kind: InvoiceKind::DigitalOrdinary,
            is_blue: true,
            is_blockchain: false,
            status: InvoiceStatus::Normal,
            issue_date: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
            special_business: None,
            lines: vec![line("*运输服务*客运服务费", "9%")],
        }
    }

    #[test]
    fn the_baseline_is_deductible_for_both_ordinary_electronic_kinds() {
        assert_eq!(assess(&deductible_invoice()), Ok(()));
        let e = Invoice { kind: InvoiceKind::TaxctlEOrdinary, ..deductible_invoice() };
        assert_eq!(assess(&e), Ok(()));
    }

    #[test]
    fn transport_tickets_are_deductible_without_lines_while_blue_and_normal() {
        for kind in [InvoiceKind::DigitalAirTicket, InvoiceKind::DigitalRailTicket] {
            let ticket = Invoice { kind, lines: Vec::new(), ..deductible_invoice() };
            assert_eq!(assess(&ticket), Ok(()), "{kind:?}");
            assert_eq!(assess(&Invoice { is_blue: false, ..ticket.clone() }), Err(NotDeductible::NotBlue));
            let refunded = Invoice { status: InvoiceStatus::RedFlushed, ..ticket.clone() };
            assert_eq!(assess(&refunded), Err(NotDeductible::Status(InvoiceStatus::RedFlushed)));
        }
        // An ordinary 数电 invoice still needs its transport line.
        let ordinary = Invoice { lines: Vec::new(), ..deductible_invoice() };
        assert_eq!(assess(&ordinary), Err(NotDeductible::NoQualifyingLine));
    }

    #[test]
    fn condition_1_blue() {
        let inv = Invoice { is_blue: false, ..deductible_invoice() };
        assert_eq!(assess(&inv), Err(NotDeductible::NotBlue));
    }

    #[test]
    fn condition_2_not_blockchain() {
        let inv = Invoice { is_blockchain: true, ..deductible_invoice() };
        assert_eq!(assess(&inv), Err(NotDeductible::Blockchain));
    }

    #[test]
    fn condition_3_status() {
        use InvoiceStatus::*;
        for status in [RedFlushed, FullyRedFlushed, Void, Abnormal, OutOfControl] {
            let inv = Invoice { status, ..deductible_invoice() };
            assert_eq!(assess(&inv), Err(NotDeductible::Status(status)), "{status:?}");
        }
        let partial = Invoice { status: PartiallyRedFlushed, ..deductible_invoice() };
        assert_eq!(assess(&partial), Ok(()));
    }

    #[test]
    fn condition_4_issued_from_2019_04_01() {
        let day =
            |d| Invoice { issue_date: NaiveDate::from_ymd_opt(2019, 4, d).unwrap(), ..deductible_invoice() };
        assert_eq!(assess(&day(1)), Ok(()));
        let before =
            Invoice { issue_date: NaiveDate::from_ymd_opt(2019, 3, 31).unwrap(), ..deductible_invoice() };
        assert_eq!(assess(&before), Err(NotDeductible::BeforePolicy));
    }

    #[test]
    fn condition_5_transport_line_with_a_clean_name() {
        let with = |name: &str| Invoice { lines: vec![line(name, "9%")], ..deductible_invoice() };
        assert_eq!(assess(&with("*运输服务*国内航空旅客运输")), Ok(()));
        assert_eq!(assess(&with("＊运输服务＊铁路旅客运输")), Ok(()));
        for bad in [
            "*运输服务*货物运输",
            "*运输服务*港澳台航线",
            "*运输服务*国际旅客运输",
            "*餐饮服务*餐费",
            "运输服务客运",
        ] {
            assert_eq!(assess(&with(bad)), Err(NotDeductible::NoQualifyingLine), "{bad}");
        }
        // One qualifying line among others is enough.
        let mixed = Invoice {
            lines: vec![line("*餐饮服务*餐费", "6%"), line("*运输服务*客运服务费", "9%")],
            ..deductible_invoice()
        };
        assert_eq!(assess(&mixed), Ok(()));
    }

    #[test]
    fn condition_6_special_business_types() {
        let none = Invoice { lines: vec![line("*农产品*玉米", "9%")], ..deductible_invoice() };
        assert_eq!(assess(&none), Err(NotDeductible::NoQualifyingLine));
        for sb in [SpecialBusiness::AgriculturalPurchase, SpecialBusiness::AgriculturalSale] {
            let inv = Invoice { special_business: Some(sb), ..none.clone() };
            assert_eq!(assess(&inv), Ok(()));
        }
        let other = Invoice { special_business: Some(SpecialBusiness::Other), ..none };
        assert_eq!(assess(&other), Err(NotDeductible::NoQualifyingLine));
    }

    #[test]
    fn refund_at_six_percent_does_not_qualify_but_rebooking_at_nine_does() {
        let refund = Line { business_type: Some("退".into()), ..line("*运输服务*退票费", "6%") };
        let inv = Invoice { lines: vec![refund], ..deductible_invoice() };
        assert_eq!(assess(&inv), Err(NotDeductible::NoQualifyingLine));
        let rebooking = Line { business_type: Some("改".into()), ..line("*运输服务*改签费", "9%") };
        let inv = Invoice { lines: vec![rebooking], ..deductible_invoice() };
        assert_eq!(assess(&inv), Ok(()));
    }

    #[test]
    fn other_kinds() {
        let paper = Invoice { kind: InvoiceKind::TaxctlOrdinary, ..deductible_invoice() };
        assert_eq!(assess(&paper), Err(NotDeductible::PaperOrdinary));
        let special = Invoice {
            kind: InvoiceKind::DigitalSpecial,
            lines: vec![line("*餐饮服务*餐费", "6%")],
            ..deductible_invoice()
        };
        assert_eq!(assess(&special), Ok(()));
        let void_special = Invoice { status: InvoiceStatus::Void, ..special };
        assert_eq!(assess(&void_special), Err(NotDeductible::Status(InvoiceStatus::Void)));
    }
}
