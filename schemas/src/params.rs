//! The documented parameters (参数配置单据): `sys_param(type, key, value)`.
//!
//! Every key fapiao reads is declared here once, with its default and the values it allows.
//! Jobs read parameters at every run, so a change takes effect without a restart.

use std::collections::BTreeSet;
use std::fmt;

use crate::messages::Coded;
use crate::taxpayer_id::TaxNo;

/// What values a parameter allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRule {
    /// `0` or `1`.
    Flag,
    /// `*` or a comma-separated list of days of month, 1–31.
    DaysOfMonth,
    /// A comma-separated list of valid taxpayer ids (may be empty).
    TaxNoList,
    /// Any non-empty text (a fragment of a failure message).
    Fragment,
    /// An invoice file format: `pdf`, `ofd` or `xml`.
    FileFormat,
    /// A whole number of days, 1–36500.
    Days,
}

impl ValueRule {
    pub fn allowed(self) -> &'static str {
        match self {
            ValueRule::Flag => "0 or 1",
            ValueRule::DaysOfMonth => "* or a comma-separated list of days of month 1-31 (e.g. 1,15)",
            ValueRule::TaxNoList => "a comma-separated list of valid taxpayer ids (15, 18 or 20 characters)",
            ValueRule::Fragment => "non-empty text: a fragment of a failure message",
            ValueRule::FileFormat => "pdf, ofd or xml",
            ValueRule::Days => "a whole number of days, 1-36500",
        }
    }

    /// Validate and normalize (trimmed, sorted, de-duplicated lists).
    fn normalize(self, value: &str) -> Result<String, String> {
        let value = value.trim();
        match self {
            ValueRule::Flag => match value {
                "0" | "1" => Ok(value.to_string()),
                _ => Err(format!("{value:?} is not 0 or 1")),
            },
            ValueRule::DaysOfMonth => {
                if value == "*" {
                    return Ok("*".into());
                }
                let mut days = BTreeSet::new();
                for part in value.split([',', '，']) {
                    let part = part.trim();
                    match part.parse::<u32>() {
                        Ok(d @ 1..=31) => {
                            days.insert(d);
                        }
                        _ => return Err(format!("{part:?} is not a day of month 1-31")),
                    }
                }
                Ok(days.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
            }
            ValueRule::TaxNoList => {
                let mut ids = BTreeSet::new();
                for part in value.split([',', '，']).map(str::trim).filter(|p| !p.is_empty()) {
                    let id = TaxNo::parse(part).map_err(|e| e.to_string())?;
                    ids.insert(id.as_str().to_string());
                }
                Ok(ids.into_iter().collect::<Vec<_>>().join(","))
            }
            ValueRule::Days => match value.parse::<u32>() {
                Ok(d @ 1..=36500) => Ok(d.to_string()),
                _ => Err(format!("{value:?} is not a number of days 1-36500")),
            },
            ValueRule::Fragment => {
                if value.is_empty() {
                    Err("the fragment is empty".into())
                } else {
                    Ok(value.to_string())
                }
            }
            ValueRule::FileFormat => value
                .to_ascii_lowercase()
                .parse::<crate::invoice_file::FileFormat>()
                .map(|f| f.as_str().to_string())
                .map_err(|e| e.to_string()),
        }
    }
}

/// One documented parameter. `key = None` means any key of this type (a family of values).
#[derive(Debug)]
pub struct ParamSpec {
    pub ptype: &'static str,
    pub key: Option<&'static str>,
    pub default: Option<&'static str>,
    pub rule: ValueRule,
    pub doc: &'static str,
}

pub const RIM_CONFIG: &str = "rim_config";
pub const NEED_CHECK: &str = "rim_config_need_check";
pub const SYNC_HIS: &str = "rim_config_sync_his";
pub const KEY_ELEMENT_CHECK: &str = "key_element_check";
pub const EINVOICE_AUTO_SIGN: &str = "einvoice_auto_sign";
pub const TAX_FILE_AUTO_SIGN: &str = "tax_file_auto_sign";
pub const INPUTOUT_DAYS: &str = "newetax_inputout_days";
pub const RIM_DOWN_ASYNC: &str = "rim_down_async";
pub const TAXNOS: &str = "taxnos";
pub const SIM_AUTO_ISSUE_CONFIG: &str = "sim_auto_issue_config";
/// 开票管理 → the file format downloads default to (seed 004: the sim_choose_invoice_type form).
pub const SIM_CHOOSE_INVOICE_TYPE: &str = "sim_choose_invoice_type";
/// Ours: whether issuing needs approval (审批), keyed by a seller tax number or a business
/// system code; `1` for either makes the invoices of a push start 暂存.
pub const SIM_ISSUE_APPROVAL: &str = "sim_issue_approval";
pub const FILE_TYPE: &str = "file_type";
/// Seed 004: the file format pool downloads default to (the rim_filetype_selected form).
pub const RIM_FILETYPE_SELECTED: &str = "rim_filetype_selected";
/// Seed 004 发票同步勾选: `rim_config/rpa_select_syn = 1` selects synchronously; any other
/// value (or none) makes a selection an asynchronous batch that the `deduct-poll` job follows.
pub const RPA_SELECT_SYN: &str = "rpa_select_syn";
/// Ours (合规性校验配置, seed 004 超过企业设置的报销期限): an enterprise's reimbursement period in
/// days, keyed by its tax number; an invoice older than that is refused at import and at use.
pub const RIM_COMPLIANCE_REIMBURSE_DAYS: &str = "rim_compliance_reimburse_days";
/// Ours (合规性校验配置): `1` for a receiving enterprise: an invoice's buyer name must be the
/// enterprise's name (the tax number always must: 税号…不在租户范围内).
pub const RIM_COMPLIANCE_BUYER_NAME: &str = "rim_compliance_buyer_name";
/// Ours (合规性校验配置, 重复报销): `1` for a receiving enterprise: an invoice a document uses
/// cannot be used by another document (发票已被单据使用).
pub const RIM_COMPLIANCE_SINGLE_USE: &str = "rim_compliance_single_use";

/// The documented keys (SPEC.md "Parameters"; seed 004 for each one's meaning).
pub const CATALOG: &[ParamSpec] = &[
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(NEED_CHECK),
        default: Some("1"),
        rule: ValueRule::Flag,
        doc: "0: Excel import into the pool skips verification; 1: verifies (seed 004 excel导入全票池)",
    },
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(SYNC_HIS),
        default: Some("1"),
        rule: ValueRule::Flag,
        doc: "1: the input sync jobs run; 0: kill switch for apply-cache, download-apply, fetch and deal-task (running ones stop at the next item, new runs are skipped); the invoicing jobs go on",
    },
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(KEY_ELEMENT_CHECK),
        default: Some("1"),
        rule: ValueRule::Flag,
        doc: "1: deal-task verifies downloaded headers before pooling; 0: pools them unverified (处理完成（未自动查验）)",
    },
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(EINVOICE_AUTO_SIGN),
        default: Some("0"),
        rule: ValueRule::Flag,
        doc: "1: invoices entering the pool from uploads/imports are signed automatically",
    },
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(TAX_FILE_AUTO_SIGN),
        default: Some("0"),
        rule: ValueRule::Flag,
        doc: "1: invoices entering the pool from tax-bureau downloads are signed automatically",
    },
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(INPUTOUT_DAYS),
        default: None,
        rule: ValueRule::DaysOfMonth,
        doc: "days of month on which download-apply runs; unset: only when day-of-month % 3 == 0",
    },
    ParamSpec {
        ptype: RIM_CONFIG,
        key: Some(RPA_SELECT_SYN),
        default: Some("0"),
        rule: ValueRule::Flag,
        doc: "1: deduction selection (勾选) is synchronous, each invoice's result at once; otherwise an asynchronous batch polled by deduct-poll (seed 004 发票同步勾选)",
    },
    ParamSpec {
        ptype: RIM_DOWN_ASYNC,
        key: Some(TAXNOS),
        default: Some(""),
        rule: ValueRule::TaxNoList,
        doc: "tax numbers whose downloads run asynchronously (apply now, fetch later); others apply and wait",
    },
    ParamSpec {
        ptype: SIM_AUTO_ISSUE_CONFIG,
        key: None,
        default: None,
        rule: ValueRule::Fragment,
        doc: "any key; value = a failure-message fragment that makes a failed invoice eligible for auto-reissue",
    },
    ParamSpec {
        ptype: SIM_ISSUE_APPROVAL,
        key: None,
        default: None,
        rule: ValueRule::Flag,
        doc: "key = a seller tax number or a business system code; 1: its pushed invoices need approval (暂存 → 已提交 → 已审核) before they are issued, 0 or unset: 无需审批",
    },
    ParamSpec {
        ptype: RIM_COMPLIANCE_REIMBURSE_DAYS,
        key: None,
        default: None,
        rule: ValueRule::Days,
        doc: "合规性校验 报销期限: key = the receiving enterprise's tax number, value = days; an invoice issued more days ago is refused entering the pool by import (not charged) and when a document uses it: 超过企业设置的报销期限",
    },
    ParamSpec {
        ptype: RIM_COMPLIANCE_BUYER_NAME,
        key: None,
        default: None,
        rule: ValueRule::Flag,
        doc: "合规性校验 购买方名称: key = the receiving enterprise's tax number; 1: an imported invoice whose buyer name is not the enterprise's name is refused before verification (BUYER_NAME_MISMATCH, not charged)",
    },
    ParamSpec {
        ptype: RIM_COMPLIANCE_SINGLE_USE,
        key: None,
        default: None,
        rule: ValueRule::Flag,
        doc: "合规性校验 重复报销: key = the receiving enterprise's tax number; 1: an invoice a document uses cannot be used by another document (INVOICE_ALREADY_USED 发票已被单据使用)",
    },
    ParamSpec {
        ptype: SIM_CHOOSE_INVOICE_TYPE,
        key: Some(FILE_TYPE),
        default: Some("pdf"),
        rule: ValueRule::FileFormat,
        doc: "the file format `fapiao invoices download` fetches when no --format is given: pdf, ofd or xml",
    },
    ParamSpec {
        ptype: RIM_FILETYPE_SELECTED,
        key: Some(FILE_TYPE),
        default: Some("pdf"),
        rule: ValueRule::FileFormat,
        doc: "the file format `fapiao pool download` fetches when no --format is given: pdf, ofd or xml",
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown parameter {ptype}/{key}; known: {known}")]
    Unknown { ptype: String, key: String, known: String },
    #[error("invalid value for {ptype}/{key}: {detail}; allowed: {allowed}")]
    Invalid { ptype: String, key: String, detail: String, allowed: &'static str },
    /// A key of a family (any key allowed) that cannot be one: empty, or with spaces around it.
    #[error("invalid key {key:?} for {ptype}: a key is non-empty text without spaces around it")]
    InvalidKey { ptype: String, key: String },
}

impl Coded for ParamError {
    fn code(&self) -> &'static str {
        match self {
            ParamError::Unknown { .. } => "PARAM_UNKNOWN",
            ParamError::Invalid { .. } | ParamError::InvalidKey { .. } => "PARAM_INVALID",
        }
    }
    fn message_zh(&self) -> String {
        match self {
            ParamError::Unknown { ptype, key, .. } => format!("未定义的参数：{ptype}/{key}"),
            ParamError::Invalid { ptype, key, allowed, .. } => {
                format!("参数{ptype}/{key}的值无效，允许：{allowed}")
            }
            ParamError::InvalidKey { ptype, key } => {
                format!("参数{ptype}的键{key:?}无效，键不能为空，首尾不能有空格")
            }
        }
    }
}

impl ParamSpec {
    /// The key as listed: the key itself, or `<any>` for a family.
    pub fn key_label(&self) -> &'static str {
        self.key.unwrap_or("<any>")
    }

    /// Validate and normalize a value for (`self.ptype`, `key`).
    pub fn normalize(&self, key: &str, value: &str) -> Result<String, ParamError> {
        self.rule.normalize(value).map_err(|detail| ParamError::Invalid {
            ptype: self.ptype.into(),
            key: key.into(),
            detail,
            allowed: self.rule.allowed(),
        })
    }
}

/// The spec governing (`ptype`, `key`), or an error listing the known keys. A family's key must
/// be non-empty and without surrounding spaces (checked here, before the table's constraint
/// would refuse it as a database error).
pub fn lookup(ptype: &str, key: &str) -> Result<&'static ParamSpec, ParamError> {
    if CATALOG.iter().any(|s| s.ptype == ptype && s.key.is_none()) && (key.is_empty() || key.trim() != key) {
        return Err(ParamError::InvalidKey { ptype: ptype.into(), key: key.into() });
    }
    CATALOG.iter().find(|s| s.ptype == ptype && s.key.is_none_or(|k| k == key)).ok_or_else(|| {
        ParamError::Unknown {
            ptype: ptype.into(),
            key: key.into(),
            known: CATALOG
                .iter()
                .map(|s| format!("{}/{}", s.ptype, s.key_label()))
                .collect::<Vec<_>>()
                .join(", "),
        }
    })
}

/// The download-apply day rule (seed 004 手动激活全量发票同步任务, step 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadDays {
    /// `newetax_inputout_days` unset: only when day-of-month % 3 == 0.
    Mod3,
    /// `*`: every day.
    Every,
    /// An explicit list of days.
    Days(BTreeSet<u32>),
}

impl DownloadDays {
    /// From the stored (already validated) value.
    pub fn from_param(value: Option<&str>) -> DownloadDays {
        match value.map(str::trim) {
            None | Some("") => DownloadDays::Mod3,
            Some("*") => DownloadDays::Every,
            Some(list) => DownloadDays::Days(list.split(',').filter_map(|d| d.trim().parse().ok()).collect()),
        }
    }

    pub fn allows(&self, day_of_month: u32) -> bool {
        match self {
            DownloadDays::Mod3 => day_of_month.is_multiple_of(3),
            DownloadDays::Every => true,
            DownloadDays::Days(days) => days.contains(&day_of_month),
        }
    }
}

impl fmt::Display for DownloadDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadDays::Mod3 => f.write_str("day-of-month % 3 == 0 (newetax_inputout_days unset)"),
            DownloadDays::Every => f.write_str("every day (newetax_inputout_days = *)"),
            DownloadDays::Days(d) => {
                let list: Vec<String> = d.iter().map(u32::to_string).collect();
                write!(f, "days {} (newetax_inputout_days)", list.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ptype: &str, key: &str, value: &str) -> Result<String, ParamError> {
        lookup(ptype, key)?.normalize(key, value)
    }

    #[test]
    fn flags_are_zero_or_one() {
        assert_eq!(set(RIM_CONFIG, SYNC_HIS, " 0 ").unwrap(), "0");
        let err = set(RIM_CONFIG, SYNC_HIS, "2").unwrap_err();
        assert_eq!(err.code(), "PARAM_INVALID");
        let text = err.to_string();
        assert!(text.contains("rim_config_sync_his") && text.contains("0 or 1"), "{text}");
    }

    #[test]
    fn days_are_star_or_a_list_of_1_to_31() {
        assert_eq!(set(RIM_CONFIG, INPUTOUT_DAYS, "*").unwrap(), "*");
        assert_eq!(set(RIM_CONFIG, INPUTOUT_DAYS, "15, 1，15").unwrap(), "1,15");
        for bad in ["0", "32", "1,,2", "a", "", "*,1"] {
            assert!(set(RIM_CONFIG, INPUTOUT_DAYS, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn async_tax_numbers_must_be_valid() {
        assert_eq!(
            set(RIM_DOWN_ASYNC, TAXNOS, "92440300MA5DXY7K3W,91310000ma1fl2ab09").unwrap(),
            "91310000MA1FL2AB09,92440300MA5DXY7K3W"
        );
        assert_eq!(set(RIM_DOWN_ASYNC, TAXNOS, "").unwrap(), "");
        let err = set(RIM_DOWN_ASYNC, TAXNOS, "91310000MA1FL2AB08").unwrap_err();
        assert!(err.to_string().contains("check character"), "{err}");
    }

    #[test]
    fn auto_issue_fragments_take_any_key() {
        assert_eq!(
            set(SIM_AUTO_ISSUE_CONFIG, "repairing", " 局端内部错误，该开票请求修复中 ").unwrap(),
            "局端内部错误，该开票请求修复中"
        );
        assert!(set(SIM_AUTO_ISSUE_CONFIG, "x", "  ").is_err());
        // An empty key was a constraint violation in the database (exit 1); now a parameter error.
        for key in ["", " ", " repairing"] {
            let err = set(SIM_AUTO_ISSUE_CONFIG, key, "局端").unwrap_err();
            assert_eq!(err.code(), "PARAM_INVALID", "{key:?}");
            assert!(matches!(err, ParamError::InvalidKey { .. }), "{key:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_the_known_ones_listed() {
        let err = lookup(RIM_CONFIG, "rim_config_sync_hiss").unwrap_err();
        assert_eq!(err.code(), "PARAM_UNKNOWN");
        assert!(err.to_string().contains("rim_config/rim_config_sync_his"));
    }

    #[test]
    fn every_default_is_a_valid_value() {
        for spec in CATALOG {
            if let Some(d) = spec.default
                && (!d.is_empty() || spec.rule == ValueRule::TaxNoList)
            {
                assert_eq!(spec.normalize(spec.key_label(), d).unwrap(), d, "{}", spec.key_label());
            }
        }
    }

    #[test]
    fn download_day_rule() {
        let mod3 = DownloadDays::from_param(None);
        assert!(mod3.allows(3) && mod3.allows(30) && !mod3.allows(1) && !mod3.allows(31));
        assert!(DownloadDays::from_param(Some("*")).allows(31));
        let list = DownloadDays::from_param(Some("1,15"));
        assert!(list.allows(1) && list.allows(15) && !list.allows(3));
    }
}
