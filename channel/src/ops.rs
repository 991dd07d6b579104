//! The channel's operations, typed. Each says whether it is idempotent: only those are retried.

use std::time::Duration;

use chrono::NaiveDate;

use crate::client::ChannelClient;
use crate::codes::{IssueStatus, interface as i};
use crate::error::ChannelError;
use crate::wire::*;

impl ChannelClient {
    /// `ALLE.INVOICE.OPEN`. Not idempotent: a lost answer is settled with `query_issue`.
    pub async fn issue(&self, invoice: &OpenInvoice) -> Result<Accepted, ChannelError> {
        self.call(i::INVOICE_OPEN, invoice, false).await
    }

    /// `ALLE.INVOICE.QUERY`: the truth about one serial number.
    pub async fn query_issue(
        &self,
        serial_no: &str,
        seller_taxpayer_id: &str,
    ) -> Result<IssueResult, ChannelError> {
        let q = QueryBySerial { serial_no: serial_no.into(), seller_taxpayer_id: seller_taxpayer_id.into() };
        self.call(i::INVOICE_QUERY, &q, true).await
    }

    /// Query until the issue is final (开票成功 / 开票失败), polling every `every`, for at most `within`.
    pub async fn wait_final(
        &self,
        serial_no: &str,
        seller_taxpayer_id: &str,
        every: Duration,
        within: Duration,
    ) -> Result<IssueResult, ChannelError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let r = self.query_issue(serial_no, seller_taxpayer_id).await?;
            if r.issue_status != IssueStatus::Issuing || tokio::time::Instant::now() >= deadline {
                return Ok(r);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// `ALLE.BATCH.QUERY`, pageNo 0-based.
    pub async fn batch_query(
        &self,
        seller_taxpayer_id: &str,
        page_no: u32,
        page_size: u32,
    ) -> Result<Page<IssueResult>, ChannelError> {
        let q = BatchQuery { seller_taxpayer_id: seller_taxpayer_id.into(), page_no, page_size };
        self.call(i::BATCH_QUERY, &q, true).await
    }

    /// `ALLE.INVOICE.RED`. Not idempotent (it issues); settle with `query_issue`.
    pub async fn red_invoice(&self, red: &RedInvoice) -> Result<Accepted, ChannelError> {
        self.call(i::INVOICE_RED, red, false).await
    }

    /// Tax-control quick red-flush (full amount only). Not idempotent.
    pub async fn quick_red(&self, red: &QuickRed) -> Result<Accepted, ChannelError> {
        self.call(i::QUICK_RED, red, false).await
    }

    /// `REDCONFIRMBILL.APPLY`. Idempotent by `orderNo`: a repeat answers the existing form.
    pub async fn red_confirm_apply(&self, apply: &RedConfirmApply) -> Result<RedConfirmForm, ChannelError> {
        self.call(i::RED_CONFIRM_APPLY, apply, true).await
    }

    /// Our side confirms (`true`) or rejects a form the other side entered.
    pub async fn red_confirm_decide(
        &self,
        bill_uuid: &str,
        confirm: bool,
    ) -> Result<RedConfirmForm, ChannelError> {
        let d = RedConfirmDecision { bill_uuid: bill_uuid.into(), confirm };
        self.call(i::RED_CONFIRM_CONFIRM, &d, false).await
    }

    pub async fn red_confirm_revoke(&self, bill_uuid: &str) -> Result<RedConfirmForm, ChannelError> {
        self.call(i::RED_CONFIRM_REVOKE, &RedConfirmRef { bill_uuid: bill_uuid.into() }, false).await
    }

    pub async fn red_confirm_query(&self, bill_uuid: &str) -> Result<RedConfirmForm, ChannelError> {
        self.call(i::RED_CONFIRM_QUERY, &RedConfirmRef { bill_uuid: bill_uuid.into() }, true).await
    }

    /// Every form concerning `taxpayer_id` (as seller or buyer), paged.
    pub async fn red_confirm_download(
        &self,
        taxpayer_id: &str,
        page_no: u32,
        page_size: u32,
    ) -> Result<Page<RedConfirmForm>, ChannelError> {
        let d = RedConfirmDownload { taxpayer_id: taxpayer_id.into(), page_no, page_size };
        self.call(i::RED_CONFIRM_DOWNLOAD, &d, true).await
    }

    /// Red info sheet for a tax-control special invoice. Idempotent by `orderNo`.
    pub async fn red_info_apply(&self, apply: &RedInfoApply) -> Result<RedInfoSheet, ChannelError> {
        self.call(i::RED_INFO_APPLY, apply, true).await
    }

    /// 下载红字信息表: a seller's sheets, one page.
    pub async fn red_info_download(
        &self,
        taxpayer_id: &str,
        page_no: u32,
        page_size: u32,
    ) -> Result<Page<RedInfoListed>, ChannelError> {
        let d = RedInfoDownload { taxpayer_id: taxpayer_id.into(), page_no, page_size };
        self.call(i::RED_INFO_DOWNLOAD, &d, true).await
    }

    pub async fn red_info_query(&self, sheet_id: &str) -> Result<RedInfoSheet, ChannelError> {
        self.call(i::RED_INFO_QUERY, &RedInfoRef { sheet_id: sheet_id.into() }, true).await
    }

    pub async fn red_info_revoke(&self, sheet_id: &str) -> Result<RedInfoSheet, ChannelError> {
        self.call(i::RED_INFO_REVOKE, &RedInfoRef { sheet_id: sheet_id.into() }, false).await
    }

    /// Apply for a download. Not retried: a second apply on the same e-tax account while one
    /// runs logs the account out (seed 004), so the caller decides.
    pub async fn download_apply(&self, apply: &DownloadApply) -> Result<DownloadTask, ChannelError> {
        self.call(i::DOWNLOAD_APPLY, apply, false).await
    }

    pub async fn download_poll(&self, task_id: &str) -> Result<DownloadTask, ChannelError> {
        self.call(i::DOWNLOAD_POLL, &DownloadRef { task_id: task_id.into() }, true).await
    }

    pub async fn download_fetch(
        &self,
        task_id: &str,
        page_no: u32,
        page_size: u32,
    ) -> Result<Page<InvoiceHeader>, ChannelError> {
        let f = DownloadFetch { task_id: task_id.into(), page_no, page_size };
        self.call(i::DOWNLOAD_FETCH, &f, true).await
    }

    pub async fn verify(
        &self,
        invoice_code: &str,
        invoice_num: &str,
        invoice_date: NaiveDate,
        amount: fapiao_schemas::Money,
    ) -> Result<VerifiedInvoice, ChannelError> {
        let v = VerifyRequest {
            invoice_code: invoice_code.into(),
            invoice_num: invoice_num.into(),
            invoice_date,
            amount,
        };
        self.call(i::VERIFY, &v, true).await
    }

    pub async fn account_check(&self, taxpayer_id: &str) -> Result<AccountInfo, ChannelError> {
        self.call(i::ACCOUNT_CHECK, &AccountCheck { taxpayer_id: taxpayer_id.into() }, true).await
    }

    /// 交付: send an issued invoice to the buyer. Not re-sent after a lost answer (the buyer
    /// would get it twice); the caller reports it and the user decides.
    pub async fn deliver(&self, d: &Deliver) -> Result<Delivered, ChannelError> {
        self.call(i::INVOICE_DELIVER, d, false).await
    }

    /// 作废. Idempotent (the same invoice again answers its state), so retried like a query:
    /// a lost answer is settled by asking again.
    pub async fn void(&self, v: &VoidInvoice) -> Result<VoidState, ChannelError> {
        self.call(i::INVOICE_VOID, v, true).await
    }

    /// 勾选 / 取消勾选 (`invoiceSelect`). Idempotent by `batchNo` (ours, stored before the call):
    /// asking again answers the batch already made.
    pub async fn select(&self, s: &InvoiceSelect) -> Result<SelectBatch, ChannelError> {
        self.call(i::INVOICE_SELECT, s, true).await
    }

    pub async fn select_query(&self, batch_no: &str) -> Result<SelectBatch, ChannelError> {
        self.call(i::SELECT_QUERY, &SelectBatchRef { batch_no: batch_no.into() }, true).await
    }

    /// 强制停止: only a batch the bureau has not started; asking again answers its state.
    pub async fn select_stop(&self, batch_no: &str) -> Result<SelectBatch, ChannelError> {
        self.call(i::SELECT_STOP, &SelectBatchRef { batch_no: batch_no.into() }, true).await
    }

    /// The enterprise's tax period for selection, when the channel knows it.
    pub async fn select_period(&self, taxpayer_id: &str) -> Result<PeriodAnswer, ChannelError> {
        self.call(i::SELECT_PERIOD, &PeriodQuery { taxpayer_id: taxpayer_id.into() }, true).await
    }

    /// Where the file of an input invoice is (`RIM.INVOICE.FILE`), for its buyer.
    pub async fn input_file(&self, request: &InputFileRequest) -> Result<InputFile, ChannelError> {
        self.call(i::INPUT_FILE, request, true).await
    }
}
