//! Interface codes and error codes: the public ones of the Kingdee ultimate-edition OpenAPI,
//! and the ones we define where no public code exists. `schemas/channel.md` lists them all;
//! replacing ours with a real code list is a change to this file only.

/// Interface codes (`interfaceCode` of the envelope).
pub mod interface {
    // Public (reference/domain-facts.md §1).
    pub const INVOICE_OPEN: &str = "ALLE.INVOICE.OPEN";
    pub const INVOICE_QUERY: &str = "ALLE.INVOICE.QUERY";
    pub const BATCH_QUERY: &str = "ALLE.BATCH.QUERY";
    pub const INVOICE_RED: &str = "ALLE.INVOICE.RED";
    pub const RED_CONFIRM_APPLY: &str = "REDCONFIRMBILL.APPLY";
    pub const ACCOUNT_CHECK: &str = "ALLE.ACCOUNT.CHECK";
    /// 4.05 勾选/取消勾选 (rim, public name; its body is ours).
    pub const INVOICE_SELECT: &str = "invoiceSelect";
    // Ours (no public code found).
    pub const RED_CONFIRM_CONFIRM: &str = "REDCONFIRMBILL.CONFIRM";
    pub const RED_CONFIRM_REVOKE: &str = "REDCONFIRMBILL.REVOKE";
    pub const RED_CONFIRM_QUERY: &str = "REDCONFIRMBILL.QUERY";
    pub const RED_CONFIRM_DOWNLOAD: &str = "REDCONFIRMBILL.DOWNLOAD";
    pub const QUICK_RED: &str = "TAXCTL.INVOICE.QUICKRED";
    pub const RED_INFO_APPLY: &str = "TAXCTL.REDINFO.APPLY";
    pub const RED_INFO_DOWNLOAD: &str = "TAXCTL.REDINFO.DOWNLOAD";
    pub const RED_INFO_QUERY: &str = "TAXCTL.REDINFO.QUERY";
    pub const RED_INFO_REVOKE: &str = "TAXCTL.REDINFO.REVOKE";
    pub const DOWNLOAD_APPLY: &str = "RIM.DOWNLOAD.APPLY";
    pub const DOWNLOAD_POLL: &str = "RIM.DOWNLOAD.POLL";
    pub const DOWNLOAD_FETCH: &str = "RIM.DOWNLOAD.FETCH";
    pub const VERIFY: &str = "RIM.INVOICE.VERIFY";
    /// The file (pdf/ofd/xml) of an input invoice the bureau holds: its URL.
    pub const INPUT_FILE: &str = "RIM.INVOICE.FILE";
    /// 交付: an issued invoice to the buyer by e-mail or SMS (no public code found).
    pub const INVOICE_DELIVER: &str = "ALLE.INVOICE.DELIVER";
    /// 作废: void a paper tax-control invoice of the current month (1.1.05 批量作废 is
    /// documented, its code is not). Asking again about the same invoice answers its state.
    pub const INVOICE_VOID: &str = "ALLE.INVOICE.VOID";

    /// A selection batch by number: its state and, once done, each invoice's result.
    pub const SELECT_QUERY: &str = "RIM.SELECT.QUERY";
    /// 强制停止 a selection batch the bureau has not started (seed 004: 通道提供作废接口…).
    pub const SELECT_STOP: &str = "RIM.SELECT.STOP";
    /// The enterprise's current tax period (税款所属期) for selection, when the channel knows it.
    pub const SELECT_PERIOD: &str = "RIM.SELECT.PERIOD";

    /// Input-invoice calls go to the `rim` gateway; everything else to `sim`.
    pub fn is_rim(code: &str) -> bool {
        code.starts_with("RIM.") || code == INVOICE_SELECT
    }
}

/// Error codes (`errorCode` of the answer).
pub mod error {
    /// Accepted (sim gateway).
    pub const OK: &str = "0";
    /// Accepted (rim gateway).
    pub const OK_RIM: &str = "0000";
    /// Public: the serialNo was used before.
    pub const DUPLICATE_SERIAL: &str = "10127";
    // Ours:
    pub const BAD_REQUEST: &str = "9400";
    pub const TOKEN_INVALID: &str = "9401";
    pub const NOT_FOUND: &str = "9404";
    pub const STATE_CONFLICT: &str = "9409";
    pub const BUSY: &str = "9429";
    pub const INTERNAL: &str = "9500";
    /// 地方税局网络不稳定，请稍后再试 (transient).
    pub const BUREAU_UNSTABLE: &str = "9602";
    /// 该应用查验权限过期 (permanent until renewed).
    pub const VERIFY_PERMISSION_EXPIRED: &str = "9603";
    /// 请核对用户信息或重新调用登录接口: the e-tax account was logged out (two downloads at once).
    pub const ACCOUNT_LOGGED_OUT: &str = "9604";
    /// 小规模纳税人不支持抵扣类勾选数据下载.
    pub const SMALL_SCALE_NO_DEDUCTION: &str = "9605";
    /// 无预勾选权限，请配置发票主表的提交预勾选权限 (the account may not select).
    pub const NO_PRESELECT_PERMISSION: &str = "9606";
    /// The token-service answer for wrong credentials (`error_code` in getAppToken/login).
    pub const CREDENTIALS_REJECTED: &str = "9403";

    pub fn is_ok(code: &str) -> bool {
        code == OK || code == OK_RIM
    }
}

/// Issue status in `ALLE.INVOICE.QUERY` answers (ours): "0" 开票中, "1" 开票成功, "2" 开票失败.
/// Any other text in an answer fails to decode (a broken answer, not a status to guess at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IssueStatus {
    #[serde(rename = "0")]
    Issuing,
    #[serde(rename = "1")]
    Succeeded,
    #[serde(rename = "2")]
    Failed,
}

impl IssueStatus {
    pub fn label_zh(self) -> &'static str {
        match self {
            IssueStatus::Issuing => "开票中",
            IssueStatus::Succeeded => "开票成功",
            IssueStatus::Failed => "开票失败",
        }
    }
}

use chrono::{NaiveDateTime, TimeZone};

/// The time in "局端内部错误，该开票请求修复中，请2024-01-05 17:52后再试！" (seed 001), read in
/// China time (the bureau's clock), as an instant.
pub fn retry_not_before(message: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    // The last 请: "开票请求" has one too.
    let start = message.rfind('请')? + '请'.len_utf8();
    let end = message[start..].find("后再试")? + start;
    let text = message[start..end].trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()?;
    chrono_tz::Asia::Shanghai.from_local_datetime(&naive).single().map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_time_is_read_in_china_time() {
        let t = retry_not_before("局端内部错误，该开票请求修复中，请2024-01-05 17:52后再试！").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-05T09:52:00+00:00");
        assert!(retry_not_before("局端内部错误，该开票请求修复中").is_none());
        assert!(retry_not_before("请稍后再试").is_none());
    }
}
