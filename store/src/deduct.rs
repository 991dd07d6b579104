//! 抵扣类勾选 in the database: which pool invoices may be selected or unselected, a batch stored
//! with its invoices before the bureau is asked, and the bureau's answer applied — each invoice
//! ends exactly as the bureau reports it, and every step is in the selection log (rim_select_log).

use chrono::{DateTime, Utc};
use fapiao_schemas::deduction::TaxPeriod;
use fapiao_schemas::{SelectAction, SelectBatchState, SelectOutcome, SelectState};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// A pool invoice as selection sees it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Selectable {
    pub tax_no: String,
    pub invoice_code: String,
    pub invoice_num: String,
    pub status: String,
    pub deductible: bool,
    pub deductible_reason: Option<String>,
    pub select_state: SelectState,
    pub select_period: Option<String>,
}

impl Selectable {
    /// Why this invoice cannot take part in `action` for `period` (our side, before the bureau).
    pub fn refusal(&self, action: SelectAction, period: TaxPeriod) -> Option<String> {
        let num = &self.invoice_num;
        let period_text = period.to_string();
        match (action, self.select_state) {
            (_, SelectState::Selecting | SelectState::Unselecting) => {
                Some(format!("发票{num}{}，批次未完成", self.select_state.label_zh()))
            }
            (SelectAction::Select, SelectState::Selected) => {
                Some(format!("发票{num}已勾选（所属期{}）", self.select_period.as_deref().unwrap_or("")))
            }
            (SelectAction::Select, _)
                if !matches!(self.status.as_str(), "normal" | "partially_red_flushed") =>
            {
                Some(format!("发票{num}状态为{}，不能勾选", self.status))
            }
            (SelectAction::Select, _) if !self.deductible => Some(format!(
                "发票{num}不可抵扣（{}），不能勾选",
                self.deductible_reason.as_deref().unwrap_or("")
            )),
            (SelectAction::Unselect, SelectState::Unselected) => Some(format!("发票{num}未勾选")),
            (SelectAction::Unselect, _) if self.select_period.as_deref() != Some(period_text.as_str()) => {
                Some(format!(
                    "发票{num}勾选所属期为{}，与{period}不一致",
                    self.select_period.as_deref().unwrap_or("")
                ))
            }
            _ => None,
        }
    }
}

const SELECTABLE: &str = "SELECT tax_no, invoice_code, invoice_num, status, deductible, deductible_reason,
        select_state, select_period FROM invoice_pool";

/// The pool invoices with these numbers (within `tax_no` when given). Numbers not in the pool are
/// NotFound (nothing is done); a number in two enterprises' pools needs `tax_no`.
pub async fn find(
    pool: &PgPool,
    numbers: &[String],
    tax_no: Option<&str>,
) -> Result<Vec<Selectable>, StoreError> {
    let sql = format!(
        "{SELECTABLE} WHERE invoice_num = ANY($1) AND ($2::text IS NULL OR tax_no = $2) ORDER BY tax_no, invoice_num"
    );
    let found: Vec<Selectable> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(numbers).bind(tax_no).fetch_all(pool).await?;
    let missing: Vec<&str> =
        numbers.iter().filter(|n| !found.iter().any(|f| &f.invoice_num == *n)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(StoreError::NotFound(format!("票池中没有发票{}", missing.join("、"))));
    }
    for n in numbers {
        if found.iter().filter(|f| &f.invoice_num == n).count() > 1 {
            return Err(StoreError::Invalid(format!("发票号码{n}在多个企业的票池中，请用--tax-no指定企业")));
        }
    }
    Ok(found)
}

/// A batch about to be sent.
#[derive(Debug)]
pub struct NewBatch<'a> {
    pub batch_no: &'a str,
    pub tax_no: &'a str,
    pub period: TaxPeriod,
    pub action: SelectAction,
    pub sync: bool,
    pub actor: &'a str,
    /// (invoice code, invoice number)
    pub invoices: &'a [(String, String)],
}

/// Store the batch and its invoices, put each invoice in 勾选中 / 取消勾选中 and log it — all or
/// nothing. Checked again under a lock on the invoices: one refused invoice refuses the batch.
pub async fn open_batch(pool: &PgPool, b: &NewBatch<'_>) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let (codes, nums): (Vec<String>, Vec<String>) = b.invoices.iter().cloned().unzip();
    let sql = format!(
        "{SELECTABLE} WHERE tax_no = $1 AND (invoice_code, invoice_num) IN (SELECT * FROM unnest($2::text[], $3::text[]))
          ORDER BY invoice_num FOR UPDATE"
    );
    let now: Vec<Selectable> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(b.tax_no)
        .bind(&codes)
        .bind(&nums)
        .fetch_all(&mut *tx)
        .await?;
    if now.len() != b.invoices.len() {
        return Err(StoreError::NotFound(format!("票池中没有部分发票（企业{}）", b.tax_no)));
    }
    let refusals: Vec<String> = now.iter().filter_map(|s| s.refusal(b.action, b.period)).collect();
    if !refusals.is_empty() {
        return Err(StoreError::Refused { code: "SELECT_NOT_ALLOWED", message: refusals.join("；") });
    }
    let batch_id: i64 = sqlx::query_scalar(
        "INSERT INTO select_batch (batch_no, tax_no, period, action, sync, actor) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(b.batch_no)
    .bind(b.tax_no)
    .bind(b.period.to_string())
    .bind(b.action)
    .bind(b.sync)
    .bind(b.actor)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO select_batch_item (batch_id, tax_no, invoice_code, invoice_num)
         SELECT $1, $2, c, n FROM unnest($3::text[], $4::text[]) AS t(c, n)",
    )
    .bind(batch_id)
    .bind(b.tax_no)
    .bind(&codes)
    .bind(&nums)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE invoice_pool SET select_state = $4
          WHERE tax_no = $1 AND (invoice_code, invoice_num) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
    )
    .bind(b.tax_no)
    .bind(&codes)
    .bind(&nums)
    .bind(b.action.states().0)
    .execute(&mut *tx)
    .await?;
    log_items(&mut tx, batch_id, SelectOutcome::Pending, "已提交", b.actor).await?;
    tx.commit().await?;
    Ok(())
}

/// One invoice's result as the bureau reports it.
#[derive(Clone, Debug)]
pub struct ItemResult {
    pub invoice_code: String,
    pub invoice_num: String,
    pub success: bool,
    pub message: String,
}

/// The bureau's answer about a batch.
#[derive(Clone, Debug)]
pub struct Answer {
    pub state: SelectBatchState,
    pub message: String,
    pub results: Vec<ItemResult>,
}

/// A batch with its counts.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct BatchRow {
    pub batch_no: String,
    pub tax_no: String,
    pub period: String,
    pub action: SelectAction,
    pub sync: bool,
    pub state: SelectBatchState,
    pub message: String,
    pub acknowledged: bool,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
}

const BATCH: &str =
    "SELECT b.batch_no, b.tax_no, b.period, b.action, b.sync, b.state, b.message, b.acknowledged, b.actor,
        b.created_at, b.updated_at, count(i.*) AS total,
        count(*) FILTER (WHERE i.outcome = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE i.outcome = 'failed') AS failed,
        count(*) FILTER (WHERE i.outcome = 'pending') AS pending
   FROM select_batch b LEFT JOIN select_batch_item i ON i.batch_id = b.id";

/// Apply the bureau's answer: the batch's state; once it is final, each invoice's result — a
/// success moves the invoice to 已勾选 / 未勾选, anything else puts it back where it was. An
/// answer about a batch already final changes nothing.
pub async fn apply(
    pool: &PgPool,
    batch_no: &str,
    answer: &Answer,
    actor: &str,
) -> Result<BatchRow, StoreError> {
    let mut tx = pool.begin().await?;
    let found: Option<(i64, SelectAction, String, SelectBatchState)> =
        sqlx::query_as("SELECT id, action, period, state FROM select_batch WHERE batch_no = $1 FOR UPDATE")
            .bind(batch_no)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((id, action, period, was)) = found else {
        return Err(StoreError::NotFound(format!("勾选批次{batch_no}不存在")));
    };
    if !was.is_open() {
        tx.commit().await?;
        return batch(pool, batch_no).await;
    }
    sqlx::query("UPDATE select_batch SET state = $2, message = $3, acknowledged = true, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(answer.state)
        .bind(&answer.message)
        .execute(&mut *tx)
        .await?;
    let (_, done_state) = action.states();
    let back = match action {
        SelectAction::Select => SelectState::Unselected,
        SelectAction::Unselect => SelectState::Selected,
    };
    match answer.state {
        SelectBatchState::Pending | SelectBatchState::Processing => {}
        SelectBatchState::Done => {
            for r in &answer.results {
                let outcome = if r.success { SelectOutcome::Succeeded } else { SelectOutcome::Failed };
                settle_item(&mut tx, id, Some((&r.invoice_code, &r.invoice_num)), outcome, &r.message)
                    .await?;
            }
            // Invoices the bureau said nothing about did not change there.
            settle_item(&mut tx, id, None, SelectOutcome::Failed, "税局未返回该发票的结果").await?;
        }
        SelectBatchState::Failed => {
            settle_item(&mut tx, id, None, SelectOutcome::Failed, &answer.message).await?
        }
        SelectBatchState::Stopped => {
            settle_item(&mut tx, id, None, SelectOutcome::Stopped, "批次已停止").await?
        }
    }
    if !answer.state.is_open() {
        // The invoices follow their items: succeeded → the action's end state, else back.
        let moved: Vec<(String, String, String, SelectOutcome)> = sqlx::query_as(
            "UPDATE invoice_pool p
                SET select_state = CASE WHEN i.outcome = 'succeeded' THEN $2 ELSE $3 END,
                    select_period = CASE WHEN i.outcome = 'succeeded' AND $2 = 'selected' THEN $4
                                         WHEN i.outcome = 'succeeded' THEN NULL ELSE p.select_period END
               FROM select_batch_item i
              WHERE i.batch_id = $1 AND p.tax_no = i.tax_no AND p.invoice_code = i.invoice_code
                AND p.invoice_num = i.invoice_num
          RETURNING p.tax_no, p.invoice_code, p.invoice_num, i.outcome",
        )
        .bind(id)
        .bind(done_state)
        .bind(back)
        .bind(&period)
        .fetch_all(&mut *tx)
        .await?;
        for (tax_no, code, num, _) in moved.iter().filter(|m| m.3 == SelectOutcome::Succeeded) {
            let (event, words) = match action {
                SelectAction::Select => ("selected", format!("勾选成功：所属期{period}，批次{batch_no}")),
                SelectAction::Unselect => {
                    ("unselected", format!("取消勾选成功：所属期{period}，批次{batch_no}"))
                }
            };
            crate::pool::log(&mut tx, (tax_no, code, num), event, &words).await?;
        }
        log_items(&mut tx, id, SelectOutcome::Succeeded, "", actor).await?;
        log_items(&mut tx, id, SelectOutcome::Failed, "", actor).await?;
        log_items(&mut tx, id, SelectOutcome::Stopped, "", actor).await?;
    }
    tx.commit().await?;
    batch(pool, batch_no).await
}

/// Give pending items of batch `id` their outcome: one invoice (`Some((code, number))`) or all
/// still pending (`None`).
async fn settle_item(
    db: &mut PgConnection,
    id: i64,
    invoice: Option<(&str, &str)>,
    outcome: SelectOutcome,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE select_batch_item SET outcome = $4, message = $5
          WHERE batch_id = $1 AND outcome = 'pending'
            AND ($2::text IS NULL OR (invoice_code = $2 AND invoice_num = $3))",
    )
    .bind(id)
    .bind(invoice.map(|i| i.0))
    .bind(invoice.map(|i| i.1))
    .bind(outcome)
    .bind(message)
    .execute(db)
    .await?;
    Ok(())
}

/// One selection-log row per item of batch `id` with `outcome` (its own message, or `note`).
async fn log_items(
    db: &mut PgConnection,
    id: i64,
    outcome: SelectOutcome,
    note: &str,
    actor: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO select_log (tax_no, invoice_code, invoice_num, batch_no, action, period, outcome, message, actor)
         SELECT i.tax_no, i.invoice_code, i.invoice_num, b.batch_no, b.action, b.period, i.outcome,
                CASE WHEN i.message = '' THEN $3 ELSE i.message END, $4
           FROM select_batch_item i JOIN select_batch b ON b.id = i.batch_id
          WHERE i.batch_id = $1 AND i.outcome = $2 ORDER BY i.invoice_num",
    )
    .bind(id)
    .bind(outcome)
    .bind(note)
    .bind(actor)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn batch(pool: &PgPool, batch_no: &str) -> Result<BatchRow, StoreError> {
    let sql = format!("{BATCH} WHERE b.batch_no = $1 GROUP BY b.id");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(batch_no)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("勾选批次{batch_no}不存在")))
}

/// Batches, newest first; `open_only`: those the bureau may still change.
pub async fn batches(
    pool: &PgPool,
    tax_no: Option<&str>,
    open_only: bool,
    limit: i64,
) -> Result<Vec<BatchRow>, StoreError> {
    let sql = format!(
        "{BATCH} WHERE ($1::text IS NULL OR b.tax_no = $1) AND (NOT $2 OR b.state IN ('pending', 'processing'))
          GROUP BY b.id ORDER BY b.id DESC LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tax_no)
        .bind(open_only)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// The (code, number) pairs of a batch, in order: what is sent again when the bureau never got it.
pub async fn batch_invoices(pool: &PgPool, batch_no: &str) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT i.invoice_code, i.invoice_num FROM select_batch_item i JOIN select_batch b ON b.id = i.batch_id
          WHERE b.batch_no = $1 ORDER BY i.invoice_num",
    )
    .bind(batch_no)
    .fetch_all(pool)
    .await?)
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct SelectLogRow {
    pub at: DateTime<Utc>,
    pub batch_no: String,
    pub action: SelectAction,
    pub period: String,
    pub outcome: SelectOutcome,
    pub message: String,
    pub actor: String,
}

/// An invoice's selection: where it stands and every step it went through.
#[derive(Clone, Debug, Serialize)]
pub struct InvoiceSelection {
    pub invoice: Selectable,
    pub log: Vec<SelectLogRow>,
}

pub async fn status(
    pool: &PgPool,
    number: &str,
    tax_no: Option<&str>,
) -> Result<InvoiceSelection, StoreError> {
    let invoice = find(pool, &[number.to_string()], tax_no).await?.remove(0);
    let log = sqlx::query_as(
        "SELECT at, batch_no, action, period, outcome, message, actor FROM select_log
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 ORDER BY id",
    )
    .bind(&invoice.tax_no)
    .bind(&invoice.invoice_code)
    .bind(&invoice.invoice_num)
    .fetch_all(pool)
    .await?;
    Ok(InvoiceSelection { invoice, log })
}

/// A download with deduction data reports an invoice selected for `period` (`None`: not
/// selected) — selected on the e-tax website, say. Where the pool says otherwise and no batch of
/// ours is in flight for it, the pool takes the bureau's word and both logs say so. `false` when
/// nothing changed.
pub async fn bureau_reports(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    period: Option<&str>,
    source: &str,
) -> sqlx::Result<bool> {
    let (tax_no, code, num) = key;
    let was: Option<(SelectState, Option<String>)> = sqlx::query_as(
        "SELECT select_state, select_period FROM invoice_pool
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 FOR UPDATE",
    )
    .bind(tax_no)
    .bind(code)
    .bind(num)
    .fetch_optional(&mut *db)
    .await?;
    let Some((state, was_period)) = was else { return Ok(false) };
    if matches!(state, SelectState::Selecting | SelectState::Unselecting) || was_period.as_deref() == period {
        return Ok(false);
    }
    let now = if period.is_some() { SelectState::Selected } else { SelectState::Unselected };
    sqlx::query(
        "UPDATE invoice_pool SET select_state = $4, select_period = $5
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3",
    )
    .bind(tax_no)
    .bind(code)
    .bind(num)
    .bind(now)
    .bind(period)
    .execute(&mut *db)
    .await?;
    let (action, event, shown) = match period {
        Some(p) => (SelectAction::Select, "selected", p),
        None => (SelectAction::Unselect, "unselected", was_period.as_deref().unwrap_or("")),
    };
    let words = format!("{source}：税局勾选数据为{}（所属期{shown}）", now.label_zh());
    sqlx::query(
        "INSERT INTO select_log (tax_no, invoice_code, invoice_num, batch_no, action, period, outcome, message, actor)
         VALUES ($1, $2, $3, '', $4, $5, 'succeeded', $6, $7)",
    )
    .bind(tax_no)
    .bind(code)
    .bind(num)
    .bind(action)
    .bind(shown)
    .bind(&words)
    .bind(source)
    .execute(&mut *db)
    .await?;
    crate::pool::log(db, key, event, &words).await?;
    Ok(true)
}
