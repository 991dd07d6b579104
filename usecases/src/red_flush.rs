//! 发票红冲 (SPEC.md "Red-flush"): red-flush a few invoices (at most ten, one batch) or a list of
//! any length (imported with the red-flush template, worked in batches of ten; the same file again
//! resumes its unprocessed rows); decide, revoke and download red confirmation forms; step waiting
//! requests. The report of a run is one line per request or rejected row, also as xlsx.

use std::path::Path;

use fapiao_invoicing::redflush::{self, documents};
use fapiao_pipelines::import::{self, ImportError, ImportKind, ImportOptions, Problem, ReadLimits};
use fapiao_schemas::red_flush::RedFlushRuleError;
use fapiao_schemas::{Coded, RedDocumentState, RedFlushRequestState};
use serde::Serialize;
use tracing::Instrument;

pub use fapiao_invoicing::redflush::documents::{Decided, DocumentRow, Downloaded, PollReport};
pub use fapiao_invoicing::redflush::{BATCH, LineRequest, Outcome, Preview, Request};

use crate::{Actor, App, Error, Progress, Result};

/// One line of the report: a request, or a row of the list that its import rejected.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    /// The list's row (header = row 1); none for invoices named on the command line.
    pub row: Option<u32>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Line {
    fn of(outcome: Outcome, row: Option<u32>) -> Line {
        Line { row, outcome }
    }

    fn rejected_row(p: &Problem) -> Line {
        let outcome = Outcome {
            red_flush_id: None,
            invoice_num: String::new(),
            requested: None,
            reason: None,
            track: None,
            state: RedFlushRequestState::Refused,
            code: Some(p.code.clone()),
            message: Some(format!("{}：{}", p.column, p.message)),
            red_invoice_num: None,
            document_id: None,
        };
        Line { row: Some(p.row), outcome }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RedFlushReport {
    pub results: Vec<Line>,
    pub failed: usize,
}

impl RedFlushReport {
    fn of(results: Vec<Line>) -> RedFlushReport {
        RedFlushReport { failed: results.iter().filter(|l| l.outcome.failed()).count(), results }
    }

    /// Lines in `state`.
    pub fn count(&self, state: RedFlushRequestState) -> usize {
        self.results.iter().filter(|l| l.outcome.state == state).count()
    }
}

/// Red-flush at most [`BATCH`] invoices now, as one batch.
pub async fn invoices(
    app: &App,
    actor: &Actor,
    requests: &[Request],
    progress: Progress<'_, Outcome>,
) -> Result<RedFlushReport> {
    check_requests(requests)?;
    let span = tracing::info_span!("red_flush", actor = %actor, invoices = requests.len());
    async {
        let outcomes = redflush::red_flush(&app.invoicing(), None, requests, progress).await?;
        Ok(RedFlushReport::of(outcomes.into_iter().map(|o| Line::of(o, None)).collect()))
    }
    .instrument(span)
    .await
}

/// `red-flush --dry-run`: what each request would do — the amount rule's answer, the red lines
/// with their amounts and taxes, the remaining amount before and after — with nothing changed
/// and nothing sent.
pub async fn preview(app: &App, requests: &[Request]) -> Result<Vec<Preview>> {
    check_requests(requests)?;
    Ok(redflush::preview(&app.invoicing(), requests).await?)
}

/// At most [`BATCH`] requests, none of them for a zero amount.
fn check_requests(requests: &[Request]) -> Result<()> {
    if requests.is_empty() {
        return Err(Error::bad_input("USAGE", "no invoice to red-flush"));
    }
    if requests.len() > BATCH {
        return Err(Error::bad_input(
            "USAGE",
            format!("at most {BATCH} invoices per red-flush batch; use --file for a longer list"),
        ));
    }
    // A zero amount is a mistake in the request itself: refused before anything is looked at,
    // with the rule's code and message (the batch's own check would only mark its line).
    if let Some(r) = requests.iter().find(|r| r.amount.is_some_and(|a| a.is_zero())) {
        let e = RedFlushRuleError::AmountNotPositive;
        return Err(Error::bad_input(e.code(), format!("发票{}：{}（{e}）", r.invoice_num, e.message_zh())));
    }
    Ok(())
}

/// Red-flush a list file of any length: its valid rows land as a red-flush batch (a list imported
/// before resumes its unprocessed rows) and are worked in batches of [`BATCH`]; rejected rows are
/// reported on their row. `requests` is told how many requests there are before the first goes.
pub async fn list(
    app: &App,
    actor: &Actor,
    file: &Path,
    sheet: Option<String>,
    requests_known: &(dyn Fn(usize) + Send + Sync),
    progress: Progress<'_, Outcome>,
) -> Result<RedFlushReport> {
    list_in_scope(app, actor, file, sheet, None, requests_known, progress).await
}

/// [`list`] for a user of `scope` (`None`: all enterprises): a row whose invoice is not one of
/// the scope's sellers' (or is not known) is refused on its row and stays unprocessed.
pub async fn list_in_scope(
    app: &App,
    actor: &Actor,
    file: &Path,
    sheet: Option<String>,
    scope: Option<&[String]>,
    requests_known: &(dyn Fn(usize) + Send + Sync),
    progress: Progress<'_, Outcome>,
) -> Result<RedFlushReport> {
    let span = tracing::info_span!("red_flush_list", actor = %actor, file = %file.display());
    async {
        let inv = app.invoicing();
        let (batch, mut lines) = import_list(app, file, sheet).await?;
        let mut requests = redflush::requests_of_import(&inv, batch).await?;
        if let Some(scope) = scope {
            let sellers: Vec<(String, String)> = sqlx::query_as(
                "SELECT invoice_num, seller_tax_no FROM issued_invoice WHERE invoice_num = ANY($1)",
            )
            .bind(requests.iter().map(|r| r.invoice_num.clone()).collect::<Vec<_>>())
            .fetch_all(&app.pool)
            .await?;
            let in_scope =
                |r: &Request| sellers.iter().any(|(n, s)| n == &r.invoice_num && scope.contains(s));
            let (kept, refused): (Vec<Request>, Vec<Request>) = requests.into_iter().partition(in_scope);
            lines.extend(refused.iter().map(out_of_scope));
            requests = kept;
        }
        requests_known(requests.len());
        let outcomes = if requests.is_empty() {
            Vec::new()
        } else {
            redflush::red_flush(&inv, Some(batch), &requests, progress).await?
        };
        lines.extend(
            outcomes.into_iter().zip(&requests).map(|(o, r)| Line::of(o, r.row_no.map(|n| n as u32))),
        );
        lines.sort_by_key(|l| l.row);
        Ok(RedFlushReport::of(lines))
    }
    .instrument(span)
    .await
}

/// A list's row about an invoice the user may not red-flush: refused, as if unknown.
fn out_of_scope(r: &Request) -> Line {
    let outcome = Outcome {
        red_flush_id: None,
        invoice_num: r.invoice_num.clone(),
        requested: r.amount.map(|m| m.value()),
        reason: r.reason.clone(),
        track: None,
        state: RedFlushRequestState::Refused,
        code: Some("NOT_IN_SCOPE".into()),
        message: Some(format!("发票{}不存在或不在您负责的企业范围内", r.invoice_num)),
        red_invoice_num: None,
        document_id: None,
    };
    Line::of(outcome, r.row_no.map(|n| n as u32))
}

/// A request's state in the words of the pages (红冲成功, 等待确认单/信息表, …).
pub fn state_zh(state: RedFlushRequestState) -> &'static str {
    match state.as_str() {
        "refused" => "拒绝",
        "waiting" => "等待确认单/信息表",
        "issuing" => "红字发票开具中",
        "succeeded" => "红冲成功",
        "failed" => "开票失败",
        "ended" => "已终止",
        _ => "未知",
    }
}

/// Import the list (valid rows land); a list imported before resumes. Its batch, and a line per
/// rejected row.
async fn import_list(app: &App, file: &Path, sheet: Option<String>) -> Result<(i64, Vec<Line>)> {
    let options = ImportOptions {
        kind: ImportKind::RedFlush,
        sheet,
        accept_valid: true,
        limits: ReadLimits::from_settings(&app.settings.import),
        ..ImportOptions::default()
    };
    match import::import(&app.pool, file, &options, &|_| {}).await {
        Ok(summary) => {
            let rejected = summary.problems.iter().map(Line::rejected_row).collect();
            let batch = summary
                .batch_id
                .ok_or_else(|| Error::bad_input("USAGE", "no row of the list could be imported"))?;
            Ok((batch, rejected))
        }
        Err(ImportError::AlreadyImported(batch)) => Ok((batch, Vec::new())),
        Err(e) => Err(e.into()),
    }
}

/// The report as xlsx: 行号, the request, its result and why. Strings stay strings (never
/// formulas): leading formula characters are neutralized as on import reports.
pub fn write_report(path: &Path, lines: &[Line]) -> Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let headers =
        ["行号", "发票号码", "红冲金额", "红冲原因", "红冲方式", "结果", "错误代码", "说明", "红字发票号码"];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for (i, l) in lines.iter().enumerate() {
        let r = i as u32 + 1;
        if let Some(row) = l.row {
            sheet.write_number(r, 0, row)?;
        }
        let o = &l.outcome;
        let cells = [
            Some(o.invoice_num.clone()),
            o.requested.map(|d| d.to_string()),
            o.reason.clone(),
            o.track.map(|t| t.to_string()),
            Some(o.state.to_string()),
            o.code.clone(),
            o.message.clone(),
            o.red_invoice_num.clone(),
        ];
        for (c, v) in cells.iter().enumerate() {
            sheet.write_string(r, c as u16 + 1, import::neutralize(v.as_deref().unwrap_or("")))?;
        }
    }
    book.save(path)?;
    Ok(())
}

/// One stored request as it stands now.
pub async fn request(app: &App, red_flush_id: i64) -> Result<Outcome> {
    Ok(redflush::outcome(&app.invoicing(), red_flush_id).await?)
}

/// Step every waiting or issuing request once (what the red-flush-poll job does).
pub async fn poll(app: &App, actor: &Actor) -> Result<PollReport> {
    tracing::debug!(actor = %actor, "red-flush poll");
    Ok(documents::poll(&app.invoicing()).await?)
}

/// Red confirmation forms and red info sheets with their state.
pub async fn forms(app: &App) -> Result<Vec<DocumentRow>> {
    Ok(documents::list(&app.invoicing()).await?)
}

/// The forms and sheets whose seller or buyer is in `scope` (all when `None`), newest first.
pub async fn forms_in_scope(app: &App, scope: Option<&[String]>) -> Result<Vec<DocumentRow>> {
    Ok(documents::list_in_scope(&app.invoicing(), scope).await?)
}

/// One form or sheet by its ID.
pub async fn form(app: &App, id: &str) -> Result<Option<DocumentRow>> {
    Ok(documents::one(&app.invoicing(), id).await?)
}

/// Confirm (`true`) or reject a form the other party entered: its new state, and for a form the
/// buyer entered and we confirmed, the red invoice issued on it.
pub async fn decide_form(app: &App, actor: &Actor, id: &str, confirm: bool) -> Result<Decided> {
    tracing::info!(actor = %actor, form = id, confirm, "decide red confirmation form");
    Ok(documents::decide(&app.invoicing(), id, confirm).await?)
}

/// Revoke a form or a sheet: its request ends and the amount is free again.
pub async fn revoke_form(app: &App, actor: &Actor, id: &str) -> Result<RedDocumentState> {
    tracing::info!(actor = %actor, form = id, "revoke red document");
    Ok(documents::revoke(&app.invoicing(), id).await?)
}

/// 下载红字确认单/红字信息表: fetch every form concerning the tenant's enterprises and every sheet
/// they are the seller of from the channel; with `out`, also write every stored form and sheet
/// into that xlsx (written beside and renamed when complete).
pub async fn download_forms(app: &App, actor: &Actor, out: Option<&Path>) -> Result<Downloaded> {
    tracing::info!(actor = %actor, "download red confirmation forms and red info sheets");
    let inv = app.invoicing();
    let fetched = documents::download(&inv).await?;
    if let Some(out) = out {
        write_documents(out, &documents::list(&inv).await?)?;
    }
    Ok(fetched)
}

/// Forms and sheets as xlsx, one row each, strings kept strings (formula characters neutralized).
fn write_documents(path: &Path, rows: &[DocumentRow]) -> Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let headers = [
        "类型",
        "编号",
        "ID",
        "状态",
        "销方税号",
        "购方税号",
        "蓝字发票号码",
        "冲红原因",
        "金额",
        "税额",
        "价税合计",
        "录入方",
        "红冲请求",
        "更新时间",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for (i, d) in rows.iter().enumerate() {
        let kind = match d.kind {
            fapiao_schemas::RedDocumentKind::Form => "红字确认单",
            fapiao_schemas::RedDocumentKind::Sheet => "红字信息表",
        };
        let cells = [
            kind.to_string(),
            d.number.clone().unwrap_or_default(),
            d.id.clone(),
            d.state_zh.clone(),
            d.seller_tax_no.clone(),
            d.buyer_tax_no.clone(),
            d.invoice_num.clone(),
            d.red_reason.clone(),
            d.amount.to_string(),
            d.tax.to_string(),
            (d.amount + d.tax).to_string(),
            d.entered_by.clone(),
            d.red_flush_id.map(|id| id.to_string()).unwrap_or_default(),
            d.updated_at.to_rfc3339(),
        ];
        for (c, v) in cells.iter().enumerate() {
            sheet.write_string(i as u32 + 1, c as u16, import::neutralize(v))?;
        }
    }
    let part = path.with_extension("xlsx.part");
    book.save(&part)?;
    std::fs::rename(&part, path).map_err(rust_xlsxwriter::XlsxError::IoError)?;
    Ok(())
}
