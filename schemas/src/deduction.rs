//! 抵扣类勾选 (deduction selection, seed 004): the tax period an invoice is selected for, and
//! which period a selection may use.
//!
//! 预勾选上，税款所属期的可选择范围: when the channel reports the enterprise's tax period, that
//! period is fixed (shown, not editable); when it cannot, the current month is offered and may be
//! changed.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// 税款所属期: a month, written `YYYYMM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaxPeriod {
    year: u16,
    month: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("税款所属期{0:?}无效，格式为YYYYMM（如202611）")]
pub struct TaxPeriodError(pub String);

impl TaxPeriod {
    /// The month `day` falls in.
    pub fn of(day: NaiveDate) -> TaxPeriod {
        TaxPeriod { year: day.year() as u16, month: day.month() as u8 }
    }

    pub fn parse(text: &str) -> Result<TaxPeriod, TaxPeriodError> {
        let bad = || TaxPeriodError(text.to_string());
        let t = text.trim();
        if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: u16 = t[..4].parse().map_err(|_| bad())?;
        let month: u8 = t[4..].parse().map_err(|_| bad())?;
        if !(1990..=2099).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(TaxPeriod { year, month })
    }
}

impl fmt::Display for TaxPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}{:02}", self.year, self.month)
    }
}

impl FromStr for TaxPeriod {
    type Err = TaxPeriodError;
    fn from_str(s: &str) -> Result<TaxPeriod, TaxPeriodError> {
        TaxPeriod::parse(s)
    }
}

impl Serialize for TaxPeriod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaxPeriod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TaxPeriod, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which period a selection uses, and whether the user may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodChoice {
    /// Reported by the channel: fixed.
    Fixed(TaxPeriod),
    /// The channel could not tell: the current month, editable.
    Editable(TaxPeriod),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("税款所属期由税局确定为{fixed}，不可修改为{asked}")]
pub struct PeriodFixed {
    pub fixed: TaxPeriod,
    pub asked: TaxPeriod,
}

impl PeriodChoice {
    /// From what the channel reports (`None`: it could not tell) and today.
    pub fn new(reported: Option<TaxPeriod>, today: NaiveDate) -> PeriodChoice {
        match reported {
            Some(p) => PeriodChoice::Fixed(p),
            None => PeriodChoice::Editable(TaxPeriod::of(today)),
        }
    }

    /// The period a selection uses: the one asked for, where it may be chosen.
    pub fn decide(self, asked: Option<TaxPeriod>) -> Result<TaxPeriod, PeriodFixed> {
        match (self, asked) {
            (PeriodChoice::Fixed(fixed), Some(asked)) if asked != fixed => Err(PeriodFixed { fixed, asked }),
            (PeriodChoice::Fixed(p) | PeriodChoice::Editable(p), None) => Ok(p),
            (PeriodChoice::Fixed(p), Some(_)) => Ok(p),
            (PeriodChoice::Editable(_), Some(asked)) => Ok(asked),
        }
    }

    pub fn period(self) -> TaxPeriod {
        match self {
            PeriodChoice::Fixed(p) | PeriodChoice::Editable(p) => p,
        }
    }

    pub fn is_fixed(self) -> bool {
        matches!(self, PeriodChoice::Fixed(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TaxPeriod {
        TaxPeriod::parse(s).unwrap()
    }

    #[test]
    fn periods_are_six_digit_months() {
        assert_eq!(p("202611").to_string(), "202611");
        assert_eq!(TaxPeriod::of(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()), p("202602"));
        for bad in ["2026-11", "202613", "202600", "20261", "abcdef", "198912", ""] {
            assert!(TaxPeriod::parse(bad).is_err(), "{bad}");
        }
        assert!(p("202512") < p("202601"));
        assert_eq!(serde_json::to_value(p("202611")).unwrap(), "202611");
        assert_eq!(serde_json::from_value::<TaxPeriod>("202611".into()).unwrap(), p("202611"));
    }

    #[test]
    fn a_reported_period_is_fixed_otherwise_the_current_month_is_editable() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let fixed = PeriodChoice::new(Some(p("202610")), today);
        assert_eq!(fixed.decide(None), Ok(p("202610")));
        assert_eq!(fixed.decide(Some(p("202610"))), Ok(p("202610")));
        let refused = fixed.decide(Some(p("202611"))).unwrap_err();
        assert_eq!(refused.to_string(), "税款所属期由税局确定为202610，不可修改为202611");
        let open = PeriodChoice::new(None, today);
        assert!(!open.is_fixed());
        assert_eq!(open.decide(None), Ok(p("202611")));
        assert_eq!(open.decide(Some(p("202609"))), Ok(p("202609")));
    }
}
