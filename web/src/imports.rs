//! `/imports` (issue 19): finance uploads a workbook; it streams to disk under
//! `$FAPIAO_HOME/console/uploads` (never whole into memory, at most `http.max_upload_mib`), the
//! import use case runs in the background (`fapiao_usecases::tasks::run_import`), the page shows
//! rows read while it runs, then the summary, the problems (paginated, by code) and the error
//! report. Auditors read; a scoped user sees the uploads of their enterprises only and imports
//! applications of their enterprises only.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fapiao_usecases::import::{self as uimport, ImportKind, ImportRequest};
use fapiao_usecases::tasks::{self, ImportAsked, Task, TaskKind};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::files;
use crate::pages::{Me, blank, enc, error_page, internal, require_to_change, see_other};
use crate::view::{opt_time, time};

type St = State<Arc<Console>>;

/// Problems per page.
const PAGE: i64 = 50;

pub fn routes(console: &Console) -> Router<Arc<Console>> {
    let limit = (console.app.settings.http.max_upload_mib as usize) << 20;
    Router::new()
        .route("/imports", get(list).post(upload).layer(DefaultBodyLimit::max(limit + (1 << 20))))
        .route("/imports/{id}", get(show))
        .route("/imports/{id}/progress", get(progress))
        .route("/imports/{id}/report", get(report))
        .route("/imports/batches/{batch}", get(batch))
}

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "applications" => "开票申请",
        "pool" => "进项发票池",
        "red-flush" => "红冲清单",
        _ => "未知",
    }
}

fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "imported" => "已导入",
        "dry_run" => "试导入（未入库）",
        "rejected" => "全部拒绝（未入库）",
        _ => "未知",
    }
}

pub struct TaskView {
    pub id: i64,
    pub kind: &'static str,
    pub file_name: String,
    pub actor: String,
    pub at: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub outcome: String,
    pub batch: Option<i64>,
}

impl TaskView {
    fn of(t: &Task, tz: chrono_tz::Tz) -> TaskView {
        let s = t.result.as_ref();
        let num = |f: &str| s.and_then(|s| s.get(f)).and_then(Value::as_u64).unwrap_or(0);
        let (state, state_class, outcome) = match t.state.as_str() {
            "running" => ("进行中", "running", String::new()),
            "failed" => ("失败", "failed", t.error.clone().unwrap_or_default()),
            _ => {
                let o = s.and_then(|s| s.get("outcome")).and_then(Value::as_str).unwrap_or("");
                let class = if o == "rejected" { "failed" } else { "succeeded" };
                let text = format!(
                    "{}：读取{}行，接受{}行，拒绝{}行",
                    outcome_label(o),
                    num("rows_read"),
                    num("accepted"),
                    num("rejected")
                );
                ("完成", class, text)
            }
        };
        TaskView {
            id: t.id,
            kind: kind_label(&t.asked("kind")),
            file_name: t.asked("file_name"),
            actor: t.actor.clone(),
            at: time(&t.created_at, tz),
            state,
            state_class,
            outcome,
            batch: t.batch_id,
        }
    }
}

pub struct BatchView {
    pub id: i64,
    pub kind: &'static str,
    pub file_name: String,
    pub rows: i32,
    pub bills: i32,
    pub accepted: i32,
    pub rejected: i32,
    pub at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "imports.html")]
struct ImportsPage {
    me: Me,
    can_import: bool,
    max_mib: u32,
    scoped: bool,
    error: Option<String>,
    tasks: Vec<TaskView>,
    batches: Vec<BatchView>,
}

async fn imports_page(c: &Console, v: &Viewer, status: StatusCode, error: Option<String>) -> Response {
    let list = match tasks::list(&c.app, TaskKind::Import, v.scope(), PAGE).await {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    // Batches carry no enterprise: only viewers who see all enterprises see them (as on `/`).
    let batches = if v.scope().is_none() {
        match uimport::history(&c.app, PAGE).await {
            Ok(b) => b
                .iter()
                .map(|b| BatchView {
                    id: b.id,
                    kind: kind_label(b.kind.as_str()),
                    file_name: b.file_name.clone(),
                    rows: b.rows_read,
                    bills: b.bills,
                    accepted: b.accepted,
                    rejected: b.rejected,
                    at: time(&b.created_at, c.tz),
                })
                .collect(),
            Err(e) => return internal(e),
        }
    } else {
        Vec::new()
    };
    let page = ImportsPage {
        me: Me::of(v),
        can_import: v.may(Perm::Import),
        max_mib: c.app.settings.http.max_upload_mib,
        scoped: v.scope().is_some(),
        error,
        tasks: list.iter().map(|t| TaskView::of(t, c.tz)).collect(),
        batches,
    };
    (status, page).into_response()
}

pub async fn list(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::ViewImports) {
        return r;
    }
    imports_page(&c, &v, StatusCode::OK, None).await
}

/// What the form sent besides the file.
#[derive(Default)]
pub(crate) struct Upload {
    kind: String,
    dry_run: bool,
    accept_valid: bool,
    /// Where it was written, the name it came with, its size.
    pub(crate) file: Option<(PathBuf, String, u64)>,
}

pub(crate) enum UploadError {
    TooLarge,
    Bad(String),
    Io(std::io::Error),
}

/// Read the multipart body field by field; the file goes to `dir` chunk by chunk.
pub(crate) async fn receive(
    mut mp: Multipart,
    dir: &std::path::Path,
    limit: u64,
) -> Result<Upload, UploadError> {
    let mut up = Upload::default();
    let multipart = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UploadError::TooLarge
        } else {
            UploadError::Bad(format!("上传内容不完整：{}", e.body_text()))
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(multipart)? {
        match field.name().unwrap_or("") {
            "file" => {
                let name = files::safe_name(field.file_name().unwrap_or(""));
                let path = dir.join(&name);
                let mut out = tokio::fs::File::create(&path).await.map_err(UploadError::Io)?;
                let mut bytes = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(multipart)? {
                    bytes += chunk.len() as u64;
                    if bytes > limit {
                        return Err(UploadError::TooLarge);
                    }
                    out.write_all(&chunk).await.map_err(UploadError::Io)?;
                }
                out.flush().await.map_err(UploadError::Io)?;
                up.file = Some((path, name, bytes));
            }
            "kind" => up.kind = field.text().await.map_err(multipart)?.trim().to_string(),
            "dry_run" => up.dry_run = !field.text().await.map_err(multipart)?.is_empty(),
            "accept_valid" => up.accept_valid = !field.text().await.map_err(multipart)?.is_empty(),
            _ => {}
        }
    }
    Ok(up)
}

/// `POST /imports` (multipart: `file`, `kind`, optional `dry_run`, `accept_valid`): the file to
/// disk, a task, the import in the background; 303 to the task's page.
pub async fn upload(State(c): St, v: Viewer, mp: Multipart) -> Response {
    if let Err(r) = require_to_change(&c, &v, Perm::Import, "import.file", "").await {
        return r;
    }
    let tax_nos: Vec<String> = v.scope().map(|s| s.to_vec()).unwrap_or_default();
    let max_mib = c.app.settings.http.max_upload_mib;
    let dir = match files::new_folder(&c.root, "uploads") {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let up = match receive(mp, &dir, u64::from(max_mib) << 20).await {
        Ok(up) => up,
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            let (status, message) = match e {
                UploadError::TooLarge => {
                    (StatusCode::PAYLOAD_TOO_LARGE, format!("文件超过上传上限 {max_mib} MiB"))
                }
                UploadError::Bad(m) => (StatusCode::BAD_REQUEST, m),
                UploadError::Io(e) => return internal(e),
            };
            tasks::refused(&c.app, &v.actor, "import.file", "", &message, &tax_nos).await;
            return imports_page(&c, &v, status, Some(message)).await;
        }
    };
    let refuse = |message: String, target: String| {
        let (c, v, dir, tax_nos) = (&c, &v, &dir, &tax_nos);
        async move {
            let _ = tokio::fs::remove_dir_all(dir).await;
            tasks::refused(&c.app, &v.actor, "import.file", &target, &message, tax_nos).await;
            imports_page(c, v, StatusCode::UNPROCESSABLE_ENTITY, Some(message)).await
        }
    };
    let Some((path, name, bytes)) = up.file.filter(|f| f.2 > 0) else {
        return refuse("请选择要导入的文件".into(), String::new()).await;
    };
    let Ok(kind) = up.kind.parse::<ImportKind>() else {
        return refuse("请选择导入类型：开票申请、进项发票池或红冲清单".into(), name).await;
    };
    if v.scope().is_some() && kind != ImportKind::Applications {
        return refuse("按企业限定的用户只能导入开票申请（销方须为您负责的企业）".into(), name).await;
    }
    let report = dir.join("错误报告.xlsx");
    let asked = ImportAsked {
        kind: kind.as_str().to_string(),
        file_name: name.clone(),
        dry_run: up.dry_run,
        accept_valid: up.accept_valid,
        bytes,
    };
    let asked = serde_json::to_value(&asked).unwrap_or(Value::Null);
    let id =
        match tasks::open(&c.app, &v.actor, TaskKind::Import, &tax_nos, asked, &path, Some(report.as_path()))
            .await
        {
            Ok(id) => id,
            Err(e) => return internal(e),
        };
    let request = ImportRequest {
        kind,
        sheet: None,
        dry_run: up.dry_run,
        accept_valid: up.accept_valid,
        report: Some(report),
        scope: v.scope().map(|s| s.to_vec()),
    };
    let actor = v.actor.clone();
    files::spawn(c.clone(), id, "读取、校验、入库", move |console, live| async move {
        let progress = |n: u64| live.rows.store(n, Ordering::Relaxed);
        tasks::run_import(&console.app, &actor, id, &path, &name, request, &progress).await
    });
    see_other(&format!("/imports/{id}"))
}

/// The import task, if `v` may see it.
async fn visible_task(c: &Console, v: &Viewer, id: &str) -> Result<Task, Response> {
    files::visible_task(c, v, id, Perm::ViewImports, &["import"], "没有这次导入").await
}

pub struct ProblemView {
    pub row: i32,
    pub column: String,
    pub code: String,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "import.html")]
struct ImportPage {
    me: Me,
    /// The task's id and live progress, also named as the progress fragment names them.
    id: i64,
    rows: u64,
    task: TaskView,
    dry_run: bool,
    accept_valid: bool,
    running: bool,
    /// Running, but not in this process (another server's, or a restart cut it short).
    elsewhere: bool,
    step: String,
    error: String,
    duplicate_of: Option<i64>,
    summary: Option<SummaryView>,
    codes: Vec<(String, i64)>,
    q_code: String,
    problems: Vec<ProblemView>,
    problems_total: i64,
    page: i64,
    pages: i64,
    prev: Option<String>,
    next: Option<String>,
    report: bool,
    finished: String,
}

pub struct SummaryView {
    pub outcome: &'static str,
    pub rows_read: u64,
    pub bills: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub batch: Option<i64>,
    pub unknown_columns: String,
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    code: Option<String>,
    page: Option<String>,
}

pub async fn show(State(c): St, v: Viewer, Path(id): Path<String>, Query(q): Query<ShowQuery>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let running = t.state == "running";
    let live = c.running.get(t.id);
    let summary = t.result.as_ref().map(|s| {
        let num = |f: &str| s.get(f).and_then(Value::as_u64).unwrap_or(0);
        let unknown: Vec<&str> = s
            .get("unknown_columns")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        SummaryView {
            outcome: outcome_label(s.get("outcome").and_then(Value::as_str).unwrap_or("")),
            rows_read: num("rows_read"),
            bills: num("bills"),
            accepted: num("accepted"),
            rejected: num("rejected"),
            batch: s.get("batch_id").and_then(Value::as_i64),
            unknown_columns: unknown.join("、"),
        }
    });
    let code = blank(q.code);
    let page = blank(q.page).and_then(|p| p.parse::<i64>().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let (problems, total, codes) = if summary.is_some() {
        let (rows, total) =
            match tasks::problems(&c.app, t.id, code.as_deref(), (page - 1) * PAGE, PAGE).await {
                Ok(p) => p,
                Err(e) => return internal(e),
            };
        let codes = match tasks::problem_codes(&c.app, t.id).await {
            Ok(c) => c,
            Err(e) => return internal(e),
        };
        (rows, total, codes)
    } else {
        (Vec::new(), 0, Vec::new())
    };
    let pages = (total + PAGE - 1) / PAGE;
    let link = |p: i64| {
        let mut l = format!("/imports/{}?page={p}", t.id);
        if let Some(code) = &code {
            l.push_str(&format!("&code={}", enc(code)));
        }
        l
    };
    let page_view = ImportPage {
        me: Me::of(&v),
        dry_run: t.request.get("dry_run").and_then(Value::as_bool).unwrap_or(false),
        accept_valid: t.request.get("accept_valid").and_then(Value::as_bool).unwrap_or(false),
        running,
        elsewhere: running && live.is_none(),
        id: t.id,
        rows: live.as_ref().map(|l| l.rows.load(Ordering::Relaxed)).unwrap_or(0),
        step: live.as_ref().map(|l| l.step()).unwrap_or_default(),
        error: t.error.clone().unwrap_or_default(),
        duplicate_of: (t.error_code.as_deref() == Some("DUPLICATE_FILE")).then_some(t.batch_id).flatten(),
        report: !codes.is_empty(),
        summary,
        codes,
        q_code: code.clone().unwrap_or_default(),
        problems: problems
            .into_iter()
            .map(|p| ProblemView { row: p.row, column: p.column, code: p.code, message: p.message })
            .collect(),
        problems_total: total,
        page,
        pages,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        finished: opt_time(t.finished_at.as_ref(), c.tz),
        task: TaskView::of(&t, c.tz),
    };
    page_view.into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "import_progress.html")]
struct ProgressFragment {
    id: i64,
    rows: u64,
    step: String,
}

/// `GET /imports/{id}/progress`: the progress fragment htmx polls while the import runs; once
/// it has ended, `HX-Refresh` makes htmx load the whole page (the summary).
pub async fn progress(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (rows, step) = c.running.progress(t.id);
    let fragment = ProgressFragment { id: t.id, rows, step };
    crate::files::progress_fragment(fragment, &t)
}

/// `GET /imports/{id}/report`: the xlsx error report (the original columns, 行号, 错误原因).
pub async fn report(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(path) = t.report_path.as_ref().filter(|_| t.state == "done") else {
        return error_page(StatusCode::NOT_FOUND, "这次导入没有错误报告");
    };
    let stem = t.asked("file_name");
    let stem = stem.rsplit_once('.').map(|(s, _)| s).unwrap_or(&stem);
    let name = format!("错误报告-{stem}.xlsx");
    files::download(std::path::Path::new(path), &name, files::XLSX).await
}

/// `GET /imports/batches/{batch}`: the upload that landed the batch, or the batch in the list.
pub async fn batch(State(c): St, v: Viewer, Path(batch): Path<String>) -> Response {
    if let Err(r) = v.require(Perm::ViewImports) {
        return r;
    }
    let Ok(batch) = batch.parse::<i64>() else {
        return error_page(StatusCode::NOT_FOUND, "没有这个批次");
    };
    match tasks::of_batch(&c.app, batch).await {
        Ok(Some(task)) => see_other(&format!("/imports/{task}")),
        Ok(None) => see_other(&format!("/imports#batch-{batch}")),
        Err(e) => internal(e),
    }
}
