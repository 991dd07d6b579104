//! 全票池 (the input side): pool invoices with filters, and one whole with its lines and its
//! operation log (status changes the bureau reported after it entered).

pub use fapiao_store::pool::{PoolDetail, PoolFilter, PoolRow};

use crate::{App, Result};

pub async fn list(app: &App, filter: &PoolFilter) -> Result<Vec<PoolRow>> {
    Ok(fapiao_store::pool::list(&app.pool, filter).await?)
}

pub async fn show(
    app: &App,
    invoice_num: &str,
    invoice_code: Option<&str>,
    tax_no: Option<&str>,
) -> Result<PoolDetail> {
    Ok(fapiao_store::pool::show(&app.pool, invoice_num, invoice_code, tax_no).await?)
}
