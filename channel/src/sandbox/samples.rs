//! Sample invoices for the demo, the benchmark and tests.

use fapiao_schemas::{Money, TaxRate};

use crate::wire::{InvoiceLine, OpenInvoice};

/// A party on an invoice: (name, taxpayer id).
pub type Party<'a> = (&'a str, &'a str);

/// A one-line blue invoice: one keyboard of `amount` (net) at 13%.
pub fn sample_invoice(
    serial_no: &str,
    kind: &str,
    seller: Party<'_>,
    buyer: Party<'_>,
    amount: Money,
) -> OpenInvoice {
    let rate = TaxRate::try_from(rust_decimal::Decimal::new(13, 2)).expect("13% is allowed");
    OpenInvoice {
        serial_no: serial_no.into(),
        invoice_kind: kind.parse().expect("a known invoice kind"),
        invoice_property: 0,
        seller_name: seller.0.into(),
        seller_taxpayer_id: seller.1.into(),
        buyer_name: buyer.0.into(),
        buyer_taxpayer_id: buyer.1.into(),
        seller_address_and_tel: String::new(),
        seller_bank_and_account: String::new(),
        drawer: "张三".into(),
        payee: String::new(),
        reviewer: String::new(),
        remark: String::new(),
        invoice_detail: vec![InvoiceLine {
            seq: 1,
            line_property: 0,
            goods_name: "*计算机配套产品*键盘".into(),
            revenue_code: "1090511030000000000".into(),
            specification: "K1".into(),
            units: "个".into(),
            quantity: Some(rust_decimal::Decimal::ONE),
            price: Some(amount.value()),
            amount,
            tax_rate: rate.value(),
            tax_amount: fapiao_schemas::tax::tax_of(amount, rate),
            policy: Default::default(),
        }],
    }
}
