//! Amount / tax / total arithmetic and the tolerances of SPEC.md "Rules".
//!
//! * total = amount + tax, exactly;
//! * amount ≈ quantity × unit price, within ±0.01 (the exact product, unrounded);
//! * tax ≈ round_half_up(amount × rate, 2), within ±0.06 per line ([KD-DOC]);
//! * the summed tax difference of one invoice within a configurable tolerance (default 1.27,
//!   the tax-control convention; not confirmed for 数电).

use rust_decimal::Decimal;

use crate::messages::Coded;
use crate::money::{Money, Quantity, TaxRate, UnitPrice};

/// Per line: |round(amount × rate) − tax| may not exceed this.
pub const LINE_TAX_TOLERANCE: Decimal = Decimal::from_parts(6, 0, 0, false, 2);
/// Per line: |quantity × price − amount| may not exceed this.
pub const QUANTITY_PRICE_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// Per invoice, default: |Σ round(amount × rate) − Σ tax| may not exceed this.
pub const DEFAULT_INVOICE_TAX_TOLERANCE: Decimal = Decimal::from_parts(127, 0, 0, false, 2);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxRuleError {
    #[error("tax {given} differs from amount × rate = {expected} by more than 0.06")]
    LineTax { expected: Money, given: Money },
    #[error("amount {given} differs from quantity × price = {expected} by more than 0.01")]
    QuantityPrice { expected: Decimal, given: Money },
    #[error("total {given} is not amount + tax = {expected}")]
    Total { expected: Money, given: Money },
    #[error("invoice tax differs from Σ amount × rate by {difference}, more than the tolerance {tolerance}")]
    InvoiceTax { difference: Decimal, tolerance: Decimal },
}

impl Coded for TaxRuleError {
    fn code(&self) -> &'static str {
        match self {
            TaxRuleError::LineTax { .. } => "TAX_LINE_MISMATCH",
            TaxRuleError::QuantityPrice { .. } => "AMOUNT_PRICE_MISMATCH",
            TaxRuleError::Total { .. } => "TOTAL_MISMATCH",
            TaxRuleError::InvoiceTax { .. } => "TAX_INVOICE_MISMATCH",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            TaxRuleError::LineTax { expected, given } => {
                format!("税额{given}与金额×税率（{expected}）的误差超过0.06")
            }
            TaxRuleError::QuantityPrice { expected, given } => {
                format!("金额{given}与数量×单价（{}）的误差超过0.01", expected.normalize())
            }
            TaxRuleError::Total { expected, given } => {
                format!("价税合计{given}不等于金额+税额（{expected}）")
            }
            TaxRuleError::InvoiceTax { difference, tolerance } => {
                format!("整张发票税额误差{difference}超过允许的{tolerance}")
            }
        }
    }
}

/// The tax of a net amount: round_half_up(amount × rate, 2).
pub fn tax_of(amount: Money, rate: TaxRate) -> Money {
    Money::round(amount.value() * rate.value())
}

pub fn check_line_tax(amount: Money, rate: TaxRate, tax: Money) -> Result<(), TaxRuleError> {
    let expected = tax_of(amount, rate);
    if (expected - tax).abs().value() > LINE_TAX_TOLERANCE {
        return Err(TaxRuleError::LineTax { expected, given: tax });
    }
    Ok(())
}

pub fn check_quantity_price(quantity: Quantity, price: UnitPrice, amount: Money) -> Result<(), TaxRuleError> {
    let expected = quantity * price;
    if (expected - amount.value()).abs() > QUANTITY_PRICE_TOLERANCE {
        return Err(TaxRuleError::QuantityPrice { expected, given: amount });
    }
    Ok(())
}

pub fn check_total(amount: Money, tax: Money, total: Money) -> Result<(), TaxRuleError> {
    let expected = amount + tax;
    if expected != total {
        return Err(TaxRuleError::Total { expected, given: total });
    }
    Ok(())
}

/// One line's figures, as far as the invoice-level tax rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxLine {
    pub amount: Money,
    pub rate: TaxRate,
    pub tax: Money,
}

/// The invoice-level rule: the summed per-line rounding differences within `tolerance`.
pub fn check_invoice_tax(lines: &[TaxLine], tolerance: Decimal) -> Result<(), TaxRuleError> {
    let expected: Money = lines.iter().map(|l| tax_of(l.amount, l.rate)).sum();
    let given: Money = lines.iter().map(|l| l.tax).sum();
    let difference = (expected - given).abs().value();
    if difference > tolerance {
        return Err(TaxRuleError::InvoiceTax { difference, tolerance });
    }
    Ok(())
}

/// Net amount and tax of a tax-inclusive amount: tax = round_half_up(gross × r / (1 + r), 2),
/// net = gross − tax, so net + tax = gross to the cent.
pub fn split_inclusive(gross: Money, rate: TaxRate) -> (Money, Money) {
    let r = rate.value();
    let tax = Money::round(gross.value() * r / (Decimal::ONE + r));
    (gross - tax, tax)
}

/// Tax and tax-inclusive total of a net amount.
pub fn add_tax(net: Money, rate: TaxRate) -> (Money, Money) {
    let tax = tax_of(net, rate);
    (tax, net + tax)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }
    fn rate(s: &str) -> TaxRate {
        TaxRate::parse(s).unwrap()
    }

    #[test]
    fn line_tax_tolerance_is_six_cents_inclusive() {
        // 100.00 × 13% = 13.00
        assert!(check_line_tax(m("100"), rate("13%"), m("13.06")).is_ok());
        assert!(check_line_tax(m("100"), rate("13%"), m("12.94")).is_ok());
        let err = check_line_tax(m("100"), rate("13%"), m("13.07")).unwrap_err();
        assert_eq!(err.code(), "TAX_LINE_MISMATCH");
        assert!(check_line_tax(m("100"), rate("13%"), m("12.93")).is_err());
    }

    #[test]
    fn tax_is_rounded_half_up_before_comparing() {
        // 0.50 × 13% = 0.065 → 0.07 (half-up), not 0.06 (banker's)
        assert_eq!(tax_of(m("0.50"), rate("13%")), m("0.07"));
        // 1.50 × 3% = 0.045 → 0.05
        assert_eq!(tax_of(m("1.50"), rate("3%")), m("0.05"));
        assert_eq!(tax_of(m("-0.50"), rate("13%")), m("-0.07"));
    }

    #[test]
    fn quantity_price_tolerance_is_one_cent_inclusive() {
        let q = Quantity::parse("2").unwrap();
        let p = UnitPrice::parse("50").unwrap();
        assert!(check_quantity_price(q, p, m("100.01")).is_ok());
        assert!(check_quantity_price(q, p, m("99.99")).is_ok());
        let err = check_quantity_price(q, p, m("100.02")).unwrap_err();
        assert_eq!(err.code(), "AMOUNT_PRICE_MISMATCH");
        assert!(check_quantity_price(q, p, m("99.98")).is_err());
        // The product is compared unrounded: 3 × 33.333333 = 99.999999, 0.010001 short of 100.01.
        let p = UnitPrice::parse("33.333333").unwrap();
        let q = Quantity::parse("3").unwrap();
        assert!(check_quantity_price(q, p, m("100.00")).is_ok());
        assert!(check_quantity_price(q, p, m("100.01")).is_err());
    }

    #[test]
    fn total_must_be_exact() {
        assert!(check_total(m("100"), m("13"), m("113")).is_ok());
        assert_eq!(check_total(m("100"), m("13"), m("113.01")).unwrap_err().code(), "TOTAL_MISMATCH");
    }

    #[test]
    fn invoice_tax_tolerance_is_configurable() {
        // 30 lines each 0.05 under: Σ difference 1.50.
        let line = TaxLine { amount: m("100"), rate: rate("13%"), tax: m("12.95") };
        let lines = vec![line; 30];
        assert!(check_invoice_tax(&lines, DEFAULT_INVOICE_TAX_TOLERANCE).is_err());
        assert!(check_invoice_tax(&lines, dec!(1.50)).is_ok());
        assert!(check_invoice_tax(&lines[..25], DEFAULT_INVOICE_TAX_TOLERANCE).is_ok()); // 1.25
    }

    #[test]
    fn inclusive_split_of_known_values() {
        assert_eq!(split_inclusive(m("113"), rate("13%")), (m("100"), m("13")));
        // 100 / 1.06 × 0.06 = 5.660377… → 5.66
        assert_eq!(split_inclusive(m("100"), rate("6%")), (m("94.34"), m("5.66")));
        assert_eq!(add_tax(m("94.34"), rate("6%")), (m("5.66"), m("100.00")));
        assert_eq!(split_inclusive(m("-113"), rate("13%")), (m("-100"), m("-13")));
    }

    fn any_money() -> impl Strategy<Value = Money> {
        (-10_000_000_000i64..10_000_000_000i64).prop_map(Money::from_cents)
    }
    fn any_rate() -> impl Strategy<Value = TaxRate> {
        prop::sample::select(TaxRate::all().collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn inclusive_split_adds_up_and_passes_the_line_rule(gross in any_money(), r in any_rate()) {
            let (net, tax) = split_inclusive(gross, r);
            prop_assert_eq!(net + tax, gross);
            prop_assert!(check_line_tax(net, r, tax).is_ok());
        }

        #[test]
        fn adding_tax_then_splitting_stays_within_a_cent(net in any_money(), r in any_rate()) {
            let (tax, gross) = add_tax(net, r);
            prop_assert!(check_total(net, tax, gross).is_ok());
            let (net2, _) = split_inclusive(gross, r);
            prop_assert!((net2 - net).abs() <= Money::from_cents(1));
        }
    }
}
