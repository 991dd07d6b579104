//! The states and kinds that rows carry, as enums, and the one place each maps to its database
//! text (and, with the `sqlx` feature, to `sqlx::Type`/`Encode`/`Decode` over TEXT).
//!
//! The database keeps enumerations as text with CHECK constraints (migration 0001), so rows read
//! plainly in psql; the strings below are exactly those of the constraints. JSON (serde) uses the
//! same strings.
//!
//! | enum | table.column |
//! | --- | --- |
//! | [`PendingStatus`] (待开发票状态) | `pending_invoice.status` |
//! | [`DataSource`] (数据来源) | `pending_invoice.data_source`, `application.source` |
//! | [`ApprovalState`] (审批状态) | `pending_invoice.approval_state` |
//! | [`AttemptOutcome`] | `issue_attempt.outcome` |
//! | [`BillState`] (开票申请单状态) | `application.state` |
//! | [`InvoiceStatus`] (发票状态) | `issued_invoice.status` |
//! | [`CallbackState`] | `callback.state` |
//! | [`RedFlushState`] (红冲状态) | `issued_invoice.red_flush_state` |
//! | [`RedFlushRequestState`] | `red_flush.state` |
//! | [`RedFlushTrack`] | `red_flush.track` |
//! | [`RedDocumentKind`] | `red_document.kind` |
//! | [`RunState`] | `job_run.state` |
//! | [`RunTrigger`] | `job_run.trigger` |
//! | [`RedDocumentState`] ([`FormState`] or [`SheetState`]) | `red_document.state`, `red_document_event.state` |
//! | [`SelectState`] (勾选状态) | `invoice_pool.select_state` |
//! | [`SelectAction`] | `select_batch.action`, `select_log.action` |
//! | [`SelectBatchState`] (批次状态) | `select_batch.state` |
//! | [`SelectOutcome`] | `select_batch_item.outcome`, `select_log.outcome` |
//!
//! Kinds defined next to their rules map here too: [`InvoiceKind`] (`*.invoice_kind`),
//! [`TaxpayerKind`] and [`Channel`] (`enterprise`), [`LineProperty`] (`*_line.line_property`),
//! [`ZeroRateMark`] (`*_line.zero_rate_mark`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::enterprise::{Channel, TaxpayerKind};
use crate::invoice_kind::{InvoiceKind, RedFlushTrack};
use crate::policy::ZeroRateMark;
use crate::split::LineProperty;

/// A stored (or received) text that is not one of a type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// What was expected, e.g. `invoice kind`.
    pub what: &'static str,
    pub value: String,
}

/// The text mapping of a type that has `as_str()` and a strict `from_db`: with the `sqlx`
/// feature, `Type`/`Encode`/`Decode` for PostgreSQL TEXT (arrays too); decoding an unknown text
/// fails with [`UnknownValue`].
macro_rules! sql_text {
    ($ty:ty, $what:literal) => {
        #[cfg(feature = "sqlx")]
        impl sqlx::Type<sqlx::Postgres> for $ty {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl sqlx::postgres::PgHasArrayType for $ty {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
            fn array_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::postgres::PgHasArrayType>::array_compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $ty {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                <$ty>::from_db(s).ok_or_else(|| UnknownValue { what: $what, value: s.to_string() }.into())
            }
        }
    };
}

/// An enum whose values are database texts: `as_str`/`from_db`, `Display`, a strict `FromStr`,
/// serde as the same text, and `sql_text!`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $db:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty {
            $($(#[$vmeta])* $variant,)+
        }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The text stored in the database (and shown in JSON).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $db,)+
                }
            }

            /// The value of a stored text; `None` for any other text.
            pub fn from_db(s: &str) -> Option<$ty> {
                match s {
                    $($db => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<$ty, UnknownValue> {
                $ty::from_db(s).ok_or_else(|| UnknownValue { what: $what, value: s.to_string() })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        sql_text!($ty, $what);
    };
}

text_enum! {
    /// Where a job run stands in the run ledger.
    pub enum RunState ("job run state") {
        /// Recorded for its tick, waiting for a worker.
        Due = "due",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Decided not to work (paused, kill switch, not a download day), with its reason.
        Skipped = "skipped",
        /// A tick that passed while no process served, beyond the misfire policy.
        Missed = "missed",
    }
}

text_enum! {
    /// 勾选状态 of a pool invoice (抵扣类勾选, seed 004): where it stands with the bureau.
    pub enum SelectState ("select state") {
        /// 未勾选
        Unselected = "unselected",
        /// 勾选中: in a batch the bureau has not finished.
        Selecting = "selecting",
        /// 已勾选 for a tax period.
        Selected = "selected",
        /// 取消勾选中
        Unselecting = "unselecting",
    }
}

text_enum! {
    /// 勾选 or 取消勾选.
    pub enum SelectAction ("select action") {
        Select = "select",
        Unselect = "unselect",
    }
}

text_enum! {
    /// Where a selection batch stands at the bureau. Only a pending batch can be stopped
    /// (seed 004: 正在操作税局、已经成功完成、或明确失败终止的批次不能作废).
    pub enum SelectBatchState ("select batch state") {
        /// 待处理
        Pending = "pending",
        /// 处理中: the channel is operating the bureau.
        Processing = "processing",
        /// 已完成: every invoice has its result.
        Done = "done",
        /// 失败终止
        Failed = "failed",
        /// 已停止 (作废) before the bureau was touched.
        Stopped = "stopped",
    }
}

text_enum! {
    /// One invoice's result in a selection batch.
    pub enum SelectOutcome ("select outcome") {
        /// The batch is not finished.
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
        /// The batch was stopped before the bureau was touched.
        Stopped = "stopped",
    }
}

impl SelectAction {
    pub fn label_zh(self) -> &'static str {
        match self {
            SelectAction::Select => "勾选",
            SelectAction::Unselect => "取消勾选",
        }
    }
    /// The invoice's state while a batch of this action runs, and once it succeeded.
    pub fn states(self) -> (SelectState, SelectState) {
        match self {
            SelectAction::Select => (SelectState::Selecting, SelectState::Selected),
            SelectAction::Unselect => (SelectState::Unselecting, SelectState::Unselected),
        }
    }
}

impl SelectState {
    pub fn label_zh(self) -> &'static str {
        match self {
            SelectState::Unselected => "未勾选",
            SelectState::Selecting => "勾选中",
            SelectState::Selected => "已勾选",
            SelectState::Unselecting => "取消勾选中",
        }
    }
}

impl SelectBatchState {
    pub fn label_zh(self) -> &'static str {
        match self {
            SelectBatchState::Pending => "待处理",
            SelectBatchState::Processing => "处理中",
            SelectBatchState::Done => "已完成",
            SelectBatchState::Failed => "失败终止",
            SelectBatchState::Stopped => "已停止",
        }
    }
    /// Whether the bureau may still change it (a poll is due).
    pub fn is_open(self) -> bool {
        matches!(self, SelectBatchState::Pending | SelectBatchState::Processing)
    }
}

text_enum! {
    /// What made a job run: its schedule, or a person (`jobs run`).
    pub enum RunTrigger ("job run trigger") {
        Schedule = "schedule",
        Manual = "manual",
    }
}

text_enum! {
    /// 待开发票状态: where a pending invoice stands with the channel.
    pub enum PendingStatus ("pending invoice status") {
        /// 未开票
        NotIssued = "not_issued",
        /// 已提交: a serial is stored and the call is (about to be) made.
        Submitted = "submitted",
        /// 开票中: the channel has it.
        Issuing = "issuing",
        /// 开票失败
        Failed = "failed",
        /// 开票成功
        Succeeded = "succeeded",
    }
}

impl PendingStatus {
    pub fn label_zh(self) -> &'static str {
        match self {
            PendingStatus::NotIssued => "未开票",
            PendingStatus::Submitted => "已提交",
            PendingStatus::Issuing => "开票中",
            PendingStatus::Failed => "开票失败",
            PendingStatus::Succeeded => "开票成功",
        }
    }

    /// 开票成功 or 开票失败: the channel will not change it any more.
    pub fn is_final(self) -> bool {
        matches!(self, PendingStatus::Succeeded | PendingStatus::Failed)
    }

    /// A status by its name or its Chinese label (`failed` or 开票失败).
    pub fn from_name_or_label(s: &str) -> Option<PendingStatus> {
        PendingStatus::ALL.iter().copied().find(|k| k.as_str() == s || k.label_zh() == s)
    }
}

text_enum! {
    /// 数据来源 of a pending invoice (and of an application: 批量导入, 直接开票接口 or 小票码开票).
    pub enum DataSource ("data source") {
        /// 单张开票 (a red invoice of a red-flush is one too)
        Single = "单张开票",
        /// 批量导入
        BatchImport = "批量导入",
        /// 直接开票接口
        DirectApi = "直接开票接口",
        /// 单据拆合: merged from several bills or split by the limits.
        SplitMerge = "单据拆合",
        /// 作废重开
        VoidReissue = "作废重开",
        /// 扫码开票
        ScanCode = "扫码开票",
        /// 手工新增红字信息表编号
        ManualRedInfoNo = "手工新增红字信息表编号",
        /// 小票码开票
        ReceiptCode = "小票码开票",
    }
}

text_enum! {
    /// 审批状态 of a pending invoice, in the documents' words (seeds 000, 002). Where issuing
    /// needs approval (`sim_issue_approval`), an invoice starts 暂存, is submitted (已提交) and
    /// approved (已审核) or rejected back to 暂存; elsewhere it is 无需审批.
    pub enum ApprovalState ("approval state") {
        /// 暂存
        Draft = "暂存",
        /// 已提交
        Submitted = "已提交",
        /// 已审核
        Approved = "已审核",
        /// 无需审批
        NotRequired = "无需审批",
    }
}

impl ApprovalState {
    /// Only an approved invoice, or one that needs no approval, is issued.
    pub fn may_issue(self) -> bool {
        matches!(self, ApprovalState::Approved | ApprovalState::NotRequired)
    }
}

text_enum! {
    /// What became of one issuing attempt (one serial).
    pub enum AttemptOutcome ("attempt outcome") {
        /// Written before the call.
        Sending = "sending",
        /// The channel took it.
        Accepted = "accepted",
        /// The answer was lost: settled by query.
        Lost = "lost",
        /// The channel said no to the call.
        Refused = "refused",
        Succeeded = "succeeded",
        Failed = "failed",
        /// The channel never took this serial: it may be sent again as is.
        NeverAccepted = "never_accepted",
    }
}

text_enum! {
    /// 发票状态 of an issued invoice (seed 002: 正常、作废、作废中), stored in the documents' words.
    pub enum InvoiceStatus ("invoice status") {
        Normal = "正常",
        /// 作废中: the void is with the channel.
        Voiding = "作废中",
        /// 作废
        Voided = "作废",
    }
}

text_enum! {
    /// 开票申请单状态, recomputed from the application's live pending invoices.
    pub enum BillState ("bill state") {
        Received = "received",
        Pushed = "pushed",
        PartiallyIssued = "partially_issued",
        Issued = "issued",
        /// 撤回 before any push.
        Withdrawn = "withdrawn",
        /// Its lines went back after a push.
        Returned = "returned",
    }
}

text_enum! {
    /// A callback to a bill's ERP.
    pub enum CallbackState ("callback state") {
        /// Not delivered yet (due at `next_attempt_at`).
        Pending = "pending",
        Succeeded = "succeeded",
        /// Gave up after the allowed attempts.
        Failed = "failed",
    }
}

text_enum! {
    /// How much of a blue invoice is red-flushed.
    pub enum RedFlushState ("red-flush state") {
        None = "none",
        /// 部分红冲
        Partial = "partial",
        /// 全额红冲
        Full = "full",
    }
}

text_enum! {
    /// One red-flush of one blue invoice.
    pub enum RedFlushRequestState ("red-flush state") {
        /// The rules said no (kept with the reason).
        Refused = "refused",
        /// Waiting for its form or sheet (or, direct, for issuing).
        Waiting = "waiting",
        /// Its red invoice is being issued.
        Issuing = "issuing",
        Succeeded = "succeeded",
        /// Issuing the red invoice failed.
        Failed = "failed",
        /// Its form or sheet was voided.
        Ended = "ended",
    }
}

impl RedFlushRequestState {
    /// Failed for good (refused, issuing failed, or its form/sheet voided).
    pub fn is_failed(self) -> bool {
        matches!(
            self,
            RedFlushRequestState::Refused | RedFlushRequestState::Failed | RedFlushRequestState::Ended
        )
    }
}

text_enum! {
    /// Red confirmation form (红字确认单, 数电) or red info sheet (红字信息表, tax-control special).
    pub enum RedDocumentKind ("red document kind") {
        Form = "form",
        Sheet = "sheet",
    }
}

text_enum! {
    /// 红字确认单状态 (SPEC.md "Channel protocol"): the channel's codes 01–10.
    pub enum FormState ("form state") {
        NoConfirmationNeeded = "01",
        AwaitingBuyer = "02",
        AwaitingSeller = "03",
        Confirmed = "04",
        VoidBuyerRejected = "05",
        VoidSellerRejected = "06",
        VoidExpired = "07",
        VoidRevoked = "08",
        VoidRevokedAfterConfirmation = "09",
        VoidAbnormal = "10",
    }
}

impl FormState {
    pub fn label_zh(self) -> &'static str {
        match self {
            FormState::NoConfirmationNeeded => "无需确认",
            FormState::AwaitingBuyer => "销方录入待购方确认",
            FormState::AwaitingSeller => "购方录入待销方确认",
            FormState::Confirmed => "购销双方已确认",
            FormState::VoidBuyerRejected => "作废（购方已拒绝）",
            FormState::VoidSellerRejected => "作废（销方已拒绝）",
            FormState::VoidExpired => "作废（超72小时未确认）",
            FormState::VoidRevoked => "作废（已撤销）",
            FormState::VoidRevokedAfterConfirmation => "作废（确认后撤销）",
            FormState::VoidAbnormal => "作废（异常）",
        }
    }
}

text_enum! {
    /// 红字信息表 as the bureau decides it.
    pub enum SheetState ("sheet state") {
        Submitted = "submitted",
        Approved = "approved",
        Rejected = "rejected",
        Revoked = "revoked",
    }
}

impl SheetState {
    pub fn label_zh(self) -> &'static str {
        match self {
            SheetState::Submitted => "待税局审核",
            SheetState::Approved => "审核通过",
            SheetState::Rejected => "审核不通过",
            SheetState::Revoked => "已撤销",
        }
    }
}

impl RedDocumentState {
    /// The state in the documents' words.
    pub fn label_zh(self) -> &'static str {
        match self {
            RedDocumentState::Form(f) => f.label_zh(),
            RedDocumentState::Sheet(s) => s.label_zh(),
        }
    }
}

/// The state of a red document: a form's code or a sheet's word (the two never share a text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedDocumentState {
    Form(FormState),
    Sheet(SheetState),
}

impl RedDocumentState {
    pub fn as_str(self) -> &'static str {
        match self {
            RedDocumentState::Form(s) => s.as_str(),
            RedDocumentState::Sheet(s) => s.as_str(),
        }
    }

    pub fn from_db(s: &str) -> Option<RedDocumentState> {
        FormState::from_db(s)
            .map(RedDocumentState::Form)
            .or_else(|| SheetState::from_db(s).map(RedDocumentState::Sheet))
    }

    pub fn kind(self) -> RedDocumentKind {
        match self {
            RedDocumentState::Form(_) => RedDocumentKind::Form,
            RedDocumentState::Sheet(_) => RedDocumentKind::Sheet,
        }
    }
}

impl fmt::Display for RedDocumentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RedDocumentState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

sql_text!(RedDocumentState, "red document state");

impl RedFlushTrack {
    pub const ALL: [RedFlushTrack; 3] =
        [RedFlushTrack::Direct, RedFlushTrack::RedInfoSheet, RedFlushTrack::ConfirmationForm];

    pub fn as_str(self) -> &'static str {
        match self {
            RedFlushTrack::Direct => "direct",
            RedFlushTrack::RedInfoSheet => "red_info_sheet",
            RedFlushTrack::ConfirmationForm => "confirmation_form",
        }
    }

    pub fn from_db(s: &str) -> Option<RedFlushTrack> {
        RedFlushTrack::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for RedFlushTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RedFlushTrack {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

sql_text!(RedFlushTrack, "red-flush track");

impl InvoiceKind {
    /// Exactly the stored identifier (`FromStr` also takes labels and aliases from files).
    pub fn from_db(s: &str) -> Option<InvoiceKind> {
        InvoiceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

// The message of an unknown stored kind reads as `InvoiceNumberError::UnknownKind`'s.
sql_text!(InvoiceKind, "invoice kind");

impl TaxpayerKind {
    pub fn from_db(s: &str) -> Option<TaxpayerKind> {
        [TaxpayerKind::General, TaxpayerKind::SmallScale].into_iter().find(|k| k.as_str() == s)
    }
}

sql_text!(TaxpayerKind, "taxpayer kind");

impl Channel {
    pub fn from_db(s: &str) -> Option<Channel> {
        [Channel::Leqi, Channel::Etax].into_iter().find(|k| k.as_str() == s)
    }
}

sql_text!(Channel, "channel");

impl LineProperty {
    pub fn from_db(s: &str) -> Option<LineProperty> {
        LineProperty::parse(s)
    }
}

impl Serialize for LineProperty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

sql_text!(LineProperty, "line property");

impl Serialize for ZeroRateMark {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

sql_text!(ZeroRateMark, "zero-rate mark");

#[cfg(test)]
mod tests {
    use super::*;

    /// serde, `Display` and `FromStr` agree with the stored text, for every value.
    fn round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr + Serialize + for<'de> Deserialize<'de>,
    {
        for v in all {
            let text = v.to_string();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(text.clone()));
            assert_eq!(serde_json::from_value::<T>(serde_json::Value::String(text.clone())).unwrap(), *v);
            assert!(text.parse::<T>().ok() == Some(*v), "{text}");
        }
    }

    #[test]
    fn every_value_round_trips_as_its_text() {
        round_trips(PendingStatus::ALL);
        round_trips(DataSource::ALL);
        round_trips(ApprovalState::ALL);
        round_trips(AttemptOutcome::ALL);
        round_trips(BillState::ALL);
        round_trips(InvoiceStatus::ALL);
        round_trips(CallbackState::ALL);
        round_trips(RedFlushState::ALL);
        round_trips(RedFlushRequestState::ALL);
        round_trips(RedDocumentKind::ALL);
        round_trips(FormState::ALL);
        round_trips(SheetState::ALL);
        round_trips(SelectState::ALL);
        round_trips(SelectAction::ALL);
        round_trips(SelectBatchState::ALL);
        round_trips(SelectOutcome::ALL);
        assert!("Failed".parse::<PendingStatus>().is_err());
        assert_eq!("nope".parse::<BillState>().unwrap_err().to_string(), "unknown bill state \"nope\"");
    }

    #[test]
    fn existing_kinds_serialize_as_their_stored_text() {
        for k in InvoiceKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(InvoiceKind::from_db(k.as_str()), Some(k));
        }
        assert_eq!(InvoiceKind::from_db("数电普票"), None, "labels are for files, not rows");
        for t in RedFlushTrack::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(RedFlushTrack::from_db(t.as_str()), Some(t));
        }
        for k in [TaxpayerKind::General, TaxpayerKind::SmallScale] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for c in [Channel::Leqi, Channel::Etax] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(
            UnknownValue { what: "invoice kind", value: "x".into() }.to_string(),
            crate::invoice_kind::InvoiceNumberError::UnknownKind("x".into()).to_string()
        );
    }

    #[test]
    fn document_states_are_form_codes_or_sheet_words() {
        for f in FormState::ALL {
            assert_eq!(RedDocumentState::from_db(f.as_str()), Some(RedDocumentState::Form(*f)));
        }
        for s in SheetState::ALL {
            let d = RedDocumentState::from_db(s.as_str()).unwrap();
            assert_eq!(
                (d, d.kind(), d.as_str()),
                (RedDocumentState::Sheet(*s), RedDocumentKind::Sheet, s.as_str())
            );
        }
        assert_eq!(RedDocumentState::from_db("11"), None);
    }
}
