//! 全票池 as a receiving-side user sees it — invoices with filters, one whole with its lines and
//! its log — and the one place a later status reaches a pooled invoice (seed 004: an invoice
//! voided, red-flushed, made abnormal or out of control after it entered): the row takes the new
//! status, deductibility is decided again by the one rule on its stored lines, and the change is
//! kept in `invoice_pool_log` (rim_invoice_log). Documents (单据) use parts of an invoice's amount
//! and release them (`use_invoice`, `release_document`).

use chrono::{DateTime, NaiveDate, Utc};
use fapiao_schemas::deductibility::{self, InvoiceStatus, Line, SpecialBusiness};
use fapiao_schemas::params::{RIM_COMPLIANCE_REIMBURSE_DAYS, RIM_COMPLIANCE_SINGLE_USE};
use fapiao_schemas::{Coded, InvoiceKind, SelectState};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

/// Which pool invoices to list; every field narrows.
#[derive(Clone, Debug, Default)]
pub struct PoolFilter {
    /// The receiving enterprise (购方).
    pub tax_no: Option<String>,
    /// Seller: part of the name, or the tax number.
    pub seller: Option<String>,
    pub deductible: Option<bool>,
    pub verified: Option<bool>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub kind: Option<InvoiceKind>,
    /// The channel's status word (normal, void, red_flushed, …).
    pub status: Option<String>,
    /// 已勾选 (selected for deduction) or not.
    pub selected: Option<bool>,
    pub limit: i64,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PoolRow {
    pub tax_no: String,
    pub invoice_code: String,
    pub invoice_num: String,
    pub invoice_kind: String,
    pub invoice_date: NaiveDate,
    pub seller_name: String,
    pub seller_tax_no: String,
    pub buyer_name: String,
    pub amount: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub status: String,
    /// tax_bureau (downloaded) or import.
    pub source: String,
    pub verified: bool,
    pub deductible: bool,
    pub deductible_reason: Option<String>,
    pub signed: bool,
    pub created_at: DateTime<Utc>,
    /// 勾选状态 and the tax period it is selected for.
    pub select_state: SelectState,
    pub select_period: Option<String>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PoolLine {
    pub seq: i32,
    pub goods_name: String,
    pub tax_rate: Decimal,
    pub amount: Decimal,
    pub tax: Decimal,
    pub business_type: String,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PoolLog {
    pub at: DateTime<Utc>,
    pub event: String,
    pub detail: String,
}

/// A document's use of part of an invoice.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PoolUse {
    pub id: i64,
    pub document_no: String,
    pub voucher_no: Option<String>,
    pub amount: Decimal,
    pub used_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

/// One pool invoice whole.
#[derive(Clone, Debug, Serialize)]
pub struct PoolDetail {
    pub invoice: PoolRow,
    pub lines: Vec<PoolLine>,
    /// Documents using it (released ones too, with when).
    pub uses: Vec<PoolUse>,
    /// What is still free to use: the total less the uses not released.
    pub available: Decimal,
    pub log: Vec<PoolLog>,
    /// 合规性校验: each configured rule's outcome, where it was applied.
    pub compliance: Vec<ComplianceTrace>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ComplianceTrace {
    pub at: DateTime<Utc>,
    /// `import` or `use`.
    pub stage: String,
    pub rule: String,
    pub passed: bool,
    pub detail: String,
}

const ROW: &str = "SELECT tax_no, invoice_code, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no, buyer_name,
        amount, tax, total, status, source, verified, deductible, deductible_reason, signed, created_at,
        select_state, select_period FROM invoice_pool";

/// Newest first.
pub async fn list(pool: &PgPool, f: &PoolFilter) -> Result<Vec<PoolRow>, StoreError> {
    let sql = format!(
        "{ROW} WHERE ($1::text IS NULL OR tax_no = $1)
            AND ($2::text IS NULL OR seller_tax_no = $2 OR seller_name LIKE '%' || $2 || '%')
            AND ($3::boolean IS NULL OR deductible = $3) AND ($4::boolean IS NULL OR verified = $4)
            AND ($5::date IS NULL OR invoice_date >= $5) AND ($6::date IS NULL OR invoice_date <= $6)
            AND ($7::text IS NULL OR invoice_kind = $7) AND ($8::text IS NULL OR status = $8)
            AND ($10::boolean IS NULL OR (select_state = 'selected') = $10)
          ORDER BY invoice_date DESC, invoice_num DESC LIMIT $9"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&f.tax_no)
        .bind(&f.seller)
        .bind(f.deductible)
        .bind(f.verified)
        .bind(f.from)
        .bind(f.to)
        .bind(f.kind.map(InvoiceKind::as_str))
        .bind(&f.status)
        .bind(f.limit)
        .bind(f.selected)
        .fetch_all(pool)
        .await?)
}

/// One invoice by number (and code / receiving enterprise where the number alone is ambiguous).
pub async fn show(
    pool: &PgPool,
    invoice_num: &str,
    invoice_code: Option<&str>,
    tax_no: Option<&str>,
) -> Result<PoolDetail, StoreError> {
    let sql = format!(
        "{ROW} WHERE invoice_num = $1 AND ($2::text IS NULL OR invoice_code = $2) AND ($3::text IS NULL OR tax_no = $3)
          ORDER BY tax_no LIMIT 1"
    );
    let invoice: PoolRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(invoice_num)
        .bind(invoice_code)
        .bind(tax_no)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("票池中没有发票{invoice_num}")))?;
    let key = (invoice.tax_no.as_str(), invoice.invoice_code.as_str(), invoice.invoice_num.as_str());
    let lines = of_invoice(
        pool,
        key,
        "SELECT seq, goods_name, tax_rate, amount, tax, business_type FROM invoice_pool_line
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 ORDER BY seq",
    )
    .await?;
    let log = of_invoice(
        pool,
        key,
        "SELECT at, event, detail FROM invoice_pool_log WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 ORDER BY id",
    )
    .await?;
    let log = with_entry(pool, key, log).await?;
    let uses: Vec<PoolUse> = of_invoice(
        pool,
        key,
        "SELECT id, document_no, voucher_no, amount, used_at, released_at FROM invoice_use
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 ORDER BY id",
    )
    .await?;
    let compliance = of_invoice(
        pool,
        key,
        "SELECT at, stage, rule, passed, detail FROM compliance_trace
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 ORDER BY id",
    )
    .await?;
    let used: Decimal = uses.iter().filter(|u| u.released_at.is_none()).map(|u| u.amount).sum();
    let available = invoice.total.abs() - used;
    Ok(PoolDetail { invoice, lines, uses, available, log, compliance })
}

/// The log with how the invoice entered the pool, how it was verified and signed — read from
/// the pool row (written once there, so deal-task adds no log row per invoice) — in time order
/// with the stored events.
async fn with_entry(
    pool: &PgPool,
    key: (&str, &str, &str),
    stored: Vec<PoolLog>,
) -> sqlx::Result<Vec<PoolLog>> {
    #[derive(sqlx::FromRow)]
    struct Entry {
        source: String,
        verified: bool,
        created_at: DateTime<Utc>,
        signed_at: Option<DateTime<Utc>>,
        staging_id: Option<i64>,
        import_batch_id: Option<i64>,
    }
    let e: Entry = sqlx::query_as(
        "SELECT source, verified, created_at, signed_at, staging_id, import_batch_id FROM invoice_pool
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .fetch_one(pool)
    .await?;
    let checked = if e.verified { "，已查验" } else { "，未查验" };
    let entered = match (e.source.as_str(), e.import_batch_id, e.staging_id) {
        ("import", Some(b), _) => format!("Excel导入入池（导入批次{b}）{checked}"),
        ("import", None, _) => format!("导入入池{checked}"),
        (_, _, Some(s)) => format!("税局下载入池（下载暂存行{s}）{checked}"),
        _ => format!("税局下载入池{checked}"),
    };
    let mut all = vec![PoolLog { at: e.created_at, event: "entered".into(), detail: entered }];
    if let Some(at) = e.signed_at {
        all.push(PoolLog { at, event: "signed".into(), detail: "自动签收".into() });
    }
    all.extend(stored);
    all.sort_by_key(|l| l.at);
    Ok(all)
}

/// The rows of one invoice's table (`$1..$3` = tax number, code, number).
async fn of_invoice<T>(pool: &PgPool, key: (&str, &str, &str), sql: &'static str) -> sqlx::Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(sql).bind(key.0).bind(key.1).bind(key.2).fetch_all(pool).await
}

/// Which pool invoice: its number, with code and receiving enterprise where needed.
#[derive(Clone, Copy, Debug)]
pub struct InvoiceRef<'a> {
    pub invoice_num: &'a str,
    pub invoice_code: Option<&'a str>,
    pub tax_no: Option<&'a str>,
}

/// A document (单据) uses `amount` of an invoice, under its voucher number. Refused verbatim
/// when more than what is free (保存发票关系失败，发票…使用金额超出剩余可用金额…元，保存失败);
/// checked under a lock on the invoice, so two documents cannot both take the last of it.
pub async fn use_invoice(
    pool: &PgPool,
    invoice: InvoiceRef<'_>,
    document_no: &str,
    voucher_no: Option<&str>,
    amount: Decimal,
) -> Result<PoolUse, StoreError> {
    if document_no.trim().is_empty() {
        return Err(StoreError::Invalid("单据编号不能为空".into()));
    }
    if amount <= Decimal::ZERO || amount.scale() > 2 {
        return Err(StoreError::Invalid(format!("使用金额须为大于0、最多两位小数的金额，实际为{amount}")));
    }
    let mut tx = pool.begin().await?;
    let found: Option<(String, String, String, Decimal, String, NaiveDate)> = sqlx::query_as(
        "SELECT tax_no, invoice_code, invoice_num, total, status, invoice_date FROM invoice_pool
          WHERE invoice_num = $1 AND ($2::text IS NULL OR invoice_code = $2) AND ($3::text IS NULL OR tax_no = $3)
          ORDER BY tax_no LIMIT 1 FOR UPDATE",
    )
    .bind(invoice.invoice_num)
    .bind(invoice.invoice_code)
    .bind(invoice.tax_no)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((tax_no, code, num, total, status, invoice_date)) = found else {
        return Err(StoreError::NotFound(format!("票池中没有发票{}", invoice.invoice_num)));
    };
    let key = (tax_no.as_str(), code.as_str(), num.as_str());
    // 合规性校验: each rule the enterprise configured, traced whether it passes or not.
    let trace = use_rules(&mut tx, key, invoice_date, document_no).await?;
    if let Some(failed) = trace.iter().find(|t| !t.passed) {
        let refusal = StoreError::Refused { code: failed.code, message: failed.message.clone() };
        drop(tx);
        // The refusal's trace outlives the refused use.
        let mut db = pool.acquire().await?;
        write_trace(&mut db, key, "use", &trace).await?;
        return Err(refusal);
    }
    write_trace(&mut tx, key, "use", &trace).await?;
    if !matches!(status.as_str(), "normal" | "partially_red_flushed") {
        return Err(StoreError::Refused {
            code: "INVOICE_NOT_USABLE",
            message: format!("发票{num}状态为{status}，不能被单据使用"),
        });
    }
    let used: Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(amount), 0) FROM invoice_use
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 AND released_at IS NULL",
    )
    .bind(&tax_no)
    .bind(&code)
    .bind(&num)
    .fetch_one(&mut *tx)
    .await?;
    let available = total.abs() - used;
    if amount > available {
        return Err(StoreError::Refused {
            code: "INVOICE_USE_EXCEEDS_AVAILABLE",
            message: format!("保存发票关系失败，发票{num}使用金额超出剩余可用金额{available}元，保存失败"),
        });
    }
    let row: PoolUse = sqlx::query_as(
        "INSERT INTO invoice_use (tax_no, invoice_code, invoice_num, document_no, voucher_no, amount)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, document_no, voucher_no, amount, used_at, released_at",
    )
    .bind(&tax_no)
    .bind(&code)
    .bind(&num)
    .bind(document_no)
    .bind(voucher_no)
    .bind(amount)
    .fetch_one(&mut *tx)
    .await?;
    let voucher = voucher_no.map(|v| format!("，凭证号{v}")).unwrap_or_default();
    log(&mut tx, (&tax_no, &code, &num), "used", &format!("单据{document_no}使用{amount}元{voucher}"))
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// One compliance rule's outcome.
struct RuleOutcome {
    rule: &'static str,
    passed: bool,
    /// The refusal's code and message (when not passed), or what was checked.
    code: &'static str,
    message: String,
}

/// The rules an enterprise configured that apply when a document uses an invoice.
async fn use_rules(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    invoice_date: NaiveDate,
    document_no: &str,
) -> Result<Vec<RuleOutcome>, StoreError> {
    let (tax_no, code, num) = key;
    let mut out = Vec::new();
    let days: Option<String> = crate::params::value(&mut *db, RIM_COMPLIANCE_REIMBURSE_DAYS, tax_no).await?;
    if let Some(days) = days.and_then(|d| d.parse::<i64>().ok()) {
        let today: NaiveDate = sqlx::query_scalar("SELECT current_date").fetch_one(&mut *db).await?;
        let passed = invoice_date >= today - chrono::Duration::days(days);
        out.push(RuleOutcome {
            rule: "REIMBURSEMENT_PERIOD",
            passed,
            code: "REIMBURSEMENT_PERIOD_EXCEEDED",
            message: if passed {
                format!("报销期限{days}天：开票日期{invoice_date}")
            } else {
                fapiao_schemas::messages::REIMBURSEMENT_PERIOD_EXCEEDED.into()
            },
        });
    }
    if crate::params::value(&mut *db, RIM_COMPLIANCE_SINGLE_USE, tax_no).await?.as_deref() == Some("1") {
        let other: Option<String> = sqlx::query_scalar(
            "SELECT document_no FROM invoice_use WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3
                AND released_at IS NULL AND document_no <> $4 ORDER BY id LIMIT 1",
        )
        .bind(tax_no)
        .bind(code)
        .bind(num)
        .bind(document_no)
        .fetch_optional(&mut *db)
        .await?;
        out.push(RuleOutcome {
            rule: "SINGLE_USE",
            passed: other.is_none(),
            code: "INVOICE_ALREADY_USED",
            message: match other {
                Some(d) => format!("{}（单据{d}）", fapiao_schemas::messages::INVOICE_ALREADY_USED),
                None => "未被其他单据使用".into(),
            },
        });
    }
    Ok(out)
}

async fn write_trace(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    stage: &str,
    trace: &[RuleOutcome],
) -> sqlx::Result<()> {
    for t in trace {
        sqlx::query(
            "INSERT INTO compliance_trace (tax_no, invoice_code, invoice_num, stage, rule, passed, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.0)
        .bind(key.1)
        .bind(key.2)
        .bind(stage)
        .bind(t.rule)
        .bind(t.passed)
        .bind(&t.message)
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}

/// A document was deleted: every invoice amount it used is free again. How many uses ended.
pub async fn release_document(pool: &PgPool, document_no: &str) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let released: Vec<(String, String, String, Decimal)> = sqlx::query_as(
        "UPDATE invoice_use SET released_at = now() WHERE document_no = $1 AND released_at IS NULL
         RETURNING tax_no, invoice_code, invoice_num, amount",
    )
    .bind(document_no)
    .fetch_all(&mut *tx)
    .await?;
    if released.is_empty() {
        return Err(StoreError::NotFound(format!("单据{document_no}没有占用任何发票")));
    }
    for (tax_no, code, num, amount) in &released {
        log(&mut tx, (tax_no, code, num), "released", &format!("单据{document_no}删除，释放{amount}元"))
            .await?;
    }
    tx.commit().await?;
    Ok(released.len() as u64)
}

pub(crate) async fn log(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    event: &str,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO invoice_pool_log (tax_no, invoice_code, invoice_num, event, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(key.0)
        .bind(key.1)
        .bind(key.2)
        .bind(event)
        .bind(detail)
        .execute(db)
        .await?;
    Ok(())
}

/// A pooled invoice as the rule needs it.
#[derive(sqlx::FromRow)]
struct Judged {
    invoice_kind: String,
    invoice_property: i16,
    blockchain: bool,
    invoice_date: NaiveDate,
    special_business: String,
    status: String,
    deductible: bool,
}

/// A line as a verification returned it, to be stored.
#[derive(Clone, Debug)]
pub struct VerifiedLineIn {
    pub goods_name: String,
    pub tax_rate: Decimal,
    pub amount: Decimal,
    pub tax: Decimal,
    pub business_type: String,
}

/// The bureau reports `status` for a pooled invoice: if it differs, the row takes it, its
/// deductibility is decided again on its stored lines, and the change is logged. `false` when
/// nothing changed (or the invoice is not in the pool).
pub async fn status_changed(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    status: &str,
    source: &str,
) -> Result<bool, sqlx::Error> {
    news(db, key, status, None, source).await
}

/// A pooled invoice verified again (查验: the sync scheme's 进项状态更新的发票是否查验入库, or a
/// status query): its status and lines replace what was stored, deductibility is decided again
/// on them, and it is logged. `false` when the invoice is not in the pool.
pub async fn reverified(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    status: &str,
    lines: &[VerifiedLineIn],
    source: &str,
) -> Result<bool, sqlx::Error> {
    news(db, key, status, Some(lines), source).await
}

async fn news(
    db: &mut PgConnection,
    key: (&str, &str, &str),
    status: &str,
    verified_lines: Option<&[VerifiedLineIn]>,
    source: &str,
) -> Result<bool, sqlx::Error> {
    let (tax_no, code, num) = key;
    let Some(was): Option<Judged> = sqlx::query_as(
        "SELECT invoice_kind, invoice_property, blockchain, invoice_date, special_business, status, deductible
           FROM invoice_pool WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 FOR UPDATE",
    )
    .bind(tax_no)
    .bind(code)
    .bind(num)
    .fetch_optional(&mut *db)
    .await?
    else {
        return Ok(false);
    };
    if was.status == status && verified_lines.is_none() {
        return Ok(false);
    }
    if let Some(lines) = verified_lines {
        sqlx::query(
            "DELETE FROM invoice_pool_line WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3",
        )
        .bind(tax_no)
        .bind(code)
        .bind(num)
        .execute(&mut *db)
        .await?;
        for (seq, l) in lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO invoice_pool_line (tax_no, invoice_code, invoice_num, seq, goods_name, tax_rate, amount, tax, business_type)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(tax_no)
            .bind(code)
            .bind(num)
            .bind(seq as i32 + 1)
            .bind(&l.goods_name)
            .bind(l.tax_rate)
            .bind(l.amount)
            .bind(l.tax)
            .bind(&l.business_type)
            .execute(&mut *db)
            .await?;
        }
    }
    let lines: Vec<(String, Decimal, String)> = sqlx::query_as(
        "SELECT goods_name, tax_rate, business_type FROM invoice_pool_line
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3 ORDER BY seq",
    )
    .bind(tax_no)
    .bind(code)
    .bind(num)
    .fetch_all(&mut *db)
    .await?;
    let invoice = deductibility::Invoice {
        kind: was.invoice_kind.parse().unwrap_or(InvoiceKind::TaxctlOrdinary),
        is_blue: was.invoice_property == 0,
        is_blockchain: was.blockchain,
        status: InvoiceStatus::from_channel(status),
        issue_date: was.invoice_date,
        special_business: SpecialBusiness::parse(&was.special_business),
        lines: lines.iter().filter_map(|(goods, rate, business)| Line::of(goods, *rate, business)).collect(),
    };
    let reason = deductibility::assess(&invoice).err().map(|e| e.code());
    sqlx::query(
        "UPDATE invoice_pool SET status = $4, deductible = $5, deductible_reason = $6, verified = verified OR $7
          WHERE tax_no = $1 AND invoice_code = $2 AND invoice_num = $3",
    )
    .bind(tax_no)
    .bind(code)
    .bind(num)
    .bind(status)
    .bind(reason.is_none())
    .bind(reason)
    .bind(verified_lines.is_some())
    .execute(&mut *db)
    .await?;
    let yes_no = |d: bool| if d { "可抵扣" } else { "不可抵扣" };
    let again = verified_lines.map(|l| format!("重新查验（{}行）；", l.len())).unwrap_or_default();
    let detail = format!(
        "{source}：{again}发票状态 {} → {status}；{} → {}{}",
        was.status,
        yes_no(was.deductible),
        yes_no(reason.is_none()),
        reason.map(|r| format!("（{r}）")).unwrap_or_default()
    );
    let event = if verified_lines.is_some() { "verified" } else { "status_changed" };
    log(db, key, event, &detail).await?;
    Ok(true)
}
