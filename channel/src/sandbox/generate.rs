//! Input invoices the sandbox's "tax bureau" holds, generated deterministically: the same
//! (buyer tax number, invoice date, seed) always gives the same invoices, byte for byte.
//! ChaCha8 is used because its output is fixed by its specification, unlike `StdRng`.

use chrono::{Datelike, NaiveDate};
use fapiao_schemas::taxpayer_id::uscc_check_character;
use fapiao_schemas::{InvoiceKind, Money, TaxRate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::wire::{InvoiceHeader, VerifiedInvoice, VerifiedLine};

/// Sellers that appear on generated invoices: (name, first 17 characters of the USCC).
const SELLERS: [(&str, &str); 8] = [
    ("中国东方航空股份有限公司", "91310000132617750"),
    ("中国铁路上海局集团有限公司", "91310000132212440"),
    ("滴滴出行科技有限公司", "91120116340983140"),
    ("上海城市酒店管理有限公司", "91310101MA1FPX1A2"),
    ("深圳市华强电子有限公司", "91440300192180360"),
    ("北京京东世纪贸易有限公司", "91110302562134910"),
    ("黑龙江北大荒农业股份有限公司", "91230000720817530"),
    ("广州顺丰速运有限公司", "91440101618400390"),
];

/// (goods name as printed, rate in basis points ×100, business type).
const GOODS: [(&str, i64, &str); 10] = [
    ("*运输服务*国内航空旅客运输", 900, ""),
    ("*运输服务*铁路旅客运输", 900, ""),
    ("*运输服务*客运服务费", 900, ""),
    ("*运输服务*退票费", 600, "退"),
    ("*运输服务*改签费", 900, "改"),
    ("*运输服务*国内货物运输服务", 900, ""),
    ("*餐饮服务*餐饮服务", 600, ""),
    ("*住宿服务*住宿费", 600, ""),
    ("*计算机配套产品*键盘", 1300, ""),
    ("*谷物*玉米", 900, ""),
];

/// One generated invoice with its lines (what verification returns).
pub fn invoices_for(buyer_taxpayer_id: &str, date: NaiveDate, seed: u64) -> Vec<VerifiedInvoice> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(buyer_taxpayer_id, date, seed));
    let count = rng.random_range(0..=8);
    (0..count).map(|index| one(&mut rng, buyer_taxpayer_id, date, index)).collect()
}

fn one(rng: &mut ChaCha8Rng, buyer: &str, date: NaiveDate, index: u32) -> VerifiedInvoice {
    let kind = match rng.random_range(0..100) {
        0..40 => InvoiceKind::DigitalOrdinary,
        40..70 => InvoiceKind::DigitalSpecial,
        70..80 => InvoiceKind::TaxctlSpecial,
        80..95 => InvoiceKind::TaxctlEOrdinary,
        _ => InvoiceKind::TaxctlRoll,
    };
    let (seller_name, seller_base) = SELLERS[rng.random_range(0..SELLERS.len())];
    let seller_id = format!("{seller_base}{}", uscc_check_character(seller_base).expect("valid seller base"));
    let red = rng.random_range(0..100) < 5;
    let sign = if red { -1 } else { 1 };
    let lines: Vec<VerifiedLine> = (0..rng.random_range(1..=3))
        .map(|_| {
            let (goods, bp, business) = GOODS[rng.random_range(0..GOODS.len())];
            let rate = TaxRate::try_from(rust_decimal::Decimal::new(bp, 4)).expect("allowed rate");
            let amount = Money::from_cents(sign * rng.random_range(100..=5_000_000));
            VerifiedLine {
                goods_name: goods.into(),
                tax_rate: rate.value(),
                amount,
                tax_amount: fapiao_schemas::tax::tax_of(amount, rate),
                business_type: business.into(),
            }
        })
        .collect();
    let amount: Money = lines.iter().map(|l| l.amount).sum();
    let tax: Money = lines.iter().map(|l| l.tax_amount).sum();
    let status = match rng.random_range(0..100) {
        0..88 => "normal",
        88..92 => "void",
        92..95 => "red_flushed",
        95..97 => "partially_red_flushed",
        97..99 => "abnormal",
        _ => "out_of_control",
    };
    let blockchain = kind == InvoiceKind::TaxctlEOrdinary && rng.random_range(0..100) < 10;
    let special_business = if rng.random_range(0..100) < 3 { "农产品收购" } else { "" };
    let sequence: u64 = rng.random_range(0..1_000_000_000_000);
    let (code, number) = if kind.is_digital() {
        (String::new(), format!("{:02}442{:015}", date.year() % 100, sequence * 10 + u64::from(index % 10)))
    } else {
        (
            format!("0440{:02}{:06}", date.year() % 100, sequence % 1_000_000),
            format!("{:08}", (sequence / 7 + u64::from(index)) % 100_000_000),
        )
    };
    let check_code = if kind.is_special() {
        String::new()
    } else {
        format!("{:020}", rng.random_range(0..10_000_000_000_000_000_000u64))
    };
    VerifiedInvoice {
        header: InvoiceHeader {
            invoice_kind: kind,
            invoice_code: code,
            invoice_num: number,
            invoice_date: date,
            seller_name: seller_name.into(),
            seller_taxpayer_id: seller_id,
            buyer_name: format!("购方{}", &buyer[buyer.len().saturating_sub(6)..]),
            buyer_taxpayer_id: buyer.into(),
            amount,
            tax_amount: tax,
            total_amount: amount + tax,
            check_code,
            status: status.into(),
            invoice_property: u8::from(red),
            blockchain,
            special_business: special_business.into(),
            select_period: None,
        },
        lines,
    }
}

/// FNV-1a over the inputs: stable across builds and platforms.
fn mix(buyer: &str, date: NaiveDate, seed: u64) -> u64 {
    let bytes = format!("{buyer}|{date}|{seed}");
    bytes.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_invoices_other_inputs_others() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
        let a = serde_json::to_vec(&invoices_for("91310000MA1FL2AB09", d, 1)).unwrap();
        assert_eq!(a, serde_json::to_vec(&invoices_for("91310000MA1FL2AB09", d, 1)).unwrap());
        let many: Vec<_> = (0..20).map(|s| invoices_for("91310000MA1FL2AB09", d, s)).collect();
        assert!(many.iter().any(|v| serde_json::to_vec(v).unwrap() != a));
    }

    #[test]
    fn generated_invoices_obey_the_rules() {
        let mut kinds = std::collections::BTreeSet::new();
        let mut transport = false;
        for day in 1..=28 {
            let d = NaiveDate::from_ymd_opt(2026, 2, day).unwrap();
            for inv in invoices_for("92440300MA5DXY7K3W", d, 42) {
                let h = &inv.header;
                let kind: InvoiceKind = h.invoice_kind;
                kinds.insert(kind);
                let code = (!h.invoice_code.is_empty()).then_some(h.invoice_code.as_str());
                kind.validate_number(code, &h.invoice_num).unwrap();
                fapiao_schemas::TaxNo::parse(&h.seller_taxpayer_id).unwrap();
                assert_eq!(h.total_amount, h.amount + h.tax_amount);
                transport |= inv.lines.iter().any(|l| l.goods_name.starts_with("*运输服务*"));
            }
        }
        assert!(kinds.len() >= 4, "{kinds:?}");
        assert!(transport);
    }
}
