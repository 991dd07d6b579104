//! "All matching" on `/pending` and `/applications` (issue 19): the list's filter, counted in the
//! user's scope and shown to confirm (`GET …/all`), then run as a background task
//! (`POST …/all`: 开票 on every matching pending invoice, or push and issue every matching
//! application) whose page (`/tasks/{id}`) shows its progress by htmx polling and then one line
//! per item. If the count changed between the confirmation and the click, nothing runs and the
//! new count is shown to confirm again. The uploaded red-flush list's task
//! (`red_flush::upload_list`) is shown by the same page, with its report to download.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use fapiao_usecases::bulk::{self, BulkAsked, BulkResult, ItemLine};
use fapiao_usecases::tasks::{self, Task, TaskKind};
use fapiao_usecases::{applications, pending};
use serde_json::Value;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{Me, error_page, internal, require_to_change, see_other};
use crate::view::{opt_time, time};
use crate::{files, pending as pending_page};

type St = State<Arc<Console>>;

/// Lines of a finished task shown on its page (the red-flush report has them all).
const SHOWN: usize = 500;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/pending/all", get(confirm_pending).post(run_pending))
        .route("/applications/all", get(confirm_applications).post(run_applications))
        .route("/tasks/{id}", get(show))
        .route("/tasks/{id}/progress", get(progress))
        .route("/tasks/{id}/report", get(report))
}

#[derive(Template, WebTemplate)]
#[template(path = "bulk_confirm.html")]
struct ConfirmPage {
    me: Me,
    /// What will be done to each item (开票 / 推送并开票) and to what (待开发票 / 开票申请单).
    what: &'static str,
    items: &'static str,
    action: &'static str,
    back: String,
    /// The filter as hidden fields.
    fields: Vec<(String, String)>,
    count: usize,
    message: Option<String>,
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The confirmation page: how many items the filter matches in the user's scope.
fn confirm_page(
    v: &Viewer,
    status: StatusCode,
    kind: ListKind,
    query: &str,
    count: usize,
    message: Option<String>,
) -> Response {
    let (what, items, action, back) = match kind {
        ListKind::Pending => ("开票", "待开发票", "/pending/all", format!("/pending?{query}")),
        ListKind::Applications => {
            ("推送并开票", "开票申请单", "/applications/all", format!("/applications?{query}"))
        }
    };
    let page = ConfirmPage {
        me: Me::of(v),
        what,
        items,
        action,
        back,
        fields: query_pairs(query).into_iter().filter(|(k, _)| k != "after" && k != "count").collect(),
        count,
        message,
    };
    (status, page).into_response()
}

#[derive(Clone, Copy)]
enum ListKind {
    Pending,
    Applications,
}

/// The items a filter (a list's query string) matches in the viewer's scope: pending ids or bills
/// as text, in order; or why the filter does not parse.
async fn matching(c: &Console, v: &Viewer, kind: ListKind, query: &str) -> Result<Vec<String>, Response> {
    match kind {
        ListKind::Pending => {
            let q: pending_page::ListQuery = serde_urlencoded_like(query)
                .ok_or_else(|| error_page(StatusCode::BAD_REQUEST, "筛选条件不正确"))?;
            let filter = pending_page::filter_of(&q.view(), v)
                .map_err(|m| error_page(StatusCode::UNPROCESSABLE_ENTITY, &m))?;
            match pending::matching_ids(&c.app, &filter).await {
                Ok(ids) => Ok(ids.iter().map(i64::to_string).collect()),
                Err(e) if e.kind() == fapiao_usecases::ErrorKind::BadInput => {
                    Err(error_page(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
                }
                Err(e) => Err(internal(e)),
            }
        }
        ListKind::Applications => {
            let q: crate::applications::ListQuery = serde_urlencoded_like(query)
                .ok_or_else(|| error_page(StatusCode::BAD_REQUEST, "筛选条件不正确"))?;
            applications::matching_bills(&c.app, &q.filter(v)).await.map_err(internal)
        }
    }
}

/// A list's query struct from its query string (axum's own Query parser).
fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(query: &str) -> Option<T> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    Query::<T>::try_from_uri(&uri).ok().map(|q| q.0)
}

/// The list's filter as the query string it came in (the confirmation's hidden fields posted back).
fn filter_query(fields: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields.iter().filter(|(k, _)| !matches!(k.as_str(), "count" | "after")) {
        out.append_pair(k, v);
    }
    out.finish()
}

async fn confirm(c: &Console, v: &Viewer, kind: ListKind, query: Option<String>) -> Response {
    if let Err(r) = v.require(Perm::Invoicing) {
        return r;
    }
    let query = filter_query(&query_pairs(query.as_deref().unwrap_or("")));
    match matching(c, v, kind, &query).await {
        Ok(items) => confirm_page(v, StatusCode::OK, kind, &query, items.len(), None),
        Err(r) => r,
    }
}

/// `GET /pending/all?<filter>`: how many pending invoices 开票 would go to, to confirm.
pub async fn confirm_pending(State(c): St, v: Viewer, uri: axum::http::Uri) -> Response {
    confirm(&c, &v, ListKind::Pending, uri.query().map(str::to_string)).await
}

/// `GET /applications/all?<filter>`: how many applications would be pushed and issued.
pub async fn confirm_applications(State(c): St, v: Viewer, uri: axum::http::Uri) -> Response {
    confirm(&c, &v, ListKind::Applications, uri.query().map(str::to_string)).await
}

/// `POST /pending/all` (the filter's fields and `count`, the number confirmed).
pub async fn run_pending(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    start(c, v, ListKind::Pending, fields).await
}

/// `POST /applications/all` (the filter's fields and `count`).
pub async fn run_applications(
    State(c): St,
    v: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    start(c, v, ListKind::Applications, fields).await
}

async fn start(c: Arc<Console>, v: Viewer, kind: ListKind, fields: Vec<(String, String)>) -> Response {
    let (action, what) = match kind {
        ListKind::Pending => ("pending.issue_all", "pending"),
        ListKind::Applications => ("application.issue_all", "applications"),
    };
    let query = filter_query(&fields);
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, action, &query).await {
        return r;
    }
    let confirmed: Option<usize> =
        fields.iter().find(|(k, _)| k == "count").and_then(|(_, n)| n.trim().parse().ok());
    let items = match matching(&c, &v, kind, &query).await {
        Ok(items) => items,
        Err(r) => return r,
    };
    if items.is_empty() {
        let m = "没有符合条件的项目，未执行".to_string();
        return confirm_page(&v, StatusCode::UNPROCESSABLE_ENTITY, kind, &query, 0, Some(m));
    }
    if confirmed != Some(items.len()) {
        let m = format!(
            "符合条件的数量已变化（确认时 {}，现在 {}），请重新确认",
            confirmed.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
            items.len()
        );
        tasks::refused(&c.app, &v.actor, action, &query, &m, &[]).await;
        return confirm_page(&v, StatusCode::CONFLICT, kind, &query, items.len(), Some(m));
    }
    let tax_nos: Vec<String> = v.scope().map(|s| s.to_vec()).unwrap_or_default();
    let asked = BulkAsked { what: what.into(), filter: query, count: items.len() };
    let asked = serde_json::to_value(&asked).unwrap_or(Value::Null);
    let id =
        match tasks::open(&c.app, &v.actor, TaskKind::Bulk, &tax_nos, asked, std::path::Path::new(""), None)
            .await
        {
            Ok(id) => id,
            Err(e) => return internal(e),
        };
    let step = match kind {
        ListKind::Pending => "开票",
        ListKind::Applications => "推送并开票",
    };
    let actor = v.actor.clone();
    files::spawn(c.clone(), id, step, move |console, live| async move {
        let progress = |n: u64| live.rows.store(n, Ordering::Relaxed);
        let app = &console.app;
        match kind {
            ListKind::Pending => {
                let ids: Vec<i64> = items.iter().filter_map(|i| i.parse().ok()).collect();
                bulk::run_issue_pending(app, &actor, id, &ids, &tax_nos, &progress).await
            }
            ListKind::Applications => {
                bulk::run_issue_bills(app, &actor, id, &items, &tax_nos, &progress).await
            }
        }
    });
    see_other(&format!("/tasks/{id}"))
}

/// A bulk or red-flush list task, if `v` may see it.
async fn visible_task(c: &Console, v: &Viewer, id: &str) -> Result<Task, Response> {
    files::visible_task(c, v, id, Perm::ViewInvoicing, &["bulk", "red_flush_list"], "没有这个任务").await
}

fn title_of(t: &Task) -> String {
    match (t.kind.as_str(), t.asked("what").as_str()) {
        ("red_flush_list", _) => format!("红冲清单 {}", t.asked("file_name")),
        (_, "pending") => "开票（全部符合条件的待开发票）".into(),
        _ => "推送并开票（全部符合条件的开票申请单）".into(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "task.html")]
struct TaskPage {
    me: Me,
    id: i64,
    title: String,
    actor: String,
    at: String,
    finished: String,
    state: &'static str,
    state_class: &'static str,
    filter: String,
    running: bool,
    elsewhere: bool,
    done: u64,
    total: String,
    step: String,
    error: String,
    result: Option<BulkResult>,
    shown: Vec<ItemLine>,
    has_report: bool,
}

/// `GET /tasks/{id}`: a bulk or red-flush list task — its progress while it runs, then each item.
pub async fn show(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let live = c.running.get(t.id);
    let running = t.state == "running";
    let result: Option<BulkResult> = t.result.clone().and_then(|r| serde_json::from_value(r).ok());
    let (state, state_class) = match t.state.as_str() {
        "running" => ("进行中", "running"),
        "done" => ("已完成", "succeeded"),
        _ => ("失败", "failed"),
    };
    let page = TaskPage {
        me: Me::of(&v),
        id: t.id,
        title: title_of(&t),
        actor: t.actor.clone(),
        at: time(&t.created_at, c.tz),
        finished: opt_time(t.finished_at.as_ref(), c.tz),
        state,
        state_class,
        filter: t.asked("filter"),
        running,
        elsewhere: running && live.is_none(),
        done: live.as_ref().map(|l| l.rows.load(Ordering::Relaxed)).unwrap_or(0),
        total: t.asked("count"),
        step: live.as_ref().map(|l| l.step()).unwrap_or_default(),
        error: t.error.clone().unwrap_or_default(),
        shown: result.as_ref().map(|r| r.lines.iter().take(SHOWN).cloned().collect()).unwrap_or_default(),
        has_report: t.kind == "red_flush_list" && t.state == "done" && t.report_path.is_some(),
        result,
    };
    page.into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "task_progress.html")]
struct ProgressFragment {
    id: i64,
    done: u64,
    total: String,
    step: String,
}

/// `GET /tasks/{id}/progress`: the fragment htmx polls; once the task has ended, `HX-Refresh`
/// loads the whole page (each item's outcome).
pub async fn progress(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (done, step) = c.running.progress(t.id);
    let fragment = ProgressFragment { id: t.id, done, total: t.asked("count"), step };
    crate::files::progress_fragment(fragment, &t)
}

/// `GET /tasks/{id}/report`: a red-flush list's report (xlsx, one line per row).
pub async fn report(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    let t = match visible_task(&c, &v, &id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(path) = t.report_path.as_ref().filter(|_| t.kind == "red_flush_list" && t.state == "done")
    else {
        return error_page(StatusCode::NOT_FOUND, "这个任务没有报告");
    };
    let stem = t.asked("file_name");
    let stem = stem.rsplit_once('.').map(|(s, _)| s).unwrap_or(&stem);
    let name = format!("红冲结果-{stem}.xlsx");
    files::download(std::path::Path::new(path), &name, files::XLSX).await
}
