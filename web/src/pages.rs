//! The handlers: each checks who asks (role, scope), calls one use case, renders one template.
//! No SQL here.

use std::str::FromStr;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use fapiao_jobs::control::{self, ControlError, JobStatus};
use fapiao_jobs::ledger::{RunFilter, RunRow, RunState, Trigger};
use fapiao_usecases::audit::{self, Entry, Outcome};
use fapiao_usecases::{ErrorKind, dashboard as dash, params as uparams, sessions, users};
use serde::Deserialize;

use crate::Console;
use crate::auth::{self, Perm, Viewer};
use crate::view::{self, cron_words, opt_time, time};

type St = State<Arc<Console>>;

/// Runs per page of `/runs`; audit rows per page of `/audit`.
const PAGE: i64 = 50;

// ---------- the frame every page shares ----------

/// The user and the menu they may use.
pub struct Me {
    pub name: String,
    pub role: &'static str,
    pub scope: String,
    pub jobs: bool,
    pub params: bool,
    pub audit: bool,
    pub imports: bool,
    pub exports: bool,
    pub pending: bool,
    pub red_flush: bool,
    pub receipt_stats: bool,
}

impl Me {
    pub fn of(v: &Viewer) -> Me {
        Me {
            name: v.user.name.clone(),
            role: v.user.role.label(),
            scope: v.scope().map(|s| s.join("、")).unwrap_or_else(|| "全部企业".into()),
            jobs: v.may(Perm::ViewJobs),
            params: v.may(Perm::ViewParams),
            audit: v.may(Perm::ViewAudit),
            imports: v.may(Perm::ViewImports),
            exports: v.may(Perm::Export),
            pending: v.may(Perm::ViewInvoicing),
            red_flush: v.may(Perm::Invoicing),
            receipt_stats: v.may(Perm::ViewReceiptStats),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
    code: u16,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    (status, ErrorPage { message, code: status.as_u16() }).into_response()
}

pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "内部错误，请查看服务日志")
}

fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Refuse a state-changing request the role does not allow: 403, and a row in the audit log.
pub async fn require_to_change(
    c: &Console,
    v: &Viewer,
    perm: Perm,
    action: &str,
    target: &str,
) -> Result<(), Response> {
    let refused = v.require(perm);
    if refused.is_err() {
        let detail = format!("角色{}无权限", v.user.role.label());
        audit::record(
            &c.app.pool,
            Entry {
                actor: &v.actor,
                action,
                target,
                outcome: Outcome::Refused,
                detail: &detail,
                tax_nos: &[],
            },
        )
        .await;
    }
    refused
}

/// The client address, for handlers without a session (login).
pub struct Client(String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        Ok(Client(auth::client(parts)))
    }
}

pub fn blank(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Percent-encode a query value (links built from filters).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------- health, static files ----------

pub async fn healthz(State(c): St) -> Response {
    if dash::healthy(&c.app).await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
    }
}

pub async fn htmx() -> Response {
    let js: &'static [u8] = include_bytes!("../static/htmx.min.js");
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"))], js).into_response()
}

pub async fn css() -> Response {
    let css: &'static str = include_str!("../static/console.css");
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"))], css).into_response()
}

pub async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "页面不存在")
}

// ---------- login, logout ----------

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    username: String,
    error: Option<String>,
}

pub async fn login_form() -> Response {
    LoginPage { username: String::new(), error: None }.into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login(State(c): St, Client(from): Client, Form(f): Form<LoginForm>) -> Response {
    let username = f.username.trim().to_string();
    if username.is_empty() || f.password.is_empty() {
        let page = LoginPage { username, error: Some("请输入用户名和密码".into()) };
        return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
    }
    match users::login(&c.app, &username, &f.password, &from).await {
        Ok(user) => match sessions::create(&c.app, &user, &from).await {
            Ok(token) => {
                let mut res = see_other("/");
                if let Ok(v) = HeaderValue::from_str(&auth::cookie(Some(&token), c.secure_cookies())) {
                    res.headers_mut().insert(header::SET_COOKIE, v);
                }
                res
            }
            Err(e) => internal(e),
        },
        Err(e) if e.kind() == ErrorKind::Refused => {
            let status = if e.code() == "LOGIN_THROTTLED" {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            (status, LoginPage { username, error: Some(e.to_string()) }).into_response()
        }
        Err(e) => internal(e),
    }
}

pub async fn logout(State(c): St, v: Viewer) -> Response {
    if let Err(e) = sessions::end(&c.app, &v.actor, &v.user, &v.token).await {
        return internal(e);
    }
    let mut res = see_other("/login");
    if let Ok(h) = HeaderValue::from_str(&auth::cookie(None, c.secure_cookies())) {
        res.headers_mut().insert(header::SET_COOKIE, h);
    }
    res
}

// ---------- dashboard ----------

pub struct JobView {
    pub job: &'static str,
    pub task: &'static str,
    pub schedule: String,
    pub words: String,
    pub takes_date: bool,
    pub next_run: String,
    pub last_run: String,
    pub last_state: &'static str,
    pub last_state_class: String,
    pub last_id: Option<i64>,
    pub paused: bool,
    pub reason: String,
    pub paused_by: String,
    pub failures_24h: i64,
    pub queued: Option<i64>,
}

impl JobView {
    fn of(j: &JobStatus, tz: chrono_tz::Tz) -> JobView {
        let last = j.last_run.as_ref();
        JobView {
            job: j.job,
            task: j.task,
            schedule: j.schedule.clone(),
            words: cron_words(&j.schedule),
            takes_date: j.takes_date,
            next_run: opt_time(j.next_run.as_ref(), tz),
            last_run: opt_time(last.map(|r| r.finished_at.as_ref().unwrap_or(&r.scheduled_for)), tz),
            last_state: last.map(|r| view::run_state(r.state.as_str())).unwrap_or("—"),
            last_state_class: last.map(|r| r.state.as_str().to_string()).unwrap_or_default(),
            last_id: last.map(|r| r.id),
            paused: j.control.paused,
            reason: j.control.reason.clone().unwrap_or_default(),
            paused_by: j.control.paused_by.clone().unwrap_or_default(),
            failures_24h: j.failures_24h,
            queued: j.queued,
        }
    }
}

pub struct PendingView {
    pub status: &'static str,
    pub invoices: i64,
    pub total: String,
}

pub struct ImportView {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub accepted: i32,
    pub rejected: i32,
    pub at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    me: Me,
    jobs: Vec<JobView>,
    paused: Vec<JobView>,
    failures_24h: i64,
    pending: Vec<PendingView>,
    failed_callbacks: i64,
    imports: Vec<ImportView>,
    scoped: bool,
}

pub async fn dashboard(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::Dashboard) {
        return r;
    }
    let jobs = if v.may(Perm::ViewJobs) {
        match control::overview(&c.jobs, &c.registry).await {
            Ok(jobs) => jobs.iter().map(|j| JobView::of(j, c.tz)).collect(),
            Err(e) => return internal(e),
        }
    } else {
        Vec::new()
    };
    let d = match dash::dashboard(&c.app, v.scope()).await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let paused = jobs
        .iter()
        .filter(|j| j.paused)
        .map(|j| JobView {
            reason: j.reason.clone(),
            paused_by: j.paused_by.clone(),
            ..JobView::blank(j.job)
        })
        .collect();
    DashboardPage {
        me: Me::of(&v),
        failures_24h: jobs.iter().map(|j| j.failures_24h).sum(),
        paused,
        jobs,
        pending: d
            .pending
            .iter()
            .map(|p| PendingView {
                status: view::pending_status(&p.status),
                invoices: p.invoices,
                total: p.total.round_dp(2).to_string(),
            })
            .collect(),
        failed_callbacks: d.failed_callbacks,
        imports: d
            .last_imports
            .iter()
            .map(|i| ImportView {
                id: i.id,
                kind: i.kind.clone(),
                file_name: i.file_name.clone(),
                accepted: i.accepted,
                rejected: i.rejected,
                at: time(&i.created_at, c.tz),
            })
            .collect(),
        scoped: v.scope().is_some(),
    }
    .into_response()
}

impl JobView {
    fn blank(job: &'static str) -> JobView {
        JobView {
            job,
            task: "",
            schedule: String::new(),
            words: String::new(),
            takes_date: false,
            next_run: String::new(),
            last_run: String::new(),
            last_state: "",
            last_state_class: String::new(),
            last_id: None,
            paused: true,
            reason: String::new(),
            paused_by: String::new(),
            failures_24h: 0,
            queued: None,
        }
    }
}

// ---------- jobs ----------

/// A message beside one field of one job's form.
pub struct FieldError {
    pub job: String,
    pub field: &'static str,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
struct JobsPage {
    me: Me,
    jobs: Vec<JobView>,
    can_control: bool,
    error: Option<FieldError>,
}

impl JobsPage {
    fn error_for(&self, job: &str, field: &str) -> String {
        match &self.error {
            Some(e) if e.job == job && e.field == field => e.message.clone(),
            _ => String::new(),
        }
    }
}

async fn jobs_page(c: &Console, v: &Viewer, status: StatusCode, error: Option<FieldError>) -> Response {
    match control::overview(&c.jobs, &c.registry).await {
        Ok(jobs) => (
            status,
            JobsPage {
                me: Me::of(v),
                jobs: jobs.iter().map(|j| JobView::of(j, c.tz)).collect(),
                can_control: v.may(Perm::ControlJobs),
                error,
            },
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

pub async fn jobs(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::ViewJobs) {
        return r;
    }
    jobs_page(&c, &v, StatusCode::OK, None).await
}

/// After a job action: back to /jobs, or the page again with the message beside `field`.
async fn after_control<T>(
    c: &Console,
    v: &Viewer,
    job: &str,
    field: &'static str,
    result: Result<T, ControlError>,
    done: &str,
) -> Response {
    match result {
        Ok(_) => see_other(done),
        Err(ControlError::UnknownJob(_)) => error_page(StatusCode::NOT_FOUND, "没有这个任务"),
        Err(e) if matches!(e.kind(), ErrorKind::BadInput | ErrorKind::Conflict | ErrorKind::Refused) => {
            let error = FieldError { job: job.into(), field, message: e.to_string() };
            jobs_page(c, v, status_of(e.kind()), Some(error)).await
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct PauseForm {
    #[serde(default)]
    reason: String,
}

pub async fn pause(State(c): St, v: Viewer, Path(job): Path<String>, Form(f): Form<PauseForm>) -> Response {
    if let Err(r) = require_to_change(&c, &v, Perm::ControlJobs, "job.pause", &job).await {
        return r;
    }
    let result = control::set_paused(&c.jobs, &c.registry, &v.actor, &job, true, Some(&f.reason)).await;
    after_control(&c, &v, &job, "reason", result, "/jobs").await
}

pub async fn resume(State(c): St, v: Viewer, Path(job): Path<String>) -> Response {
    if let Err(r) = require_to_change(&c, &v, Perm::ControlJobs, "job.resume", &job).await {
        return r;
    }
    let result = control::set_paused(&c.jobs, &c.registry, &v.actor, &job, false, None).await;
    after_control(&c, &v, &job, "resume", result, "/jobs").await
}

#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    date: Option<String>,
}

pub async fn run_now(State(c): St, v: Viewer, Path(job): Path<String>, Form(f): Form<RunForm>) -> Response {
    if let Err(r) = require_to_change(&c, &v, Perm::ControlJobs, "job.run", &job).await {
        return r;
    }
    let date = match blank(f.date).map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d")) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let error =
                FieldError {
                    job: job.clone(), field: "date", message: "日期格式应为 YYYY-MM-DD".into()
                };
            return jobs_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, Some(error)).await;
        }
    };
    let result = control::queue_run(&c.jobs, &c.registry, &v.actor, &job, date).await;
    let done = format!("/runs?job={}", enc(&job));
    after_control(&c, &v, &job, "date", result, &done).await
}

// ---------- the input sync's given-up work ----------

#[derive(Deserialize)]
pub struct SyncRetryForm {
    #[serde(default)]
    tax_no: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// `POST /sync/retry` (`fapiao sync retry`): failed staged rows and download applications go to
/// the jobs again. A user scoped to enterprises must name one of theirs.
pub async fn sync_retry(State(c): St, v: Viewer, Form(f): Form<SyncRetryForm>) -> Response {
    let tax_no = blank(f.tax_no);
    let target = tax_no.clone().unwrap_or_else(|| "*".into());
    if let Err(r) = require_to_change(&c, &v, Perm::ControlJobs, "sync.retry", &target).await {
        return r;
    }
    let refuse = |message: String| {
        let error = FieldError { job: "sync".into(), field: "retry", message };
        async { jobs_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, Some(error)).await }
    };
    let date = |s: Option<String>| blank(s).map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"));
    let (from, to) = match (date(f.from).transpose(), date(f.to).transpose()) {
        (Ok(from), Ok(to)) => (from, to),
        _ => return refuse("日期格式应为 YYYY-MM-DD".into()).await,
    };
    let tax_no = match tax_no.map(|t| fapiao_schemas::TaxNo::parse(&t)).transpose() {
        Ok(t) => t,
        Err(e) => return refuse(format!("税号无效：{e}")).await,
    };
    if let Some(scope) = v.user.scope() {
        match &tax_no {
            Some(t) if scope.iter().any(|s| s == t.as_str()) => {}
            _ => return refuse("请填写您负责的企业税号".into()).await,
        }
    }
    let scope = fapiao_usecases::tenant::SyncScope { tax_no, from, to };
    let result = fapiao_usecases::tenant::retry_sync(&c.app, &v.actor, &scope).await;
    let tax_nos: Vec<String> = scope.tax_no.iter().map(|t| t.as_str().to_string()).collect();
    let detail = match &result {
        Ok(sent) => format!("{} 条暂存发票、{} 个下载申请重新处理", sent.staged_rows, sent.applications),
        Err(_) => String::new(),
    };
    let entry = Entry {
        actor: &v.actor,
        action: "sync.retry",
        target: &target,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(_) => see_other("/jobs"),
        Err(e) if matches!(e.kind(), ErrorKind::BadInput | ErrorKind::NotFound) => {
            refuse(e.to_string()).await
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub struct ResetStartForm {
    #[serde(default)]
    scheme: String,
    #[serde(default)]
    start: String,
}

/// `POST /sync/reset-start` (`fapiao sync reset-start`, the documented updateDownInit): the
/// scheme starts again at `start`; apply-cache backfills from there. A scoped user only for a
/// scheme of one of their enterprises.
pub async fn sync_reset_start(State(c): St, v: Viewer, Form(f): Form<ResetStartForm>) -> Response {
    let code = f.scheme.trim().to_string();
    if let Err(r) = require_to_change(&c, &v, Perm::ControlJobs, "sync.reset_start", &code).await {
        return r;
    }
    let refuse = |message: String| {
        let error = FieldError { job: "sync".into(), field: "reset_start", message };
        async { jobs_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, Some(error)).await }
    };
    let Ok(start) = NaiveDate::parse_from_str(f.start.trim(), "%Y-%m-%d") else {
        return refuse("开始日期格式应为 YYYY-MM-DD".into()).await;
    };
    let schemes = match fapiao_usecases::tenant::schemes(&c.app).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let Some(scheme) = schemes.iter().find(|s| s.code == code) else {
        return refuse(format!("同步方案{code}不存在")).await;
    };
    let tax_nos = vec![scheme.tax_no.as_str().to_string()];
    if !v.user.sees(&tax_nos[0]) {
        return refuse(format!("同步方案{code}不属于您负责的企业")).await;
    }
    let result = fapiao_usecases::tenant::reset_start(&c.app, &v.actor, &code, start).await;
    let detail = format!("从{start}重新同步");
    let entry = Entry {
        actor: &v.actor,
        action: "sync.reset_start",
        target: &code,
        outcome: Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(()) => see_other("/jobs"),
        Err(e) if matches!(e.kind(), ErrorKind::BadInput | ErrorKind::NotFound) => {
            refuse(e.to_string()).await
        }
        Err(e) => internal(e),
    }
}

// ---------- runs ----------

#[derive(Deserialize, Default)]
pub struct RunsQuery {
    job: Option<String>,
    state: Option<String>,
    trigger: Option<String>,
    from: Option<String>,
    to: Option<String>,
    hide_idle: Option<String>,
    before: Option<String>,
}

pub struct RunView {
    pub id: i64,
    pub job: String,
    pub scheduled: String,
    pub trigger: &'static str,
    pub state: &'static str,
    pub state_class: String,
    pub started: String,
    pub finished: String,
    pub counts: String,
    pub note: String,
    pub attempt: i32,
}

impl RunView {
    fn of(r: &RunRow, tz: chrono_tz::Tz) -> RunView {
        RunView {
            id: r.id,
            job: r.job.clone(),
            scheduled: time(&r.scheduled_for, tz),
            trigger: view::trigger(r.trigger.as_str()),
            state: view::run_state(r.state.as_str()),
            state_class: r.state.as_str().to_string(),
            started: opt_time(r.started_at.as_ref(), tz),
            finished: opt_time(r.finished_at.as_ref(), tz),
            counts: format!("{}/{}/{}", r.rows_read, r.rows_written, r.rows_rejected),
            note: r.error.clone().or(r.reason.clone()).unwrap_or_default(),
            attempt: r.attempt,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "runs.html")]
struct RunsPage {
    me: Me,
    jobs: Vec<&'static str>,
    q_job: String,
    q_state: String,
    q_trigger: String,
    q_from: String,
    q_to: String,
    hide_idle: bool,
    error: Option<String>,
    runs: Vec<RunView>,
    next: Option<String>,
}

fn day_start(d: NaiveDate, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).earliest().map(|t| t.with_timezone(&Utc))
}

pub async fn runs(State(c): St, v: Viewer, Query(q): Query<RunsQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewJobs) {
        return r;
    }
    let mut error = None;
    let mut bad = |m: &str| error = Some(m.to_string());
    let (job, state, trigger, from, to) =
        (blank(q.job), blank(q.state), blank(q.trigger), blank(q.from), blank(q.to));
    let hide_idle = q.hide_idle.as_deref() == Some("1");
    let mut filter = RunFilter { hide_idle, job: job.clone(), ..RunFilter::default() };
    if let Some(j) = &job
        && c.registry.get(j).is_err()
    {
        bad("没有这个任务");
    }
    if let Some(s) = &state {
        match RunState::from_str(s) {
            Ok(s) => filter.state = Some(s),
            Err(_) => bad("状态不正确"),
        }
    }
    if let Some(t) = &trigger {
        match Trigger::from_str(t) {
            Ok(t) => filter.trigger = Some(t),
            Err(_) => bad("触发方式不正确"),
        }
    }
    let parse_day = |s: &Option<String>| s.as_deref().map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"));
    match parse_day(&from) {
        Some(Ok(d)) => filter.from = day_start(d, c.tz),
        Some(Err(_)) => bad("开始日期格式应为 YYYY-MM-DD"),
        None => {}
    }
    match parse_day(&to) {
        Some(Ok(d)) => filter.to = d.succ_opt().and_then(|d| day_start(d, c.tz)),
        Some(Err(_)) => bad("结束日期格式应为 YYYY-MM-DD"),
        None => {}
    }
    if let Some(b) = blank(q.before) {
        let cursor = b.split_once('_').and_then(|(t, id)| {
            Some((DateTime::<Utc>::from_timestamp_micros(t.parse().ok()?)?, id.parse::<i64>().ok()?))
        });
        match cursor {
            Some(c) => filter.before = Some(c),
            None => bad("分页参数不正确"),
        }
    }
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let rows = if error.is_some() {
        Vec::new()
    } else {
        match control::runs(&c.jobs, &filter, PAGE + 1).await {
            Ok(rows) => rows,
            Err(e) => return internal(e),
        }
    };
    let next = (rows.len() as i64 > PAGE).then(|| {
        let last = &rows[PAGE as usize - 1];
        let mut link = format!("/runs?before={}_{}", last.scheduled_for.timestamp_micros(), last.id);
        for (k, v) in [("job", &job), ("state", &state), ("trigger", &trigger), ("from", &from), ("to", &to)]
        {
            if let Some(v) = v {
                link.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        if hide_idle {
            link.push_str("&hide_idle=1");
        }
        link
    });
    let page = RunsPage {
        me: Me::of(&v),
        jobs: c.registry.iter().map(|s| s.name()).collect(),
        q_job: job.unwrap_or_default(),
        q_state: state.unwrap_or_default(),
        q_trigger: trigger.unwrap_or_default(),
        q_from: from.unwrap_or_default(),
        q_to: to.unwrap_or_default(),
        hide_idle,
        error,
        runs: rows.iter().take(PAGE as usize).map(|r| RunView::of(r, c.tz)).collect(),
        next,
    };
    (status, page).into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
struct RunPage {
    me: Me,
    run: RunView,
    business_date: String,
    worker: String,
    reason: String,
    error: String,
    timeline: Vec<(&'static str, String)>,
}

pub async fn run_detail(State(c): St, v: Viewer, Path(id): Path<String>) -> Response {
    if let Err(r) = v.require(Perm::ViewJobs) {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return error_page(StatusCode::NOT_FOUND, "没有这次运行");
    };
    let r = match control::run(&c.jobs, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "没有这次运行"),
        Err(e) => return internal(e),
    };
    let mut timeline = vec![("计划时间", time(&r.scheduled_for, c.tz))];
    if let Some(t) = &r.started_at {
        timeline.push(("开始", time(t, c.tz)));
    }
    if let Some(t) = &r.finished_at {
        timeline.push(("结束", time(t, c.tz)));
    }
    RunPage {
        me: Me::of(&v),
        business_date: r.business_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
        worker: r.worker.clone().unwrap_or_else(|| "—".into()),
        reason: r.reason.clone().unwrap_or_default(),
        error: r.error.clone().unwrap_or_default(),
        run: RunView::of(&r, c.tz),
        timeline,
    }
    .into_response()
}

// ---------- parameters ----------

pub struct ParamView {
    pub ptype: String,
    pub key: String,
    pub value: String,
    pub source: &'static str,
    pub default: String,
    pub doc: &'static str,
}

pub struct ChangeView {
    pub target: String,
    pub old: String,
    pub new: String,
    pub at: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "params.html")]
struct ParamsPage {
    me: Me,
    params: Vec<ParamView>,
    history: Vec<ChangeView>,
    can_edit: bool,
    error: Option<FieldError>,
}

impl ParamsPage {
    fn error_for(&self, ptype: &str, key: &str) -> String {
        match &self.error {
            Some(e) if e.job == format!("{ptype}.{key}") => e.message.clone(),
            _ => String::new(),
        }
    }
}

async fn params_page(c: &Console, v: &Viewer, status: StatusCode, error: Option<FieldError>) -> Response {
    let (list, history) = match (uparams::list(&c.app).await, uparams::history(&c.app, 20).await) {
        (Ok(l), Ok(h)) => (l, h),
        (Err(e), _) | (_, Err(e)) => return internal(e),
    };
    let page = ParamsPage {
        me: Me::of(v),
        params: list
            .into_iter()
            .map(|p| ParamView {
                ptype: p.ptype,
                key: p.key,
                value: p.value.unwrap_or_default(),
                source: if p.source == "set" { "已设置" } else { "默认" },
                default: p.default.unwrap_or("—").to_string(),
                doc: p.doc,
            })
            .collect(),
        history: history
            .into_iter()
            .map(|h| ChangeView {
                target: format!("{}.{}", h.ptype, h.key),
                old: h.old_value.unwrap_or_else(|| "（默认）".into()),
                new: h.new_value.unwrap_or_else(|| "（默认）".into()),
                at: time(&h.changed_at, c.tz),
            })
            .collect(),
        can_edit: v.may(Perm::EditParams),
        error,
    };
    (status, page).into_response()
}

pub async fn params(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::ViewParams) {
        return r;
    }
    params_page(&c, &v, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct ParamForm {
    #[serde(default, rename = "type")]
    ptype: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

pub async fn set_param(State(c): St, v: Viewer, Form(f): Form<ParamForm>) -> Response {
    let target = format!("{}.{}", f.ptype, f.key);
    if let Err(r) = require_to_change(&c, &v, Perm::EditParams, "param.set", &target).await {
        return r;
    }
    match uparams::set(&c.app, &v.actor, &f.ptype, &f.key, &f.value).await {
        Ok(_) => see_other("/params"),
        Err(e) if matches!(e.kind(), ErrorKind::BadInput | ErrorKind::Refused | ErrorKind::NotFound) => {
            let error = FieldError { job: target, field: "value", message: e.to_string() };
            params_page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, Some(error)).await
        }
        Err(e) => internal(e),
    }
}

// ---------- audit ----------

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    before: Option<String>,
}

pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: String,
    pub outcome: &'static str,
    pub outcome_class: String,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    me: Me,
    q_actor: String,
    q_action: String,
    q_outcome: String,
    rows: Vec<AuditView>,
    next: Option<String>,
}

pub async fn audit(State(c): St, v: Viewer, Query(q): Query<AuditQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewAudit) {
        return r;
    }
    let filter = audit::Filter {
        actor: blank(q.actor),
        action: blank(q.action),
        outcome: blank(q.outcome),
        before: blank(q.before).and_then(|b| b.parse().ok()),
        limit: PAGE + 1,
    };
    let rows = match audit::list(&c.app, v.scope(), &filter).await {
        Ok(rows) => rows,
        Err(e) => return internal(e),
    };
    let next = (rows.len() as i64 > PAGE).then(|| {
        let mut link = format!("/audit?before={}", rows[PAGE as usize - 1].id);
        for (k, v) in [("actor", &filter.actor), ("action", &filter.action), ("outcome", &filter.outcome)] {
            if let Some(v) = v {
                link.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        link
    });
    AuditPage {
        me: Me::of(&v),
        q_actor: filter.actor.clone().unwrap_or_default(),
        q_action: filter.action.clone().unwrap_or_default(),
        q_outcome: filter.outcome.clone().unwrap_or_default(),
        rows: rows
            .iter()
            .take(PAGE as usize)
            .map(|r| AuditView {
                at: time(&r.at, c.tz),
                actor: r.actor.clone(),
                source: r.source.clone(),
                action: r.action.clone(),
                target: r.target.clone(),
                outcome: view::outcome(&r.outcome),
                outcome_class: r.outcome.clone(),
                detail: r.detail.clone(),
            })
            .collect(),
        next,
    }
    .into_response()
}
