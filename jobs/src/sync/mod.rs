//! The four input-invoice sync jobs (SPEC.md "Scheduled jobs"; seed 004 手动激活全量发票同步任务).

pub mod apply_cache;
pub mod deal_task;
pub mod download_apply;
pub mod fetch;

use fapiao_channel::ChannelError;
use fapiao_channel::codes::error as code;

use crate::job::JobError;

/// 该应用查验权限过期 is permanent: the run fails loudly and names the enterprise.
fn fail_if_permanent(e: &ChannelError, tax_no: &str, name: &str) -> Result<(), JobError> {
    if e.api_code() == Some(code::VERIFY_PERMISSION_EXPIRED) {
        return Err(JobError::Failed(format!("enterprise {tax_no} {name}: {e}")));
    }
    Ok(())
}
