//! A merchant's order in the documented GET.ORDER shape (3.1.02 查询订单, reference/domain-facts.md
//! "Dynamic receipt QR code"; also what mode 2 uploads, 3.2.01): `{billNo, drawer, billDate,
//! includeTaxFlag, billProperty, sellerTaxpayerId, cancalState, billAmount, billDetail[]}`.
//!
//! Senders write amounts as JSON numbers or strings and flags as "0"/"1" or 0/1. Every scalar is
//! read from the JSON text itself (serde_json's `RawValue`, as the ERP API does in `api/src/wire.rs`),
//! so `12345678901234567.89` is that decimal and never an f64; `arbitrary_precision` stays off (it
//! would change every crate's `serde_json::Number`).

use fapiao_schemas::receipt_link::LinkRefusal;
use fapiao_store::receipts::ReceiptLineRow;
use rust_decimal::Decimal;
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A JSON scalar as written: a string's content, a number's or a boolean's text; `None` for null
/// or absent. An object or array where a scalar belongs does not deserialize.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Scalar(pub Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get().trim();
        match text.as_bytes().first() {
            Some(b'"') => {
                serde_json::from_str::<String>(text).map(|s| Scalar(Some(s))).map_err(D::Error::custom)
            }
            Some(b'n') => Ok(Scalar(None)),
            Some(b'{' | b'[') => Err(D::Error::custom("an object or array where a scalar belongs")),
            _ => Ok(Scalar(Some(text.to_string()))),
        }
    }
}

impl Scalar {
    /// The text, trimmed; `None` when absent or blank.
    pub fn text(&self) -> Option<&str> {
        self.0.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// The exact decimal the text writes (`1e2` style too); `None` when it is no number.
    pub fn decimal(&self) -> Option<Decimal> {
        let t = self.text()?;
        t.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(t).ok())
    }

    /// "1", 1 or true.
    pub fn flag(&self) -> bool {
        matches!(self.text(), Some("1" | "true"))
    }
}

/// One line of `billDetail`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrderLine {
    pub goods_name: Scalar,
    pub revenue_code: Scalar,
    pub specification: Scalar,
    pub units: Scalar,
    pub quantity: Scalar,
    pub price: Scalar,
    pub amount: Scalar,
    pub tax_amount: Scalar,
    pub tax_rate: Scalar,
    pub line_property: Scalar,
}

/// An order as the merchant's query answers it (or as an ERP uploads it).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Order {
    pub bill_no: Scalar,
    pub seller_taxpayer_id: Scalar,
    /// 开票人 of the invoice.
    pub drawer: Scalar,
    /// 收款人, 复核人: not in the documented answer; taken when a sender adds them.
    pub payee: Scalar,
    pub reviewer: Scalar,
    pub remark: Scalar,
    pub include_tax_flag: Scalar,
    /// 1 a sale, -1 a return.
    pub bill_property: Scalar,
    /// (sic) 1 when the order was cancelled.
    pub cancal_state: Scalar,
    pub bill_amount: Scalar,
    pub bill_detail: Vec<OrderLine>,
}

/// Why an order's JSON could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("订单数据格式不正确：{0}")]
pub struct Unreadable(pub String);

/// An order from its JSON text.
pub fn parse(json: &str) -> Result<Order, Unreadable> {
    serde_json::from_str(json).map_err(|e| Unreadable(e.to_string()))
}

/// The GET.ORDER answer `{code, data}`: the order when `code` is "0" (or 0) and `data` an object.
pub fn parse_answer(json: &str) -> Result<Option<Order>, Unreadable> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        code: Scalar,
        data: Option<Box<RawValue>>,
    }
    let a: Answer = serde_json::from_str(json).map_err(|e| Unreadable(e.to_string()))?;
    match a.data {
        Some(data) if a.code.text() == Some("0") && data.get().trim_start().starts_with('{') => {
            parse(data.get()).map(Some)
        }
        _ => Ok(None),
    }
}

/// A line the order does not describe fully (its 1-based number).
#[derive(Debug, PartialEq, Eq)]
pub struct IncompleteLine(pub usize);

/// The order's amount and its lines — or a refusal: a cancelled order or a return is no order to
/// invoice. The lines land tax-included (what the importer checks): net prices (includeTaxFlag 0)
/// are not that, so such lines carry amounts alone.
pub fn lines(order: &Order) -> Result<Result<(Decimal, Vec<ReceiptLineRow>), LinkRefusal>, IncompleteLine> {
    if order.cancal_state.flag() || order.bill_property.text() == Some("-1") {
        return Ok(Err(LinkRefusal::UnknownOrder));
    }
    let included = order.include_tax_flag.flag();
    let mut out = Vec::with_capacity(order.bill_detail.len());
    for (i, l) in order.bill_detail.iter().enumerate() {
        let bad = || IncompleteLine(i + 1);
        let amount = l.amount.decimal().ok_or_else(bad)?;
        let tax = l.tax_amount.decimal().ok_or_else(bad)?;
        let rate = rate(&l.tax_rate).ok_or_else(bad)?;
        let (net, total) = if included { (amount - tax, amount) } else { (amount, amount + tax) };
        // In the scan reply 2 is a normal line and 0 a line that carries a discount (domain-facts).
        let property = match l.line_property.text() {
            Some("0") => "discounted",
            Some("1") => "discount",
            _ => "normal",
        };
        let text = |s: &Scalar| s.text().map(str::to_string);
        out.push(ReceiptLineRow {
            line_no: i as i32 + 1,
            goods_id: None,
            goods_name: text(&l.goods_name).ok_or_else(bad)?,
            revenue_code: text(&l.revenue_code).ok_or_else(bad)?,
            specification: text(&l.specification),
            unit: text(&l.units),
            quantity: if included { l.quantity.decimal() } else { None },
            price: if included { l.price.decimal() } else { None },
            amount: net,
            tax_rate: rate,
            tax,
            total,
            line_property: property.into(),
        });
    }
    let bill_amount = order.bill_amount.decimal().unwrap_or_else(|| out.iter().map(|l| l.total).sum());
    Ok(Ok((bill_amount, out)))
}

/// "0.13", 0.13, "13", "13%": the rate as a fraction.
fn rate(s: &Scalar) -> Option<Decimal> {
    let text = s.text()?;
    let (digits, percent) = match text.strip_suffix('%') {
        Some(d) => (d.trim(), true),
        None => (text, false),
    };
    let r = Scalar(Some(digits.to_string())).decimal()?;
    Some(if percent || r > Decimal::ONE { r / Decimal::ONE_HUNDRED } else { r })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn amounts_are_read_from_the_json_text_where_an_f64_would_round() {
        // 12345678901234567.89 as an f64 is 12345678901234568; 0.1 + 0.2 in f64 is 0.30000000000000004.
        let json = r#"{"billNo": "POS-9", "includeTaxFlag": 1, "billAmount": 12345678901234568.19,
            "billDetail": [
              {"goodsName": "大件", "revenueCode": "3070401000000000000", "amount": 12345678901234567.89,
               "taxAmount": 0.10, "taxRate": 0.06, "lineProperty": 2, "quantity": 1, "price": 12345678901234567.89},
              {"goodsName": "小件", "revenueCode": "3070401000000000000", "amount": 0.30, "taxAmount": 0.02,
               "taxRate": "6%", "lineProperty": "2", "quantity": 3, "price": 0.1}
            ]}"#;
        let order = parse(json).unwrap();
        let (amount, lines) = lines(&order).unwrap().unwrap();
        assert_eq!(amount, d("12345678901234568.19"));
        assert_eq!(lines[0].total, d("12345678901234567.89"));
        assert_eq!(lines[0].price, Some(d("12345678901234567.89")));
        assert_eq!(lines[0].amount, d("12345678901234567.79"));
        assert_eq!(lines[1].price, Some(d("0.1")));
        assert_eq!(lines[1].tax_rate, d("0.06"));
        let sum: Decimal = lines.iter().map(|l| l.total).sum();
        assert_eq!(sum, amount, "0.30 + …67.89 sums exactly");
    }

    #[test]
    fn string_amounts_and_flags_read_the_same_as_numbers() {
        let json = r#"{"billNo": "POS-1", "drawer": "收银员1", "includeTaxFlag": "1", "billProperty": "1",
            "cancalState": "0", "billAmount": "100.00",
            "billDetail": [
              {"goodsName": "拿铁咖啡", "revenueCode": "3070401000000000000", "units": "杯", "quantity": "2",
               "price": "30.00", "amount": "60.00", "taxRate": "0.06", "taxAmount": "3.40", "lineProperty": "0"},
              {"goodsName": "拿铁咖啡", "revenueCode": "3070401000000000000", "amount": "-10.00", "taxRate": "6",
               "taxAmount": "-0.57", "lineProperty": "1"},
              {"goodsName": "咖啡豆", "revenueCode": "3070401000000000000", "quantity": 1, "price": 50.0,
               "amount": 50.0, "taxRate": 0.06, "taxAmount": 2.83, "lineProperty": 2}
            ]}"#;
        let order = parse(json).unwrap();
        assert_eq!(order.drawer.text(), Some("收银员1"));
        let (amount, lines) = lines(&order).unwrap().unwrap();
        assert_eq!(amount, d("100.00"));
        let props: Vec<&str> = lines.iter().map(|l| l.line_property.as_str()).collect();
        assert_eq!(props, ["discounted", "discount", "normal"]);
        assert_eq!((lines[0].amount, lines[0].tax, lines[0].total), (d("56.60"), d("3.40"), d("60.00")));
        assert_eq!(lines[1].tax_rate, d("0.06"), "6 is 6 %");
        assert_eq!(lines[2].total, d("50.0"));
        assert_eq!(lines[0].unit.as_deref(), Some("杯"));
    }

    #[test]
    fn net_prices_land_by_amount_and_refusals_and_incomplete_lines_are_told_apart() {
        let net = r#"{"includeTaxFlag": 0, "billDetail": [{"goodsName": "茶", "revenueCode": "3070401000000000000",
            "quantity": 1, "price": 10, "amount": 10, "taxAmount": 0.6, "taxRate": 0.06}]}"#;
        let (amount, l) = lines(&parse(net).unwrap()).unwrap().unwrap();
        assert_eq!((amount, l[0].total, l[0].price), (d("10.6"), d("10.6"), None));
        let cancelled = r#"{"cancalState": 1, "billDetail": []}"#;
        assert_eq!(lines(&parse(cancelled).unwrap()).unwrap(), Err(LinkRefusal::UnknownOrder));
        let ret = r#"{"billProperty": "-1"}"#;
        assert_eq!(lines(&parse(ret).unwrap()).unwrap(), Err(LinkRefusal::UnknownOrder));
        let missing =
            r#"{"billDetail": [{"goodsName": "茶", "amount": "x", "taxAmount": 1, "taxRate": 0.06}]}"#;
        assert_eq!(lines(&parse(missing).unwrap()).unwrap_err(), IncompleteLine(1));
        assert!(parse(r#"{"billAmount": {"v": 1}}"#).is_err(), "an object where an amount belongs");
    }

    #[test]
    fn an_answer_is_an_order_only_with_code_0_and_an_object() {
        let order =
            parse_answer(r#"{"code": 0, "data": {"billNo": "A", "billAmount": 0.1}}"#).unwrap().unwrap();
        assert_eq!((order.bill_no.text(), order.bill_amount.decimal()), (Some("A"), Some(d("0.1"))));
        assert!(parse_answer(r#"{"code": "0", "data": {"billNo": "A"}}"#).unwrap().is_some());
        assert!(parse_answer(r#"{"code": "1", "data": {"billNo": "A"}}"#).unwrap().is_none());
        assert!(parse_answer(r#"{"code": "0", "data": null}"#).unwrap().is_none());
        assert!(parse_answer("not json").is_err());
    }
}
