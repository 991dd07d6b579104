//! The red-flush amount rule (SPEC.md "Red-flush", our reading of the seed's garbled inequality)
//! and the reason rule, as pure functions.
//!
//! remaining = |blue total| − |red already issued| − |red pending in 待开 (not yet issued, or failed)|;
//! a request is accepted iff 0 < |requested| ≤ remaining.

use crate::Money;
use crate::messages::{Coded, RED_FLUSH_AMOUNT_NOT_POSITIVE, RED_FLUSH_REMAINING_INSUFFICIENT};

/// 冲红原因.
pub const REASONS: [(&str, &str); 4] =
    [("01", "开票有误"), ("02", "销货退回"), ("03", "服务中止"), ("04", "销售折让")];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedFlushRuleError {
    /// Zero (or -0) is not a red-flush: the request says nothing to take back.
    #[error("the amount must be greater than 0")]
    AmountNotPositive,
    #[error("requested {requested}, remaining {remaining}")]
    RemainingInsufficient { requested: Money, remaining: Money },
    #[error("reason {0:?} is not one of 01–04")]
    UnknownReason(String),
    #[error("reason 01 (开票有误) is for a full red-flush only")]
    ReasonFullOnly,
    #[error("a pending red invoice of {0} already exists for this invoice")]
    DuplicatePending(Money),
    /// A by-line request that a line does not allow (its code and message).
    #[error("{message}")]
    Line { code: &'static str, message: String },
}

impl Coded for RedFlushRuleError {
    fn code(&self) -> &'static str {
        match self {
            RedFlushRuleError::AmountNotPositive => "RED_FLUSH_AMOUNT_NOT_POSITIVE",
            RedFlushRuleError::RemainingInsufficient { .. } => "RED_FLUSH_REMAINING_INSUFFICIENT",
            RedFlushRuleError::UnknownReason(_) => "RED_FLUSH_REASON_UNKNOWN",
            RedFlushRuleError::ReasonFullOnly => "RED_FLUSH_REASON_FULL_ONLY",
            RedFlushRuleError::DuplicatePending(_) => "RED_FLUSH_DUPLICATE_PENDING",
            RedFlushRuleError::Line { code, .. } => code,
        }
    }
    fn message_zh(&self) -> String {
        match self {
            RedFlushRuleError::AmountNotPositive => RED_FLUSH_AMOUNT_NOT_POSITIVE.to_string(),
            RedFlushRuleError::RemainingInsufficient { .. } => RED_FLUSH_REMAINING_INSUFFICIENT.to_string(),
            RedFlushRuleError::UnknownReason(r) => {
                format!("冲红原因{r}不正确，应为01开票有误、02销货退回、03服务中止或04销售折让")
            }
            RedFlushRuleError::ReasonFullOnly => "冲红原因为01开票有误时只能全额红冲".into(),
            RedFlushRuleError::DuplicatePending(m) => {
                format!("待开发票中已存在本发票金额为{m}的红字发票，请先处理")
            }
            RedFlushRuleError::Line { message, .. } => message.clone(),
        }
    }
}

/// What is left to red-flush of a blue invoice.
pub fn remaining(blue_total: Money, red_issued: Money, red_pending: Money) -> Money {
    blue_total.abs() - red_issued.abs() - red_pending.abs()
}

/// The amount rule: accept iff 0 < |requested| ≤ remaining. Zero is refused as such, whatever
/// remains (it used to read 剩余可红冲金额不足, which sent people looking for pending invoices).
pub fn check_amount(requested: Money, remaining: Money) -> Result<(), RedFlushRuleError> {
    check_positive(requested)?;
    let r = requested.abs();
    if r > remaining {
        return Err(RedFlushRuleError::RemainingInsufficient { requested: r, remaining });
    }
    Ok(())
}

/// A requested amount says something to take back: |requested| > 0 (the sign does not matter;
/// red amounts are often written negative).
pub fn check_positive(requested: Money) -> Result<(), RedFlushRuleError> {
    if requested.is_zero() { Err(RedFlushRuleError::AmountNotPositive) } else { Ok(()) }
}

/// The reason rule: 01–04, and 01 only for a full red-flush of an untouched invoice.
pub fn check_reason(reason: &str, requested: Money, blue_total: Money) -> Result<(), RedFlushRuleError> {
    if !REASONS.iter().any(|(c, _)| *c == reason) {
        return Err(RedFlushRuleError::UnknownReason(reason.to_string()));
    }
    if reason == "01" && requested.abs() != blue_total.abs() {
        return Err(RedFlushRuleError::ReasonFullOnly);
    }
    Ok(())
}

/// The reason when none is given: 01 for a full red-flush, 04 (销售折让) for a partial one.
pub fn default_reason(requested: Money, blue_total: Money) -> &'static str {
    if requested.abs() == blue_total.abs() { "01" } else { "04" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn the_amount_rule_at_its_edges() {
        let left = remaining(m("1130.00"), m("0"), m("0"));
        assert_eq!(check_amount(m("1130.00"), left), Ok(()), "equal to remaining");
        let over = check_amount(m("1130.01"), left).unwrap_err();
        assert_eq!(
            over.message_zh(),
            "剩余可红冲金额不足。开票管理→待开发票页面中可能存在本发票的未开票的数据，请先处理。"
        );
        assert_eq!(
            check_amount(m("0"), left),
            Err(RedFlushRuleError::AmountNotPositive),
            "zero is not a red-flush"
        );
        assert_eq!(check_amount(m("-0"), left), Err(RedFlushRuleError::AmountNotPositive));
        assert_eq!(RedFlushRuleError::AmountNotPositive.message_zh(), "红冲金额必须大于0");
        assert_eq!(RedFlushRuleError::AmountNotPositive.code(), "RED_FLUSH_AMOUNT_NOT_POSITIVE");
        // A pending red of 300 in 待开 and a partial red-flush of 500 already issued.
        let left = remaining(m("1130.00"), m("-500.00"), m("-300.00"));
        assert_eq!(left, m("330.00"));
        assert_eq!(check_amount(m("330.00"), left), Ok(()));
        assert!(check_amount(m("330.01"), left).is_err());
        assert_eq!(check_amount(m("-330.00"), left), Ok(()), "the sign of the request does not matter");
    }

    #[test]
    fn reason_01_is_full_only() {
        assert_eq!(check_reason("01", m("1130.00"), m("1130.00")), Ok(()));
        assert_eq!(check_reason("01", m("100.00"), m("1130.00")), Err(RedFlushRuleError::ReasonFullOnly));
        assert_eq!(check_reason("02", m("100.00"), m("1130.00")), Ok(()));
        assert!(matches!(check_reason("05", m("1"), m("2")), Err(RedFlushRuleError::UnknownReason(_))));
        assert_eq!((default_reason(m("2"), m("2")), default_reason(m("1"), m("2"))), ("01", "04"));
    }
}
