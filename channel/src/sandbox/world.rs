//! The sandbox's in-memory world: tokens, issued invoices, red confirmation forms, red info
//! sheets, downloads and the invoices the "tax bureau" holds. Every operation is a method that
//! takes `now`, so time-dependent behaviour (issuing takes time, downloads become ready) is
//! computed, not scheduled.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use fapiao_schemas::invoice_kind::RedFlushTrack;
use fapiao_schemas::{InvoiceKind, Money, TaxNo, TaxRate};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SandboxConfig;
use super::faults::{Dice, Fault};
use super::generate;
use super::selection::Selections;
use crate::codes::{IssueStatus, error as code, interface as i};
use crate::wire::*;

/// An error answer: `{success: false, errorCode, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { code, message: message.into() }
}

struct Issued {
    /// The final outcome, decided on acceptance and revealed at `ready_at`.
    result: IssueResult,
    ready_at: Instant,
    seller_taxpayer_id: String,
    buyer_name: String,
    buyer_taxpayer_id: String,
    lines: Vec<InvoiceLine>,
}

struct Sheet {
    sheet: RedInfoSheet,
    seller_taxpayer_id: String,
    invoice_num: String,
    red_reason: String,
    amount: Money,
    tax_amount: Money,
    approve_at: Instant,
    used: bool,
}

struct Download {
    task: DownloadApply,
    task_id: String,
    ready_at: Instant,
}

/// What the ERP endpoint received, and how it is told to behave.
#[derive(Default)]
pub struct Erp {
    pub received: Vec<serde_json::Value>,
    /// Answer this many callbacks with a failure before succeeding again.
    pub fail_next: u32,
}

/// The merchant of receipt codes: its orders, answered to GET.ORDER (3.1.02 查询订单).
#[derive(Default)]
pub struct Merchant {
    /// The `data` of each order's answer, by order number (billNo).
    pub orders: HashMap<String, serde_json::Value>,
    /// Order queries received (known or not).
    pub queries: u64,
}

pub struct World {
    pub config: SandboxConfig,
    pub dice: Dice,
    pub erp: Erp,
    pub merchant: Merchant,
    /// Calls received per interface code, refused ones included (token calls under their path).
    pub calls: BTreeMap<String, u64>,
    app_tokens: HashMap<String, Instant>,
    tokens: HashMap<String, Instant>,
    invoices: HashMap<String, Issued>,
    /// Invoices voided (作废), by number: when the bureau has it.
    voids: HashMap<String, Instant>,
    serial_by_number: HashMap<String, String>,
    forms: BTreeMap<String, RedConfirmForm>,
    used_forms: std::collections::HashSet<String>,
    sheets: BTreeMap<String, Sheet>,
    downloads: HashMap<String, Download>,
    verify_index: HashMap<String, VerifiedInvoice>,
    counter: u64,
    /// Every delivery (交付) accepted, in order.
    pub deliveries: Vec<Deliver>,
    /// The body of every blue invoice accepted for issuing, by serial: what the channel was told.
    opened: HashMap<String, OpenInvoice>,
    /// Every red invoice body accepted, by serial number.
    reds_opened: HashMap<String, RedInvoice>,
    /// 抵扣类勾选: periods, permissions, what is selected, batches.
    pub selection: Selections,
}

impl World {
    pub fn new(config: SandboxConfig) -> World {
        World {
            dice: Dice::new(config.faults.clone(), config.seed),
            config,
            erp: Erp::default(),
            merchant: Merchant::default(),
            calls: BTreeMap::new(),
            app_tokens: HashMap::new(),
            tokens: HashMap::new(),
            invoices: HashMap::new(),
            voids: HashMap::new(),
            serial_by_number: HashMap::new(),
            forms: BTreeMap::new(),
            used_forms: Default::default(),
            sheets: BTreeMap::new(),
            downloads: HashMap::new(),
            verify_index: HashMap::new(),
            deliveries: Vec::new(),
            opened: HashMap::new(),
            reds_opened: HashMap::new(),
            selection: Selections::default(),
            // Numbers continue across restarts (a database outlives a sandbox): start from the clock.
            counter: (Utc::now().timestamp_micros().unsigned_abs()) % 100_000_000_000_000,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// How many times `serial_no` was accepted for issuing (0 or 1: duplicates are refused).
    pub fn accepted(&self, serial_no: &str) -> usize {
        usize::from(self.invoices.contains_key(serial_no))
    }

    /// The channel's own ledger: the final result decided for `serial_no` (shown to queries
    /// once its issuing delay has passed).
    pub fn outcome(&self, serial_no: &str) -> Option<&IssueResult> {
        self.invoices.get(serial_no).map(|i| &i.result)
    }

    /// The `ALLE.INVOICE.OPEN` body accepted under `serial_no`, as received.
    pub fn opened(&self, serial_no: &str) -> Option<&OpenInvoice> {
        self.opened.get(serial_no)
    }

    /// The red invoice body accepted under `serial_no`, as received.
    pub fn red_opened(&self, serial_no: &str) -> Option<&RedInvoice> {
        self.reds_opened.get(serial_no)
    }

    /// Every serial number the channel accepted for issuing.
    pub fn serials(&self) -> Vec<String> {
        self.invoices.keys().cloned().collect()
    }

    pub fn issued_count(&self) -> usize {
        self.invoices.len()
    }

    // ---- tokens ----

    pub fn app_token(
        &mut self,
        app_id: &str,
        app_secret: &str,
        now: Instant,
    ) -> Result<(String, Duration), ApiError> {
        if app_id != self.config.app_id || app_secret != self.config.app_secret {
            return Err(err(code::CREDENTIALS_REJECTED, "appId或appSecret错误"));
        }
        let token = format!("app-{:016x}", self.next_id() ^ self.config.seed.rotate_left(17));
        let ttl = Duration::from_secs(7200);
        self.app_tokens.insert(token.clone(), now + ttl);
        Ok((token, ttl))
    }

    pub fn login(
        &mut self,
        app_token: &str,
        user: &str,
        now: Instant,
    ) -> Result<(String, Duration), ApiError> {
        if self.app_tokens.get(app_token).is_none_or(|exp| *exp <= now) || user.is_empty() {
            return Err(err(code::CREDENTIALS_REJECTED, "apptoken无效或用户不存在"));
        }
        let token = format!("acc-{:016x}", self.next_id().wrapping_mul(0x9e3779b97f4a7c15));
        self.tokens.insert(token.clone(), now + self.config.token_ttl);
        Ok((token, self.config.token_ttl))
    }

    /// Forget every access token, as if all had expired early.
    pub fn expire_all_tokens(&mut self) {
        self.tokens.clear();
    }

    /// Check the caller's token; the `expire` fault expires it on the spot.
    pub fn authorize(&mut self, token: Option<&str>, op: &str, now: Instant) -> Result<(), ApiError> {
        let refused = || err(code::TOKEN_INVALID, "access_token无效或已过期");
        let token = token.ok_or_else(refused)?;
        match self.tokens.get(token) {
            Some(exp) if *exp > now => {}
            _ => return Err(refused()),
        }
        if self.dice.roll(Fault::Expire, op) {
            self.tokens.remove(token);
            return Err(refused());
        }
        Ok(())
    }

    // ---- dispatch ----

    /// Run one business call: decode its body, act, encode the answer.
    pub fn dispatch(&mut self, op: &str, body: &str, now: Instant) -> Result<String, ApiError> {
        match op {
            i::INVOICE_OPEN => answer(self.open(parse(body)?, now)),
            i::INVOICE_QUERY => answer(self.query(parse(body)?, now)),
            i::BATCH_QUERY => answer(self.batch_query(parse(body)?, now)),
            i::INVOICE_RED => answer(self.red(parse(body)?, now)),
            i::QUICK_RED => answer(self.quick_red(parse(body)?, now)),
            i::RED_CONFIRM_APPLY => answer(self.form_apply(parse(body)?)),
            i::RED_CONFIRM_CONFIRM => answer(self.form_decide(parse(body)?)),
            i::RED_CONFIRM_REVOKE => answer(self.form_revoke(parse(body)?)),
            i::RED_CONFIRM_QUERY => answer(self.form(&parse::<RedConfirmRef>(body)?.bill_uuid)),
            i::RED_CONFIRM_DOWNLOAD => answer(self.form_download(parse(body)?)),
            i::RED_INFO_APPLY => answer(self.sheet_apply(parse(body)?, now)),
            i::RED_INFO_QUERY => answer(self.sheet(&parse::<RedInfoRef>(body)?.sheet_id, now)),
            i::RED_INFO_REVOKE => answer(self.sheet_revoke(parse(body)?, now)),
            i::RED_INFO_DOWNLOAD => answer(self.sheet_download(parse(body)?, now)),
            i::DOWNLOAD_APPLY => answer(self.download_apply(parse(body)?, now)),
            i::DOWNLOAD_POLL => answer(self.download_poll(parse(body)?, now)),
            i::DOWNLOAD_FETCH => answer(self.download_fetch(parse(body)?, now)),
            i::VERIFY => answer(self.verify(parse(body)?)),
            i::INPUT_FILE => answer(self.input_file(parse(body)?)),
            i::ACCOUNT_CHECK => answer(self.account_check(parse(body)?)),
            i::INVOICE_DELIVER => answer(self.deliver(parse(body)?)),
            i::INVOICE_VOID => answer(self.void(parse(body)?, now)),
            i::INVOICE_SELECT => answer(self.select(parse(body)?, now)),
            i::SELECT_QUERY => answer(self.select_query(parse(body)?, now)),
            i::SELECT_STOP => answer(self.select_stop(parse(body)?, now)),
            i::SELECT_PERIOD => answer(Ok(PeriodAnswer {
                period: self.selection.period(&parse::<PeriodQuery>(body)?.taxpayer_id),
            })),
            other => Err(err(code::BAD_REQUEST, format!("未知的接口编码：{other}"))),
        }
    }

    // ---- issued invoices: files and delivery ----

    /// An issued invoice's file in `format` (pdf, ofd, xml): made up, but the right kind of file
    /// and naming its invoice, so a download can be checked. `None` for an unknown invoice.
    pub fn file(&self, invoice_num: &str, format: &str) -> Option<Vec<u8>> {
        // An issued invoice, or an input invoice the bureau holds.
        let total = match self.serial_by_number.get(invoice_num) {
            Some(serial) => self.invoices.get(serial)?.result.total_amount,
            None => self.verify_index.get(invoice_num)?.header.total_amount,
        };
        Some(match format {
            "pdf" => format!("%PDF-1.4\n% sandbox invoice {invoice_num}, total {total}\n%%EOF\n").into_bytes(),
            "ofd" => format!("PK OFD sandbox invoice {invoice_num}, total {total}").into_bytes(),
            "xml" => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Invoice><InvoiceNum>{invoice_num}</InvoiceNum><Total>{total}</Total></Invoice>"
            )
            .into_bytes(),
            _ => return None,
        })
    }

    fn deliver(&mut self, req: Deliver) -> Result<Delivered, ApiError> {
        let serial =
            self.serial_by_number.get(&req.invoice_num).ok_or_else(|| err(code::NOT_FOUND, "发票不存在"))?;
        let issued = &self.invoices[serial];
        if issued.seller_taxpayer_id != req.seller_taxpayer_id {
            return Err(err(code::NOT_FOUND, "发票不存在"));
        }
        let channel = match (req.email.trim(), req.phone.trim()) {
            (email, "") if email.contains('@') && !email.starts_with('@') && !email.ends_with('@') => "email",
            ("", phone)
                if phone.len() == 11
                    && phone.starts_with('1')
                    && phone.bytes().all(|b| b.is_ascii_digit()) =>
            {
                "sms"
            }
            ("", "") => return Err(err(code::BAD_REQUEST, "请填写邮箱或手机号码")),
            (_, "") => return Err(err(code::BAD_REQUEST, "邮箱格式不正确")),
            ("", _) => return Err(err(code::BAD_REQUEST, "手机号码格式不正确")),
            _ => return Err(err(code::BAD_REQUEST, "邮箱和手机号码只能填写一个")),
        };
        self.deliveries.push(req.clone());
        Ok(Delivered { invoice_num: req.invoice_num, channel: channel.into() })
    }

    /// 作废: paper tax-control invoices of this month (Asia/Shanghai) with no red invoice; the
    /// bureau takes `issue_delay` (作废中), then it is void. Asking again answers the state.
    fn void(&mut self, req: VoidInvoice, now: Instant) -> Result<VoidState, ApiError> {
        let not_found = || err(code::NOT_FOUND, format!("发票{}不存在", req.invoice_num));
        let serial = self.serial_by_number.get(&req.invoice_num).ok_or_else(not_found)?;
        let issued = &self.invoices[serial];
        if issued.seller_taxpayer_id != req.seller_taxpayer_id
            || (!req.invoice_code.is_empty() && issued.result.invoice_code != req.invoice_code)
            || issued.result.issue_status != IssueStatus::Succeeded
        {
            return Err(not_found());
        }
        if let Some(at) = self.voids.get(&req.invoice_num) {
            let state = if now >= *at { "voided" } else { "voiding" };
            return Ok(VoidState { invoice_num: req.invoice_num, void_state: state.into() });
        }
        let r = &issued.result;
        if r.invoice_property != 0 || !r.invoice_kind.is_voidable() {
            return Err(err(code::BAD_REQUEST, "数电发票、电子发票及红字发票不能作废，请开具红字发票"));
        }
        let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
        if r.invoice_date.is_none_or(|d| (d.year(), d.month()) != (today.year(), today.month())) {
            return Err(err(code::STATE_CONFLICT, "跨月发票不能作废，请开具红字发票"));
        }
        let reds = self.invoices.values().any(|x| {
            x.result.original_invoice_num == req.invoice_num && x.result.issue_status != IssueStatus::Failed
        });
        if reds {
            return Err(err(code::STATE_CONFLICT, "已开具红字发票的发票不能作废"));
        }
        self.voids.insert(req.invoice_num.clone(), now + self.config.issue_delay);
        Ok(VoidState { invoice_num: req.invoice_num, void_state: "voiding".into() })
    }

    /// Whether an invoice was voided (作废 accepted).
    pub fn voided(&self, invoice_num: &str) -> bool {
        self.voids.contains_key(invoice_num)
    }

    // ---- issuing ----

    fn open(&mut self, req: OpenInvoice, now: Instant) -> Result<Accepted, ApiError> {
        if self.invoices.contains_key(&req.serial_no) {
            return Err(err(code::DUPLICATE_SERIAL, format!("流水号{}已存在，请勿重复提交", req.serial_no)));
        }
        let kind = req.invoice_kind;
        TaxNo::parse(&req.seller_taxpayer_id)
            .map_err(|e| err(code::BAD_REQUEST, format!("销方税号无效：{e}")))?;
        if req.invoice_detail.is_empty() || req.serial_no.is_empty() || req.serial_no.len() > 50 {
            return Err(err(code::BAD_REQUEST, "serialNo须为1-50个字符，且发票明细不能为空"));
        }
        let amount: Money = req.invoice_detail.iter().map(|l| l.amount).sum();
        let tax: Money = req.invoice_detail.iter().map(|l| l.tax_amount).sum();
        let failure = self.issue_failure(kind, &req.buyer_taxpayer_id, &req.invoice_detail, i::INVOICE_OPEN);
        let serial = req.serial_no.clone();
        self.opened.insert(serial.clone(), req.clone());
        self.record_issue(
            serial.clone(),
            kind,
            0,
            &req.seller_taxpayer_id,
            &req.buyer_name,
            &req.buyer_taxpayer_id,
            req.invoice_detail,
            amount,
            tax,
            String::new(),
            failure,
            now,
        );
        Ok(Accepted { serial_no: serial })
    }

    /// Why the bureau would refuse this invoice, if it would (decided now, revealed later).
    fn issue_failure(
        &mut self,
        kind: InvoiceKind,
        buyer_id: &str,
        lines: &[InvoiceLine],
        op: &str,
    ) -> Option<String> {
        if self.dice.roll(Fault::Repairing, op) {
            let after = chrono::Duration::from_std(self.config.repair_after).unwrap_or_default();
            let at = (Utc::now() + after).with_timezone(&chrono_tz::Asia::Shanghai);
            return Some(format!(
                "局端内部错误，该开票请求修复中，请{}后再试！",
                at.format("%Y-%m-%d %H:%M")
            ));
        }
        if kind.is_special() && buyer_id.trim().is_empty() {
            return Some("开具专用发票时购买方纳税人识别号不能为空".into());
        }
        if !buyer_id.trim().is_empty() && TaxNo::parse(buyer_id).is_err() {
            return Some(format!("购买方纳税人识别号{buyer_id}校验不通过"));
        }
        for line in lines {
            let Ok(rate) = TaxRate::try_from(line.tax_rate) else {
                return Some(format!("第{}行税率{}不合法", line.seq, line.tax_rate));
            };
            if let Err(e) = fapiao_schemas::tax::check_line_tax(line.amount, rate, line.tax_amount) {
                use fapiao_schemas::Coded;
                return Some(format!("第{}行：{}", line.seq, e.message_zh()));
            }
            if let Some((_, _, message)) = fapiao_schemas::policy::check(rate, line.policy.marks()).first() {
                return Some(format!("第{}行：{message}", line.seq));
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn record_issue(
        &mut self,
        serial: String,
        kind: InvoiceKind,
        property: u8,
        seller: &str,
        buyer_name: &str,
        buyer_id: &str,
        lines: Vec<InvoiceLine>,
        amount: Money,
        tax: Money,
        original: String,
        failure: Option<String>,
        now: Instant,
    ) {
        let n = self.next_id();
        let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
        let (status, message, invoice_code, invoice_num) = match failure {
            Some(m) => (IssueStatus::Failed, m, String::new(), String::new()),
            None if kind.is_digital() => (
                IssueStatus::Succeeded,
                String::new(),
                String::new(),
                format!("{:02}311{n:015}", today.year() % 100),
            ),
            None => (
                IssueStatus::Succeeded,
                String::new(),
                format!("0310{:02}{:06}", today.year() % 100, (n / 100_000_000) % 1_000_000),
                format!("{:08}", n % 100_000_000),
            ),
        };
        let succeeded = status == IssueStatus::Succeeded;
        let file = |ext: &str| {
            if succeeded {
                format!("{}/files/{invoice_num}.{ext}", self.config.public_url)
            } else {
                String::new()
            }
        };
        let result = IssueResult {
            serial_no: serial.clone(),
            issue_status: status,
            issue_message: message,
            invoice_kind: kind,
            invoice_property: property,
            invoice_code,
            invoice_num: invoice_num.clone(),
            invoice_date: succeeded.then_some(today),
            total_amount: amount + tax,
            total_tax: tax,
            invoice_file_url: file("pdf"),
            ofd_file_url: file("ofd"),
            xml_file_url: file("xml"),
            original_invoice_num: original,
        };
        if succeeded {
            self.serial_by_number.insert(invoice_num, serial.clone());
        }
        let issued = Issued {
            result,
            ready_at: now + self.config.issue_delay,
            seller_taxpayer_id: seller.into(),
            buyer_name: buyer_name.into(),
            buyer_taxpayer_id: buyer_id.into(),
            lines,
        };
        self.invoices.insert(serial, issued);
    }

    fn view(issued: &Issued, now: Instant) -> IssueResult {
        if now >= issued.ready_at {
            return issued.result.clone();
        }
        IssueResult {
            issue_status: IssueStatus::Issuing,
            issue_message: "开票中".into(),
            invoice_code: String::new(),
            invoice_num: String::new(),
            invoice_date: None,
            invoice_file_url: String::new(),
            ofd_file_url: String::new(),
            xml_file_url: String::new(),
            ..issued.result.clone()
        }
    }

    fn query(&mut self, q: QueryBySerial, now: Instant) -> Result<IssueResult, ApiError> {
        match self.invoices.get(&q.serial_no) {
            Some(issued) if issued.seller_taxpayer_id == q.seller_taxpayer_id => Ok(Self::view(issued, now)),
            _ => Err(err(code::NOT_FOUND, format!("流水号{}不存在", q.serial_no))),
        }
    }

    fn batch_query(&mut self, q: BatchQuery, now: Instant) -> Result<Page<IssueResult>, ApiError> {
        let mut mine: Vec<&Issued> =
            self.invoices.values().filter(|v| v.seller_taxpayer_id == q.seller_taxpayer_id).collect();
        mine.sort_by(|a, b| a.result.serial_no.cmp(&b.result.serial_no));
        Ok(page(mine.into_iter().map(|v| Self::view(v, now)).collect(), q.page_no, q.page_size))
    }

    /// A succeeded blue invoice of `seller` by number, with what is left to red-flush.
    fn blue(&self, seller: &str, invoice_num: &str, now: Instant) -> Result<(&Issued, Money), ApiError> {
        let blue = self
            .serial_by_number
            .get(invoice_num)
            .and_then(|s| self.invoices.get(s))
            .filter(|b| b.seller_taxpayer_id == seller && b.result.invoice_property == 0 && now >= b.ready_at)
            .ok_or_else(|| err(code::NOT_FOUND, format!("蓝字发票{invoice_num}不存在")))?;
        if self.voids.contains_key(invoice_num) {
            return Err(err(code::STATE_CONFLICT, format!("发票{invoice_num}已作废，不能红冲")));
        }
        let red: Money = self
            .invoices
            .values()
            .filter(|r| {
                r.result.original_invoice_num == invoice_num && r.result.issue_status != IssueStatus::Failed
            })
            .map(|r| r.result.total_amount.abs())
            .sum();
        Ok((blue, blue.result.total_amount.abs() - red))
    }

    fn red(&mut self, req: RedInvoice, now: Instant) -> Result<Accepted, ApiError> {
        if self.invoices.contains_key(&req.serial_no) {
            return Err(err(code::DUPLICATE_SERIAL, format!("流水号{}已存在，请勿重复提交", req.serial_no)));
        }
        let (blue, remaining) = self.blue(&req.seller_taxpayer_id, &req.original_invoice_num, now)?;
        let total = req.amount + req.tax_amount;
        if !total.is_negative() || total.abs() > remaining {
            return Err(err(
                code::STATE_CONFLICT,
                format!("红冲金额{}超过剩余可红冲金额{remaining}", total.abs()),
            ));
        }
        let kind = blue.result.invoice_kind;
        let (buyer_name, buyer_id) = (blue.buyer_name.clone(), blue.buyer_taxpayer_id.clone());
        match kind.red_flush_track() {
            RedFlushTrack::ConfirmationForm => {
                let form = self
                    .forms
                    .get(&req.gov_red_confirm_bill_uuid)
                    .filter(|f| {
                        f.invoice_num == req.original_invoice_num
                            && matches!(f.confirm_state.as_str(), "01" | "04")
                    })
                    .filter(|f| f.amount == req.amount && f.tax_amount == req.tax_amount)
                    .ok_or_else(|| {
                        err(code::STATE_CONFLICT, "红字确认单不存在、金额不符或状态不允许开具红字发票")
                    })?;
                if self.used_forms.contains(&form.bill_uuid) {
                    return Err(err(code::STATE_CONFLICT, "该红字确认单已开具红字发票"));
                }
            }
            RedFlushTrack::RedInfoSheet => {
                self.sheets
                    .values()
                    .find(|s| {
                        s.sheet.red_info_bill_no == req.red_info_bill_no && !req.red_info_bill_no.is_empty()
                    })
                    .filter(|s| {
                        s.invoice_num == req.original_invoice_num && s.sheet.state == "approved" && !s.used
                    })
                    .ok_or_else(|| err(code::STATE_CONFLICT, "红字信息表不存在、未审核通过或已使用"))?;
            }
            RedFlushTrack::Direct => {}
        }
        let line = InvoiceLine {
            seq: 1,
            line_property: 0,
            goods_name: "红冲".into(),
            revenue_code: String::new(),
            specification: String::new(),
            units: String::new(),
            quantity: None,
            price: None,
            amount: req.amount,
            tax_rate: rust_decimal::Decimal::ZERO,
            tax_amount: req.tax_amount,
            policy: Default::default(),
        };
        let failure = self.issue_failure(kind, &buyer_id, &[], i::INVOICE_RED);
        // A form or sheet is used up by the red invoice issued on it, not by one that failed.
        if failure.is_none() {
            match kind.red_flush_track() {
                RedFlushTrack::ConfirmationForm => {
                    self.used_forms.insert(req.gov_red_confirm_bill_uuid.clone());
                }
                RedFlushTrack::RedInfoSheet => {
                    if let Some(s) =
                        self.sheets.values_mut().find(|s| s.sheet.red_info_bill_no == req.red_info_bill_no)
                    {
                        s.used = true;
                    }
                }
                RedFlushTrack::Direct => {}
            }
        }
        let serial = req.serial_no.clone();
        let seller = req.seller_taxpayer_id.clone();
        self.reds_opened.insert(serial.clone(), req.clone());
        self.record_issue(
            serial.clone(),
            kind,
            1,
            &seller,
            &buyer_name,
            &buyer_id,
            vec![line],
            req.amount,
            req.tax_amount,
            req.original_invoice_num,
            failure,
            now,
        );
        Ok(Accepted { serial_no: serial })
    }

    fn quick_red(&mut self, req: QuickRed, now: Instant) -> Result<Accepted, ApiError> {
        let (blue, remaining) = self.blue(&req.seller_taxpayer_id, &req.invoice_num, now)?;
        let kind = blue.result.invoice_kind;
        if kind.red_flush_track() != RedFlushTrack::Direct {
            return Err(err(code::BAD_REQUEST, "快速红冲仅适用于税控普通发票"));
        }
        if remaining != blue.result.total_amount.abs() {
            return Err(err(code::STATE_CONFLICT, "快速红冲仅支持全额红冲，该发票已部分红冲"));
        }
        let tax = -blue.result.total_tax;
        let amount = -(blue.result.total_amount - blue.result.total_tax);
        let red = RedInvoice {
            serial_no: req.serial_no,
            seller_taxpayer_id: req.seller_taxpayer_id,
            original_invoice_code: req.invoice_code,
            original_invoice_num: req.invoice_num,
            red_reason: req.red_reason,
            amount,
            tax_amount: tax,
            gov_red_confirm_bill_uuid: String::new(),
            red_info_bill_no: String::new(),
            drawer: String::new(),
            payee: String::new(),
            reviewer: String::new(),
        };
        self.red(red, now)
    }

    // ---- red confirmation forms (数电) ----

    fn form_apply(&mut self, req: RedConfirmApply) -> Result<RedConfirmForm, ApiError> {
        if let Some(existing) = self
            .forms
            .values()
            .find(|f| f.order_no == req.order_no && f.seller_taxpayer_id == req.seller_taxpayer_id)
        {
            return Ok(existing.clone());
        }
        let now = Instant::now();
        let (blue, remaining) = self.blue(&req.seller_taxpayer_id, &req.invoice_num, now)?;
        let kind = blue.result.invoice_kind;
        if !kind.is_digital() {
            return Err(err(code::BAD_REQUEST, "红字确认单仅适用于数电发票"));
        }
        if !matches!(req.red_reason.as_str(), "01" | "02" | "03" | "04") {
            return Err(err(code::BAD_REQUEST, "冲红原因须为01-04"));
        }
        let total = req.amount + req.tax_amount;
        if !total.is_negative() || total.abs() > remaining {
            return Err(err(
                code::STATE_CONFLICT,
                format!("红冲金额{}超过剩余可红冲金额{remaining}", total.abs()),
            ));
        }
        if req.red_reason == "01" && total.abs() != blue.result.total_amount.abs() {
            return Err(err(code::BAD_REQUEST, "冲红原因为开票有误时只能全额红冲"));
        }
        // A special invoice may have been deducted by the buyer, who must confirm (02);
        // an ordinary invoice needs no confirmation (01).
        let state = if kind == InvoiceKind::DigitalSpecial { "02" } else { "01" };
        let buyer = blue.buyer_taxpayer_id.clone();
        let form = self.new_form(
            req.order_no,
            req.seller_taxpayer_id,
            buyer,
            req.invoice_num,
            req.red_reason,
            req.amount,
            req.tax_amount,
            state,
            "seller",
        );
        Ok(form)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_form(
        &mut self,
        order_no: String,
        seller: String,
        buyer: String,
        invoice_num: String,
        red_reason: String,
        amount: Money,
        tax_amount: Money,
        state: &str,
        entered_by: &str,
    ) -> RedConfirmForm {
        let n = self.next_id();
        let form = RedConfirmForm {
            bill_uuid: format!("{:016x}{:016x}", self.config.seed, n),
            bill_no: format!("{:02}31{:016}", Utc::now().year() % 100, n),
            order_no,
            seller_taxpayer_id: seller,
            buyer_taxpayer_id: buyer,
            invoice_num,
            red_reason,
            amount,
            tax_amount,
            confirm_state: state.into(),
            entered_by: entered_by.into(),
        };
        self.forms.insert(form.bill_uuid.clone(), form.clone());
        form
    }

    fn form(&self, uuid: &str) -> Result<RedConfirmForm, ApiError> {
        self.forms.get(uuid).cloned().ok_or_else(|| err(code::NOT_FOUND, format!("红字确认单{uuid}不存在")))
    }

    fn set_form_state(&mut self, uuid: &str, from: &[&str], to: &str) -> Result<RedConfirmForm, ApiError> {
        let form = self
            .forms
            .get_mut(uuid)
            .ok_or_else(|| err(code::NOT_FOUND, format!("红字确认单{uuid}不存在")))?;
        if !from.contains(&form.confirm_state.as_str()) {
            return Err(err(
                code::STATE_CONFLICT,
                format!("红字确认单状态为{}，不能变更为{to}", form.confirm_state),
            ));
        }
        form.confirm_state = to.into();
        Ok(form.clone())
    }

    /// Our side decides on a form the buyer entered (03): confirm → 04, reject → 06.
    fn form_decide(&mut self, req: RedConfirmDecision) -> Result<RedConfirmForm, ApiError> {
        let form = self.form(&req.bill_uuid)?;
        if form.entered_by != "buyer" {
            return Err(err(code::STATE_CONFLICT, "只能确认对方录入的红字确认单"));
        }
        self.set_form_state(&req.bill_uuid, &["03"], if req.confirm { "04" } else { "06" })
    }

    fn form_revoke(&mut self, req: RedConfirmRef) -> Result<RedConfirmForm, ApiError> {
        if self.used_forms.contains(&req.bill_uuid) {
            return Err(err(code::STATE_CONFLICT, "已开具红字发票的确认单不能撤销"));
        }
        match self.form(&req.bill_uuid)?.confirm_state.as_str() {
            "04" => self.set_form_state(&req.bill_uuid, &["04"], "09"),
            _ => self.set_form_state(&req.bill_uuid, &["02", "03"], "08"),
        }
    }

    fn form_download(&self, req: RedConfirmDownload) -> Result<Page<RedConfirmForm>, ApiError> {
        let id = &req.taxpayer_id;
        let forms: Vec<_> = self
            .forms
            .values()
            .filter(|f| &f.seller_taxpayer_id == id || &f.buyer_taxpayer_id == id)
            .cloned()
            .collect();
        Ok(page(forms, req.page_no, req.page_size))
    }

    /// The counterparty (played by the sandbox) acts on a form: `confirm`, `reject`, `expire`.
    pub fn counterparty(&mut self, uuid: &str, action: &str) -> Result<RedConfirmForm, ApiError> {
        match action {
            "confirm" => self.set_form_state(uuid, &["02"], "04"),
            "reject" => self.set_form_state(uuid, &["02"], "05"),
            "expire" => self.set_form_state(uuid, &["02", "03"], "07"),
            other => Err(err(code::BAD_REQUEST, format!("unknown action {other}"))),
        }
    }

    /// The buyer enters a form against one of our invoices (state 03, we must confirm).
    pub fn inbound_form(
        &mut self,
        invoice_num: &str,
        amount: Money,
        tax_amount: Money,
        red_reason: &str,
    ) -> Result<RedConfirmForm, ApiError> {
        let serial =
            self.serial_by_number.get(invoice_num).ok_or_else(|| err(code::NOT_FOUND, "蓝字发票不存在"))?;
        let blue = &self.invoices[serial];
        let (seller, buyer) = (blue.seller_taxpayer_id.clone(), blue.buyer_taxpayer_id.clone());
        Ok(self.new_form(
            String::new(),
            seller,
            buyer,
            invoice_num.into(),
            red_reason.into(),
            amount,
            tax_amount,
            "03",
            "buyer",
        ))
    }

    // ---- red info sheets (税控专票) ----

    fn sheet_apply(&mut self, req: RedInfoApply, now: Instant) -> Result<RedInfoSheet, ApiError> {
        if let Some(s) = self
            .sheets
            .values()
            .find(|s| s.sheet.order_no == req.order_no && s.seller_taxpayer_id == req.seller_taxpayer_id)
        {
            return Ok(s.sheet.clone());
        }
        let (blue, remaining) = self.blue(&req.seller_taxpayer_id, &req.invoice_num, now)?;
        if blue.result.invoice_kind.red_flush_track() != RedFlushTrack::RedInfoSheet {
            return Err(err(code::BAD_REQUEST, "红字信息表仅适用于税控专用发票"));
        }
        let total = req.amount + req.tax_amount;
        if !total.is_negative() || total.abs() > remaining {
            return Err(err(
                code::STATE_CONFLICT,
                format!("红冲金额{}超过剩余可红冲金额{remaining}", total.abs()),
            ));
        }
        let id = format!("RIS{:012}", self.next_id());
        let sheet = RedInfoSheet {
            sheet_id: id.clone(),
            order_no: req.order_no,
            state: "submitted".into(),
            red_info_bill_no: String::new(),
            message: String::new(),
        };
        let approve_at = now + self.config.red_info_delay;
        self.sheets.insert(
            id,
            Sheet {
                sheet: sheet.clone(),
                seller_taxpayer_id: req.seller_taxpayer_id,
                invoice_num: req.invoice_num,
                red_reason: req.red_reason,
                amount: req.amount,
                tax_amount: req.tax_amount,
                approve_at,
                used: false,
            },
        );
        Ok(sheet)
    }

    /// A submitted sheet is approved by the bureau once its time has come.
    fn settle_sheet(&mut self, id: &str, now: Instant) {
        let seed = self.config.seed;
        if let Some(s) =
            self.sheets.get_mut(id).filter(|s| s.sheet.state == "submitted" && now >= s.approve_at)
        {
            s.sheet.state = "approved".into();
            let digits: u64 = id.trim_start_matches("RIS").parse().unwrap_or(0);
            s.sheet.red_info_bill_no = format!("44031{:011}", (digits + seed) % 100_000_000_000);
        }
    }

    /// A sheet by its id, or by its number (红字信息表编号, as a person enters it by hand).
    fn sheet(&mut self, id: &str, now: Instant) -> Result<RedInfoSheet, ApiError> {
        self.settle_sheet(id, now);
        self.sheets
            .get(id)
            .or_else(|| self.sheets.values().find(|s| !id.is_empty() && s.sheet.red_info_bill_no == id))
            .map(|s| s.sheet.clone())
            .ok_or_else(|| err(code::NOT_FOUND, format!("红字信息表{id}不存在")))
    }

    fn sheet_download(
        &mut self,
        req: RedInfoDownload,
        now: Instant,
    ) -> Result<Page<RedInfoListed>, ApiError> {
        let ids: Vec<String> = self.sheets.keys().cloned().collect();
        for id in &ids {
            self.settle_sheet(id, now);
        }
        let sheets: Vec<RedInfoListed> = self
            .sheets
            .values()
            .filter(|s| s.seller_taxpayer_id == req.taxpayer_id)
            .map(|s| RedInfoListed {
                sheet: s.sheet.clone(),
                seller_taxpayer_id: s.seller_taxpayer_id.clone(),
                invoice_num: s.invoice_num.clone(),
                red_reason: s.red_reason.clone(),
                amount: s.amount,
                tax_amount: s.tax_amount,
            })
            .collect();
        Ok(page(sheets, req.page_no, req.page_size))
    }

    fn sheet_revoke(&mut self, req: RedInfoRef, now: Instant) -> Result<RedInfoSheet, ApiError> {
        self.settle_sheet(&req.sheet_id, now);
        let s = self.sheets.get_mut(&req.sheet_id).ok_or_else(|| err(code::NOT_FOUND, "红字信息表不存在"))?;
        if s.used || !matches!(s.sheet.state.as_str(), "submitted" | "approved") {
            return Err(err(code::STATE_CONFLICT, format!("红字信息表状态为{}，不能撤销", s.sheet.state)));
        }
        s.sheet.state = "revoked".into();
        Ok(s.sheet.clone())
    }

    /// The bureau decides a submitted sheet now: `approve` or `reject`.
    pub fn bureau_decides(&mut self, id: &str, approve: bool) -> Result<RedInfoSheet, ApiError> {
        let s = self.sheets.get_mut(id).ok_or_else(|| err(code::NOT_FOUND, "红字信息表不存在"))?;
        if s.sheet.state != "submitted" {
            return Err(err(code::STATE_CONFLICT, "红字信息表不在待审核状态"));
        }
        if approve {
            s.approve_at = Instant::now();
        } else {
            s.sheet.state = "rejected".into();
            s.sheet.message = "税局审核不通过".into();
        }
        let now = Instant::now();
        self.sheet(id, now)
    }

    /// The bureau changes the status of an input invoice it holds (voided, red-flushed … after
    /// it was downloaded).
    pub fn set_input_status(&mut self, invoice_num: &str, status: &str) {
        if let Some(v) = self.verify_index.get_mut(invoice_num) {
            v.header.status = status.to_string();
        }
    }

    fn input_file(&self, req: InputFileRequest) -> Result<InputFile, ApiError> {
        let known = self
            .verify_index
            .get(&req.invoice_num)
            .filter(|v| {
                v.header.buyer_taxpayer_id == req.taxpayer_id && v.header.invoice_code == req.invoice_code
            })
            .ok_or_else(|| err(code::NOT_FOUND, "查无此票"))?;
        if !matches!(req.file_type.as_str(), "pdf" | "ofd" | "xml") {
            return Err(err(code::BAD_REQUEST, format!("文件类型{}无效", req.file_type)));
        }
        let num = &known.header.invoice_num;
        Ok(InputFile { file_url: format!("{}/files/{num}.{}", self.config.public_url, req.file_type) })
    }

    /// How many lines the bureau holds for an input invoice (0 when unknown).
    pub fn verified_lines(&self, invoice_num: &str) -> usize {
        self.verify_index.get(invoice_num).map_or(0, |v| v.lines.len())
    }

    // ---- deduction selection (rim) ----

    fn select(&mut self, req: InvoiceSelect, now: Instant) -> Result<SelectBatch, ApiError> {
        if self.dice.roll(Fault::Unstable, i::INVOICE_SELECT) {
            return Err(err(code::BUREAU_UNSTABLE, fapiao_schemas::messages::LOCAL_BUREAU_UNSTABLE));
        }
        let index = &self.verify_index;
        self.selection.select(req, now, self.config.select_delay, |n| index.get(n).map(|v| &v.header))
    }

    fn select_query(&mut self, req: SelectBatchRef, now: Instant) -> Result<SelectBatch, ApiError> {
        let index = &self.verify_index;
        self.selection
            .query(&req.batch_no, now, self.config.select_delay, |n| index.get(n).map(|v| &v.header))
    }

    fn select_stop(&mut self, req: SelectBatchRef, now: Instant) -> Result<SelectBatch, ApiError> {
        let index = &self.verify_index;
        self.selection.stop(&req.batch_no, now, self.config.select_delay, |n| index.get(n).map(|v| &v.header))
    }

    // ---- downloads and verification (rim) ----

    fn download_apply(&mut self, req: DownloadApply, now: Instant) -> Result<DownloadTask, ApiError> {
        TaxNo::parse(&req.taxpayer_id).map_err(|e| err(code::BAD_REQUEST, format!("税号无效：{e}")))?;
        if self.dice.roll(Fault::Unstable, i::DOWNLOAD_APPLY) {
            return Err(err(code::BUREAU_UNSTABLE, fapiao_schemas::messages::LOCAL_BUREAU_UNSTABLE));
        }
        if req.small_scale && req.scope == "deduction" {
            return Err(err(
                code::SMALL_SCALE_NO_DEDUCTION,
                fapiao_schemas::messages::SMALL_SCALE_NO_DEDUCTION_DOWNLOAD,
            ));
        }
        let other_running = self.downloads.values().any(|d| {
            d.task.etax_account == req.etax_account
                && d.task.taxpayer_id != req.taxpayer_id
                && now < d.ready_at
        });
        if other_running || self.dice.roll(Fault::Logout, i::DOWNLOAD_APPLY) {
            return Err(err(code::ACCOUNT_LOGGED_OUT, fapiao_schemas::messages::ACCOUNT_LOGGED_OUT));
        }
        let task_id = format!("DL{:012}", self.next_id());
        let ready_at = now + self.config.download_delay;
        self.downloads.insert(task_id.clone(), Download { task: req, task_id: task_id.clone(), ready_at });
        Ok(DownloadTask { task_id, state: "processing".into(), total: 0, message: String::new() })
    }

    fn download(&self, task_id: &str) -> Result<&Download, ApiError> {
        self.downloads.get(task_id).ok_or_else(|| err(code::NOT_FOUND, format!("下载任务{task_id}不存在")))
    }

    fn generated(&self, d: &Download) -> Vec<VerifiedInvoice> {
        generate::invoices_for(&d.task.taxpayer_id, d.task.invoice_date, self.config.seed)
    }

    fn download_poll(&mut self, req: DownloadRef, now: Instant) -> Result<DownloadTask, ApiError> {
        let d = self.download(&req.task_id)?;
        if now < d.ready_at {
            return Ok(DownloadTask {
                task_id: d.task_id.clone(),
                state: "processing".into(),
                total: 0,
                message: String::new(),
            });
        }
        let total = self.generated(d).len() as u64;
        Ok(DownloadTask { task_id: d.task_id.clone(), state: "ready".into(), total, message: String::new() })
    }

    fn download_fetch(&mut self, req: DownloadFetch, now: Instant) -> Result<Page<InvoiceHeader>, ApiError> {
        if self.dice.roll(Fault::Unstable, i::DOWNLOAD_FETCH) {
            return Err(err(code::BUREAU_UNSTABLE, fapiao_schemas::messages::LOCAL_BUREAU_UNSTABLE));
        }
        let d = self.download(&req.task_id)?;
        if now < d.ready_at {
            return Err(err(code::STATE_CONFLICT, "下载任务处理中"));
        }
        let all = self.generated(d);
        let deduction = d.task.scope == "deduction";
        for inv in &all {
            self.verify_index.entry(inv.header.invoice_num.clone()).or_insert_with(|| inv.clone());
        }
        // What the bureau holds now (a status changed since), and with scope `deduction` the
        // period each invoice is selected for.
        let headers = all
            .into_iter()
            .map(|v| {
                let mut h = self
                    .verify_index
                    .get(&v.header.invoice_num)
                    .map_or(v.header, |known| known.header.clone());
                if deduction {
                    h.select_period = self.selection.selected(&h.buyer_taxpayer_id, &h.invoice_num);
                }
                h
            })
            .collect();
        Ok(page(headers, req.page_no, req.page_size))
    }

    fn verify(&mut self, req: VerifyRequest) -> Result<VerifiedInvoice, ApiError> {
        if self.dice.roll(Fault::VerifyExpired, i::VERIFY) {
            return Err(err(
                code::VERIFY_PERMISSION_EXPIRED,
                fapiao_schemas::messages::VERIFY_PERMISSION_EXPIRED,
            ));
        }
        if self.dice.roll(Fault::Unstable, i::VERIFY) {
            return Err(err(code::BUREAU_UNSTABLE, fapiao_schemas::messages::LOCAL_BUREAU_UNSTABLE));
        }
        let found = self
            .verify_index
            .get(&req.invoice_num)
            .cloned()
            .or_else(|| self.verified_from_issued(&req.invoice_num));
        let inv = found.ok_or_else(|| err(code::NOT_FOUND, "查无此票"))?;
        let h = &inv.header;
        let matches = h.invoice_code == req.invoice_code
            && h.invoice_date == req.invoice_date
            && (h.amount == req.amount || h.total_amount == req.amount);
        if !matches {
            return Err(err(code::NOT_FOUND, "查验信息不一致：发票代码、开票日期或金额与税局数据不符"));
        }
        Ok(inv)
    }

    fn verified_from_issued(&self, number: &str) -> Option<VerifiedInvoice> {
        let issued = self.invoices.get(self.serial_by_number.get(number)?)?;
        let r = &issued.result;
        let amount = r.total_amount - r.total_tax;
        Some(VerifiedInvoice {
            header: InvoiceHeader {
                invoice_kind: r.invoice_kind,
                invoice_code: r.invoice_code.clone(),
                invoice_num: r.invoice_num.clone(),
                invoice_date: r.invoice_date?,
                seller_name: String::new(),
                seller_taxpayer_id: issued.seller_taxpayer_id.clone(),
                buyer_name: issued.buyer_name.clone(),
                buyer_taxpayer_id: issued.buyer_taxpayer_id.clone(),
                amount,
                tax_amount: r.total_tax,
                total_amount: r.total_amount,
                check_code: String::new(),
                status: "normal".into(),
                invoice_property: r.invoice_property,
                blockchain: false,
                special_business: String::new(),
                select_period: None,
            },
            lines: issued
                .lines
                .iter()
                .map(|l| VerifiedLine {
                    goods_name: l.goods_name.clone(),
                    tax_rate: l.tax_rate,
                    amount: l.amount,
                    tax_amount: l.tax_amount,
                    business_type: String::new(),
                })
                .collect(),
        })
    }

    fn account_check(&mut self, req: AccountCheck) -> Result<AccountInfo, ApiError> {
        TaxNo::parse(&req.taxpayer_id).map_err(|e| err(code::BAD_REQUEST, format!("税号无效：{e}")))?;
        Ok(AccountInfo { taxpayer_id: req.taxpayer_id, etax_account_type: 3 })
    }
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|e| err(code::BAD_REQUEST, format!("报文格式错误：{e}")))
}

fn answer<T: Serialize>(result: Result<T, ApiError>) -> Result<String, ApiError> {
    result.map(|v| serde_json::to_string(&v).expect("answers serialize"))
}

fn page<T>(all: Vec<T>, page_no: u32, page_size: u32) -> Page<T> {
    let size = page_size.clamp(1, 1000);
    let total = all.len() as u64;
    let list = all.into_iter().skip(page_no as usize * size as usize).take(size as usize).collect();
    Page { page_no, page_size: size, total, list }
}
