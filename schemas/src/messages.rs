//! Stable English error codes next to the messages the documented system shows.
//!
//! Operators search logs and reports by code; finance reads the Chinese message. Messages that
//! appear verbatim in the seed documents are kept here character for character.

/// A rule violation or failure that has a stable code and a Chinese message.
pub trait Coded {
    /// Stable, upper-snake English code, e.g. `TAX_LINE_MISMATCH`.
    fn code(&self) -> &'static str;
    /// The message shown to users (Chinese; verbatim where the documents give one).
    fn message_zh(&self) -> String;
}

/// Seed 004 (识别失败 FAQ): an invoice whose buyer is not one of the tenant's enterprises.
pub const NOT_IN_TENANT_CODE: &str = "1130";
/// Verbatim, the space before 范围内 included: `税号:9113100MADNM7JF4N,不在租户:366045674239990272 范围内`.
pub fn not_in_tenant(tax_no: &str, tenant_id: &str) -> String {
    format!("税号:{tax_no},不在租户:{tenant_id} 范围内")
}

/// Seed 004 (必填字段为空 FAQ).
pub const REQUIRED_FIELD_EMPTY: &str = "必填字段为空，请补充！";

/// A file with its header row and no data rows under it (refused like an empty file).
pub const NO_DATA_ROWS: &str = "文件中没有数据行";

/// Seed 004 (超过企业设置的报销期限 FAQ): compliance rejection from the pool.
pub const REIMBURSEMENT_PERIOD_EXCEEDED: &str = "超过企业设置的报销期限";

/// Seed 004 (发票使用): the invoice is used by a document already (合规性校验 重复报销).
pub const INVOICE_ALREADY_USED: &str = "发票已被单据使用";

/// Seed 002 (red-flush amount rule).
pub const RED_FLUSH_REMAINING_INSUFFICIENT: &str =
    "剩余可红冲金额不足。开票管理→待开发票页面中可能存在本发票的未开票的数据，请先处理。";

/// Ours (issue 14): a red-flush of zero, told as such rather than as 剩余可红冲金额不足.
pub const RED_FLUSH_AMOUNT_NOT_POSITIVE: &str = "红冲金额必须大于0";

/// Seed 004: transient channel failure during verification/download; retry later.
pub const LOCAL_BUREAU_UNSTABLE: &str = "地方税局网络不稳定，请稍后再试";

/// Seed 004: the e-tax account was logged out (two downloads at once on one account).
pub const ACCOUNT_LOGGED_OUT: &str = "请核对用户信息或重新调用登录接口";

/// Seed 004: verification permission expired; permanent until renewed.
pub const VERIFY_PERMISSION_EXPIRED: &str = "该应用查验权限过期";

/// Seed 004: small-scale taxpayers cannot download deduction-selection data.
pub const SMALL_SCALE_NO_DEDUCTION_DOWNLOAD: &str =
    "小规模纳税人不支持抵扣类勾选数据下载，可根据企业在税局的信息，在星瀚发票云企业基础资料修改。";

/// Seed 004: the account may not submit pre-selections (预勾选) for deduction.
pub const NO_PRESELECT_PERMISSION: &str = "无预勾选权限，请配置发票主表的提交预勾选权限";

/// Seed 000/001: the bureau is repairing an issuing request; the message carries a time.
pub const BUREAU_REPAIRING_PREFIX: &str = "局端内部错误，该开票请求修复中";

/// Seed 001 (开票申请单异构对接, 常见报错1 and 2): the answer to a call without a valid
/// authorization — interface not authorized, or the access_token expired. Our answers add why.
pub const NOT_AUTHORIZED: &str = "未进行接口授权";

/// Seed 001 (获取接口授权, 常见异常): the accountId (数据中心) is wrong.
pub const ACCOUNT_ID_WRONG: &str = "数据中心accountId参数不对";

/// Seed 001 (获取接口授权, 常见异常): appId or appSecret is wrong.
pub const APP_CREDENTIALS_WRONG: &str = "appid/appsecuret参数不对";

/// Seed 001 (开票申请单撤回): a withdrawn bill's query answers 无记录.
pub const NO_RECORD: &str = "无记录";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_message_matches_the_documented_shape() {
        assert_eq!(
            not_in_tenant("9113100MADNM7JF4N", "366045674239990272"),
            "税号:9113100MADNM7JF4N,不在租户:366045674239990272 范围内"
        );
    }
}
