//! The bureau's side of 抵扣类勾选 (deduction selection): the tax period it reports, which
//! invoices are selected for which period, and selection batches — answered at once when
//! synchronous, otherwise pending for one `select_delay`, then processing (the channel operating
//! the bureau) for another, then done with each invoice's result. Only a pending batch can be
//! stopped (seed 004).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fapiao_schemas::deduction::TaxPeriod;
use fapiao_schemas::{SelectAction, SelectBatchState};

use super::world::ApiError;
use crate::codes::error as code;
use crate::wire::{InvoiceHeader, InvoiceSelect, SelectBatch, SelectResult};

struct Batch {
    request: InvoiceSelect,
    at: Instant,
    stopped: bool,
    /// The channel began operating the bureau early (a test says so).
    begun: bool,
    results: Option<Vec<SelectResult>>,
}

#[derive(Default)]
pub struct Selections {
    /// Tax periods set by a test: `None` = the channel cannot tell. Others: the current month.
    periods: HashMap<String, Option<TaxPeriod>>,
    /// Tax numbers whose account has no 预勾选 permission.
    denied: HashSet<String>,
    /// (buyer tax number, invoice number) → the period it is selected for.
    selected: HashMap<(String, String), TaxPeriod>,
    batches: HashMap<String, Batch>,
}

fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { code, message: message.into() }
}

impl Selections {
    pub fn set_period(&mut self, tax_no: &str, period: Option<TaxPeriod>) {
        self.periods.insert(tax_no.to_string(), period);
    }

    pub fn deny(&mut self, tax_no: &str) {
        self.denied.insert(tax_no.to_string());
    }

    /// Selected elsewhere (on the e-tax website): the bureau holds it selected for `period`.
    pub fn mark_selected(&mut self, tax_no: &str, invoice_num: &str, period: TaxPeriod) {
        self.selected.insert((tax_no.to_string(), invoice_num.to_string()), period);
    }

    /// The period `invoice_num` of `tax_no` is selected for, if it is.
    pub fn selected(&self, tax_no: &str, invoice_num: &str) -> Option<TaxPeriod> {
        self.selected.get(&(tax_no.to_string(), invoice_num.to_string())).copied()
    }

    /// The channel begins operating the bureau for a pending batch now (it can no longer stop).
    pub fn begin(&mut self, batch_no: &str) {
        if let Some(b) = self.batches.get_mut(batch_no) {
            b.begun = true;
        }
    }

    pub fn period(&self, tax_no: &str) -> Option<TaxPeriod> {
        self.periods.get(tax_no).copied().unwrap_or_else(|| {
            Some(TaxPeriod::of(chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive()))
        })
    }

    pub fn select<'a>(
        &mut self,
        request: InvoiceSelect,
        now: Instant,
        delay: Duration,
        known: impl Fn(&str) -> Option<&'a InvoiceHeader>,
    ) -> Result<SelectBatch, ApiError> {
        if self.batches.contains_key(&request.batch_no) {
            return self.query(&request.batch_no, now, delay, known);
        }
        if self.denied.contains(&request.taxpayer_id) {
            return Err(err(
                code::NO_PRESELECT_PERMISSION,
                fapiao_schemas::messages::NO_PRESELECT_PERMISSION,
            ));
        }
        if let Some(p) = self.period(&request.taxpayer_id).filter(|p| *p != request.period) {
            return Err(err(
                code::STATE_CONFLICT,
                format!("税款所属期为{p}，与所选所属期{}不一致", request.period),
            ));
        }
        if request.invoices.is_empty() {
            return Err(err(code::BAD_REQUEST, "勾选发票不能为空"));
        }
        let batch_no = request.batch_no.clone();
        self.batches.insert(
            batch_no.clone(),
            Batch { request, at: now, stopped: false, begun: false, results: None },
        );
        self.query(&batch_no, now, delay, known)
    }

    pub fn query<'a>(
        &mut self,
        batch_no: &str,
        now: Instant,
        delay: Duration,
        known: impl Fn(&str) -> Option<&'a InvoiceHeader>,
    ) -> Result<SelectBatch, ApiError> {
        let batch = self
            .batches
            .get(batch_no)
            .ok_or_else(|| err(code::NOT_FOUND, format!("勾选批次{batch_no}不存在")))?;
        let delay = if batch.request.sync { Duration::ZERO } else { delay };
        let state = state_of(batch, now, delay);
        if state == SelectBatchState::Done && batch.results.is_none() {
            let results = self.decide(batch_no, &known);
            self.batches.get_mut(batch_no).expect("present").results = Some(results);
        }
        let batch = &self.batches[batch_no];
        Ok(SelectBatch {
            batch_no: batch_no.to_string(),
            state,
            message: String::new(),
            results: batch.results.clone().unwrap_or_default(),
        })
    }

    pub fn stop<'a>(
        &mut self,
        batch_no: &str,
        now: Instant,
        delay: Duration,
        known: impl Fn(&str) -> Option<&'a InvoiceHeader>,
    ) -> Result<SelectBatch, ApiError> {
        let current = self.query(batch_no, now, delay, known)?;
        match current.state {
            SelectBatchState::Pending => {
                self.batches.get_mut(batch_no).expect("present").stopped = true;
                Ok(SelectBatch { state: SelectBatchState::Stopped, message: "已停止".into(), ..current })
            }
            SelectBatchState::Stopped => Ok(current),
            other => Err(err(
                code::STATE_CONFLICT,
                format!(
                    "批次{batch_no}{}，不能停止：正在操作税局、已经成功完成、或明确失败终止的批次不能作废",
                    other.label_zh()
                ),
            )),
        }
    }

    /// Each invoice's result, applied to what is selected.
    fn decide<'a>(
        &mut self,
        batch_no: &str,
        known: &impl Fn(&str) -> Option<&'a InvoiceHeader>,
    ) -> Vec<SelectResult> {
        let request = self.batches[batch_no].request.clone();
        let tax_no = request.taxpayer_id.clone();
        request
            .invoices
            .iter()
            .map(|inv| {
                let outcome =
                    self.decide_one(&tax_no, &inv.invoice_num, request.period, request.action, known);
                SelectResult {
                    invoice_code: inv.invoice_code.clone(),
                    invoice_num: inv.invoice_num.clone(),
                    success: outcome.is_ok(),
                    message: outcome.err().unwrap_or_default(),
                }
            })
            .collect()
    }

    fn decide_one<'a>(
        &mut self,
        tax_no: &str,
        num: &str,
        period: TaxPeriod,
        action: SelectAction,
        known: &impl Fn(&str) -> Option<&'a InvoiceHeader>,
    ) -> Result<(), String> {
        let header = known(num).ok_or("查无此票")?;
        if header.buyer_taxpayer_id != tax_no {
            return Err("发票购方税号与勾选企业不一致".into());
        }
        if !matches!(header.status.as_str(), "normal" | "partially_red_flushed") {
            return Err(format!("发票状态为{}，不可勾选", header.status));
        }
        let key = (tax_no.to_string(), num.to_string());
        match (action, self.selected.get(&key).copied()) {
            (SelectAction::Select, Some(p)) => Err(format!("发票已于{p}勾选，不能重复勾选")),
            (SelectAction::Select, None) => {
                self.selected.insert(key, period);
                Ok(())
            }
            (SelectAction::Unselect, None) => Err("发票未勾选，无需取消勾选".into()),
            (SelectAction::Unselect, Some(p)) if p != period => {
                Err(format!("发票勾选所属期为{p}，与本次所属期{period}不一致"))
            }
            (SelectAction::Unselect, Some(_)) => {
                self.selected.remove(&key);
                Ok(())
            }
        }
    }
}

fn state_of(batch: &Batch, now: Instant, delay: Duration) -> SelectBatchState {
    if batch.stopped {
        SelectBatchState::Stopped
    } else if now < batch.at + delay && !batch.begun {
        SelectBatchState::Pending
    } else if now < batch.at + delay * 2 {
        SelectBatchState::Processing
    } else {
        SelectBatchState::Done
    }
}
