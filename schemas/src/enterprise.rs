//! Enterprises of the tenant (企业信息) and their sync schemes (全量发票数据同步设置).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::taxpayer_id::TaxNo;

/// 纳税人性质. Small-scale taxpayers cannot download deduction-selection data (seed 004).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxpayerKind {
    General,
    SmallScale,
}

/// 收票通道: how the enterprise reaches the tax bureau.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 乐企
    Leqi,
    /// 电子税局
    Etax,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what}; allowed: {allowed}")]
pub struct UnknownName {
    pub value: String,
    pub what: &'static str,
    pub allowed: &'static str,
}

/// Enumerations with a code name and Chinese names, parsed from either.
macro_rules! named_enum {
    ($ty:ident, $what:literal, $allowed:literal, $($variant:ident => $code:literal, $label:literal, [$($alias:literal),*]);+ $(;)?) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $code),+ }
            }
            pub fn label_zh(self) -> &'static str {
                match self { $($ty::$variant => $label),+ }
            }
        }
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                $(if s == $code || s == $label $(|| s == $alias)* { return Ok($ty::$variant); })+
                Err(UnknownName { value: s.to_string(), what: $what, allowed: $allowed })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(TaxpayerKind, "taxpayer kind", "general (一般纳税人) or small-scale (小规模纳税人)",
    General => "general", "一般纳税人", ["一般"];
    SmallScale => "small_scale", "小规模纳税人", ["small-scale", "小规模"]);

named_enum!(Channel, "channel", "leqi (乐企) or etax (电子税局)",
    Leqi => "leqi", "乐企", [];
    Etax => "etax", "电子税局", []);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enterprise {
    pub tax_no: TaxNo,
    pub name: String,
    pub taxpayer_kind: TaxpayerKind,
    /// 电子税局账号; one account may manage several enterprises.
    pub etax_account: String,
    pub channel: Channel,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncScheme {
    pub code: String,
    pub tax_no: TaxNo,
    pub start_date: NaiveDate,
    pub active: bool,
    /// 进项状态更新的发票是否查验入库: a pooled invoice a download reports with another status
    /// is verified again (its lines and deductibility renewed), even when downloads are pooled
    /// unverified (`key_element_check = 0`).
    #[serde(default)]
    pub verify_changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_english_and_chinese() {
        assert_eq!("小规模".parse::<TaxpayerKind>().unwrap(), TaxpayerKind::SmallScale);
        assert_eq!("small-scale".parse::<TaxpayerKind>().unwrap(), TaxpayerKind::SmallScale);
        assert_eq!("一般纳税人".parse::<TaxpayerKind>().unwrap(), TaxpayerKind::General);
        assert_eq!("电子税局".parse::<Channel>().unwrap(), Channel::Etax);
        let err = "rpa".parse::<Channel>().unwrap_err();
        assert!(err.to_string().contains("leqi"), "{err}");
    }
}
