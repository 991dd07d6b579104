//! Money, tax rates, quantities and unit prices — all `rust_decimal`, never floats.
//!
//! Amounts carry exactly two decimals (分). Rounding is half-up, away from zero (四舍五入),
//! in one function, `round_half_up`, so every rule rounds the same way.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::messages::Coded;

/// Decimals of a money amount (分).
pub const MONEY_SCALE: u32 = 2;
/// Decimals allowed on quantities and unit prices (the channel's `price (14,8)`).
pub const QUANTITY_SCALE: u32 = 8;

/// Round half-up (away from zero for negatives, as 四舍五入 is done on red invoices).
pub fn round_half_up(value: Decimal, decimals: u32) -> Decimal {
    value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a number: {0:?}")]
    NotANumber(String),
    #[error("{value} has more than {max} decimals")]
    TooManyDecimals { value: String, max: u32 },
    #[error("tax rate {0} is not one of 13%, 9%, 6%, 5%, 3%, 1.5%, 1%, 0%")]
    RateNotAllowed(String),
    /// Typed by a person, not written plainly: an exponent, a thousands separator, a stray sign.
    #[error(
        "{0:?} is not a plain number: digits with an optional point, e.g. 1000.00 (no exponent, no thousands separators)"
    )]
    NotPlain(String),
}

impl Coded for MoneyError {
    fn code(&self) -> &'static str {
        match self {
            MoneyError::NotANumber(_) => "NOT_A_NUMBER",
            MoneyError::TooManyDecimals { .. } => "TOO_MANY_DECIMALS",
            MoneyError::RateNotAllowed(_) => "TAX_RATE_NOT_ALLOWED",
            MoneyError::NotPlain(_) => "NOT_A_PLAIN_NUMBER",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            MoneyError::NotANumber(v) => format!("不是有效数字：{v}"),
            MoneyError::TooManyDecimals { value, max } => format!("{value} 小数位超过{max}位"),
            MoneyError::RateNotAllowed(v) => {
                format!("税率{v}不在允许范围内（13%、9%、6%、5%、3%、1.5%、1%、0%）")
            }
            MoneyError::NotPlain(v) => {
                format!("数字格式不正确：{v}（只能是数字和小数点，不能用科学计数法或千分位）")
            }
        }
    }
}

/// Parse a decimal written by a person: trims, drops thousands separators, no exponent.
fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let cleaned: String = text.trim().chars().filter(|c| *c != ',').collect();
    Decimal::from_str(&cleaned).map_err(|_| MoneyError::NotANumber(text.to_string()))
}

/// A decimal as a person types it on a command line or a form: an optional minus sign, digits,
/// optionally a point and more digits. Files keep the lenient [`parse_decimal`] (spreadsheets and
/// CSV exports write `1,234.50` and `1.5E+3`); a person who types `1e3` or `1,000.00` gets an
/// error rather than a guess.
pub fn parse_plain_decimal(text: &str) -> Result<Decimal, MoneyError> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) {
        return Err(MoneyError::NotPlain(text.to_string()));
    }
    Decimal::from_str(t).map_err(|_| MoneyError::NotANumber(text.to_string()))
}

fn exact_at_scale(value: Decimal, max: u32, text: &str) -> Result<Decimal, MoneyError> {
    let normalized = value.normalize();
    if normalized.scale() > max {
        return Err(MoneyError::TooManyDecimals { value: text.to_string(), max });
    }
    Ok(normalized)
}

/// An amount of money in yuan with exactly two decimals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// An amount that must already be exact to the cent (input from a person or a file).
    pub fn exact(value: Decimal) -> Result<Money, MoneyError> {
        let v = exact_at_scale(value, MONEY_SCALE, &value.to_string())?;
        Ok(Money::rescaled(v))
    }

    /// A computed amount, rounded half-up to the cent.
    pub fn round(value: Decimal) -> Money {
        Money::rescaled(round_half_up(value, MONEY_SCALE))
    }

    pub fn from_cents(cents: i64) -> Money {
        Money(Decimal::new(cents, MONEY_SCALE))
    }

    /// Parse text such as `1,234.50` or `-0.3`; more than two decimals is an error.
    pub fn parse(text: &str) -> Result<Money, MoneyError> {
        let v = parse_decimal(text)?;
        let v = exact_at_scale(v, MONEY_SCALE, text)?;
        Ok(Money::rescaled(v))
    }

    /// An amount typed by a person (command line, form): [`parse_plain_decimal`], at most two
    /// decimals.
    pub fn parse_plain(text: &str) -> Result<Money, MoneyError> {
        let v = exact_at_scale(parse_plain_decimal(text)?, MONEY_SCALE, text)?;
        Ok(Money::rescaled(v))
    }

    fn rescaled(mut v: Decimal) -> Money {
        v.rescale(MONEY_SCALE);
        Money(v)
    }

    pub fn value(self) -> Decimal {
        self.0
    }
    pub fn abs(self) -> Money {
        Money(self.0.abs())
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }
    pub fn is_positive(self) -> bool {
        self.0.is_sign_positive() && !self.0.is_zero()
    }
}

impl TryFrom<Decimal> for Money {
    type Error = MoneyError;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Money::exact(value)
    }
}
impl From<Money> for Decimal {
    fn from(m: Money) -> Decimal {
        m.0
    }
}
impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}
impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}
impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}
impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}
impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 -= rhs.0;
    }
}
impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}
impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

/// A VAT rate as a fraction (0.13 for 13%). Only the rates of SPEC.md "Rules" exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct TaxRate(Decimal);

impl TaxRate {
    /// Allowed rates in hundredths of a percent: 13%, 9%, 6%, 5%, 3%, 1.5%, 1%, 0.
    const ALLOWED_BASIS_POINTS: [i64; 8] = [1300, 900, 600, 500, 300, 150, 100, 0];

    pub fn all() -> impl Iterator<Item = TaxRate> {
        Self::ALLOWED_BASIS_POINTS.iter().map(|bp| TaxRate(Decimal::new(*bp, 4).normalize()))
    }

    /// Accepts `13%`, `0.13`, `13` (a value ≥ 1 without `%` is read as percent), `1.5%`, `0`.
    pub fn parse(text: &str) -> Result<TaxRate, MoneyError> {
        let trimmed = text.trim();
        let (number, percent) = match trimmed.strip_suffix(['%', '％']) {
            Some(n) => (n, true),
            None => (trimmed, false),
        };
        let v = parse_decimal(number)?;
        let fraction = if percent || v >= Decimal::ONE { v / Decimal::ONE_HUNDRED } else { v };
        TaxRate::try_from(fraction).map_err(|_| MoneyError::RateNotAllowed(text.to_string()))
    }

    pub fn value(self) -> Decimal {
        self.0
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl TryFrom<Decimal> for TaxRate {
    type Error = MoneyError;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        let v = value.normalize();
        TaxRate::all().find(|r| r.0 == v).ok_or_else(|| MoneyError::RateNotAllowed(v.to_string()))
    }
}
impl From<TaxRate> for Decimal {
    fn from(r: TaxRate) -> Decimal {
        r.0
    }
}
impl fmt::Display for TaxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", (self.0 * Decimal::ONE_HUNDRED).normalize())
    }
}

macro_rules! scaled_decimal {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "Decimal", into = "Decimal")]
        pub struct $name(Decimal);

        impl $name {
            /// Exact to at most `QUANTITY_SCALE` decimals.
            pub fn exact(value: Decimal) -> Result<Self, MoneyError> {
                exact_at_scale(value, QUANTITY_SCALE, &value.to_string()).map($name)
            }
            pub fn parse(text: &str) -> Result<Self, MoneyError> {
                exact_at_scale(parse_decimal(text)?, QUANTITY_SCALE, text).map($name)
            }
            /// A computed value, rounded half-up to `QUANTITY_SCALE` decimals.
            pub fn round(value: Decimal) -> Self {
                $name(round_half_up(value, QUANTITY_SCALE).normalize())
            }
            pub fn value(self) -> Decimal {
                self.0
            }
        }
        impl TryFrom<Decimal> for $name {
            type Error = MoneyError;
            fn try_from(value: Decimal) -> Result<Self, Self::Error> {
                $name::exact(value)
            }
        }
        impl From<$name> for Decimal {
            fn from(v: $name) -> Decimal {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.normalize())
            }
        }
    };
}

scaled_decimal!(
    /// A quantity of goods (数量), up to 8 decimals.
    Quantity
);
scaled_decimal!(
    /// A unit price (单价), up to 8 decimals.
    UnitPrice
);

impl Mul<UnitPrice> for Quantity {
    type Output = Decimal;
    /// The exact (unrounded) product; rules compare it with the line amount.
    fn mul(self, price: UnitPrice) -> Decimal {
        self.0 * price.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn half_up_rounds_midpoints_away_from_zero() {
        assert_eq!(Money::round(dec!(1.005)).to_string(), "1.01");
        assert_eq!(Money::round(dec!(1.015)).to_string(), "1.02");
        assert_eq!(Money::round(dec!(2.675)).to_string(), "2.68");
        assert_eq!(Money::round(dec!(1.0049999)).to_string(), "1.00");
        assert_eq!(Money::round(dec!(-1.005)).to_string(), "-1.01");
        assert_eq!(Money::round(dec!(0.125)).to_string(), "0.13");
    }

    #[test]
    fn money_parses_exact_cents_only() {
        assert_eq!(Money::parse("1,234.5").unwrap().to_string(), "1234.50");
        assert_eq!(Money::parse(" -0.30 ").unwrap(), Money::from_cents(-30));
        assert_eq!(Money::parse("12.3400").unwrap(), Money::from_cents(1234));
        assert!(matches!(Money::parse("1.005"), Err(MoneyError::TooManyDecimals { .. })));
        assert!(matches!(Money::parse("abc"), Err(MoneyError::NotANumber(_))));
        // CSV exports write large numbers in scientific notation; it is still exact.
        assert_eq!(Money::parse("1.5E+3").unwrap(), Money::from_cents(150_000));
    }

    #[test]
    fn typed_amounts_must_be_plain() {
        assert_eq!(Money::parse_plain(" 1000.5 ").unwrap(), Money::from_cents(100_050));
        assert_eq!(Money::parse_plain("-0").unwrap(), Money::ZERO);
        assert_eq!(Money::parse_plain("12").unwrap(), Money::from_cents(1200));
        for bad in
            ["1e3", "1E3", "1,000.00", "1.5E+3", "+5", "1.", ".5", "1 000", "--1", "", "0x10", "１００"]
        {
            assert!(matches!(Money::parse_plain(bad), Err(MoneyError::NotPlain(_))), "{bad:?}");
        }
        assert!(matches!(Money::parse_plain("1.005"), Err(MoneyError::TooManyDecimals { .. })));
    }

    #[test]
    fn money_serializes_as_decimal_and_refuses_sub_cent_values() {
        let m: Money = serde_json::from_str("\"10.10\"").unwrap();
        assert_eq!(m, Money::from_cents(1010));
        assert!(serde_json::from_str::<Money>("\"10.101\"").is_err());
    }

    #[test]
    fn rates_parse_in_every_written_form() {
        for text in ["13%", "0.13", "13", "13％", " 0.130 "] {
            assert_eq!(TaxRate::parse(text).unwrap().value(), dec!(0.13), "{text}");
        }
        assert_eq!(TaxRate::parse("1.5%").unwrap().value(), dec!(0.015));
        assert_eq!(TaxRate::parse("0.015").unwrap().value(), dec!(0.015));
        assert_eq!(TaxRate::parse("1").unwrap().value(), dec!(0.01));
        assert_eq!(TaxRate::parse("0").unwrap().value(), dec!(0));
        assert_eq!(TaxRate::parse("0.09").unwrap().to_string(), "9%");
        assert!(matches!(TaxRate::parse("17%"), Err(MoneyError::RateNotAllowed(_))));
        assert!(matches!(TaxRate::parse("0.1"), Err(MoneyError::RateNotAllowed(_))));
        assert_eq!(TaxRate::all().count(), 8);
    }

    #[test]
    fn quantities_keep_eight_decimals() {
        assert_eq!(Quantity::parse("1.12345678").unwrap().value(), dec!(1.12345678));
        assert!(Quantity::parse("1.123456789").is_err());
        assert_eq!(UnitPrice::round(dec!(1) / dec!(3)).value(), dec!(0.33333333));
        assert_eq!(Quantity::parse("3").unwrap() * UnitPrice::parse("1.5").unwrap(), dec!(4.5));
    }
}
