//! 抵扣类勾选 (deduction selection, seed 004): select or unselect pool invoices for a tax period,
//! follow asynchronous batches, stop one, and tell where an invoice stands.
//!
//! Order of a selection: find the invoices (unknown → nothing done), refuse small-scale
//! enterprises verbatim (not sent), decide the period (fixed when the channel reports it, else
//! the current month or the one asked for), check each invoice, store the batch under our own
//! number, then ask the bureau — synchronously when `rim_config/rpa_select_syn = 1`, else as a
//! batch `deduct-poll` follows. A lost answer leaves the batch open; the poll asks about it by
//! number (and sends it again under the same number if the bureau never got it — the bureau
//! answers a known number with the batch it has, so nothing is selected twice).

use std::collections::BTreeMap;

use fapiao_channel::ChannelError;
use fapiao_channel::codes::error as code;
use fapiao_channel::wire::{InvoiceSelect, SelectBatch, SelectInvoice};
use fapiao_schemas::deduction::{PeriodChoice, TaxPeriod};
use fapiao_schemas::enterprise::TaxpayerKind;
use fapiao_schemas::params::{RIM_CONFIG, RPA_SELECT_SYN};
use fapiao_schemas::{SelectAction, SelectBatchState, TaxNo, messages};
use fapiao_store::deduct::{self as store, Answer, ItemResult, NewBatch};
use serde::Serialize;

pub use fapiao_store::deduct::{BatchRow, InvoiceSelection, SelectLogRow, Selectable};

use crate::{Actor, App, Error, Result};

/// What to select or unselect.
#[derive(Clone, Debug)]
pub struct Request {
    pub action: SelectAction,
    pub numbers: Vec<String>,
    /// The receiving enterprise, where a number alone is ambiguous.
    pub tax_no: Option<String>,
    /// The period asked for (`--period`); where the channel fixes it, it must be that one.
    pub period: Option<TaxPeriod>,
}

/// One batch sent, as it stands after the call.
#[derive(Clone, Debug, Serialize)]
pub struct Submitted {
    pub batch: BatchRow,
    /// Whether the period was fixed by the channel (else chosen here).
    pub period_fixed: bool,
    /// The call's answer was lost: `deduct-poll` settles the batch by its number.
    pub answer_lost: bool,
}

/// Select or unselect: one batch per enterprise. Nothing is sent unless every invoice of every
/// enterprise may take part.
pub async fn submit(app: &App, actor: &Actor, req: &Request) -> Result<Vec<Submitted>> {
    if req.numbers.is_empty() {
        return Err(Error::bad_input("SELECT_EMPTY", "勾选发票不能为空"));
    }
    let found = store::find(&app.pool, &req.numbers, req.tax_no.as_deref()).await?;
    let mut by_enterprise: BTreeMap<String, Vec<Selectable>> = BTreeMap::new();
    for s in found {
        by_enterprise.entry(s.tax_no.clone()).or_default().push(s);
    }
    let today = chrono::Utc::now().with_timezone(&app.settings.time_zone()).date_naive();
    let mut plans = Vec::new();
    for (tax_no, invoices) in by_enterprise {
        let id = TaxNo::parse(&tax_no).map_err(|e| Error::bad_input("TAX_NO_INVALID", e.to_string()))?;
        let enterprise = fapiao_store::enterprises::get(&app.pool, &id).await?.ok_or_else(|| {
            Error::NotFound { code: "ENTERPRISE_NOT_FOUND", message: format!("企业{tax_no}不存在") }
        })?;
        if enterprise.taxpayer_kind == TaxpayerKind::SmallScale {
            return Err(Error::Refused {
                code: "SMALL_SCALE_NO_DEDUCTION",
                message: messages::SMALL_SCALE_NO_DEDUCTION_DOWNLOAD.into(),
            });
        }
        let choice = period_choice(app, &tax_no, today).await?;
        let period = choice
            .decide(req.period)
            .map_err(|e| Error::Refused { code: "TAX_PERIOD_FIXED", message: e.to_string() })?;
        let refusals: Vec<String> = invoices.iter().filter_map(|s| s.refusal(req.action, period)).collect();
        if !refusals.is_empty() {
            return Err(Error::Refused { code: "SELECT_NOT_ALLOWED", message: refusals.join("；") });
        }
        plans.push((tax_no, invoices, period, choice.is_fixed()));
    }
    let sync =
        fapiao_store::params::value(&app.pool, RIM_CONFIG, RPA_SELECT_SYN).await?.as_deref() == Some("1");
    let mut out = Vec::new();
    for (tax_no, invoices, period, period_fixed) in plans {
        let pairs: Vec<(String, String)> =
            invoices.iter().map(|s| (s.invoice_code.clone(), s.invoice_num.clone())).collect();
        let batch_no = new_batch_no();
        let who = actor.to_string();
        let batch = NewBatch {
            batch_no: &batch_no,
            tax_no: &tax_no,
            period,
            action: req.action,
            sync,
            actor: &who,
            invoices: &pairs,
        };
        store::open_batch(&app.pool, &batch).await?;
        tracing::info!(actor = %actor, batch_no, tax_no, %period, action = %req.action, sync, invoices = pairs.len(), "selection batch stored, asking the bureau");
        let request = InvoiceSelect {
            batch_no: batch_no.clone(),
            taxpayer_id: tax_no.clone(),
            period,
            action: req.action,
            sync,
            invoices: pairs
                .iter()
                .map(|(c, n)| SelectInvoice { invoice_code: c.clone(), invoice_num: n.clone() })
                .collect(),
        };
        let (batch, answer_lost) = send(app, actor, &batch_no, &request).await?;
        out.push(Submitted { batch, period_fixed, answer_lost });
    }
    Ok(out)
}

/// Ask the bureau and record what it says. A refusal fails the batch (each invoice back where it
/// was) and is returned as the error; a fault of the moment leaves the batch open for the poll.
async fn send(app: &App, actor: &Actor, batch_no: &str, request: &InvoiceSelect) -> Result<(BatchRow, bool)> {
    match app.channel.select(request).await {
        Ok(answer) => Ok((apply(app, actor, &answer).await?, false)),
        Err(e) if e.is_transient() => {
            tracing::warn!(batch_no, error = %e, "selection answer lost; deduct-poll settles it by its number");
            Ok((store::batch(&app.pool, batch_no).await?, true))
        }
        Err(e) => {
            let message = refusal_message(&e);
            let failed =
                Answer { state: SelectBatchState::Failed, message: message.clone(), results: Vec::new() };
            store::apply(&app.pool, batch_no, &failed, &actor.to_string()).await?;
            Err(refused(&e, message))
        }
    }
}

fn refusal_message(e: &ChannelError) -> String {
    match e {
        ChannelError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn refused(e: &ChannelError, message: String) -> Error {
    let code = match e.api_code() {
        Some(code::NO_PRESELECT_PERMISSION) => "NO_PRESELECT_PERMISSION",
        Some(code::STATE_CONFLICT) => "SELECT_STATE_CONFLICT",
        Some(code::NOT_FOUND) => "SELECT_BATCH_NOT_FOUND",
        _ => "SELECT_REFUSED",
    };
    Error::Refused { code, message }
}

async fn apply(app: &App, actor: &Actor, batch: &SelectBatch) -> Result<BatchRow> {
    let results = batch
        .results
        .iter()
        .map(|r| ItemResult {
            invoice_code: r.invoice_code.clone(),
            invoice_num: r.invoice_num.clone(),
            success: r.success,
            message: r.message.clone(),
        })
        .collect();
    let answer = Answer { state: batch.state, message: batch.message.clone(), results };
    Ok(store::apply(&app.pool, &batch.batch_no, &answer, &actor.to_string()).await?)
}

/// Our batch numbers: `SEL` + UTC time to the millisecond + 4 random digits.
fn new_batch_no() -> String {
    let now = chrono::Utc::now();
    format!("SEL{}{:04}", now.format("%Y%m%d%H%M%S%3f"), rand::random_range(0..10_000u32))
}

/// The period a selection for `tax_no` may use today.
pub async fn period_choice(app: &App, tax_no: &str, today: chrono::NaiveDate) -> Result<PeriodChoice> {
    let reported = match app.channel.select_period(tax_no).await {
        Ok(a) => a.period,
        // The channel cannot tell (or not now): the current month, editable (seed 004).
        Err(e) => {
            tracing::warn!(tax_no, error = %e, "tax period not reported; the current month is offered");
            None
        }
    };
    Ok(PeriodChoice::new(reported, today))
}

/// What a poll did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Polled {
    pub polled: usize,
    pub finished: usize,
    pub still_open: usize,
    /// Batches the bureau never got, sent again under their number.
    pub resent: usize,
}

/// Ask about every open batch; apply each answer.
pub async fn poll(app: &App, actor: &Actor) -> Result<Polled> {
    let open = store::batches(&app.pool, None, true, 10_000).await?;
    let mut report = Polled::default();
    for b in open {
        report.polled += 1;
        let answer = match app.channel.select_query(&b.batch_no).await {
            Ok(a) => a,
            // Never acknowledged and unknown to the bureau: the first call never arrived.
            Err(e) if e.api_code() == Some(code::NOT_FOUND) && !b.acknowledged => {
                report.resent += 1;
                let request = resend_request(app, &b).await?;
                match send(app, actor, &b.batch_no, &request).await {
                    Ok((row, _)) => {
                        count(&mut report, &row);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(batch_no = b.batch_no, error = %e, "selection batch refused when sent again");
                        report.finished += 1;
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(batch_no = b.batch_no, error = %e, "selection batch not polled; next run asks again");
                report.still_open += 1;
                continue;
            }
        };
        let row = apply(app, actor, &answer).await?;
        count(&mut report, &row);
    }
    Ok(report)
}

fn count(report: &mut Polled, row: &BatchRow) {
    if row.state.is_open() {
        report.still_open += 1;
    } else {
        report.finished += 1;
    }
}

async fn resend_request(app: &App, b: &BatchRow) -> Result<InvoiceSelect> {
    let invoices = store::batch_invoices(&app.pool, &b.batch_no)
        .await?
        .into_iter()
        .map(|(invoice_code, invoice_num)| SelectInvoice { invoice_code, invoice_num })
        .collect();
    Ok(InvoiceSelect {
        batch_no: b.batch_no.clone(),
        taxpayer_id: b.tax_no.clone(),
        period: TaxPeriod::parse(&b.period)
            .map_err(|e| Error::bad_input("TAX_PERIOD_INVALID", e.to_string()))?,
        action: b.action,
        sync: b.sync,
        invoices,
    })
}

/// 强制停止 a batch the bureau has not started; refused verbatim otherwise.
pub async fn stop(app: &App, actor: &Actor, batch_no: &str) -> Result<BatchRow> {
    let b = store::batch(&app.pool, batch_no).await?;
    if !b.state.is_open() {
        return Err(Error::Refused {
            code: "SELECT_STOP_REFUSED",
            message: format!("批次{batch_no}{}，不能停止", b.state.label_zh()),
        });
    }
    tracing::info!(actor = %actor, batch_no, "stopping a selection batch");
    match app.channel.select_stop(batch_no).await {
        Ok(answer) => apply(app, actor, &answer).await,
        Err(e) => {
            // Refused (it is being worked on, or finished): bring our copy up to date, then say why.
            if let Ok(answer) = app.channel.select_query(batch_no).await {
                apply(app, actor, &answer).await?;
            }
            let message = refusal_message(&e);
            Err(Error::Refused { code: "SELECT_STOP_REFUSED", message })
        }
    }
}

pub async fn batches(app: &App, tax_no: Option<&str>, open_only: bool, limit: i64) -> Result<Vec<BatchRow>> {
    Ok(store::batches(&app.pool, tax_no, open_only, limit).await?)
}

pub async fn status(app: &App, number: &str, tax_no: Option<&str>) -> Result<InvoiceSelection> {
    Ok(store::status(&app.pool, number, tax_no).await?)
}
