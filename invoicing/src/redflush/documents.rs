//! Red confirmation forms (红字确认单, 数电) and red info sheets (红字信息表, tax-control special):
//! applied for by a request, stored with their state history, polled while waiting, and acted
//! on by hand (`fapiao red-flush forms …`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fapiao_channel::ChannelError;
use fapiao_channel::error::Disposition;
use fapiao_channel::wire::{RedConfirmApply, RedConfirmForm, RedInfoApply, RedInfoSheet};
use fapiao_schemas::invoice_kind::RedFlushTrack;
use fapiao_schemas::{FormState, RedDocumentKind, RedDocumentState, RedFlushRequestState, SheetState};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;

use super::{advance, end, issue_red, money};
use crate::{Invoicing, InvoicingError, Result};

/// A form or sheet, in the shape both share here.
struct Document {
    id: String,
    kind: RedDocumentKind,
    order_no: String,
    state: RedDocumentState,
    number: String,
    seller: String,
    buyer: String,
    invoice_num: String,
    red_reason: String,
    amount: Amounts,
    entered_by: String,
}

/// Amount and tax (negative for a red-flush).
type Amounts = (Decimal, Decimal);

/// A state the channel's documentation does not have: an answer of the wrong shape.
fn unknown_state(op: &str, what: &str, state: &str) -> ChannelError {
    ChannelError::Decode { op: op.into(), detail: format!("unknown {what} state {state:?}") }
}

impl Document {
    fn from_form(f: &RedConfirmForm) -> std::result::Result<Document, ChannelError> {
        let state = FormState::from_db(&f.confirm_state)
            .ok_or_else(|| unknown_state("REDCONFIRMBILL", "form", &f.confirm_state))?;
        Ok(Document {
            id: f.bill_uuid.clone(),
            kind: RedDocumentKind::Form,
            order_no: f.order_no.clone(),
            state: RedDocumentState::Form(state),
            number: f.bill_no.clone(),
            seller: f.seller_taxpayer_id.clone(),
            buyer: f.buyer_taxpayer_id.clone(),
            invoice_num: f.invoice_num.clone(),
            red_reason: f.red_reason.clone(),
            amount: (f.amount.value(), f.tax_amount.value()),
            entered_by: f.entered_by.clone(),
        })
    }

    fn from_sheet(
        s: &RedInfoSheet,
        seller: &str,
        invoice_num: &str,
        reason: &str,
        amount: Amounts,
    ) -> std::result::Result<Document, ChannelError> {
        let state = SheetState::from_db(&s.state)
            .ok_or_else(|| unknown_state("TAXCTL.REDINFO", "sheet", &s.state))?;
        Ok(Document {
            id: s.sheet_id.clone(),
            kind: RedDocumentKind::Sheet,
            order_no: s.order_no.clone(),
            state: RedDocumentState::Sheet(state),
            number: s.red_info_bill_no.clone(),
            seller: seller.into(),
            buyer: String::new(),
            invoice_num: invoice_num.into(),
            red_reason: reason.into(),
            amount,
            entered_by: "seller".into(),
        })
    }
}

/// Upsert a document; a state change is appended to its history.
async fn store(db: &mut PgConnection, d: &Document, red_flush: Option<i64>) -> sqlx::Result<()> {
    let old: Option<RedDocumentState> = sqlx::query_scalar(
        "INSERT INTO red_document (id, kind, order_no, state, number, seller_tax_no, buyer_tax_no, invoice_num, red_reason, amount, tax, entered_by, red_flush_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, number = coalesce(nullif(EXCLUDED.number, ''), red_document.number),
                red_flush_id = coalesce(red_document.red_flush_id, EXCLUDED.red_flush_id), updated_at = now()
         RETURNING (SELECT state FROM red_document WHERE id = $1)",
    )
    .bind(&d.id)
    .bind(d.kind)
    .bind(&d.order_no)
    .bind(d.state)
    .bind(&d.number)
    .bind(&d.seller)
    .bind(&d.buyer)
    .bind(&d.invoice_num)
    .bind(&d.red_reason)
    .bind(d.amount.0)
    .bind(d.amount.1)
    .bind(&d.entered_by)
    .bind(red_flush)
    .fetch_one(&mut *db)
    .await?;
    if old != Some(d.state) {
        sqlx::query("INSERT INTO red_document_event (document_id, state) VALUES ($1, $2)")
            .bind(&d.id)
            .bind(d.state)
            .execute(&mut *db)
            .await?;
    }
    Ok(())
}

/// What a document's state means for its request.
enum Next {
    Issue(String),
    Wait(&'static str),
    End(String),
}

fn next(d: &Document) -> Next {
    use RedDocumentState::{Form, Sheet};
    match d.state {
        Form(FormState::NoConfirmationNeeded | FormState::Confirmed) => Next::Issue(d.id.clone()),
        Form(FormState::AwaitingBuyer) => Next::Wait("红字确认单待购方确认"),
        Form(FormState::AwaitingSeller) => Next::Wait("红字确认单待销方确认"),
        Form(s) => Next::End(format!("红字确认单已作废（{s} {}）", s.label_zh())),
        Sheet(SheetState::Approved) => Next::Issue(d.number.clone()),
        Sheet(SheetState::Submitted) => Next::Wait("红字信息表待税局审核"),
        Sheet(s) => {
            Next::End(format!("红字信息表{}", if s == SheetState::Revoked { "已撤销" } else { "审核不通过" }))
        }
    }
}

/// A waiting request with what its form or sheet application needs.
#[derive(sqlx::FromRow)]
struct StepRow {
    track: Option<RedFlushTrack>,
    red_reason: String,
    seller_tax_no: String,
    amount: Decimal,
    tax: Decimal,
    invoice_code: String,
    invoice_num: String,
    install: String,
}

/// One step of a waiting request: apply for its document (first time) or ask about it, then
/// issue, wait or end accordingly.
pub(crate) async fn step(inv: &Invoicing, id: i64, pending: i64, document: Option<String>) -> Result<()> {
    let r: StepRow = sqlx::query_as(
        "SELECT f.track, f.red_reason, p.seller_tax_no, p.amount, p.tax, b.invoice_code, b.invoice_num, (SELECT id FROM installation) AS install
           FROM red_flush f JOIN pending_invoice p ON p.id = f.pending_id JOIN issued_invoice b ON b.id = f.blue_invoice_id WHERE f.id = $1",
    )
    .bind(id)
    .fetch_one(&inv.pool)
    .await?;
    let (seller, invoice_num, reason) = (r.seller_tax_no, r.invoice_num, r.red_reason);
    let amounts: Amounts = (r.amount, r.tax);
    // Applies are idempotent by order number: a lost answer is asked again with the same one.
    let order_no = format!("RF{}-{id}", r.install);
    let sheet = r.track == Some(RedFlushTrack::RedInfoSheet);
    let answer: std::result::Result<Document, ChannelError> = match (&document, sheet) {
        (None, false) => {
            let apply = RedConfirmApply {
                order_no,
                seller_taxpayer_id: seller.clone(),
                invoice_num: invoice_num.clone(),
                red_reason: reason.clone(),
                amount: money(amounts.0),
                tax_amount: money(amounts.1),
            };
            inv.channel.red_confirm_apply(&apply).await.and_then(|f| Document::from_form(&f))
        }
        (Some(uuid), false) => {
            inv.channel.red_confirm_query(uuid).await.and_then(|f| Document::from_form(&f))
        }
        (None, true) => {
            let apply = RedInfoApply {
                order_no,
                seller_taxpayer_id: seller.clone(),
                invoice_code: r.invoice_code,
                invoice_num: invoice_num.clone(),
                red_reason: reason.clone(),
                amount: money(amounts.0),
                tax_amount: money(amounts.1),
            };
            inv.channel
                .red_info_apply(&apply)
                .await
                .and_then(|s| Document::from_sheet(&s, &seller, &invoice_num, &reason, amounts))
        }
        (Some(sheet_id), true) => inv
            .channel
            .red_info_query(sheet_id)
            .await
            .and_then(|s| Document::from_sheet(&s, &seller, &invoice_num, &reason, amounts)),
    };
    let doc = match answer {
        Ok(d) => d,
        Err(e) if matches!(e.disposition(), Disposition::BadInput | Disposition::NeverRetry) => {
            let message = match &e {
                ChannelError::Api { code, message, .. } => format!("{message}（{code}）"),
                other => other.to_string(),
            };
            return end(inv, id, pending, &message).await;
        }
        Err(e) => {
            sqlx::query("UPDATE red_flush SET message = $2, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(format!("暂未能向渠道确认，稍后重试：{e}"))
                .execute(&inv.pool)
                .await?;
            return Ok(());
        }
    };
    let mut tx = inv.pool.begin().await?;
    store(&mut tx, &doc, Some(id)).await?;
    sqlx::query("UPDATE red_flush SET document_id = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&doc.id)
        .execute(&mut *tx)
        .await?;
    match next(&doc) {
        Next::Issue(number) => {
            sqlx::query("UPDATE pending_invoice SET red_document_no = $2 WHERE id = $1")
                .bind(pending)
                .bind(&number)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            issue_red(inv, id, pending).await
        }
        Next::Wait(why) => {
            sqlx::query("UPDATE red_flush SET message = $2 WHERE id = $1")
                .bind(id)
                .bind(why)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }
        Next::End(why) => {
            tx.commit().await?;
            end(inv, id, pending, &why).await
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PollReport {
    pub polled: usize,
    pub succeeded: usize,
    pub waiting: usize,
    pub failed: usize,
}

/// Every waiting or issuing request, one step each (the `red-flush-poll` job).
pub async fn poll(inv: &Invoicing) -> Result<PollReport> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM red_flush WHERE state IN ('waiting', 'issuing') ORDER BY id")
            .fetch_all(&inv.pool)
            .await?;
    for &id in &ids {
        advance(inv, id).await?;
    }
    use RedFlushRequestState::{Ended, Failed, Issuing, Succeeded, Waiting};
    let states: Vec<RedFlushRequestState> =
        sqlx::query_scalar("SELECT state FROM red_flush WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&inv.pool)
            .await?;
    let n = |s: &[RedFlushRequestState]| states.iter().filter(|x| s.contains(x)).count();
    Ok(PollReport {
        polled: ids.len(),
        succeeded: n(&[Succeeded]),
        waiting: n(&[Waiting, Issuing]),
        failed: n(&[Failed, Ended]),
    })
}

/// Step these requests while a sheet awaits the bureau or a red invoice is 开票中, within
/// `invoicing.settle_within_secs`; forms waiting for the other party are not waited for.
pub(crate) async fn poll_until_decided(inv: &Invoicing, ids: &[i64]) -> Result<()> {
    let s = &inv.settings.invoicing;
    let deadline = Instant::now() + Duration::from_secs(s.settle_within_secs);
    loop {
        let open: Vec<i64> = sqlx::query_scalar(
            "SELECT f.id FROM red_flush f LEFT JOIN red_document d ON d.id = f.document_id
              WHERE f.id = ANY($1) AND (f.state = 'issuing' OR (f.state = 'waiting' AND (d.id IS NULL OR d.kind = 'sheet')))",
        )
        .bind(ids)
        .fetch_all(&inv.pool)
        .await?;
        if open.is_empty() || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(s.settle_poll_ms)).await;
        for id in open {
            advance(inv, id).await?;
        }
    }
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: String,
    pub kind: RedDocumentKind,
    pub state: RedDocumentState,
    /// The state in the documents' words.
    #[sqlx(skip)]
    pub state_zh: String,
    pub number: Option<String>,
    pub seller_tax_no: String,
    pub buyer_tax_no: String,
    pub invoice_num: String,
    pub amount: Decimal,
    pub tax: Decimal,
    pub red_reason: String,
    pub entered_by: String,
    pub red_flush_id: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

pub async fn list(inv: &Invoicing) -> Result<Vec<DocumentRow>> {
    let rows =
        sqlx::query_as("SELECT * FROM red_document ORDER BY updated_at, id").fetch_all(&inv.pool).await?;
    Ok(labelled(rows))
}

/// The documents whose seller or buyer is one of `scope` (all when `None`), newest first.
pub async fn list_in_scope(inv: &Invoicing, scope: Option<&[String]>) -> Result<Vec<DocumentRow>> {
    let rows = sqlx::query_as(
        "SELECT * FROM red_document
          WHERE $1::text[] IS NULL OR seller_tax_no = ANY($1) OR buyer_tax_no = ANY($1)
          ORDER BY updated_at DESC, id DESC",
    )
    .bind(scope)
    .fetch_all(&inv.pool)
    .await?;
    Ok(labelled(rows))
}

/// One document by its ID.
pub async fn one(inv: &Invoicing, id: &str) -> Result<Option<DocumentRow>> {
    let row =
        sqlx::query_as("SELECT * FROM red_document WHERE id = $1").bind(id).fetch_optional(&inv.pool).await?;
    Ok(row.map(|r| labelled(vec![r]).remove(0)))
}

fn labelled(mut rows: Vec<DocumentRow>) -> Vec<DocumentRow> {
    for r in &mut rows {
        r.state_zh = r.state.label_zh().to_string();
    }
    rows
}

async fn kind_of(inv: &Invoicing, id: &str) -> Result<(RedDocumentKind, Option<i64>, String, String)> {
    sqlx::query_as("SELECT kind, red_flush_id, seller_tax_no, invoice_num FROM red_document WHERE id = $1")
        .bind(id)
        .fetch_optional(&inv.pool)
        .await?
        .ok_or_else(|| {
            InvoicingError::not_found(
                "RED_DOCUMENT_NOT_FOUND",
                format!("红字确认单/信息表{id}不存在（先 red-flush forms download）"),
            )
        })
}

/// What deciding on a form did.
#[derive(Clone, Debug, Serialize)]
pub struct Decided {
    pub state: FormState,
    /// A form the buyer entered, confirmed: the red invoice issued on it (its exact amount and
    /// tax), or why not.
    pub red_flush: Option<super::Outcome>,
}

/// Confirm (`true`) or reject a form the other party entered. A form of our own request lets
/// that request go on; a form the buyer entered (03), once confirmed, is red-flushed now with
/// exactly its amount and tax, on the form.
pub async fn decide(inv: &Invoicing, id: &str, confirm: bool) -> Result<Decided> {
    let (kind, red_flush, ..) = kind_of(inv, id).await?;
    if kind != RedDocumentKind::Form {
        return Err(InvoicingError::refused("RED_DOCUMENT_KIND", "只有红字确认单可以确认或拒绝"));
    }
    let form = inv.channel.red_confirm_decide(id, confirm).await?;
    let doc = Document::from_form(&form)?;
    let mut db = inv.pool.acquire().await?;
    store(&mut db, &doc, None).await?;
    drop(db);
    let RedDocumentState::Form(state) = doc.state else { unreachable!("a form has a form state") };
    let outcome = match red_flush {
        Some(rf) => {
            advance(inv, rf).await?;
            None
        }
        None if state == FormState::Confirmed => {
            let request = super::Request {
                invoice_num: form.invoice_num.clone(),
                amount: Some(form.amount.abs() + form.tax_amount.abs()),
                reason: Some(form.red_reason.clone()),
                confirmed_form: Some(super::ConfirmedForm {
                    id: form.bill_uuid.clone(),
                    amount: form.amount.abs(),
                    tax: form.tax_amount.abs(),
                }),
                ..super::Request::default()
            };
            super::red_flush(inv, None, &[request], &|_| {}).await?.pop()
        }
        None => None,
    };
    Ok(Decided { state, red_flush: outcome })
}

/// Revoke a form or a sheet; its request ends and the amount is free again.
pub async fn revoke(inv: &Invoicing, id: &str) -> Result<RedDocumentState> {
    let (kind, red_flush, seller, invoice_num) = kind_of(inv, id).await?;
    let doc = if kind == RedDocumentKind::Form {
        Document::from_form(&inv.channel.red_confirm_revoke(id).await?)?
    } else {
        let s = inv.channel.red_info_revoke(id).await?;
        let (reason, amount, tax): (String, Decimal, Decimal) =
            sqlx::query_as("SELECT red_reason, amount, tax FROM red_document WHERE id = $1")
                .bind(id)
                .fetch_one(&inv.pool)
                .await?;
        Document::from_sheet(&s, &seller, &invoice_num, &reason, (amount, tax))?
    };
    let mut db = inv.pool.acquire().await?;
    store(&mut db, &doc, None).await?;
    drop(db);
    if let Some(rf) = red_flush {
        advance(inv, rf).await?;
    }
    Ok(doc.state)
}

/// What a download fetched.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Downloaded {
    /// Forms concerning the tenant's enterprises (as seller or buyer), each counted once.
    pub forms: usize,
    /// Red info sheets of the tenant's enterprises as sellers.
    pub sheets: usize,
}

/// 下载红字确认单 and 下载红字信息表: fetch every form concerning the tenant's enterprises and
/// every sheet they are the seller of, page by page, and keep them (state changes in the history).
pub async fn download(inv: &Invoicing) -> Result<Downloaded> {
    const PAGE: u32 = 100;
    let tax_nos: Vec<String> =
        sqlx::query_scalar("SELECT tax_no FROM enterprise ORDER BY tax_no").fetch_all(&inv.pool).await?;
    // A form between two of the tenant's enterprises comes once for each: counted once.
    let mut forms = std::collections::HashSet::new();
    let mut sheets = 0;
    let mut db = inv.pool.acquire().await?;
    for tax_no in tax_nos {
        for page_no in 0.. {
            let page = inv.channel.red_confirm_download(&tax_no, page_no, PAGE).await?;
            for f in &page.list {
                store(&mut db, &Document::from_form(f)?, None).await?;
                forms.insert(f.bill_uuid.clone());
            }
            if page.list.is_empty() || u64::from(page_no + 1) * u64::from(PAGE) >= page.total {
                break;
            }
        }
        for page_no in 0.. {
            let page = inv.channel.red_info_download(&tax_no, page_no, PAGE).await?;
            for l in &page.list {
                let amounts = (l.amount.value(), l.tax_amount.value());
                let doc = Document::from_sheet(
                    &l.sheet,
                    &l.seller_taxpayer_id,
                    &l.invoice_num,
                    &l.red_reason,
                    amounts,
                )?;
                store(&mut db, &doc, None).await?;
                sheets += 1;
            }
            if page.list.is_empty() || u64::from(page_no + 1) * u64::from(PAGE) >= page.total {
                break;
            }
        }
    }
    Ok(Downloaded { forms: forms.len(), sheets })
}
