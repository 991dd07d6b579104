//! `/exports` (issue 19, auditors and admin): choose a period and enterprises in scope; the
//! reconciliation zip is built in the background (`fapiao_usecases::tasks::run_export`, the
//! export use case), the page shows its step while it runs, then every check — ok, or failed
//! with the rows that disagree — and offers the zip. Earlier exports are listed with their
//! SHA-256 and who made them. A scoped auditor exports their enterprises only.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::{Datelike, NaiveDate, Utc};
use fapiao_schemas::TaxNo;
use fapiao_usecases::export::ReconciliationRequest;
use fapiao_usecases::tasks::{self, CheckRow, ExportAsked, Task, TaskKind};
use fapiao_usecases::tenant;
use serde_json::Value;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::files;
use crate::pages::{Me, error_page, internal, require_to_change, see_other};
use crate::view::{opt_time, time};

type St = State<Arc<Console>>;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/exports", get(list).post(start))
        .route("/exports/{id}", get(show))
        .route("/exports/{id}/progress", get(progress))
        .route("/exports/{id}/zip", get(zip))
}

pub struct EnterpriseOption {
    pub tax_no: String,
    pub name: String,
    pub checked: bool,
}

pub struct ExportView {
    pub id: i64,
    pub period: String,
    pub enterprises: String,
    pub actor: String,
    pub at: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub checks: &'static str,
    pub sha256: String,
}

impl ExportView {
    fn of(t: &Task, tz: chrono_tz::Tz) -> ExportView {
        let passed = t.result.as_ref().and_then(|r| r.get("all_checks_passed")).and_then(Value::as_bool);
        let (state, state_class) = match t.state.as_str() {
            "running" => ("进行中", "running"),
            "failed" => ("失败", "failed"),
            _ => ("完成", "succeeded"),
        };
        ExportView {
            id: t.id,
            period: format!("{} 至 {}", t.asked("from"), t.asked("to")),
            enterprises: if t.tax_nos.is_empty() { "全部企业".into() } else { t.tax_nos.join("、") },
            actor: t.actor.clone(),
            at: time(&t.created_at, tz),
            state,
            state_class,
            checks: match passed {
                Some(true) => "全部通过",
                Some(false) => "有未通过的核对",
                None => "—",
            },
            sha256: t.sha256.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "exports.html")]
struct ExportsPage {
    me: Me,
    from: String,
    to: String,
    enterprises: Vec<EnterpriseOption>,
    scoped: bool,
    error: Option<String>,
    exports: Vec<ExportView>,
}

async fn exports_page(
    c: &Console,
    v: &Viewer,
    status: StatusCode,
    form: Option<(String, String, Vec<String>)>,
    error: Option<String>,
) -> Response {
    let (list, all) =
        match (tasks::list(&c.app, TaskKind::Export, v.scope(), 50).await, tenant::enterprises(&c.app).await)
        {
            (Ok(l), Ok(e)) => (l, e),
            (Err(e), _) | (_, Err(e)) => return internal(e),
        };
    let today = Utc::now().with_timezone(&c.tz).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let (from, to, chosen) = form.unwrap_or_else(|| (first.to_string(), today.to_string(), Vec::new()));
    let page = ExportsPage {
        me: Me::of(v),
        enterprises: all
            .iter()
            .filter(|e| v.user.sees(e.tax_no.as_str()))
            .map(|e| EnterpriseOption {
                tax_no: e.tax_no.as_str().to_string(),
                name: e.name.clone(),
                checked: chosen.iter().any(|t| t == e.tax_no.as_str()),
            })
            .collect(),
        from,
        to,
        scoped: v.scope().is_some(),
        error,
        exports: list.iter().map(|t| ExportView::of(t, c.tz)).collect(),
    };
    (status, page).into_response()
}

pub async fn list(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::Export) {
        return r;
    }
    exports_page(&c, &v, StatusCode::OK, None, None).await
}

/// `POST /exports` (form: `from`, `to`, `tax_no` repeated, none for all in scope): a task, the
/// export in the background; 303 to its page.
pub async fn start(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let field =
        |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let (from, to) = (field("from"), field("to"));
    let chosen: Vec<String> = fields
        .iter()
        .filter(|(f, v)| f == "tax_no" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    let target = format!("{from} — {to}");
    if let Err(r) = require_to_change(&c, &v, Perm::Export, "export.reconciliation", &target).await {
        return r;
    }
    let refuse = |message: String| {
        let (c, v, target) = (&c, &v, &target);
        let form = (from.clone(), to.clone(), chosen.clone());
        async move {
            tasks::refused(&c.app, &v.actor, "export.reconciliation", target, &message, &form.2).await;
            exports_page(c, v, StatusCode::UNPROCESSABLE_ENTITY, Some(form), Some(message)).await
        }
    };
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let (Some(from_day), Some(to_day)) = (day(&from), day(&to)) else {
        return refuse("日期格式应为 YYYY-MM-DD".into()).await;
    };
    if from_day > to_day {
        return refuse("开始日期不能晚于结束日期".into()).await;
    }
    let mut tax_nos = Vec::new();
    for t in &chosen {
        match TaxNo::parse(t) {
            Ok(t) if v.user.sees(t.as_str()) => tax_nos.push(t),
            _ => return refuse(format!("企业{t}不在您负责的范围内")).await,
        }
    }
    if tax_nos.is_empty()
        && let Some(scope) = v.scope()
    {
        // A scoped auditor's "all" is all of theirs.
        for t in scope {
            match TaxNo::parse(t) {
                Ok(t) => tax_nos.push(t),
                Err(e) => return internal(e),
            }
        }
    }
    let names: Vec<String> = tax_nos.iter().map(|t| t.as_str().to_string()).collect();
    let dir = match files::new_folder(&c.root, "exports") {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let out = dir.join(format!("reconciliation-{from_day}-{to_day}.zip"));
    let asked = ExportAsked { from: from_day.to_string(), to: to_day.to_string(), tax_nos: names.clone() };
    let asked = serde_json::to_value(&asked).unwrap_or(Value::Null);
    let id = match tasks::open(&c.app, &v.actor, TaskKind::Export, &names, asked, &out, None).await {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let request = ReconciliationRequest { from: from_day, to: to_day, tax_nos, out };
    let actor = v.actor.clone();
    files::spawn(c.clone(), id, "排队", move |console, live| async move {
        let progress = |step: &str| live.set_step(&step_words(step));
        tasks::run_export(&console.app, &actor, id, request, &progress).await
    });
    see_other(&format!("/exports/{id}"))
}

/// What a check compares, in Chinese (the manifest keeps the English description too).
fn check_words(name: &str) -> &'static str {
    match name {
        "net_matches_ledger" => "每个销方每天：蓝票−红票＝净额，与发票台账的汇总一致",
        "red_points_to_blue" => "每张红票都指向一张存在的蓝票",
        "remaining_agrees" => "每张蓝票的剩余可红冲金额＝|价税合计|−其红票",
        "issued_bills_have_callback" => "每张已开票的单据都有带结果的回调",
        _ => "",
    }
}

/// The export's step in Chinese.
fn step_words(step: &str) -> String {
    match step {
        "summing" => "汇总".into(),
        "checking" => "核对".into(),
        "writing" => "写入工作簿与CSV".into(),
        "zipping" => "打包".into(),
        s => match s.strip_prefix("reading ") {
            Some(ledger) => format!("读取台账 {ledger}"),
            None => s.into(),
        },
    }
}

async fn visible_task(c: &Console, v: &Viewer, id: &str) -> Result<Task, Response> {
    files::visible_task(c, v, id, Perm::Export, &["export"], "没有这次导出").await
}

pub struct CheckView {
    pub name: String,
    pub words: &'static str,
    pub description: String,
    pub ok: bool,
    pub failures: usize,
    pub examples: Vec<String>,
}

pub struct FileView {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "export.html")]
struct ExportPage {
    me: Me,
    /// The task's id, as the progress fragment names it.
    id: i64,
    export: ExportView,
    running: bool,
    /// Running, but not in this process (another server's, or a restart cut it short).
    elsewhere: bool,
    step: String,
    error: String,
    finished: String,
    checks: Vec<CheckView>,
    all_passed: bool,
    row_counts: Vec<(String, u64)>,
    files: Vec<FileView>,
}

pub async fn show(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let m = t.result.clone().unwrap_or(Value::Null);
    let checks: Vec<CheckRow> =
        m.get("checks").cloned().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
    let row_counts: BTreeMap<String, u64> =
        m.get("row_counts").cloned().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
    let files = m
        .get("files")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| FileView {
                    name: f.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    bytes: f.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                    sha256: f.get("sha256").and_then(Value::as_str).unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    ExportPage {
        me: Me::of(&v),
        id: t.id,
        running: t.state == "running",
        elsewhere: t.state == "running" && c.running.get(t.id).is_none(),
        step: c.running.get(t.id).map(|l| l.step()).unwrap_or_default(),
        error: t.error.clone().unwrap_or_default(),
        finished: opt_time(t.finished_at.as_ref(), c.tz),
        all_passed: m.get("all_checks_passed").and_then(Value::as_bool).unwrap_or(false),
        checks: checks
            .into_iter()
            .map(|c| CheckView {
                words: check_words(&c.name),
                name: c.name,
                description: c.description,
                ok: c.ok,
                failures: c.failures,
                examples: c.examples,
            })
            .collect(),
        row_counts: row_counts.into_iter().collect(),
        files,
        export: ExportView::of(&t, c.tz),
    }
    .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "export_progress.html")]
struct ProgressFragment {
    id: i64,
    step: String,
}

/// `GET /exports/{id}/progress`: the fragment htmx polls; `HX-Refresh` once the export ended.
pub async fn progress(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (_, step) = c.running.progress(t.id);
    crate::files::progress_fragment(ProgressFragment { id: t.id, step }, &t)
}

/// `GET /exports/{id}/zip`: the zip, streamed from disk.
pub async fn zip(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.state != "done" {
        return error_page(StatusCode::NOT_FOUND, "导出尚未完成");
    }
    let name = format!("reconciliation-{}-{}.zip", t.asked("from"), t.asked("to"));
    files::download(std::path::Path::new(&t.file_path), &name, "application/zip").await
}
