//! The JSON bodies inside the envelope's `data`, one struct per call, shared by the client and
//! the sandbox. Field names follow the public documentation where it exists (camelCase);
//! amounts are decimal strings ("113.00") so no side ever parses them as floats.

use chrono::NaiveDate;
use fapiao_schemas::InvoiceKind;
use fapiao_schemas::Money;
use fapiao_schemas::deduction::TaxPeriod;
use fapiao_schemas::{SelectAction, SelectBatchState};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One line of an invoice (`invoiceDetail[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLine {
    pub seq: u32,
    /// 0 normal, 1 discount line, 2 discounted line.
    pub line_property: u8,
    pub goods_name: String,
    /// 税收分类编码, 19 digits.
    pub revenue_code: String,
    #[serde(default)]
    pub specification: String,
    #[serde(default)]
    pub units: String,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub amount: Money,
    pub tax_rate: Decimal,
    pub tax_amount: Money,
    /// The line's preferential-policy marks (`privilegeFlag`, `privilegeContent`, `zeroRateFlag`).
    #[serde(flatten)]
    pub policy: LinePolicy,
}

/// 税收优惠政策标识, 优惠政策内容 and 零税率标识 of a line, as the body carries them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinePolicy {
    /// 1: the line uses a preferential policy; 0: not.
    #[serde(default)]
    pub privilege_flag: u8,
    /// 优惠政策内容 (增值税特殊管理), with `privilege_flag` 1.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub privilege_content: String,
    /// 零税率标识 0–3 (出口零税, 免税, 不征税, 普通零税率), on 0% lines only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_rate_flag: Option<String>,
}

impl LinePolicy {
    /// The marks as the shared rule reads them (an unknown zero-rate code reads as none, so the
    /// rule refuses a 0% line that has only that).
    pub fn marks(&self) -> fapiao_schemas::policy::PolicyMarks<'_> {
        fapiao_schemas::policy::PolicyMarks {
            privilege: self.privilege_flag == 1,
            content: Some(self.privilege_content.as_str()).filter(|c| !c.is_empty()),
            zero_rate: self.zero_rate_flag.as_deref().and_then(fapiao_schemas::policy::ZeroRateMark::parse),
        }
    }

    /// Our stored marks on the wire.
    pub fn of(
        privilege: bool,
        content: Option<String>,
        zero_rate: Option<fapiao_schemas::policy::ZeroRateMark>,
    ) -> LinePolicy {
        LinePolicy {
            privilege_flag: privilege as u8,
            privilege_content: content.unwrap_or_default(),
            zero_rate_flag: zero_rate.map(|m| m.wire().to_string()),
        }
    }
}

/// `ALLE.INVOICE.OPEN`: issue a blue invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInvoice {
    pub serial_no: String,
    /// Our invoice kind identifier (`digital_ordinary`, `taxctl_special`, …); the public
    /// `invoiceType` 01/02 covers 数电 only.
    pub invoice_kind: InvoiceKind,
    /// 0 blue, 1 red.
    pub invoice_property: u8,
    pub seller_name: String,
    pub seller_taxpayer_id: String,
    pub buyer_name: String,
    #[serde(default)]
    pub buyer_taxpayer_id: String,
    /// 销方地址电话 (sellerAddress+Tel; GBK ≤ 120 bytes); empty: the bureau's record.
    #[serde(default)]
    pub seller_address_and_tel: String,
    /// 销方开户行及账号 (sellerBank+Account; GBK ≤ 150 bytes); empty: the bureau's record.
    #[serde(default)]
    pub seller_bank_and_account: String,
    /// 开票人.
    #[serde(default)]
    pub drawer: String,
    /// 收款人.
    #[serde(default)]
    pub payee: String,
    /// 复核人.
    #[serde(default)]
    pub reviewer: String,
    #[serde(default)]
    pub remark: String,
    pub invoice_detail: Vec<InvoiceLine>,
}

/// `{serialNo}` accepted for issuing; the result is learned by query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub serial_no: String,
}

/// `ALLE.INVOICE.QUERY`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryBySerial {
    pub serial_no: String,
    pub seller_taxpayer_id: String,
}

/// The state of one issuing request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueResult {
    pub serial_no: String,
    pub issue_status: crate::codes::IssueStatus,
    #[serde(default)]
    pub issue_message: String,
    pub invoice_kind: InvoiceKind,
    pub invoice_property: u8,
    #[serde(default)]
    pub invoice_code: String,
    #[serde(default)]
    pub invoice_num: String,
    pub invoice_date: Option<NaiveDate>,
    pub total_amount: Money,
    pub total_tax: Money,
    #[serde(default)]
    pub invoice_file_url: String,
    #[serde(default)]
    pub ofd_file_url: String,
    #[serde(default)]
    pub xml_file_url: String,
    /// For a red invoice: the blue invoice's number.
    #[serde(default)]
    pub original_invoice_num: String,
}

/// `ALLE.BATCH.QUERY` (pageNo 0-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchQuery {
    pub seller_taxpayer_id: String,
    pub page_no: u32,
    pub page_size: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub page_no: u32,
    pub page_size: u32,
    pub total: u64,
    pub list: Vec<T>,
}

/// `ALLE.INVOICE.RED`: a red invoice against a blue one — 数电 through a confirmation form
/// (`govRedConfirmBillUuid`), tax-control special through a red info sheet (`redInfoBillNo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedInvoice {
    pub serial_no: String,
    pub seller_taxpayer_id: String,
    #[serde(default)]
    pub original_invoice_code: String,
    pub original_invoice_num: String,
    /// 01 开票有误, 02 销货退回, 03 服务中止, 04 销售折让.
    pub red_reason: String,
    /// Negative amounts.
    pub amount: Money,
    pub tax_amount: Money,
    #[serde(default)]
    pub gov_red_confirm_bill_uuid: String,
    #[serde(default)]
    pub red_info_bill_no: String,
    /// 开票人 (required on an invoice, red ones too), 收款人, 复核人.
    #[serde(default)]
    pub drawer: String,
    #[serde(default)]
    pub payee: String,
    #[serde(default)]
    pub reviewer: String,
}

/// `TAXCTL.INVOICE.QUICKRED` (ours): full red-flush of a tax-control ordinary invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickRed {
    pub serial_no: String,
    pub seller_taxpayer_id: String,
    pub invoice_code: String,
    pub invoice_num: String,
    pub red_reason: String,
}

/// `REDCONFIRMBILL.APPLY`: ask for a red confirmation form (红字确认单).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedConfirmApply {
    /// ≤ 50 characters, unique per seller: a re-sent apply answers the existing form.
    pub order_no: String,
    pub seller_taxpayer_id: String,
    pub invoice_num: String,
    pub red_reason: String,
    /// Negative amounts.
    pub amount: Money,
    pub tax_amount: Money,
}

/// A red confirmation form as the channel reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedConfirmForm {
    pub bill_uuid: String,
    pub bill_no: String,
    #[serde(default)]
    pub order_no: String,
    pub seller_taxpayer_id: String,
    pub buyer_taxpayer_id: String,
    pub invoice_num: String,
    pub red_reason: String,
    pub amount: Money,
    pub tax_amount: Money,
    /// 01–10 (SPEC.md "Channel protocol").
    pub confirm_state: String,
    /// Who entered it: `seller` or `buyer`.
    pub entered_by: String,
}

/// `REDCONFIRMBILL.CONFIRM` (ours): our side confirms or rejects a form the other side entered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedConfirmDecision {
    pub bill_uuid: String,
    pub confirm: bool,
}

/// `REDCONFIRMBILL.QUERY` / `REVOKE` (ours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedConfirmRef {
    pub bill_uuid: String,
}

/// `REDCONFIRMBILL.DOWNLOAD` (ours): the forms that concern a tax number, paged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedConfirmDownload {
    pub taxpayer_id: String,
    pub page_no: u32,
    pub page_size: u32,
}

/// `TAXCTL.REDINFO.APPLY` (ours): a red info sheet (红字信息表) for a tax-control special invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedInfoApply {
    pub order_no: String,
    pub seller_taxpayer_id: String,
    pub invoice_code: String,
    pub invoice_num: String,
    pub red_reason: String,
    pub amount: Money,
    pub tax_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedInfoSheet {
    pub sheet_id: String,
    #[serde(default)]
    pub order_no: String,
    /// `submitted`, `approved`, `rejected`, `revoked`.
    pub state: String,
    /// The 16-character number the bureau gives an approved sheet.
    #[serde(default)]
    pub red_info_bill_no: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedInfoRef {
    pub sheet_id: String,
}

/// `TAXCTL.REDINFO.DOWNLOAD` (ours; 下载红字信息表): the red info sheets of a seller, however
/// they were applied for (here, the buyer, the e-tax website), pageNo 0-based.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedInfoDownload {
    pub taxpayer_id: String,
    pub page_no: u32,
    pub page_size: u32,
}

/// A red info sheet as listed: the sheet and what it red-flushes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedInfoListed {
    #[serde(flatten)]
    pub sheet: RedInfoSheet,
    pub seller_taxpayer_id: String,
    pub invoice_num: String,
    pub red_reason: String,
    pub amount: Money,
    pub tax_amount: Money,
}

/// `RIM.DOWNLOAD.APPLY` (ours): download the input invoices of one tax number and day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadApply {
    pub taxpayer_id: String,
    pub etax_account: String,
    pub invoice_date: NaiveDate,
    /// `all` (进项发票) or `deduction` (抵扣类勾选数据: the same invoices with the period each is
    /// selected for; refused for small-scale taxpayers).
    pub scope: String,
    /// Small-scale taxpayers cannot download deduction data; the channel knows the enterprise.
    #[serde(default)]
    pub small_scale: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadTask {
    pub task_id: String,
    /// `processing`, `ready`, `failed`.
    pub state: String,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadRef {
    pub task_id: String,
}

/// `RIM.DOWNLOAD.FETCH` (ours): one page of a ready download (pageNo 0-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadFetch {
    pub task_id: String,
    pub page_no: u32,
    pub page_size: u32,
}

/// An invoice header as downloaded from the bureau (and the head of a verified invoice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceHeader {
    pub invoice_kind: InvoiceKind,
    #[serde(default)]
    pub invoice_code: String,
    pub invoice_num: String,
    pub invoice_date: NaiveDate,
    pub seller_name: String,
    pub seller_taxpayer_id: String,
    pub buyer_name: String,
    pub buyer_taxpayer_id: String,
    pub amount: Money,
    pub tax_amount: Money,
    pub total_amount: Money,
    #[serde(default)]
    pub check_code: String,
    /// `normal`, `void`, `red_flushed`, `partially_red_flushed`, `fully_red_flushed`, `abnormal`, `out_of_control`.
    pub status: String,
    /// 0 blue, 1 red.
    pub invoice_property: u8,
    pub blockchain: bool,
    /// 特定业务类型, e.g. 农产品收购; empty when none.
    #[serde(default)]
    pub special_business: String,
    /// With scope `deduction` (抵扣类勾选数据): the tax period the invoice is selected for at the
    /// bureau; absent when it is not selected (or the download was scope `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_period: Option<TaxPeriod>,
}

/// `RIM.INVOICE.VERIFY` (ours): full data of an invoice by its key fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    #[serde(default)]
    pub invoice_code: String,
    pub invoice_num: String,
    pub invoice_date: NaiveDate,
    /// 不含税金额 for special invoices / 价税合计 for 数电; either matches.
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedInvoice {
    pub header: InvoiceHeader,
    pub lines: Vec<VerifiedLine>,
}

impl InvoiceHeader {
    /// The invoice as the deductibility rule reads it, with `lines` (none: the header alone).
    pub fn deductibility(&self, lines: &[VerifiedLine]) -> fapiao_schemas::deductibility::Invoice {
        use fapiao_schemas::deductibility::{Invoice, InvoiceStatus, Line, SpecialBusiness};
        Invoice {
            kind: self.invoice_kind,
            is_blue: self.invoice_property == 0,
            is_blockchain: self.blockchain,
            status: InvoiceStatus::from_channel(&self.status),
            issue_date: self.invoice_date,
            special_business: SpecialBusiness::parse(&self.special_business),
            lines: lines
                .iter()
                .filter_map(|l| Line::of(&l.goods_name, l.tax_rate, &l.business_type))
                .collect(),
        }
    }
}

impl VerifiedInvoice {
    /// The deductibility rule on the verified header and lines: `None` when deductible, else
    /// the reason's code.
    pub fn not_deductible(&self) -> Option<&'static str> {
        use fapiao_schemas::Coded;
        fapiao_schemas::deductibility::assess(&self.header.deductibility(&self.lines)).err().map(|e| e.code())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedLine {
    pub goods_name: String,
    pub tax_rate: Decimal,
    pub amount: Money,
    pub tax_amount: Money,
    /// 业务类型, e.g. 退 for a refund line; empty when none.
    #[serde(default)]
    pub business_type: String,
}

/// `ALLE.ACCOUNT.CHECK`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCheck {
    pub taxpayer_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub taxpayer_id: String,
    /// 1 issue, 2 receive, 3 both, 4 none.
    pub etax_account_type: u8,
}

/// `ALLE.INVOICE.DELIVER` (ours; 交付): send an issued invoice to the buyer by e-mail or SMS.
/// Exactly one of `email` and `phone` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deliver {
    pub seller_taxpayer_id: String,
    pub invoice_num: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivered {
    pub invoice_num: String,
    /// `email` or `sms`.
    pub channel: String,
}

/// `ALLE.INVOICE.VOID` (ours; 作废): void an issued invoice. Idempotent: asking again about the
/// same invoice answers where the void stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoidInvoice {
    pub seller_taxpayer_id: String,
    #[serde(default)]
    pub invoice_code: String,
    pub invoice_num: String,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoidState {
    pub invoice_num: String,
    /// `voiding` (作废中) until the bureau has it, then `voided` (作废).
    pub void_state: String,
}

/// `invoiceSelect` (4.05, public name; body ours): 勾选 or 取消勾选 invoices for deduction in a
/// tax period. `batchNo` is ours, stored before the call: the same number again answers the
/// batch already made (no second selection), so a lost answer is settled by asking again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceSelect {
    pub batch_no: String,
    pub taxpayer_id: String,
    pub period: TaxPeriod,
    pub action: SelectAction,
    /// `true` (rpa_select_syn = 1): answered with each invoice's result; otherwise the batch is
    /// queued and answered `pending`.
    pub sync: bool,
    pub invoices: Vec<SelectInvoice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectInvoice {
    #[serde(default)]
    pub invoice_code: String,
    pub invoice_num: String,
}

/// A selection batch as the bureau has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectBatch {
    pub batch_no: String,
    pub state: SelectBatchState,
    #[serde(default)]
    pub message: String,
    /// Each invoice's result, once the batch is done (empty before).
    #[serde(default)]
    pub results: Vec<SelectResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectResult {
    #[serde(default)]
    pub invoice_code: String,
    pub invoice_num: String,
    pub success: bool,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectBatchRef {
    pub batch_no: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodQuery {
    pub taxpayer_id: String,
}

/// The enterprise's tax period for selection; absent when the channel cannot tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodAnswer {
    #[serde(default)]
    pub period: Option<TaxPeriod>,
}

/// `RIM.INVOICE.FILE` (ours): where the file of an input invoice is, for its buyer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFileRequest {
    #[serde(default)]
    pub invoice_code: String,
    pub invoice_num: String,
    /// The receiving enterprise (购方).
    pub taxpayer_id: String,
    /// `pdf`, `ofd` or `xml`.
    pub file_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFile {
    pub file_url: String,
}
