//! 发票红冲: requests → the amount rule under a lock on the blue invoice → a red pending invoice
//! (单张开票) → the invoice kind's track → the red invoice, issued with the same never-twice
//! discipline as blue ones → the blue invoice's remaining amount and red-flush state, and, once
//! fully red-flushed, its application lines reopened (write-back).
//!
//! Tracks: tax-control ordinary red-flushes directly; tax-control special waits for a red info
//! sheet the bureau approves; 数电 applies for a red confirmation form — 01 issues at once, 02/03
//! wait for the other party, 05–10 end the request. Waiting ones are polled (`poll`, the
//! `red-flush-poll` job).

pub mod documents;

use fapiao_channel::wire::RedInvoice;
use fapiao_schemas::invoice_kind::RedFlushTrack;
use fapiao_schemas::red_flush::{self as rule, RedFlushRuleError};
use fapiao_schemas::split::LineProperty;
use fapiao_schemas::{
    Coded, DataSource, InvoiceKind, InvoiceStatus, Money, RedFlushRequestState, RedFlushState,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;

use crate::{Invoicing, Result, record};

/// Invoices in one batch (the interactive path's limit; lists are worked in batches of this).
pub const BATCH: usize = 10;

/// One invoice to red-flush.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub invoice_code: Option<String>,
    pub invoice_num: String,
    /// Gross amount (价税合计) to red-flush; `None`: everything that remains.
    pub amount: Option<Money>,
    /// 01–04; `None`: 01 when full, else 04.
    pub reason: Option<String>,
    /// Red-flush by line: these lines of the blue invoice (empty: by amount).
    pub lines: Vec<LineRequest>,
    /// The row of an imported list.
    pub request_id: Option<i64>,
    pub row_no: Option<i32>,
    /// 手工新增红字信息表编号: a red info sheet obtained elsewhere, entered by hand (tax-control
    /// special invoices): no sheet is applied for; the red invoice is issued on this one once the
    /// channel shows it approved and matching.
    pub red_info_no: Option<String>,
    /// A confirmation form the other party entered and we confirmed: red-flush exactly its
    /// amount and tax, issued on it (no form is applied for).
    pub confirmed_form: Option<ConfirmedForm>,
}

/// A red confirmation form entered by the buyer (state 03) that we confirmed (04).
#[derive(Clone, Debug)]
pub struct ConfirmedForm {
    /// The form's uuid (`billUuid`).
    pub id: String,
    /// Its amount and tax, as positive figures; the red invoice carries exactly these.
    pub amount: Money,
    pub tax: Money,
}

/// One blue line to red-flush: its quantity when the line has one (the price stays), else its
/// net amount.
#[derive(Clone, Debug)]
pub struct LineRequest {
    pub seq: i32,
    pub value: Decimal,
}

/// A red line computed from a blue line (positive figures; negated on the red invoice).
#[derive(Clone, Debug)]
struct RedLine {
    seq: i32,
    quantity: Option<Decimal>,
    amount: Money,
    tax: Money,
}

/// Where one request ended up.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub red_flush_id: Option<i64>,
    pub invoice_num: String,
    pub requested: Option<Decimal>,
    pub reason: Option<String>,
    pub track: Option<RedFlushTrack>,
    pub state: RedFlushRequestState,
    pub code: Option<String>,
    pub message: Option<String>,
    pub red_invoice_num: Option<String>,
    pub document_id: Option<String>,
}

impl Outcome {
    /// Failed for good (refused, issuing failed, or its form/sheet voided).
    pub fn failed(&self) -> bool {
        self.state.is_failed()
    }
}

/// Red-flush `requests` in batches of `BATCH`, each invoice on its own; waiting sheets are polled
/// until the bureau decides (within `invoicing.settle_within_secs`).
pub async fn red_flush(
    inv: &Invoicing,
    import_batch: Option<i64>,
    requests: &[Request],
    progress: &(dyn Fn(&Outcome) + Send + Sync),
) -> Result<Vec<Outcome>> {
    let source = if import_batch.is_some() { "file" } else { "cli" };
    let mut ids = Vec::new();
    for chunk in requests.chunks(BATCH) {
        let batch: i64 = sqlx::query_scalar(
            "INSERT INTO red_flush_batch (source, import_batch_id) VALUES ($1, $2) RETURNING id",
        )
        .bind(source)
        .bind(import_batch)
        .fetch_one(&inv.pool)
        .await?;
        for req in chunk {
            let id = accept(inv, batch, req).await?;
            advance(inv, id).await?;
            progress(&outcome(inv, id).await?);
            ids.push(id);
        }
    }
    documents::poll_until_decided(inv, &ids).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(outcome(inv, id).await?);
    }
    Ok(out)
}

/// Check one request and, if accepted, create its red pending invoice — all under a lock on the
/// blue invoice, so two red-flushes of one invoice cannot both pass the amount rule.
async fn accept(inv: &Invoicing, batch: i64, req: &Request) -> Result<i64> {
    let mut tx = inv.pool.begin().await?;
    let id = accept_in(&mut tx, batch, req).await?;
    tx.commit().await?;
    Ok(id)
}

/// What a red-flush would do, line by line, and what would remain of the blue invoice.
#[derive(Clone, Debug, Serialize)]
pub struct Preview {
    pub invoice_num: String,
    /// `waiting` (it would go ahead) or `refused`.
    pub state: RedFlushRequestState,
    pub code: Option<String>,
    pub message: Option<String>,
    pub requested: Option<Decimal>,
    pub reason: String,
    pub track: Option<RedFlushTrack>,
    pub lines: Vec<PreviewLine>,
    /// The blue invoice's red-flushable amount before this request and after it.
    pub remaining_before: Option<Decimal>,
    pub remaining_after: Option<Decimal>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PreviewLine {
    pub seq: i32,
    pub goods_name: String,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub amount: Decimal,
    pub tax: Decimal,
}

/// `--dry-run`: every request judged and its red invoice built exactly as it would be — in
/// order, so each sees the ones before it — inside a transaction that is rolled back. Nothing
/// changes and the channel is not called.
pub async fn preview(inv: &Invoicing, requests: &[Request]) -> Result<Vec<Preview>> {
    let mut tx = inv.pool.begin().await?;
    let batch: i64 = sqlx::query_scalar("INSERT INTO red_flush_batch (source) VALUES ('cli') RETURNING id")
        .fetch_one(&mut *tx)
        .await?;
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        let before: Option<Decimal> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT b.remaining - coalesce((SELECT sum(abs(r.total)) FROM pending_invoice r
                                             WHERE r.blue_invoice_id = b.id AND {HOLDING}), 0)
               FROM issued_invoice b
              WHERE b.invoice_num = $1 AND ($2::text IS NULL OR $2 = '' OR b.invoice_code = $2) AND b.invoice_property = 0"
        )))
        .bind(&req.invoice_num)
        .bind(&req.invoice_code)
        .fetch_optional(&mut *tx)
        .await?;
        let id = accept_in(&mut tx, batch, req).await?;
        let r: Recorded = sqlx::query_as(
            "SELECT state, code, message, requested, red_reason, track, pending_id FROM red_flush WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let lines = sqlx::query_as(
            "SELECT seq, goods_name, quantity, price, amount, tax FROM pending_line WHERE pending_id = $1 ORDER BY seq",
        )
        .bind(r.pending_id)
        .fetch_all(&mut *tx)
        .await?;
        let waiting = r.state == RedFlushRequestState::Waiting;
        let taken = if waiting { r.requested.unwrap_or_default() } else { Decimal::ZERO };
        out.push(Preview {
            invoice_num: req.invoice_num.clone(),
            state: r.state,
            code: r.code,
            message: r.message,
            requested: r.requested,
            reason: r.red_reason,
            track: r.track,
            lines,
            remaining_before: before,
            remaining_after: before.map(|b| b - taken),
        });
    }
    tx.rollback().await?;
    Ok(out)
}

/// A request as recorded, for its preview.
#[derive(sqlx::FromRow)]
struct Recorded {
    state: RedFlushRequestState,
    code: Option<String>,
    message: Option<String>,
    requested: Option<Decimal>,
    red_reason: String,
    track: Option<RedFlushTrack>,
    pending_id: Option<i64>,
}

/// Judge one request under a lock on its blue invoice and record it (with its red pending
/// invoice when accepted), in the caller's transaction.
async fn accept_in(tx: &mut PgConnection, batch: i64, req: &Request) -> Result<i64> {
    let blue: Option<Blue> = sqlx::query_as(
        "SELECT id, pending_id, invoice_kind, invoice_code, invoice_num, status, red_flush_state, total, amount, tax, remaining, seller_tax_no
           FROM issued_invoice
          WHERE invoice_num = $1 AND ($2::text IS NULL OR $2 = '' OR invoice_code = $2) AND invoice_property = 0
            FOR UPDATE",
    )
    .bind(&req.invoice_num)
    .bind(&req.invoice_code)
    .fetch_optional(&mut *tx)
    .await?;
    let refuse = |code: &str, message: String| (code.to_string(), message);
    let verdict: std::result::Result<Accepted, (String, String)> = match &blue {
        None => Err(refuse(
            "RED_FLUSH_INVOICE_NOT_FOUND",
            format!("发票{}不存在或不是本系统开具的蓝字发票", req.invoice_num),
        )),
        Some(b) if b.status != InvoiceStatus::Normal => Err(refuse(
            "RED_FLUSH_NOT_ELIGIBLE",
            format!("发票状态为{}，只有正常状态的发票可以红冲", b.status),
        )),
        Some(b) if b.red_flush_state == RedFlushState::Full => {
            Err(refuse("RED_FLUSH_NOT_ELIGIBLE", "该发票已全额红冲".into()))
        }
        Some(b)
            if req.red_info_no.is_some()
                && b.invoice_kind.red_flush_track() != RedFlushTrack::RedInfoSheet =>
        {
            Err(refuse(
                "RED_INFO_NO_NOT_APPLICABLE",
                format!("{}不使用红字信息表，不能手工填写红字信息表编号", b.invoice_kind.label_zh()),
            ))
        }
        Some(b) => judge(&mut *tx, b, req).await?.map_err(|e| refuse(e.code(), e.message_zh())),
    };
    let (state, code, message, blue_id, requested, reason, track) = match &verdict {
        Ok(a) => (
            RedFlushRequestState::Waiting,
            None,
            None,
            Some(a.blue_id),
            Some(a.requested.value()),
            a.reason.clone(),
            Some(a.track),
        ),
        Err((c, m)) => (
            RedFlushRequestState::Refused,
            Some(c.clone()),
            Some(m.clone()),
            blue.as_ref().map(|b| b.id),
            req.amount.map(Money::value),
            req.reason.clone().unwrap_or_else(|| "01".into()),
            None,
        ),
    };
    let reason = if rule::REASONS.iter().any(|(c, _)| *c == reason) { reason } else { "01".to_string() };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO red_flush (batch_id, request_id, invoice_code, invoice_num, blue_invoice_id, requested, red_reason, track, state, code, message)
         VALUES ($1, $2, coalesce($3, ''), $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(batch)
    .bind(req.request_id)
    .bind(&req.invoice_code)
    .bind(&req.invoice_num)
    .bind(blue_id)
    .bind(requested)
    .bind(&reason)
    .bind(track)
    .bind(state)
    .bind(code)
    .bind(message)
    .fetch_one(&mut *tx)
    .await?;
    if let (Ok(a), Some(b)) = (&verdict, &blue) {
        let pending = red_pending(&mut *tx, b, a).await?;
        sqlx::query("UPDATE red_flush SET pending_id = $2 WHERE id = $1")
            .bind(id)
            .bind(pending)
            .execute(&mut *tx)
            .await?;
        if let Some(form) = &req.confirmed_form {
            // Issued on the form itself: `documents::step` finds it confirmed and issues.
            sqlx::query("UPDATE red_flush SET document_id = $2 WHERE id = $1")
                .bind(id)
                .bind(&form.id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(no) = &req.red_info_no {
            // The sheet is the one given: `documents::step` asks the channel about it (approved,
            // for this invoice and amount) instead of applying for one.
            sqlx::query("UPDATE red_flush SET document_id = $2 WHERE id = $1")
                .bind(id)
                .bind(no)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE pending_invoice SET data_source = $2 WHERE id = $1")
                .bind(pending)
                .bind(DataSource::ManualRedInfoNo)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(r) = req.request_id {
        sqlx::query("UPDATE red_flush_request SET red_flush_id = $2, state = 'processed' WHERE id = $1")
            .bind(r)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(id)
}

/// The red pending invoices (alias `r`) that hold part of their blue invoice's amount: live, not
/// yet issued (issued ones are out of `remaining` already) and not failed — a failed one reserves
/// nothing, and reissuing it asks the amount rule again (`reissue`). The one place that says so.
pub(crate) const HOLDING: &str =
    "r.invoice_property = 1 AND r.deleted_at IS NULL AND r.status NOT IN ('succeeded', 'failed')";

/// A blue invoice as a red-flush request reads it (locked).
#[derive(sqlx::FromRow)]
struct Blue {
    id: i64,
    pending_id: i64,
    invoice_kind: InvoiceKind,
    invoice_code: String,
    invoice_num: String,
    /// 发票状态 (正常, 作废中, 作废).
    status: InvoiceStatus,
    red_flush_state: RedFlushState,
    total: Decimal,
    tax: Decimal,
    remaining: Decimal,
}

struct Accepted {
    blue_id: i64,
    requested: Money,
    reason: String,
    track: RedFlushTrack,
    /// By line: the red lines; empty: by amount.
    lines: Vec<RedLine>,
    /// The tax exactly (a confirmed form's), instead of the blue invoice's proportion.
    exact_tax: Option<Money>,
}

/// A line request refused, with the code and the message shown.
struct LineRefusal(&'static str, String);

/// Red lines for a by-line request: each within its blue line's remaining quantity and amount
/// (what issued and pending red lines have not taken yet); the price stays.
async fn red_lines(
    tx: &mut PgConnection,
    blue_pending: i64,
    blue_id: i64,
    wanted: &[LineRequest],
) -> Result<std::result::Result<Vec<RedLine>, LineRefusal>> {
    let rows = blue_lines(tx, blue_pending, blue_id).await?;
    if rows.iter().any(|r| r.goods.line_property != LineProperty::Normal) {
        return Ok(Err(LineRefusal("RED_FLUSH_LINES_WITH_DISCOUNT", "含折扣行的发票请按金额红冲".into())));
    }
    let mut out = Vec::new();
    for w in wanted {
        let Some(r) = rows.iter().find(|r| r.seq == w.seq) else {
            return Ok(Err(LineRefusal("RED_FLUSH_LINE_UNKNOWN", format!("蓝字发票没有第{}行", w.seq))));
        };
        let (amount, tax) = (money(r.goods.amount), money(r.goods.tax));
        let left_amount = amount - money(r.used_amount);
        let left_tax = tax - money(r.used_tax);
        let line = match (r.goods.quantity, r.goods.price) {
            (Some(q), Some(p)) => {
                let left_q = q - r.used_quantity;
                if w.value <= Decimal::ZERO || w.value > left_q {
                    return Ok(Err(LineRefusal(
                        "RED_FLUSH_LINE_EXCEEDS",
                        format!(
                            "第{}行红冲数量{}超过剩余可红冲数量{}",
                            w.seq,
                            w.value.normalize(),
                            left_q.normalize()
                        ),
                    )));
                }
                if w.value == left_q {
                    RedLine { seq: w.seq, quantity: Some(w.value), amount: left_amount, tax: left_tax }
                } else {
                    let a = Money::round(w.value * p);
                    RedLine {
                        seq: w.seq,
                        quantity: Some(w.value),
                        amount: a,
                        tax: Money::round(a.value() * tax.value() / amount.value()),
                    }
                }
            }
            _ => {
                let a = Money::round(w.value);
                if !a.is_positive() || a > left_amount {
                    return Ok(Err(LineRefusal(
                        "RED_FLUSH_LINE_EXCEEDS",
                        format!("第{}行红冲金额{a}超过剩余可红冲金额{left_amount}", w.seq),
                    )));
                }
                let t = if a == left_amount {
                    left_tax
                } else {
                    Money::round(a.value() * tax.value() / amount.value())
                };
                RedLine { seq: w.seq, quantity: None, amount: a, tax: t }
            }
        };
        if line.amount > left_amount || line.tax.abs() > left_tax.abs() {
            return Ok(Err(LineRefusal(
                "RED_FLUSH_LINE_EXCEEDS",
                format!("第{}行剩余可红冲金额不足", w.seq),
            )));
        }
        out.push(line);
    }
    Ok(Ok(out))
}

/// A blue line with what red lines (issued or pending) already took from it.
#[derive(sqlx::FromRow)]
struct BlueLine {
    seq: i32,
    bill_no: Option<String>,
    bill_line_no: Option<i32>,
    #[sqlx(flatten)]
    goods: crate::Goods,
    used_quantity: Decimal,
    used_amount: Decimal,
    used_tax: Decimal,
}

/// The blue invoice's lines with what red lines (issued or pending) already took from each.
async fn blue_lines(tx: &mut PgConnection, blue_pending: i64, blue_id: i64) -> sqlx::Result<Vec<BlueLine>> {
    sqlx::query_as(
        "SELECT l.seq, l.bill_no, l.bill_line_no, l.line_property, l.goods_name, l.revenue_code, l.specification, l.unit,
                l.quantity, l.price, l.amount, l.tax_rate, l.tax, l.privilege_flag, l.privilege_content, l.zero_rate_mark,
                coalesce(u.quantity, 0) AS used_quantity, coalesce(u.amount, 0) AS used_amount, coalesce(u.tax, 0) AS used_tax
           FROM pending_line l
           LEFT JOIN (SELECT rl.blue_seq, sum(abs(rl.quantity)) AS quantity, sum(abs(rl.amount)) AS amount, sum(abs(rl.tax)) AS tax
                        FROM pending_line rl JOIN pending_invoice r ON r.id = rl.pending_id
                       WHERE r.blue_invoice_id = $2 AND r.invoice_property = 1 AND r.deleted_at IS NULL
                         AND r.status <> 'failed'
                       GROUP BY rl.blue_seq) u ON u.blue_seq = l.seq
          WHERE l.pending_id = $1 ORDER BY l.seq",
    )
    .bind(blue_pending)
    .bind(blue_id)
    .fetch_all(&mut *tx)
    .await
}

/// The amount, reason and duplicate rules for an eligible blue invoice.
async fn judge(
    tx: &mut PgConnection,
    b: &Blue,
    req: &Request,
) -> Result<std::result::Result<Accepted, RedFlushRuleError>> {
    let blue_id = b.id;
    let total = money(b.total);
    // |red already issued| is what `remaining` no longer holds; |red pending in 待开| is counted here.
    let pending: Decimal = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(sum(abs(r.total)), 0) FROM pending_invoice r WHERE r.blue_invoice_id = $1 AND {HOLDING}"
    )))
    .bind(blue_id)
    .fetch_one(&mut *tx)
    .await?;
    let issued = total.abs() - money(b.remaining);
    let left = rule::remaining(total, issued, money(pending));
    let lines = if req.lines.is_empty() {
        Vec::new()
    } else {
        match red_lines(tx, b.pending_id, blue_id, &req.lines).await? {
            Ok(lines) => lines,
            Err(LineRefusal(code, message)) => return Ok(Err(RedFlushRuleError::Line { code, message })),
        }
    };
    let by_lines: Money = lines.iter().map(|l| l.amount + l.tax).sum();
    let requested = if lines.is_empty() { req.amount.map(Money::abs).unwrap_or(left) } else { by_lines };
    if req.amount.is_none() && lines.is_empty() && left.is_zero() {
        // "All that remains" of an invoice with nothing left: the remaining rule's answer.
        return Ok(Err(RedFlushRuleError::RemainingInsufficient { requested, remaining: left }));
    }
    if let Err(e) = rule::check_amount(requested, left) {
        return Ok(Err(e));
    }
    let reason = req.reason.clone().unwrap_or_else(|| rule::default_reason(requested, total).to_string());
    if let Err(e) = rule::check_reason(&reason, requested, total) {
        return Ok(Err(e));
    }
    // The same-amount refusal is documented for a single red-flush (单张红冲), not for a list.
    let from_a_list = req.request_id.is_some();
    let same: bool = !from_a_list
        && sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM pending_invoice r WHERE r.blue_invoice_id = $1 AND {HOLDING} AND r.total = $2)"
        )))
    .bind(blue_id)
    .bind(-requested.value())
    .fetch_one(&mut *tx)
    .await?;
    if same {
        return Ok(Err(RedFlushRuleError::DuplicatePending(requested)));
    }
    let track = b.invoice_kind.red_flush_track();
    let exact_tax = req.confirmed_form.as_ref().map(|f| f.tax);
    Ok(Ok(Accepted { blue_id, requested, reason, track, lines, exact_tax }))
}

fn money(d: Decimal) -> Money {
    Money::exact(d).expect("stored at scale 2")
}

/// The red pending invoice (单张开票) for an accepted request: the blue invoice's lines negated
/// when all of it goes, else the requested amount shared over its lines.
async fn red_pending(tx: &mut PgConnection, b: &Blue, a: &Accepted) -> Result<i64> {
    let blue_pending = b.pending_id;
    let (total, tax) = (money(b.total), money(b.tax));
    // A form's exact tax may differ from the blue invoice's by a cent: then its lines are shared.
    let full = a.requested == total.abs() && a.lines.is_empty() && a.exact_tax.is_none_or(|t| t == tax.abs());
    let red_tax = if let Some(tax) = a.exact_tax {
        tax
    } else if !a.lines.is_empty() {
        a.lines.iter().map(|l| l.tax).sum()
    } else if full {
        tax
    } else {
        Money::round(a.requested.value() * tax.value() / total.value())
    };
    let red_amount = a.requested - red_tax;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO pending_invoice (seller_tax_no, seller_address_phone, seller_bank_account, buyer_name, buyer_tax_no, buyer_address_phone,
                                      buyer_bank_account, invoice_kind, invoice_property, remark, business_system_code, data_source,
                                      amount, tax, total, blue_invoice_id, red_reason)
         SELECT seller_tax_no, seller_address_phone, seller_bank_account, buyer_name, buyer_tax_no, buyer_address_phone, buyer_bank_account,
                invoice_kind, 1, $2, business_system_code, '单张开票', $3, $4, $5, $6, $7
           FROM pending_invoice WHERE id = $1
         RETURNING id",
    )
    .bind(blue_pending)
    .bind(format!("对应正数发票代码:{}号码:{}", b.invoice_code, b.invoice_num))
    .bind(-red_amount.value())
    .bind(-red_tax.value())
    .bind(-a.requested.value())
    .bind(a.blue_id)
    .bind(&a.reason)
    .fetch_one(&mut *tx)
    .await?;
    if !a.lines.is_empty() {
        for (i, l) in a.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO pending_line (pending_id, seq, bill_no, bill_line_no, line_property, goods_name, revenue_code, specification, unit,
                                           quantity, price, amount, tax_rate, tax, blue_seq, privilege_flag, privilege_content, zero_rate_mark)
                 SELECT $2, $3, bill_no, bill_line_no, 'normal', goods_name, revenue_code, specification, unit, -$4::numeric, price, $5, tax_rate, $6, seq,
                        privilege_flag, privilege_content, zero_rate_mark
                   FROM pending_line WHERE pending_id = $1 AND seq = $7",
            )
            .bind(blue_pending)
            .bind(id)
            .bind(i as i32 + 1)
            .bind(l.quantity)
            .bind(-l.amount.value())
            .bind(-l.tax.value())
            .bind(l.seq)
            .execute(&mut *tx)
            .await?;
        }
    } else if full {
        sqlx::query(
            "INSERT INTO pending_line (pending_id, seq, bill_no, bill_line_no, line_property, goods_name, revenue_code, specification, unit,
                                       quantity, price, amount, tax_rate, tax, blue_seq, privilege_flag, privilege_content, zero_rate_mark)
             SELECT $2, seq, bill_no, bill_line_no, line_property, goods_name, revenue_code, specification, unit,
                    -quantity, price, -amount, tax_rate, -tax, seq, privilege_flag, privilege_content, zero_rate_mark
               FROM pending_line WHERE pending_id = $1",
        )
        .bind(blue_pending)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    } else {
        partial_lines(tx, blue_pending, a.blue_id, id, red_amount, red_tax).await?;
    }
    record::event(tx, id, "created", Some(&format!("红冲 {}（冲红原因{}）", a.requested, a.reason))).await?;
    Ok(id)
}

/// A partial red-flush by amount: one red line per blue line (its discount folded in), amount
/// and tax shared in proportion to what each line still holds — after earlier red-flushes by
/// line or by amount no line gives more than it has left — without quantities.
async fn partial_lines(
    tx: &mut PgConnection,
    blue_pending: i64,
    blue_id: i64,
    red: i64,
    amount: Money,
    tax: Money,
) -> Result<()> {
    let rows = blue_lines(tx, blue_pending, blue_id).await?;
    // Units: a line with the discount line after it; earlier red lines name the unit's first line.
    let mut units: Vec<(&BlueLine, Money, Money)> = Vec::new();
    for r in &rows {
        let (a, t) = (money(r.goods.amount), money(r.goods.tax));
        match (r.goods.line_property, units.last_mut()) {
            (LineProperty::Discount, Some(last)) => {
                last.1 += a;
                last.2 += t;
            }
            _ => units.push((r, a - money(r.used_amount), t - money(r.used_tax))),
        }
    }
    let amounts =
        fapiao_schemas::split::allocate_within(amount, &units.iter().map(|u| u.1).collect::<Vec<_>>());
    let taxes = fapiao_schemas::split::allocate_within(tax, &units.iter().map(|u| u.2).collect::<Vec<_>>());
    for (i, (r, _, _)) in units.iter().enumerate() {
        sqlx::query(
            "INSERT INTO pending_line (pending_id, seq, bill_no, bill_line_no, line_property, goods_name, revenue_code, specification, unit,
                                       amount, tax_rate, tax, blue_seq, privilege_flag, privilege_content, zero_rate_mark)
             VALUES ($1, $2, $3, $4, 'normal', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(red)
        .bind(i as i32 + 1)
        .bind(&r.bill_no)
        .bind(r.bill_line_no)
        .bind(&r.goods.goods_name)
        .bind(&r.goods.revenue_code)
        .bind(&r.goods.specification)
        .bind(&r.goods.unit)
        .bind(-amounts[i].value())
        .bind(r.goods.tax_rate)
        .bind(-taxes[i].value())
        .bind(r.seq)
        .bind(r.goods.privilege_flag)
        .bind(&r.goods.privilege_content)
        .bind(r.goods.zero_rate_mark)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Take an accepted request as far as its track allows now.
pub(crate) async fn advance(inv: &Invoicing, id: i64) -> Result<()> {
    use RedFlushRequestState::{Issuing, Waiting};
    let (state, track, pending, document): (
        RedFlushRequestState,
        Option<RedFlushTrack>,
        Option<i64>,
        Option<String>,
    ) = sqlx::query_as("SELECT state, track, pending_id, document_id FROM red_flush WHERE id = $1")
        .bind(id)
        .fetch_one(&inv.pool)
        .await?;
    let Some(pending) = pending else { return Ok(()) };
    match (state, track) {
        (Waiting, Some(RedFlushTrack::Direct)) | (Issuing, _) => issue_red(inv, id, pending).await,
        (Waiting, Some(_)) => documents::step(inv, id, pending, document).await,
        _ => Ok(()),
    }
}

/// Issue (or settle) the red pending invoice and carry its status to the request.
pub(crate) async fn issue_red(inv: &Invoicing, id: i64, pending: i64) -> Result<()> {
    sqlx::query(
        "UPDATE red_flush SET state = 'issuing', updated_at = now() WHERE id = $1 AND state = 'waiting'",
    )
    .bind(id)
    .execute(&inv.pool)
    .await?;
    crate::issue::drive(inv, pending).await
}

/// End a request whose form or sheet was voided: its red pending invoice goes (the amount is free again).
pub(crate) async fn end(inv: &Invoicing, id: i64, pending: i64, message: &str) -> Result<()> {
    let mut tx = inv.pool.begin().await?;
    sqlx::query("UPDATE pending_invoice SET deleted_at = now() WHERE id = $1 AND status IN ('not_issued', 'failed') AND deleted_at IS NULL")
        .bind(pending)
        .execute(&mut *tx)
        .await?;
    record::event(&mut tx, pending, "deleted", Some(message)).await?;
    sqlx::query("UPDATE red_flush SET state = 'ended', code = 'RED_DOCUMENT_VOID', message = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(message)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The `ALLE.INVOICE.RED` body of a red pending invoice.
pub(crate) async fn red_body(inv: &Invoicing, id: i64, serial: &str) -> Result<RedInvoice> {
    let r: RedHead = sqlx::query_as(
        "SELECT p.seller_tax_no, p.red_reason, p.amount, p.tax, p.red_document_no, b.invoice_code, b.invoice_num, b.invoice_kind
           FROM pending_invoice p JOIN issued_invoice b ON b.id = p.blue_invoice_id WHERE p.id = $1",
    )
    .bind(id)
    .fetch_one(&inv.pool)
    .await?;
    let document = r.red_document_no.unwrap_or_default();
    let track = r.invoice_kind.red_flush_track();
    let crate::issue::Issuers { drawer, payee, reviewer } = crate::issue::issuers(inv, id).await?;
    Ok(RedInvoice {
        serial_no: serial.to_string(),
        seller_taxpayer_id: r.seller_tax_no,
        original_invoice_code: r.invoice_code,
        original_invoice_num: r.invoice_num,
        red_reason: r.red_reason.unwrap_or_else(|| "01".into()),
        amount: money(r.amount),
        tax_amount: money(r.tax),
        gov_red_confirm_bill_uuid: if track == RedFlushTrack::ConfirmationForm {
            document.clone()
        } else {
            String::new()
        },
        red_info_bill_no: if track == RedFlushTrack::RedInfoSheet { document } else { String::new() },
        drawer,
        payee,
        reviewer,
    })
}

/// A red pending invoice with its blue invoice, for its `ALLE.INVOICE.RED` body.
#[derive(sqlx::FromRow)]
struct RedHead {
    seller_tax_no: String,
    red_reason: Option<String>,
    amount: Decimal,
    tax: Decimal,
    red_document_no: Option<String>,
    invoice_code: String,
    invoice_num: String,
    invoice_kind: InvoiceKind,
}

/// A red invoice was issued (in the transaction recording it): the blue invoice's remaining
/// amount and red-flush state follow; fully red-flushed, its application lines reopen.
pub(crate) async fn red_issued(db: &mut PgConnection, red_pending: i64) -> sqlx::Result<()> {
    let blue: Option<(i64, i64, RedFlushState)> = sqlx::query_as(
        "UPDATE issued_invoice b
            SET remaining = b.remaining - abs(p.total),
                red_flush_state = CASE WHEN b.remaining - abs(p.total) = 0 THEN 'full' ELSE 'partial' END
           FROM pending_invoice p
          WHERE p.id = $1 AND p.invoice_property = 1 AND b.id = p.blue_invoice_id
         RETURNING b.id, b.pending_id, b.red_flush_state",
    )
    .bind(red_pending)
    .fetch_optional(&mut *db)
    .await?;
    let Some((_, blue_pending, state)) = blue else { return Ok(()) };
    sqlx::query("UPDATE red_flush SET state = 'succeeded', code = NULL, message = NULL, updated_at = now() WHERE pending_id = $1")
        .bind(red_pending)
        .execute(&mut *db)
        .await?;
    if state == RedFlushState::Full {
        record::release(db, blue_pending, "released", "全额红冲：开票申请单明细可重新推送开票").await?;
    }
    Ok(())
}

/// One request as reported.
pub async fn outcome(inv: &Invoicing, id: i64) -> Result<Outcome> {
    let r: OutcomeRow = sqlx::query_as(
        "SELECT f.*, i.invoice_num AS red_num, p.status AS pending_status, p.error_message AS pending_error
           FROM red_flush f LEFT JOIN issued_invoice i ON i.pending_id = f.pending_id LEFT JOIN pending_invoice p ON p.id = f.pending_id
          WHERE f.id = $1",
    )
    .bind(id)
    .fetch_one(&inv.pool)
    .await?;
    Ok(Outcome {
        red_flush_id: Some(id),
        invoice_num: r.invoice_num,
        requested: r.requested,
        reason: Some(r.red_reason),
        track: r.track,
        state: r.state,
        code: r.code,
        message: r.message,
        red_invoice_num: r.red_num,
        document_id: r.document_id,
    })
}

/// A request as `outcome` reads it.
#[derive(sqlx::FromRow)]
struct OutcomeRow {
    invoice_num: String,
    requested: Option<Decimal>,
    red_reason: String,
    track: Option<RedFlushTrack>,
    state: RedFlushRequestState,
    code: Option<String>,
    message: Option<String>,
    red_num: Option<String>,
    document_id: Option<String>,
}

/// Requests of a red-flush list imported with `fapiao import --kind red-flush`, not yet processed.
pub async fn requests_of_import(inv: &Invoicing, import_batch: i64) -> Result<Vec<Request>> {
    let rows: Vec<ListedRequest> = sqlx::query_as(
        "SELECT id, row_no, invoice_code, invoice_num, red_amount, red_reason FROM red_flush_request
          WHERE batch_id = $1 AND red_flush_id IS NULL ORDER BY row_no",
    )
    .bind(import_batch)
    .fetch_all(&inv.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Request {
            invoice_code: Some(r.invoice_code).filter(|c| !c.is_empty()),
            invoice_num: r.invoice_num,
            amount: r.red_amount.map(money),
            reason: Some(r.red_reason),
            request_id: Some(r.id),
            row_no: Some(r.row_no),
            ..Request::default()
        })
        .collect())
}

/// A row of an imported red-flush list.
#[derive(sqlx::FromRow)]
struct ListedRequest {
    id: i64,
    row_no: i32,
    invoice_code: String,
    invoice_num: String,
    red_amount: Option<Decimal>,
    red_reason: String,
}
