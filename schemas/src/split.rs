//! 单据拆合 and 按限额拆票: bills' lines → the invoices to issue. Pure functions.
//!
//! Laws (property-tested below): the pieces add up to the original to the cent (amount, tax,
//! total, per original line too), every piece is within the limits of its kind, no line is lost
//! or duplicated, and a discount line stays right after the line it discounts.
//!
//! How: a line and its discount line form one *unit* that is never torn apart. Units are packed
//! in order into invoices while the invoice stays within the total and line-count limits; a unit
//! that alone exceeds the total is cut by quantity (or, without a quantity, into equal parts) with
//! amounts and tax recomputed, so that only oversized lines are ever split.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::money::{QUANTITY_SCALE, round_half_up};
use crate::tax::{QUANTITY_PRICE_TOLERANCE, tax_of};
use crate::{Money, Quantity, TaxRate, UnitPrice};

/// 行性质.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineProperty {
    Normal,
    /// 折扣行: negative, right after the line it discounts.
    Discount,
    /// 被折扣行: the line a discount line follows.
    Discounted,
}

impl LineProperty {
    pub fn as_str(self) -> &'static str {
        match self {
            LineProperty::Normal => "normal",
            LineProperty::Discount => "discount",
            LineProperty::Discounted => "discounted",
        }
    }

    pub fn parse(s: &str) -> Option<LineProperty> {
        Some(match s {
            "normal" => LineProperty::Normal,
            "discount" => LineProperty::Discount,
            "discounted" => LineProperty::Discounted,
            _ => return None,
        })
    }

    /// The channel's `lineProperty`: 0 normal, 1 discount, 2 discounted.
    pub fn wire(self) -> u8 {
        match self {
            LineProperty::Normal => 0,
            LineProperty::Discount => 1,
            LineProperty::Discounted => 2,
        }
    }
}

/// One invoice line: its figures, and whatever the caller carries along (`T`: goods name,
/// which bill line it came from, …), cloned into every piece of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<T> {
    pub data: T,
    pub property: LineProperty,
    pub quantity: Option<Quantity>,
    pub price: Option<UnitPrice>,
    pub amount: Money,
    pub rate: TaxRate,
    pub tax: Money,
}

impl<T> Line<T> {
    pub fn total(&self) -> Money {
        self.amount + self.tax
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest 价税合计 of one invoice.
    pub max_total: Money,
    /// Most lines on one invoice.
    pub max_lines: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("line {0}: a discount line must follow the line it discounts")]
    OrphanDiscount(usize),
    #[error("line {0}: a discounted line must be followed by its discount line")]
    MissingDiscount(usize),
    #[error("line {0}: a line with its discount needs 2 lines on one invoice, the limit is {1}")]
    UnitOverLineLimit(usize, usize),
    #[error("line {0}: the limit {1} is too small to split this line (one unit of it costs more)")]
    LimitTooSmall(usize, Money),
    #[error("line {0}: a line with a negative total cannot be split")]
    NegativeUnit(usize),
}

impl crate::Coded for SplitError {
    fn code(&self) -> &'static str {
        match self {
            SplitError::OrphanDiscount(_) | SplitError::MissingDiscount(_) => "SPLIT_DISCOUNT_PLACEMENT",
            SplitError::UnitOverLineLimit(..) => "SPLIT_LINE_LIMIT",
            SplitError::LimitTooSmall(..) => "SPLIT_LIMIT_TOO_SMALL",
            SplitError::NegativeUnit(_) => "SPLIT_NEGATIVE_LINE",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            SplitError::OrphanDiscount(n) | SplitError::MissingDiscount(n) => {
                format!("第{n}行：折扣行必须紧跟在被折扣行之后")
            }
            SplitError::UnitOverLineLimit(n, l) => {
                format!("第{n}行：被折扣行与折扣行须在同一张发票上，但每张发票最多{l}行")
            }
            SplitError::LimitTooSmall(n, m) => format!("第{n}行：开票限额{m}过小，无法按数量拆分"),
            SplitError::NegativeUnit(n) => format!("第{n}行：价税合计为负，无法拆分"),
        }
    }
}

/// Reserve per line of a cut unit for rounding (amount within a cent, tax spread a few cents).
const ROUNDING_RESERVE_CENTS: i64 = 10;

/// Split one invoice's lines (in order) into pieces within `limits`.
pub fn split<T: Clone>(lines: &[Line<T>], limits: Limits) -> Result<Vec<Vec<Line<T>>>, SplitError> {
    let mut pieces: Vec<Vec<Line<T>>> = Vec::new();
    let mut current: Vec<Line<T>> = Vec::new();
    let mut current_total = Money::ZERO;
    for (first, unit) in units(lines)? {
        if unit.len() > limits.max_lines {
            return Err(SplitError::UnitOverLineLimit(first + 1, limits.max_lines));
        }
        let gross: Money = unit.iter().map(Line::total).sum();
        let chunks = if gross <= limits.max_total {
            vec![unit.to_vec()]
        } else {
            cut_unit(unit, first, limits.max_total)?
        };
        for chunk in chunks {
            let total: Money = chunk.iter().map(Line::total).sum();
            if !current.is_empty()
                && (current_total + total > limits.max_total
                    || current.len() + chunk.len() > limits.max_lines)
            {
                pieces.push(std::mem::take(&mut current));
                current_total = Money::ZERO;
            }
            current_total += total;
            current.extend(chunk);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    Ok(pieces)
}

/// A unit (a line, or a discounted line with its discount) with the 0-based index of its first line.
type Unit<'a, T> = (usize, &'a [Line<T>]);

/// Lines grouped into units: a discounted line with its discount line, or one line.
fn units<T>(lines: &[Line<T>]) -> Result<Vec<Unit<'_, T>>, SplitError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match lines[i].property {
            LineProperty::Discount => return Err(SplitError::OrphanDiscount(i + 1)),
            LineProperty::Discounted => {
                if lines.get(i + 1).map(|l| l.property) != Some(LineProperty::Discount) {
                    return Err(SplitError::MissingDiscount(i + 1));
                }
                out.push((i, &lines[i..i + 2]));
                i += 2;
            }
            LineProperty::Normal => {
                out.push((i, &lines[i..i + 1]));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Cut a unit whose total exceeds `max_total` into chunks that each fit.
fn cut_unit<T: Clone>(
    unit: &[Line<T>],
    first: usize,
    max_total: Money,
) -> Result<Vec<Vec<Line<T>>>, SplitError> {
    let gross: Money = unit.iter().map(Line::total).sum();
    if gross.is_negative() {
        return Err(SplitError::NegativeUnit(first + 1));
    }
    let reserve = Money::from_cents(ROUNDING_RESERVE_CENTS * unit.len() as i64);
    let cap = max_total - reserve;
    if !cap.is_positive() {
        return Err(SplitError::LimitTooSmall(first + 1, max_total));
    }
    let primary = &unit[0];
    let weights: Vec<Decimal> =
        match primary.quantity.map(Quantity::value).filter(|q| q.is_sign_positive() && !q.is_zero()) {
            Some(q) => {
                let per_unit = gross.value() / q;
                let mut q_max = cap.value() / per_unit;
                q_max = if q.fract().is_zero() && q_max >= Decimal::ONE {
                    q_max.floor()
                } else {
                    q_max.trunc_with_scale(QUANTITY_SCALE)
                };
                if q_max.is_zero() {
                    return Err(SplitError::LimitTooSmall(first + 1, max_total));
                }
                let n = (q / q_max).ceil().to_usize().expect("piece count fits");
                let mut w = vec![q_max; n - 1];
                w.push(q - q_max * Decimal::from(n - 1));
                w
            }
            None => {
                let n = (gross.value() / cap.value()).ceil().to_usize().expect("piece count fits");
                vec![Decimal::ONE; n]
            }
        };
    let mut chunks: Vec<Vec<Line<T>>> = vec![Vec::with_capacity(unit.len()); weights.len()];
    for (k, line) in unit.iter().enumerate() {
        let amounts = allocate(line.amount, &weights);
        let taxes = spread_tax(line.tax, &amounts, line.rate);
        for (i, chunk) in chunks.iter_mut().enumerate() {
            let (quantity, price) =
                if k == 0 { piece_quantity_price(line, weights[i], amounts[i]) } else { (None, None) };
            chunk.push(Line {
                data: line.data.clone(),
                property: line.property,
                quantity,
                price,
                amount: amounts[i],
                rate: line.rate,
                tax: taxes[i],
            });
        }
    }
    Ok(chunks)
}

/// The primary line's quantity and price in a piece of `weight` quantity: the price stays,
/// unless the piece's rounded amount strays from quantity × price by more than the tolerance.
fn piece_quantity_price<T>(
    line: &Line<T>,
    weight: Decimal,
    amount: Money,
) -> (Option<Quantity>, Option<UnitPrice>) {
    let Some(_) = line.quantity else { return (None, line.price) };
    let quantity = Quantity::round(weight);
    let price = line.price.map(|p| {
        if (quantity * p - amount.value()).abs() <= QUANTITY_PRICE_TOLERANCE {
            p
        } else {
            UnitPrice::round(amount.value() / quantity.value())
        }
    });
    (Some(quantity), price)
}

/// `total` shared in proportion to `weights` by cumulative rounding: every share is within a
/// cent of its exact value and the shares add up to `total` exactly.
pub fn allocate(total: Money, weights: &[Decimal]) -> Vec<Money> {
    let sum: Decimal = weights.iter().sum();
    let mut out = Vec::with_capacity(weights.len());
    let mut cumulative = Decimal::ZERO;
    let mut given = Money::ZERO;
    for (i, w) in weights.iter().enumerate() {
        cumulative += w;
        let upto =
            if i + 1 == weights.len() { total } else { Money::round(total.value() * cumulative / sum) };
        out.push(upto - given);
        given = upto;
    }
    out
}

/// `total` shared over lines in proportion to what each still holds (`room`: a partial
/// red-flush by amount after earlier ones). When `total` ≤ the room together no share passes its
/// line's room: a share lies strictly within a cent of its exact value total·r/Σr ≤ r, and
/// shares are whole cents. Lines without room get nothing.
pub fn allocate_within(total: Money, room: &[Money]) -> Vec<Money> {
    let weights: Vec<Decimal> = room.iter().map(|r| r.value().max(Decimal::ZERO)).collect();
    if weights.iter().all(|w| w.is_zero()) {
        return allocate(total, &vec![Decimal::ONE; room.len()]);
    }
    allocate(total, &weights)
}

/// Each piece's tax recomputed from its amount, and the cents by which they miss the original
/// tax handed out one at a time from the last piece backwards, so no piece strays far.
fn spread_tax(tax: Money, amounts: &[Money], rate: TaxRate) -> Vec<Money> {
    let mut taxes: Vec<Money> = amounts.iter().map(|a| tax_of(*a, rate)).collect();
    let missing = tax - taxes.iter().copied().sum::<Money>();
    let cents = round_half_up(missing.value() * Decimal::ONE_HUNDRED, 0).to_i64().expect("cents fit");
    let step = Money::from_cents(cents.signum());
    for k in 0..cents.unsigned_abs() as usize {
        let i = taxes.len() - 1 - k % taxes.len();
        taxes[i] += step;
    }
    taxes
}

/// Bills that may share invoices (same merge key, e.g. seller + buyer + kind), merged in the
/// order they came; each group lists its bills and their lines.
pub fn merge<K: PartialEq + Clone, B: Clone, L: Clone>(bills: &[(K, B, Vec<L>)]) -> Vec<(K, Vec<B>, Vec<L>)> {
    let mut groups: Vec<(K, Vec<B>, Vec<L>)> = Vec::new();
    for (key, bill, lines) in bills {
        match groups.iter_mut().find(|g| g.0 == *key) {
            Some(g) => {
                g.1.push(bill.clone());
                g.2.extend(lines.iter().cloned());
            }
            None => groups.push((key.clone(), vec![bill.clone()], lines.clone())),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tax::{check_line_tax, check_quantity_price};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn line(id: u32, q: Option<Decimal>, price: Decimal, rate: Decimal, property: LineProperty) -> Line<u32> {
        let rate = TaxRate::try_from(rate).unwrap();
        let amount = Money::round(q.unwrap_or(Decimal::ONE) * price);
        Line {
            data: id,
            property,
            quantity: q.map(|q| Quantity::exact(q).unwrap()),
            price: q.map(|_| UnitPrice::exact(price).unwrap()),
            amount,
            rate,
            tax: tax_of(amount, rate),
        }
    }

    fn limits(max: &str, lines: usize) -> Limits {
        Limits { max_total: Money::parse(max).unwrap(), max_lines: lines }
    }

    #[test]
    fn lines_that_fit_stay_whole_and_are_packed_in_order() {
        let lines: Vec<_> =
            (0..5).map(|i| line(i, Some(dec!(1)), dec!(100), dec!(0.13), LineProperty::Normal)).collect();
        let pieces = split(&lines, limits("250", 8)).unwrap();
        let ids: Vec<Vec<u32>> = pieces.iter().map(|p| p.iter().map(|l| l.data).collect()).collect();
        assert_eq!(ids, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(split(&lines, limits("10000", 3)).unwrap().len(), 2, "line-count limit");
    }

    #[test]
    fn an_oversized_line_is_cut_by_whole_quantities_with_the_remainder_last() {
        // 10 × 30,000.00 at 13%: 339,000.00 against a 100,000.00 limit → 2+2+… units of 33,900.
        let big = line(7, Some(dec!(10)), dec!(30000), dec!(0.13), LineProperty::Normal);
        let pieces = split(std::slice::from_ref(&big), limits("100000", 8)).unwrap();
        let qs: Vec<String> = pieces.iter().map(|p| p[0].quantity.unwrap().to_string()).collect();
        assert_eq!(qs, ["2", "2", "2", "2", "2"]);
        assert!(pieces.iter().all(|p| p[0].total() == Money::parse("67800.00").unwrap()));
    }

    #[test]
    fn a_discount_pair_is_cut_together_and_stays_adjacent() {
        let mut base = line(1, Some(dec!(4)), dec!(50000), dec!(0.13), LineProperty::Discounted);
        base.quantity = Some(Quantity::exact(dec!(4)).unwrap());
        let mut discount = line(2, None, dec!(-20000), dec!(0.13), LineProperty::Discount);
        discount.price = None;
        let pieces = split(&[base, discount], limits("100000", 8)).unwrap();
        assert!(pieces.len() >= 2);
        for p in &pieces {
            assert_eq!(p.len(), 2);
            assert_eq!((p[0].property, p[1].property), (LineProperty::Discounted, LineProperty::Discount));
        }
    }

    #[test]
    fn misplaced_discounts_are_refused() {
        let d = line(1, None, dec!(-1), dec!(0.13), LineProperty::Discount);
        assert_eq!(split(&[d], limits("100", 8)), Err(SplitError::OrphanDiscount(1)));
        let n = line(1, None, dec!(1), dec!(0.13), LineProperty::Discounted);
        assert_eq!(split(&[n], limits("100", 8)), Err(SplitError::MissingDiscount(1)));
    }

    #[test]
    fn allocation_adds_up_and_each_share_is_within_a_cent() {
        let shares = allocate(Money::parse("100.00").unwrap(), &[dec!(1), dec!(1), dec!(1)]);
        assert_eq!(shares.iter().copied().sum::<Money>(), Money::parse("100.00").unwrap());
        assert_eq!(shares.iter().map(|m| m.to_string()).collect::<Vec<_>>(), ["33.33", "33.34", "33.33"]);
    }

    #[test]
    fn merge_groups_by_key_in_order() {
        let bills = vec![("a", "B1", vec![1]), ("b", "B2", vec![2]), ("a", "B3", vec![3])];
        let merged = merge(&bills);
        assert_eq!(merged, vec![("a", vec!["B1", "B3"], vec![1, 3]), ("b", vec!["B2"], vec![2])]);
    }

    fn arb_line() -> impl Strategy<Value = Vec<Line<u32>>> {
        let rate =
            prop::sample::select(vec![dec!(0.13), dec!(0.09), dec!(0.06), dec!(0.03), dec!(0.01), dec!(0)]);
        // Quantities: whole or with up to 3 decimals; prices 0.01 … 99,999.99; some lines discounted.
        (1i64..2000, 0u32..4, 1i64..10_000_000, rate, any::<bool>(), 1i64..60, -6i64..=6).prop_map(
            |(q, qdec, price_cents, rate, discounted, discount_pct, tax_off)| {
                let q = Decimal::new(q, qdec);
                let price = Decimal::new(price_cents, 2);
                let rate = TaxRate::try_from(rate).unwrap();
                let amount = Money::round(q * price);
                // The tax as an importer accepted it: up to 0.06 off the computed one.
                let tax = tax_of(amount, rate) + Money::from_cents(tax_off);
                let mut l = Line {
                    data: 0,
                    property: if discounted { LineProperty::Discounted } else { LineProperty::Normal },
                    quantity: Some(Quantity::exact(q).unwrap()),
                    price: Some(UnitPrice::exact(price).unwrap()),
                    amount,
                    rate,
                    tax,
                };
                if !discounted {
                    return vec![l];
                }
                let d_amount = -Money::round(amount.value() * Decimal::from(discount_pct) / dec!(100));
                let d = Line {
                    data: 0,
                    property: LineProperty::Discount,
                    quantity: None,
                    price: None,
                    amount: d_amount,
                    rate,
                    tax: tax_of(d_amount, rate),
                };
                l.data = 0;
                vec![l, d]
            },
        )
    }

    fn arb_invoice() -> impl Strategy<Value = Vec<Line<u32>>> {
        prop::collection::vec(arb_line(), 1..12).prop_map(|units| {
            let mut lines: Vec<Line<u32>> = units.into_iter().flatten().collect();
            for (i, l) in lines.iter_mut().enumerate() {
                l.data = i as u32;
            }
            lines
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn shares_within_room_add_up(room in prop::collection::vec(0i64..50_000, 1..8), part in 0u32..=100) {
            let total = Money::from_cents(room.iter().sum::<i64>() * i64::from(part) / 100);
            let room: Vec<Money> = room.into_iter().map(Money::from_cents).collect();
            let shares = allocate_within(total, &room);
            prop_assert_eq!(shares.iter().copied().sum::<Money>(), total);
            for (share, room) in shares.iter().zip(&room) {
                prop_assert!(!share.is_negative() && share <= room, "{} within {}", share, room);
            }
        }

        #[test]
        fn pieces_add_up_fit_and_lose_nothing(lines in arb_invoice(), max_cents in 100_000i64..50_000_000, max_lines in 2usize..10) {
            let limits = Limits { max_total: Money::from_cents(max_cents), max_lines };
            let pieces = split(&lines, limits).unwrap();
            let flat: Vec<&Line<u32>> = pieces.iter().flatten().collect();
            let sum = |f: fn(&Line<u32>) -> Money, it: &mut dyn Iterator<Item = &Line<u32>>| it.map(f).sum::<Money>();
            prop_assert_eq!(sum(|l| l.amount, &mut flat.iter().copied()), sum(|l| l.amount, &mut lines.iter()));
            prop_assert_eq!(sum(|l| l.tax, &mut flat.iter().copied()), sum(|l| l.tax, &mut lines.iter()));
            prop_assert_eq!(sum(Line::total, &mut flat.iter().copied()), sum(Line::total, &mut lines.iter()));
            for original in &lines {
                let parts: Vec<&&Line<u32>> = flat.iter().filter(|l| l.data == original.data).collect();
                prop_assert!(!parts.is_empty(), "line {} lost", original.data);
                prop_assert_eq!(parts.iter().map(|l| l.amount).sum::<Money>(), original.amount);
                prop_assert_eq!(parts.iter().map(|l| l.tax).sum::<Money>(), original.tax);
                if let (Some(q), Some(_)) = (original.quantity, original.price) {
                    prop_assert_eq!(parts.iter().map(|l| l.quantity.unwrap().value()).sum::<Decimal>(), q.value());
                }
                if parts.len() == 1 {
                    prop_assert_eq!(*parts[0], original, "a line that was not cut is unchanged");
                }
            }
            for piece in &pieces {
                prop_assert!(piece.iter().map(Line::total).sum::<Money>() <= limits.max_total);
                prop_assert!(piece.len() <= limits.max_lines);
                prop_assert!(units(piece).is_ok(), "discount lines stay right after their line");
                for l in piece {
                    prop_assert!(check_line_tax(l.amount, l.rate, l.tax).is_ok(), "{:?}", l);
                    if let (Some(q), Some(p)) = (l.quantity, l.price) {
                        prop_assert!(check_quantity_price(q, p, l.amount).is_ok(), "{:?}", l);
                    }
                }
            }
            // Whole lines are never cut while they fit: cut lines are only those over the limit.
            for (first, unit) in units(&lines).unwrap() {
                let parts = flat.iter().filter(|l| l.data == first as u32).count();
                if parts > 1 {
                    prop_assert!(unit.iter().map(Line::total).sum::<Money>() > limits.max_total);
                }
            }
        }
    }
}
