//! Dynamic receipt codes (动态小票码开票, seed 003; issue 20): the merchant's side — settings and
//! signing keys per enterprise, the goods catalogue (开票项), receipt codes with lines and discount
//! lines — and the consumer's side: open a link, submit a title, get the invoice.
//!
//! A consumer's invoice is an application of source 小票码开票, checked and landed by the ERP
//! API's path (`fapiao_pipelines::import::erp`: the importer's own line rules and checks across
//! lines), then issued at once by the one issuing pass (`crate::issuing::issue`; never twice).
//! One invoice per receipt: `receipt_claim (tax_no, order_no)` is taken in the transaction that
//! lands the bill, so a second submit — also a concurrent one — finds the first invoice.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fapiao_pipelines::import::erp::{self, BillProblem, ErpBill};
use fapiao_schemas::receipt_link::{self, Link, LinkFields, LinkRefusal};
use fapiao_schemas::template::Cell;
use fapiao_schemas::{Coded, DataSource, InvoiceKind, Money, PendingStatus, TaxNo, TaxRate};
pub use fapiao_store::receipts::StatsRow;
use fapiao_store::receipts::{
    self as store, GoodsRow, KeyRow, NewGoods, ReceiptLineRow, ReceiptRow, SettingsRow,
};
use rand::RngCore;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::invoices::{self, Recipient};
use crate::issuing::{self, Selection};
use crate::receipt_order::{self, IncompleteLine, Order};
use crate::{Actor, App, Error, Result, quiet};

fn refused(code: &'static str, message: impl Into<String>) -> Error {
    Error::Refused { code, message: message.into() }
}

fn not_found(code: &'static str, message: impl Into<String>) -> Error {
    Error::NotFound { code, message: message.into() }
}

async fn enterprise_name(app: &App, tax_no: &str) -> Result<String> {
    sqlx::query_scalar::<_, String>("SELECT name FROM enterprise WHERE tax_no = $1")
        .bind(tax_no)
        .fetch_optional(&app.pool)
        .await?
        .ok_or_else(|| Error::bad_input("ENTERPRISE_UNKNOWN", format!("企业{tax_no}不存在")))
}

// ---------------------------------------------------------------------------------------------
// Settings (小票码配置) and keys

/// How the invoice reaches the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Delivery {
    Email,
    Sms,
    Both,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Email => "email",
            Delivery::Sms => "sms",
            Delivery::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Delivery> {
        [Delivery::Email, Delivery::Sms, Delivery::Both].into_iter().find(|d| d.as_str() == s)
    }
}

#[derive(Clone, Debug)]
pub struct SettingsRequest {
    pub tax_no: String,
    pub kinds: Vec<InvoiceKind>,
    pub default_kind: Option<InvoiceKind>,
    pub validity_minutes: i32,
    pub base_url: String,
    pub delivery: Delivery,
    pub mode1: bool,
    pub mode2: bool,
    pub order_query_url: Option<String>,
    pub kingdee_compat: bool,
    pub kingdee_key: Option<String>,
}

/// Set an enterprise's receipt-code settings; its first signing key is made when it has none.
pub async fn set_settings(app: &App, actor: &Actor, req: &SettingsRequest) -> Result<SettingsRow> {
    enterprise_name(app, &req.tax_no).await?;
    if req.kinds.is_empty() {
        return Err(Error::bad_input("RECEIPT_KINDS_EMPTY", "可选票种至少选择一个"));
    }
    let default_kind = req.default_kind.unwrap_or(req.kinds[0]);
    if !req.kinds.contains(&default_kind) {
        return Err(Error::bad_input("RECEIPT_DEFAULT_KIND", "默认发票种类必须是可选票种之一"));
    }
    if req.validity_minutes <= 0 {
        return Err(Error::bad_input("RECEIPT_VALIDITY", "开票码有效期必须大于0"));
    }
    if !(req.base_url.starts_with("http://") || req.base_url.starts_with("https://")) {
        return Err(Error::bad_input("RECEIPT_BASE_URL", "链接地址必须以http://或https://开头"));
    }
    if req.kingdee_compat && req.kingdee_key.as_deref().is_none_or(str::is_empty) {
        return Err(Error::bad_input("RECEIPT_KINGDEE_KEY", "兼容金蝶链接格式需要设置key"));
    }
    let row = SettingsRow {
        tax_no: req.tax_no.clone(),
        kinds: req.kinds.iter().map(|k| k.as_str().to_string()).collect(),
        default_kind: default_kind.as_str().to_string(),
        validity_minutes: req.validity_minutes,
        base_url: req.base_url.trim_end_matches('/').to_string(),
        delivery: req.delivery.as_str().to_string(),
        mode1: req.mode1,
        mode2: req.mode2,
        order_query_url: req.order_query_url.clone().filter(|u| !u.is_empty()),
        kingdee_compat: req.kingdee_compat,
        kingdee_key: req.kingdee_key.clone().filter(|k| !k.is_empty()),
    };
    store::put_settings(&app.pool, &row).await?;
    if store::signing_key(&app.pool, &req.tax_no).await?.is_none() {
        rotate_key(app, actor, &req.tax_no).await?;
    }
    tracing::info!(actor = %actor, tax_no = %req.tax_no, "receipt settings set");
    Ok(row)
}

pub async fn settings(app: &App, tax_no: &str) -> Result<SettingsRow> {
    store::settings(&app.pool, tax_no)
        .await?
        .ok_or_else(|| not_found("RECEIPT_SETTINGS_MISSING", format!("企业{tax_no}未设置小票码配置")))
}

/// A new signing key (32 random bytes); older keys keep verifying the links they signed until
/// retired. Returns the new key id.
pub async fn rotate_key(app: &App, actor: &Actor, tax_no: &str) -> Result<String> {
    let n = store::keys(&app.pool, tax_no).await?.len() + 1;
    let key_id = format!("k{n}");
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    store::add_key(&app.pool, tax_no, &key_id, &secret).await?;
    tracing::info!(actor = %actor, %tax_no, %key_id, "receipt signing key added");
    Ok(key_id)
}

/// A retired key verifies nothing: the links it signed are refused from now on.
pub async fn retire_key(app: &App, actor: &Actor, tax_no: &str, key_id: &str) -> Result<()> {
    if !store::retire_key(&app.pool, tax_no, key_id).await? {
        return Err(not_found("RECEIPT_KEY_UNKNOWN", format!("企业{tax_no}没有在用的密钥{key_id}")));
    }
    tracing::info!(actor = %actor, %tax_no, %key_id, "receipt signing key retired");
    Ok(())
}

pub async fn keys(app: &App, tax_no: &str) -> Result<Vec<KeyRow>> {
    Ok(store::keys(&app.pool, tax_no).await?)
}

// ---------------------------------------------------------------------------------------------
// Goods catalogue (开票项)

#[derive(Clone, Debug)]
pub struct GoodsRequest {
    pub tax_no: String,
    pub name: String,
    pub revenue_code: String,
    pub tax_rate: Decimal,
    pub specification: Option<String>,
    pub unit: Option<String>,
    /// Unit price including tax (what a receipt shows).
    pub price: Option<Decimal>,
}

/// A goods field a rule is about (the import template names its column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoodsField {
    Name,
    RevenueCode,
    TaxRate,
    Price,
}

/// What is wrong with a goods item, field by field (stable code, Chinese message); the same
/// rules for `goods add` and the import.
pub fn goods_problems(req: &GoodsRequest) -> Vec<(GoodsField, &'static str, String)> {
    let mut out = Vec::new();
    if req.name.trim().is_empty() {
        out.push((GoodsField::Name, "GOODS_NAME_EMPTY", "开票项名称不能为空".to_string()));
    } else if req.name.trim().chars().count() > 100 {
        out.push((GoodsField::Name, "GOODS_NAME_TOO_LONG", "开票项名称最长100个字".to_string()));
    }
    if req.revenue_code.len() != 19 || !req.revenue_code.bytes().all(|b| b.is_ascii_digit()) {
        let message = format!("税收分类编码{}应为19位数字", req.revenue_code);
        out.push((GoodsField::RevenueCode, "REVENUE_CODE_FORMAT", message));
    }
    if let Err(e) = TaxRate::try_from(req.tax_rate) {
        out.push((GoodsField::TaxRate, e.code(), e.message_zh()));
    }
    if req.price.is_some_and(|p| p <= Decimal::ZERO) {
        out.push((GoodsField::Price, "GOODS_PRICE", "单价必须大于0".to_string()));
    }
    out
}

fn new_goods(req: &GoodsRequest) -> NewGoods {
    NewGoods {
        tax_no: req.tax_no.clone(),
        name: req.name.trim().to_string(),
        revenue_code: req.revenue_code.clone(),
        tax_rate: req.tax_rate,
        specification: req.specification.clone(),
        unit: req.unit.clone(),
        price: req.price,
    }
}

pub async fn add_goods(app: &App, actor: &Actor, req: &GoodsRequest) -> Result<i64> {
    enterprise_name(app, &req.tax_no).await?;
    if let Some((_, code, message)) = goods_problems(req).into_iter().next() {
        return Err(Error::bad_input(code, message));
    }
    let id = store::add_goods(&app.pool, &new_goods(req)).await?;
    tracing::info!(actor = %actor, id, "goods item added");
    Ok(id)
}

/// Goods items all at once, in one transaction (the import: all or nothing); their ids. The
/// caller checked each with `goods_problems` and the enterprises exist.
pub(crate) async fn add_goods_all(app: &App, actor: &Actor, reqs: &[GoodsRequest]) -> Result<Vec<i64>> {
    let mut tx = app.pool.begin().await?;
    let mut ids = Vec::with_capacity(reqs.len());
    for req in reqs {
        ids.push(store::add_goods(&mut *tx, &new_goods(req)).await?);
    }
    tx.commit().await?;
    tracing::info!(actor = %actor, items = ids.len(), "goods items imported");
    Ok(ids)
}

/// Whether an enterprise of this tax number exists.
pub(crate) async fn enterprise_exists(app: &App, tax_no: &str) -> Result<bool> {
    match enterprise_name(app, tax_no).await {
        Ok(_) => Ok(true),
        Err(Error::BadInput { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn goods(app: &App, tax_no: Option<&str>, with_disabled: bool) -> Result<Vec<GoodsRow>> {
    Ok(store::goods(&app.pool, tax_no, with_disabled).await?)
}

pub async fn disable_goods(app: &App, actor: &Actor, id: i64) -> Result<()> {
    if !store::disable_goods(&app.pool, id).await? {
        return Err(not_found("GOODS_UNKNOWN", format!("开票项{id}不存在")));
    }
    tracing::info!(actor = %actor, id, "goods item disabled");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Receipt codes (小票码)

/// A line of a new receipt code.
#[derive(Clone, Debug)]
pub enum LineRequest {
    /// A goods item of the catalogue; the price (including tax) defaults to the item's.
    Goods { goods_id: i64, quantity: Decimal, price: Option<Decimal> },
    /// A discount (amount including tax, < 0) on the line just before.
    Discount { amount: Decimal },
}

#[derive(Clone, Debug)]
pub struct ReceiptRequest {
    pub tax_no: String,
    pub serial_no: String,
    pub device_no: Option<String>,
    pub etax_account: Option<String>,
    /// Default: the settings' kinds.
    pub kinds: Vec<InvoiceKind>,
    pub default_kind: Option<InvoiceKind>,
    /// Default: the settings' validity.
    pub validity_minutes: Option<i64>,
    pub bottom_remark: Option<String>,
    pub drawer: String,
    pub payee: Option<String>,
    pub reviewer: Option<String>,
    pub remark: Option<String>,
    pub lines: Vec<LineRequest>,
}

fn round2(d: Decimal) -> Decimal {
    Money::round(d).value()
}

/// A line from its tax-inclusive total: tax = round(total × r / (1 + r)), amount = total − tax.
fn line_of_total(total: Decimal, rate: Decimal) -> (Decimal, Decimal) {
    let tax = round2(total * rate / (Decimal::ONE + rate));
    (total - tax, tax)
}

/// The lines of a request, priced from the catalogue; the discounted line is marked so.
async fn build_lines(app: &App, tax_no: &str, lines: &[LineRequest]) -> Result<Vec<ReceiptLineRow>> {
    let mut out: Vec<ReceiptLineRow> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let line_no = i as i32 + 1;
        match l {
            LineRequest::Goods { goods_id, quantity, price } => {
                let g = store::goods_item(&app.pool, *goods_id)
                    .await?
                    .filter(|g| g.tax_no == tax_no && !g.disabled)
                    .ok_or_else(|| {
                        Error::bad_input("GOODS_UNKNOWN", format!("开票项{goods_id}不存在或已禁用"))
                    })?;
                let price = price.or(g.price).ok_or_else(|| {
                    Error::bad_input("GOODS_PRICE_MISSING", format!("开票项{}没有单价，请填写单价", g.name))
                })?;
                let total = round2(*quantity * price);
                let (amount, tax) = line_of_total(total, g.tax_rate);
                out.push(ReceiptLineRow {
                    line_no,
                    goods_id: Some(g.id),
                    goods_name: g.name,
                    revenue_code: g.revenue_code,
                    specification: g.specification,
                    unit: g.unit,
                    quantity: Some(*quantity),
                    price: Some(price),
                    amount,
                    tax_rate: g.tax_rate,
                    tax,
                    total,
                    line_property: "normal".into(),
                });
            }
            LineRequest::Discount { amount: total } => {
                let Some(prev) = out.last_mut() else {
                    return Err(Error::bad_input("DISCOUNT_WITHOUT_LINE", "折扣行必须紧跟在被折扣行之后"));
                };
                prev.line_property = "discounted".into();
                let (amount, tax) = line_of_total(*total, prev.tax_rate);
                let discount = ReceiptLineRow {
                    line_no,
                    goods_id: prev.goods_id,
                    goods_name: prev.goods_name.clone(),
                    revenue_code: prev.revenue_code.clone(),
                    specification: None,
                    unit: None,
                    quantity: None,
                    price: None,
                    amount,
                    tax_rate: prev.tax_rate,
                    tax,
                    total: *total,
                    line_property: "discount".into(),
                };
                out.push(discount);
            }
        }
    }
    Ok(out)
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn opt(s: &Option<String>) -> Cell {
    s.as_deref().filter(|s| !s.is_empty()).map(text).unwrap_or(Cell::Empty)
}

fn num(d: Decimal) -> Cell {
    Cell::Number(d.normalize().to_string())
}

/// The consumer's title as the bill's header fields.
struct Buyer<'a> {
    name: &'a str,
    tax_no: Option<&'a str>,
    address_phone: Option<&'a str>,
    bank_account: Option<&'a str>,
}

/// A bill of the importer's shape from receipt lines (prices include tax).
fn bill_of(
    bill_no: &str,
    seller: &str,
    kind: InvoiceKind,
    buyer: &Buyer<'_>,
    remark: Option<&str>,
    date: chrono::NaiveDate,
    lines: &[ReceiptLineRow],
) -> ErpBill {
    let o = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(text).unwrap_or(Cell::Empty);
    let header = vec![
        ("bill_no", text(bill_no)),
        ("bill_date", text(date.to_string())),
        ("seller_tax_no", text(seller)),
        ("buyer_name", text(buyer.name)),
        ("buyer_tax_no", o(buyer.tax_no)),
        ("buyer_address_phone", o(buyer.address_phone)),
        ("buyer_bank_account", o(buyer.bank_account)),
        ("invoice_kind", text(kind.as_str())),
        ("remark", o(remark)),
        // The auto-issue job finishes what an interrupted submit started.
        ("auto_issue", text("1")),
        ("tax_included", text("1")),
    ];
    let lines = lines
        .iter()
        .map(|l| {
            let property = match l.line_property.as_str() {
                "discount" => "1",
                "discounted" => "2",
                _ => "0",
            };
            vec![
                ("goods_name", text(l.goods_name.clone())),
                ("revenue_code", text(l.revenue_code.clone())),
                ("specification", opt(&l.specification)),
                ("unit", opt(&l.unit)),
                ("quantity", l.quantity.map(num).unwrap_or(Cell::Empty)),
                ("price", l.price.map(num).unwrap_or(Cell::Empty)),
                ("amount", num(l.amount)),
                ("tax_rate", num(l.tax_rate)),
                ("tax", num(l.tax)),
                ("total", num(l.total)),
                ("line_property", text(property)),
            ]
        })
        .collect();
    ErpBill { bill_no: bill_no.to_string(), header, lines, problems: Vec::new() }
}

fn problems_message(problems: &[BillProblem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(l) => format!("第{l}行：{}", p.message),
            None => p.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("；")
}

/// The importer's rules on the lines, the checks across lines included (discount placement), in
/// a transaction that is rolled back: nothing lands.
async fn check_lines(app: &App, seller: &str, kind: InvoiceKind, lines: &[ReceiptLineRow]) -> Result<()> {
    let buyer = Buyer { name: "消费者", tax_no: None, address_phone: None, bank_account: None };
    let bill = bill_of("RECEIPT-CHECK", seller, kind, &buyer, None, Utc::now().date_naive(), lines);
    let mut checked = vec![erp::check(&bill)];
    if checked[0].problems.is_empty() {
        let mut tx = app.pool.begin().await?;
        let tenant = app.settings.channel.tenant_id.clone();
        let sellers = [seller.to_string()];
        let who = erp::Lander {
            source: DataSource::ReceiptCode,
            system_code: None,
            allowed_sellers: &sellers,
            tenant_id: &tenant,
        };
        erp::land(&mut tx, &who, &mut checked).await?;
        tx.rollback().await?;
    }
    if !checked[0].problems.is_empty() {
        let first = &checked[0].problems[0].code;
        return Err(Error::bad_input(
            "RECEIPT_LINES_INVALID",
            format!("{}（{first}）", problems_message(&checked[0].problems)),
        ));
    }
    Ok(())
}

/// Add a receipt code (新增): kinds and validity default from the settings, the seller is the
/// enterprise, lines priced from the catalogue and checked by the importer's rules.
pub async fn add(app: &App, actor: &Actor, req: &ReceiptRequest, now: DateTime<Utc>) -> Result<i64> {
    let new = prepare(app, actor, req, now).await?;
    let id = store::insert_receipt(&app.pool, &new).await?.ok_or_else(|| Error::Conflict {
        code: "RECEIPT_SERIAL_EXISTS",
        message: format!("小票流水号{}已存在", req.serial_no),
    })?;
    tracing::info!(actor = %actor, id, tax_no = %req.tax_no, "receipt code added");
    Ok(id)
}

/// 预览 (seed 003, 新增小票码: preview before saving): what `add` would store — the lines priced
/// and checked, the totals with tax, the bottom remark, the validity.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptPreview {
    pub seller_name: String,
    pub receipt: store::NewReceipt,
    pub amount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    /// Whether the serial number is taken already (saving it would be refused).
    pub serial_taken: bool,
}

/// The preview of `req`: the same checks as `add`, nothing stored and no link signed.
pub async fn preview(
    app: &App,
    actor: &Actor,
    req: &ReceiptRequest,
    now: DateTime<Utc>,
) -> Result<ReceiptPreview> {
    let receipt = prepare(app, actor, req, now).await?;
    let sum = |f: fn(&ReceiptLineRow) -> Decimal| receipt.lines.iter().map(f).sum::<Decimal>();
    let serial_taken = store::receipt_by_serial(&app.pool, &req.tax_no, &req.serial_no).await?.is_some();
    Ok(ReceiptPreview {
        seller_name: enterprise_name(app, &req.tax_no).await?,
        amount: sum(|l| l.amount),
        tax: sum(|l| l.tax),
        total: sum(|l| l.total),
        receipt,
        serial_taken,
    })
}

/// A new code checked against the settings and the importer's rules (in a transaction rolled
/// back), its lines priced from the catalogue: what `add` stores and `preview` shows.
async fn prepare(
    app: &App,
    actor: &Actor,
    req: &ReceiptRequest,
    now: DateTime<Utc>,
) -> Result<store::NewReceipt> {
    let s = settings(app, &req.tax_no).await?;
    if !receipt_link::valid_order_no(&req.serial_no) {
        return Err(Error::bad_input(
            "RECEIPT_SERIAL_FORMAT",
            "小票流水号只能包含字母、数字、-、_，最长50位",
        ));
    }
    if req.drawer.trim().is_empty() {
        return Err(Error::bad_input("REQUIRED_FIELD_EMPTY", "必填字段为空，请补充！（开票人）"));
    }
    let kinds: Vec<InvoiceKind> = if req.kinds.is_empty() {
        s.kinds.iter().filter_map(|k| k.parse().ok()).collect()
    } else {
        req.kinds.clone()
    };
    let default_kind = req.default_kind.or_else(|| s.default_kind.parse().ok()).filter(|k| kinds.contains(k));
    let Some(default_kind) = default_kind.or(kinds.first().copied()) else {
        return Err(Error::bad_input("RECEIPT_KINDS_EMPTY", "可选票种至少选择一个"));
    };
    if !kinds.contains(&default_kind) {
        return Err(Error::bad_input("RECEIPT_DEFAULT_KIND", "默认发票种类必须是可选票种之一"));
    }
    if req.lines.is_empty() {
        return Err(Error::bad_input("BILL_WITHOUT_LINES", "小票码没有明细行"));
    }
    let lines = build_lines(app, &req.tax_no, &req.lines).await?;
    check_lines(app, &req.tax_no, default_kind, &lines).await?;
    if lines.iter().map(|l| l.total).sum::<Decimal>() <= Decimal::ZERO {
        return Err(Error::bad_input("RECEIPT_TOTAL", "小票金额必须大于0"));
    }
    let minutes = req.validity_minutes.unwrap_or(i64::from(s.validity_minutes));
    if minutes <= 0 {
        return Err(Error::bad_input("RECEIPT_VALIDITY", "开票码有效期必须大于0"));
    }
    let etax_account = match &req.etax_account {
        Some(a) => Some(a.clone()),
        None => {
            sqlx::query_scalar("SELECT etax_account FROM enterprise WHERE tax_no = $1")
                .bind(&req.tax_no)
                .fetch_optional(&app.pool)
                .await?
        }
    };
    Ok(store::NewReceipt {
        tax_no: req.tax_no.clone(),
        serial_no: req.serial_no.clone(),
        origin: "manual",
        device_no: req.device_no.clone(),
        etax_account,
        kinds: kinds.iter().map(|k| k.as_str().to_string()).collect(),
        default_kind: default_kind.as_str().to_string(),
        valid_until: now + chrono::Duration::minutes(minutes),
        bottom_remark: req.bottom_remark.clone(),
        drawer: req.drawer.trim().to_string(),
        payee: req.payee.clone(),
        reviewer: req.reviewer.clone(),
        remark: req.remark.clone(),
        created_by: actor.to_string(),
        lines,
    })
}

/// A receipt code, its lines and its link.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptDetail {
    pub receipt: ReceiptRow,
    pub lines: Vec<ReceiptLineRow>,
    pub link: String,
    /// The bill number of its invoice, once a consumer submitted.
    pub claimed_by: Option<String>,
}

pub async fn show(app: &App, id: i64) -> Result<ReceiptDetail> {
    let receipt = store::receipt(&app.pool, id)
        .await?
        .ok_or_else(|| not_found("RECEIPT_UNKNOWN", format!("小票码{id}不存在")))?;
    let lines = store::receipt_lines(&app.pool, id).await?;
    let link = link_of(app, &receipt).await?;
    let claimed_by = store::claimed(&app.pool, &receipt.tax_no, &receipt.serial_no).await?;
    Ok(ReceiptDetail { receipt, lines, link, claimed_by })
}

pub async fn list(app: &App, tax_no: Option<&str>, limit: i64) -> Result<Vec<ReceiptRow>> {
    Ok(store::receipts(&app.pool, tax_no, limit).await?)
}

/// 禁用: its link is refused from now on.
pub async fn disable(app: &App, actor: &Actor, id: i64) -> Result<()> {
    if !store::disable_receipt(&app.pool, id).await? {
        return Err(not_found("RECEIPT_UNKNOWN", format!("小票码{id}不存在或已禁用")));
    }
    tracing::info!(actor = %actor, id, "receipt code disabled");
    Ok(())
}

/// 新增（复制）: a new code with another serial number, the same lines and settings, a fresh
/// validity.
pub async fn copy(app: &App, actor: &Actor, id: i64, serial_no: &str, now: DateTime<Utc>) -> Result<i64> {
    let d = show(app, id).await?;
    let r = d.receipt;
    let minutes = (r.valid_until - r.created_at).num_minutes().max(1);
    let new = store::NewReceipt {
        tax_no: r.tax_no.clone(),
        serial_no: serial_no.to_string(),
        origin: "manual",
        device_no: r.device_no,
        etax_account: r.etax_account,
        kinds: r.kinds,
        default_kind: r.default_kind,
        valid_until: now + chrono::Duration::minutes(minutes),
        bottom_remark: r.bottom_remark,
        drawer: r.drawer,
        payee: r.payee,
        reviewer: r.reviewer,
        remark: r.remark,
        created_by: actor.to_string(),
        lines: d.lines,
    };
    if !receipt_link::valid_order_no(serial_no) {
        return Err(Error::bad_input(
            "RECEIPT_SERIAL_FORMAT",
            "小票流水号只能包含字母、数字、-、_，最长50位",
        ));
    }
    let id = store::insert_receipt(&app.pool, &new).await?.ok_or_else(|| Error::Conflict {
        code: "RECEIPT_SERIAL_EXISTS",
        message: format!("小票流水号{serial_no}已存在"),
    })?;
    tracing::info!(actor = %actor, id, "receipt code copied");
    Ok(id)
}

/// The signed link of a stored receipt code: valid until the code's validity ends.
pub async fn link_of(app: &App, r: &ReceiptRow) -> Result<String> {
    let s = settings(app, &r.tax_no).await?;
    let (key_id, key) = store::signing_key(&app.pool, &r.tax_no)
        .await?
        .ok_or_else(|| refused("RECEIPT_KEY_MISSING", format!("企业{}没有签名密钥", r.tax_no)))?;
    let fields = LinkFields {
        seller_tax_no: r.tax_no.clone(),
        order_no: r.serial_no.clone(),
        amount: r.total,
        issued_at_ms: r.created_at.timestamp_millis(),
        expires_at_ms: r.valid_until.timestamp_millis(),
        key_id,
    };
    Ok(link_url(&s.base_url, &fields, &receipt_link::sign(&key, &fields)))
}

fn link_url(base: &str, fields: &LinkFields, sig: &str) -> String {
    format!("{base}/r?{}", receipt_link::query(fields, sig))
}

/// Sign a mode-1 link as the merchant's till would (tests, the demo, `receipt link`): the
/// enterprise's current key, expiring after the settings' validity.
pub async fn sign_order_link(
    app: &App,
    tax_no: &str,
    order_no: &str,
    amount: Decimal,
    now: DateTime<Utc>,
) -> Result<String> {
    let s = settings(app, tax_no).await?;
    let (key_id, key) = store::signing_key(&app.pool, tax_no)
        .await?
        .ok_or_else(|| refused("RECEIPT_KEY_MISSING", format!("企业{tax_no}没有签名密钥")))?;
    let fields = LinkFields {
        seller_tax_no: tax_no.to_string(),
        order_no: order_no.to_string(),
        amount,
        issued_at_ms: now.timestamp_millis(),
        expires_at_ms: (now + chrono::Duration::minutes(i64::from(s.validity_minutes))).timestamp_millis(),
        key_id,
    };
    Ok(link_url(&s.base_url, &fields, &receipt_link::sign(&key, &fields)))
}

pub async fn stats(
    app: &App,
    tax_no: Option<&str>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<StatsRow>> {
    let tz = app.settings.time_zone().name().to_string();
    Ok(store::stats(&app.pool, tax_no, &tz, from, to).await?)
}

// ---------------------------------------------------------------------------------------------
// The consumer's side

/// Where the lines of a receipt come from.
#[derive(Clone, Debug)]
enum Source {
    /// A stored receipt code (printed, or uploaded in mode 2).
    Stored(Box<ReceiptRow>),
    /// The merchant's order query (mode 1), at this URL.
    OrderQuery(String),
}

/// A link that verified.
#[derive(Clone, Debug)]
struct Verified {
    settings: SettingsRow,
    order_no: String,
    amount: Decimal,
    kingdee: bool,
    source: Source,
}

async fn verify_link(
    app: &App,
    query: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Verified, LinkRefusal>> {
    let now_ms = now.timestamp_millis();
    let Some(link) = receipt_link::parse(&receipt_link::params_of(query)) else {
        return Ok(Err(LinkRefusal::Unknown));
    };
    let (settings, kingdee) = match &link {
        Link::Signed { fields, sig } => {
            let Some(s) = store::settings(&app.pool, &fields.seller_tax_no).await? else {
                return Ok(Err(LinkRefusal::Unknown));
            };
            let Some(key) = store::verifying_key(&app.pool, &fields.seller_tax_no, &fields.key_id).await?
            else {
                return Ok(Err(LinkRefusal::Unknown));
            };
            if let Err(r) = receipt_link::verify(&key, fields, sig, now_ms) {
                return Ok(Err(r));
            }
            (s, false)
        }
        Link::Kingdee { key, timestamp_ms, md5, .. } => {
            let Some(s) = store::settings_by_kingdee_key(&app.pool, key).await? else {
                return Ok(Err(LinkRefusal::Unknown));
            };
            let validity = i64::from(s.validity_minutes) * 60_000;
            if let Err(r) = receipt_link::verify_kingdee(key, md5, *timestamp_ms, validity, now_ms) {
                return Ok(Err(r));
            }
            (s, true)
        }
    };
    let order_no = link.order_no().to_string();
    let amount = link.amount();
    let source = match store::receipt_by_serial(&app.pool, &settings.tax_no, &order_no).await? {
        Some(r) => {
            if r.disabled_at.is_some() {
                return Ok(Err(LinkRefusal::Disabled));
            }
            if r.total != amount {
                return Ok(Err(LinkRefusal::AmountDiffers));
            }
            if r.origin == "api" && !settings.mode2 {
                return Ok(Err(LinkRefusal::Disabled));
            }
            Source::Stored(Box::new(r))
        }
        None => match (&settings.order_query_url, settings.mode1) {
            (Some(url), true) => Source::OrderQuery(url.clone()),
            (None, true) => return Ok(Err(LinkRefusal::UnknownOrder)),
            (_, false) => return Ok(Err(LinkRefusal::Disabled)),
        },
    };
    Ok(Ok(Verified { settings, order_no, amount, kingdee, source }))
}

/// What the consumer's form shows.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptView {
    pub seller_tax_no: String,
    pub seller_name: String,
    pub order_no: String,
    pub amount: Decimal,
    /// Selectable kinds, the default first.
    pub kinds: Vec<InvoiceKind>,
    pub delivery: String,
    pub bottom_remark: Option<String>,
    /// The lines, when the receipt is stored (mode-1 orders show only the amount until submitted).
    pub lines: Vec<ReceiptLineRow>,
}

/// Where the receipt's one invoice stands.
#[derive(Clone, Debug, Serialize)]
pub struct ReceiptResult {
    pub bill_no: String,
    pub status: Option<PendingStatus>,
    pub error: Option<String>,
    pub invoice: Option<invoices::IssuedRow>,
}

impl ReceiptResult {
    pub fn succeeded(&self) -> bool {
        self.invoice.is_some()
    }
}

/// Opening a link: the form, or the invoice when the receipt has one already.
#[derive(Clone, Debug, Serialize)]
pub enum Opened {
    Form(ReceiptView),
    Invoiced(Box<ReceiptResult>),
}

/// Messages by form field.
pub type FieldErrors = Vec<(&'static str, String)>;

/// Why a submit was refused: the link (a refusal page), or the form (shown again with messages).
#[derive(Clone, Debug)]
pub enum Refusal {
    Link(LinkRefusal),
    /// The form again (its view) with each field's message.
    Form(Box<ReceiptView>, FieldErrors),
}

async fn view_of(app: &App, v: &Verified) -> Result<ReceiptView> {
    let (kinds, default, bottom_remark, lines) = match &v.source {
        Source::Stored(r) => (
            r.kinds.clone(),
            r.default_kind.clone(),
            r.bottom_remark.clone(),
            store::receipt_lines(&app.pool, r.id).await?,
        ),
        Source::OrderQuery(_) => {
            (v.settings.kinds.clone(), v.settings.default_kind.clone(), None, Vec::new())
        }
    };
    let mut kinds: Vec<InvoiceKind> = kinds.iter().filter_map(|k| k.parse().ok()).collect();
    if let Ok(d) = default.parse::<InvoiceKind>()
        && let Some(at) = kinds.iter().position(|k| *k == d)
    {
        let d = kinds.remove(at);
        kinds.insert(0, d);
    }
    Ok(ReceiptView {
        seller_tax_no: v.settings.tax_no.clone(),
        seller_name: enterprise_name(app, &v.settings.tax_no).await?,
        order_no: v.order_no.clone(),
        amount: v.amount,
        kinds,
        delivery: v.settings.delivery.clone(),
        bottom_remark,
        lines,
    })
}

/// GET the link: verified, counted as a scan, and the form — or the invoice once there is one.
pub async fn open(
    app: &App,
    query: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Opened, LinkRefusal>> {
    let v = match verify_link(app, query, now).await? {
        Ok(v) => v,
        Err(r) => {
            tracing::info!(refusal = r.code(), "receipt link refused");
            return Ok(Err(r));
        }
    };
    store::record_scan(&app.pool, &v.settings.tax_no, &v.order_no).await?;
    if let Some(bill_no) = store::claimed(&app.pool, &v.settings.tax_no, &v.order_no).await? {
        return Ok(Ok(Opened::Invoiced(Box::new(result_of(app, &bill_no).await?))));
    }
    Ok(Ok(Opened::Form(view_of(app, &v).await?)))
}

/// The invoice of a claimed receipt, as it stands.
pub async fn result_of(app: &App, bill_no: &str) -> Result<ReceiptResult> {
    let pending: Option<(PendingStatus, Option<String>)> = sqlx::query_as(
        "SELECT p.status, p.error_message FROM pending_bill b JOIN pending_invoice p ON p.id = b.pending_id
          WHERE b.bill_no = $1 ORDER BY p.id DESC LIMIT 1",
    )
    .bind(bill_no)
    .fetch_optional(&app.pool)
    .await?;
    let invoice = invoices::of_bill(app, bill_no).await?.into_iter().find(|i| !i.red);
    let (status, error) = match pending {
        Some((s, e)) => (Some(s), e),
        None => (None, None),
    };
    Ok(ReceiptResult { bill_no: bill_no.to_string(), status, error, invoice })
}

/// 个人 or 单位.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TitleType {
    Person,
    Company,
}

/// What the consumer filled in.
#[derive(Clone, Debug)]
pub struct Title {
    pub kind: String,
    pub title_type: TitleType,
    pub name: String,
    pub tax_no: String,
    pub address_phone: String,
    pub bank_account: String,
    pub email: String,
    pub phone: String,
}

fn check_title(
    t: &Title,
    kinds: &[InvoiceKind],
) -> std::result::Result<(InvoiceKind, Option<String>), FieldErrors> {
    let mut problems = Vec::new();
    let kind = t.kind.parse::<InvoiceKind>().ok().filter(|k| kinds.contains(k));
    if kind.is_none() {
        problems.push(("kind", "请选择可开具的发票种类".to_string()));
    }
    if t.name.trim().is_empty() {
        problems.push(("name", "必填字段为空，请补充！（购方名称）".to_string()));
    }
    if t.name.chars().count() > 100 {
        problems.push(("name", "购方名称最长100个字".to_string()));
    }
    let mut tax_no = None;
    match (t.title_type, t.tax_no.trim()) {
        (TitleType::Company, "") => problems.push(("tax_no", "单位抬头必须填写税号".to_string())),
        (_, "") => {}
        (_, text) => match TaxNo::parse(&text.to_ascii_uppercase()) {
            Ok(n) => tax_no = Some(n.as_str().to_string()),
            Err(e) => problems.push(("tax_no", e.message_zh())),
        },
    }
    let special = kind.is_some_and(|k| {
        matches!(k, InvoiceKind::DigitalSpecial | InvoiceKind::TaxctlSpecial | InvoiceKind::TaxctlESpecial)
    });
    if special && t.title_type == TitleType::Person {
        problems.push(("title_type", "专用发票只能开给单位".to_string()));
    }
    let email = t.email.trim();
    if !email.is_empty() && (!email.contains('@') || email.len() > 100 || email.contains(char::is_whitespace))
    {
        problems.push(("email", "电子邮箱格式不正确".to_string()));
    }
    let phone = t.phone.trim();
    if !phone.is_empty() && (phone.len() != 11 || !phone.bytes().all(|b| b.is_ascii_digit())) {
        problems.push(("phone", "手机号码应为11位数字".to_string()));
    }
    match kind {
        Some(k) if problems.is_empty() => Ok((k, tax_no)),
        _ => Err(problems),
    }
}

/// 开票人, 收款人, 复核人 a receipt's invoice carries: the code's own, or the order's drawer.
#[derive(Clone, Debug)]
struct Issuers {
    drawer: String,
    payee: Option<String>,
    reviewer: Option<String>,
}

impl Issuers {
    fn of_order(order: &Order) -> Option<Issuers> {
        let text = |s: &receipt_order::Scalar| s.text().map(str::to_string);
        Some(Issuers {
            drawer: text(&order.drawer)?,
            payee: text(&order.payee),
            reviewer: text(&order.reviewer),
        })
    }
}

/// What an order query found: the order's amount, its lines, and the drawer it names.
type Found = (Decimal, Vec<ReceiptLineRow>, Option<Issuers>);

/// The merchant's order query (GET.ORDER, 3.1.02): the order's lines, or a refusal. The answer
/// is read from its JSON text (`receipt_order`): amounts exact, never through an f64.
async fn query_order(
    app: &App,
    url: &str,
    seller: &str,
    order_no: &str,
) -> Result<std::result::Result<Found, LinkRefusal>> {
    let failed = |e: &dyn std::fmt::Display| refused("ORDER_QUERY_FAILED", format!("商家订单查询失败：{e}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(app.settings.receipt.order_query_timeout_ms))
        .build()
        .map_err(|e| failed(&e))?;
    let body = serde_json::json!({ "interfaceCode": "GET.ORDER", "data": { "billNo": order_no, "sellerTaxpayerId": seller } });
    let text = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| failed(&e))?
        .text()
        .await
        .map_err(|e| failed(&e))?;
    let order = match receipt_order::parse_answer(&text).map_err(|e| failed(&e))? {
        Some(o) if o.bill_no.text() == Some(order_no) => o,
        _ => return Ok(Err(LinkRefusal::UnknownOrder)),
    };
    Ok(order_lines(&order)?.map(|(amount, lines)| (amount, lines, Issuers::of_order(&order))))
}

/// The lines of an order in the documented GET.ORDER shape (also what mode 2 uploads): the
/// order's amount and its lines, or a refusal (a cancelled order or a return is no order).
pub fn order_lines(
    order: &Order,
) -> Result<std::result::Result<(Decimal, Vec<ReceiptLineRow>), LinkRefusal>> {
    receipt_order::lines(order)
        .map_err(|IncompleteLine(n)| refused("ORDER_INVALID", format!("商家订单第{n}行数据不完整")))
}

/// The bill number of a receipt's invoice: unique per seller and order.
pub fn bill_no_of(tax_no: &str, order_no: &str) -> String {
    format!("XP-{tax_no}-{order_no}")
}

/// Submit the consumer's title: the invoice, issued at once — or the first one when the receipt
/// has one already (also when another submit is landing it this moment).
pub async fn submit(
    app: &App,
    actor: &Actor,
    query: &str,
    title: &Title,
    now: DateTime<Utc>,
) -> Result<std::result::Result<ReceiptResult, Refusal>> {
    let v = match verify_link(app, query, now).await? {
        Ok(v) => v,
        Err(r) => return Ok(Err(Refusal::Link(r))),
    };
    let seller = v.settings.tax_no.clone();
    if let Some(bill_no) = store::claimed(&app.pool, &seller, &v.order_no).await? {
        return Ok(Ok(result_of(app, &bill_no).await?));
    }
    let view = view_of(app, &v).await?;
    let (kind, buyer_tax_no) = match check_title(title, &view.kinds) {
        Ok(k) => k,
        Err(problems) => return Ok(Err(Refusal::Form(Box::new(view), problems))),
    };
    let (lines, remark, mode, issuers) = match &v.source {
        Source::Stored(r) => {
            let issuers =
                Issuers { drawer: r.drawer.clone(), payee: r.payee.clone(), reviewer: r.reviewer.clone() };
            (store::receipt_lines(&app.pool, r.id).await?, r.remark.clone(), "stored", Some(issuers))
        }
        Source::OrderQuery(url) => match query_order(app, url, &seller, &v.order_no).await? {
            Err(r) => return Ok(Err(Refusal::Link(r))),
            Ok((bill_amount, lines, issuers)) => {
                let sum: Decimal = lines.iter().map(|l| l.total).sum();
                if lines.is_empty() {
                    return Ok(Err(Refusal::Link(LinkRefusal::UnknownOrder)));
                }
                if bill_amount != v.amount || sum != v.amount {
                    return Ok(Err(Refusal::Link(LinkRefusal::AmountDiffers)));
                }
                (lines, None, if v.kingdee { "kingdee" } else { "order_query" }, issuers)
            }
        },
    };
    let bill_no = bill_no_of(&seller, &v.order_no);
    let buyer = Buyer {
        name: title.name.trim(),
        tax_no: buyer_tax_no.as_deref(),
        address_phone: Some(title.address_phone.trim()),
        bank_account: Some(title.bank_account.trim()),
    };
    let today = now.with_timezone(&app.settings.time_zone()).date_naive();
    let bill = bill_of(&bill_no, &seller, kind, &buyer, remark.as_deref(), today, &lines);
    let mut checked = vec![erp::check(&bill)];
    if !checked[0].problems.is_empty() {
        tracing::warn!(order = %receipt_link::redacted(&v.order_no), problems = %problems_message(&checked[0].problems), "receipt order refused by the line rules");
        return Err(refused(
            "ORDER_INVALID",
            format!("订单数据有误，无法开票：{}", problems_message(&checked[0].problems)),
        ));
    }
    let mut tx = app.pool.begin().await?;
    let total: Decimal = lines.iter().map(|l| l.total).sum();
    if let Some(first) = store::claim(&mut tx, &seller, &v.order_no, &bill_no, mode, total).await? {
        tx.rollback().await?;
        return Ok(Ok(result_of(app, &first).await?));
    }
    let tenant = app.settings.channel.tenant_id.clone();
    let sellers = [seller.clone()];
    let who = erp::Lander {
        source: DataSource::ReceiptCode,
        system_code: None,
        allowed_sellers: &sellers,
        tenant_id: &tenant,
    };
    erp::land(&mut tx, &who, &mut checked).await?;
    if !checked[0].problems.is_empty() {
        tx.rollback().await?;
        return Err(refused(
            "ORDER_INVALID",
            format!("订单数据有误，无法开票：{}", problems_message(&checked[0].problems)),
        ));
    }
    // The code's 开票人 (required), 收款人 and 复核人 go on its invoice, not the enterprise's.
    if let Some(i) = &issuers {
        store::set_bill_issuers(&mut tx, &bill_no, &i.drawer, i.payee.as_deref(), i.reviewer.as_deref())
            .await?;
    }
    tx.commit().await?;
    tracing::info!(actor = %actor, tax_no = %seller, order = %receipt_link::redacted(&v.order_no), "receipt claimed");

    issuing::issue(app, actor, &Selection::Bills(vec![bill_no.clone()]), &quiet).await?;
    let result = result_of(app, &bill_no).await?;
    if let Some(inv) = &result.invoice {
        let to = [
            (!title.email.trim().is_empty()).then(|| Recipient::Email(title.email.trim().to_string())),
            (!title.phone.trim().is_empty()).then(|| Recipient::Phone(title.phone.trim().to_string())),
        ];
        for r in to.into_iter().flatten() {
            // Delivery is best effort: the invoice stands, the page offers the download.
            if let Err(e) = invoices::send(app, actor, &inv.invoice_num, &r).await {
                tracing::warn!(error = %e, "receipt invoice delivery failed");
            }
        }
    }
    Ok(Ok(result))
}

/// The parameters of a link's query, for a page's hidden field (what it was opened with).
pub fn query_params(query: &str) -> HashMap<String, String> {
    receipt_link::params_of(query)
}

/// Mode 2 (3.2.01 上传销售单获取二维码链接): what an uploaded order was answered.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadAnswer {
    pub bill_no: String,
    pub success: bool,
    pub error_code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_link: Option<String>,
}

/// Mode 2: an order uploaded by a business system (the GET.ORDER shape: billNo, sellerTaxpayerId,
/// drawer, includeTaxFlag, billAmount, billDetail[]) becomes a stored receipt code of origin
/// `api` — its lines checked by the importer's rules — and its link is the answer. The same order
/// again answers the same link; `sellers` are the ones the caller may act for.
pub async fn upload_order(
    app: &App,
    actor: &Actor,
    sellers: &[String],
    order: &Order,
    now: DateTime<Utc>,
) -> Result<UploadAnswer> {
    let bill_no = order.bill_no.text().unwrap_or_default().to_string();
    let answer = |code: &str, message: String| UploadAnswer {
        bill_no: bill_no.clone(),
        success: false,
        error_code: code.into(),
        message,
        qr_link: None,
    };
    let seller = order.seller_taxpayer_id.text().unwrap_or_default().to_string();
    if !sellers.contains(&seller) {
        let tenant = &app.settings.channel.tenant_id;
        return Ok(answer(
            fapiao_schemas::messages::NOT_IN_TENANT_CODE,
            fapiao_schemas::messages::not_in_tenant(&seller, tenant),
        ));
    }
    if !receipt_link::valid_order_no(&bill_no) {
        return Ok(answer("RECEIPT_SERIAL_FORMAT", "billNo只能包含字母、数字、-、_，最长50位".into()));
    }
    let Some(s) = store::settings(&app.pool, &seller).await? else {
        return Ok(answer("RECEIPT_SETTINGS_MISSING", format!("企业{seller}未设置小票码配置")));
    };
    if !s.mode2 {
        return Ok(answer("RECEIPT_MODE_OFF", format!("企业{seller}未开启推单生成二维码")));
    }
    if let Some(existing) = store::receipt_by_serial(&app.pool, &seller, &bill_no).await? {
        let link = link_of(app, &existing).await?;
        return Ok(UploadAnswer {
            bill_no: bill_no.clone(),
            success: true,
            error_code: "0".into(),
            message: "成功".into(),
            qr_link: Some(link),
        });
    }
    let (amount, lines) = match order_lines(order)? {
        Ok(x) => x,
        Err(r) => return Ok(answer(r.code(), r.message_zh().into())),
    };
    let sum: Decimal = lines.iter().map(|l| l.total).sum();
    if lines.is_empty() || sum != amount {
        return Ok(answer("BILL_TOTAL_MISMATCH", format!("价税合计金额不对：单据{amount}，明细合计{sum}")));
    }
    let default_kind: InvoiceKind = s.default_kind.parse().unwrap_or(InvoiceKind::DigitalOrdinary);
    if let Err(e) = check_lines(app, &seller, default_kind, &lines).await {
        return Ok(answer(e.code(), e.to_string()));
    }
    let Some(issuers) = Issuers::of_order(order) else {
        return Ok(answer("REQUIRED_FIELD_EMPTY", "必填字段为空，请补充！（开票人）".into()));
    };
    let new = store::NewReceipt {
        tax_no: seller.clone(),
        serial_no: bill_no.clone(),
        origin: "api",
        device_no: None,
        etax_account: None,
        kinds: s.kinds.clone(),
        default_kind: s.default_kind.clone(),
        valid_until: now + chrono::Duration::minutes(i64::from(s.validity_minutes)),
        bottom_remark: None,
        drawer: issuers.drawer,
        payee: issuers.payee,
        reviewer: issuers.reviewer,
        remark: order.remark.text().map(str::to_string),
        created_by: actor.to_string(),
        lines,
    };
    // A concurrent upload of the same order took the number: answer its link.
    let id = match store::insert_receipt(&app.pool, &new).await? {
        Some(id) => id,
        None => {
            store::receipt_by_serial(&app.pool, &seller, &bill_no).await?.map(|r| r.id).unwrap_or_default()
        }
    };
    let r =
        store::receipt(&app.pool, id).await?.ok_or_else(|| not_found("RECEIPT_UNKNOWN", "小票码不存在"))?;
    tracing::info!(actor = %actor, tax_no = %seller, id, "receipt order uploaded");
    Ok(UploadAnswer {
        bill_no: bill_no.clone(),
        success: true,
        error_code: "0".into(),
        message: "成功".into(),
        qr_link: Some(link_of(app, &r).await?),
    })
}
