//! `/red-flush/forms` (红字确认单 and 红字信息表: `fapiao red-flush forms list`) with confirm,
//! reject (a form the other party entered) and revoke (`forms confirm|reject|revoke`), the
//! channel's refusal shown verbatim; and `/red-flush/list`: upload a red-flush list (the
//! red-flush import template), red-flushed in the background in batches of ten
//! (`red-flush --file`), its report to download from the task's page. A scoped user sees the
//! documents whose seller or buyer is theirs, and their list's rows about others' invoices are
//! refused on their row.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fapiao_schemas::{FormState, RedDocumentKind, RedDocumentState, SheetState};
use fapiao_usecases::ErrorKind;
use fapiao_usecases::audit::{self, Entry, Outcome};
use fapiao_usecases::bulk::{self, BulkAsked};
use fapiao_usecases::red_flush::{self, DocumentRow};
use fapiao_usecases::tasks::{self, TaskKind};
use serde_json::Value;

use crate::auth::{Perm, Viewer};
use crate::imports::{UploadError, receive};
use crate::pages::{Me, error_page, internal, require_to_change, see_other};
use crate::view::time;
use crate::{Console, files};

type St = State<Arc<Console>>;

pub fn routes(console: &Console) -> Router<Arc<Console>> {
    let limit = (console.app.settings.http.max_upload_mib as usize) << 20;
    Router::new()
        .route("/red-flush/forms", get(forms))
        .route("/red-flush/forms/{id}/{step}", post(decide))
        .route(
            "/red-flush/list",
            get(list_form).post(upload_list).layer(DefaultBodyLimit::max(limit + (1 << 20))),
        )
}

pub struct DocumentView {
    pub id: String,
    pub kind: &'static str,
    pub number: String,
    pub state: String,
    pub seller: String,
    pub buyer: String,
    pub invoice: String,
    pub total: String,
    pub reason: String,
    pub entered_by: String,
    pub updated: String,
    pub decidable: bool,
    pub revocable: bool,
}

impl DocumentView {
    fn of(d: &DocumentRow, tz: chrono_tz::Tz) -> DocumentView {
        use FormState::*;
        DocumentView {
            id: d.id.clone(),
            kind: match d.kind {
                RedDocumentKind::Form => "红字确认单",
                RedDocumentKind::Sheet => "红字信息表",
            },
            number: d.number.clone().unwrap_or_default(),
            state: d.state_zh.clone(),
            seller: d.seller_tax_no.clone(),
            buyer: d.buyer_tax_no.clone(),
            invoice: d.invoice_num.clone(),
            total: (d.amount + d.tax).round_dp(2).to_string(),
            reason: d.red_reason.clone(),
            entered_by: match d.entered_by.as_str() {
                "seller" => "销方".into(),
                "buyer" => "购方".into(),
                other => other.to_string(),
            },
            updated: time(&d.updated_at, tz),
            decidable: matches!(d.state, RedDocumentState::Form(AwaitingBuyer | AwaitingSeller)),
            revocable: matches!(
                d.state,
                RedDocumentState::Form(NoConfirmationNeeded | AwaitingBuyer | AwaitingSeller | Confirmed)
                    | RedDocumentState::Sheet(SheetState::Submitted | SheetState::Approved)
            ),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "red_flush_forms.html")]
struct FormsPage {
    me: Me,
    can_act: bool,
    rows: Vec<DocumentView>,
    message: Option<String>,
}

/// Whether a document concerns one of the viewer's enterprises (as seller or buyer).
fn sees(v: &Viewer, d: &DocumentRow) -> bool {
    v.user.sees(&d.seller_tax_no) || v.user.sees(&d.buyer_tax_no)
}

async fn forms_page(c: &Console, v: &Viewer, status: StatusCode, message: Option<String>) -> Response {
    let rows = match red_flush::forms_in_scope(&c.app, v.scope()).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let page = FormsPage {
        me: Me::of(v),
        can_act: v.may(Perm::Invoicing),
        rows: rows.iter().map(|d| DocumentView::of(d, c.tz)).collect(),
        message,
    };
    (status, page).into_response()
}

/// `GET /red-flush/forms`: forms and sheets with their state, newest first.
pub async fn forms(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    forms_page(&c, &v, StatusCode::OK, None).await
}

/// `POST /red-flush/forms/{id}/{confirm|reject|revoke}`: the channel is asked; the list again with
/// the new state, or the refusal verbatim. A document of another scope: 403, audited.
pub async fn decide(State(c): St, v: Viewer, Path((id, step)): Path<(String, String)>) -> Response {
    let action = match step.as_str() {
        "confirm" => "red_flush.form_confirm",
        "reject" => "red_flush.form_reject",
        "revoke" => "red_flush.form_revoke",
        _ => return error_page(StatusCode::NOT_FOUND, "没有这个操作"),
    };
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, action, &id).await {
        return r;
    }
    let doc = match red_flush::form(&c.app, &id).await {
        Ok(doc) => doc,
        Err(e) => return internal(e),
    };
    let Some(doc) = doc.filter(|d| sees(&v, d)) else {
        let detail = format!("红字确认单/信息表{id}不存在或不在您负责的企业范围内");
        tasks::refused(&c.app, &v.actor, action, &id, &detail, &[]).await;
        return error_page(StatusCode::FORBIDDEN, &detail);
    };
    let result: fapiao_usecases::Result<String> = match step.as_str() {
        "revoke" => {
            red_flush::revoke_form(&c.app, &v.actor, &id).await.map(|s| format!("已撤销：{}", s.label_zh()))
        }
        _ => red_flush::decide_form(&c.app, &v.actor, &id, step == "confirm").await.map(|d| {
            let red = match &d.red_flush {
                Some(o) => match &o.red_invoice_num {
                    Some(n) => format!("，已开具红字发票{n}"),
                    None => format!(
                        "，红冲：{}{}",
                        red_flush::state_zh(o.state),
                        o.message.clone().map(|m| format!("（{m}）")).unwrap_or_default()
                    ),
                },
                None => String::new(),
            };
            format!("{}{red}", d.state.label_zh())
        }),
    };
    let tax_nos = vec![doc.seller_tax_no.clone()];
    let detail = result.as_deref().unwrap_or("");
    let entry =
        Entry { actor: &v.actor, action, target: &id, outcome: Outcome::Ok, detail, tax_nos: &tax_nos };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(m) => forms_page(&c, &v, StatusCode::OK, Some(format!("{id}：{m}"))).await,
        Err(e) if e.kind() != ErrorKind::Internal => {
            let status =
                StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            forms_page(&c, &v, status, Some(e.to_string())).await
        }
        Err(e) => internal(e),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "red_flush_list.html")]
struct ListPage {
    me: Me,
    max_mib: u32,
    error: Option<String>,
}

fn list_page(c: &Console, v: &Viewer, status: StatusCode, error: Option<String>) -> Response {
    (status, ListPage { me: Me::of(v), max_mib: c.app.settings.http.max_upload_mib, error }).into_response()
}

/// `GET /red-flush/list`: the upload form.
pub async fn list_form(State(c): St, v: Viewer) -> Response {
    if let Err(r) = v.require(Perm::Invoicing) {
        return r;
    }
    list_page(&c, &v, StatusCode::OK, None)
}

/// `POST /red-flush/list` (multipart `file`): the list to disk, a task, the red-flush in the
/// background; 303 to the task's page.
pub async fn upload_list(State(c): St, v: Viewer, mp: Multipart) -> Response {
    const ACTION: &str = "red_flush.list";
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, ACTION, "").await {
        return r;
    }
    let tax_nos: Vec<String> = v.scope().map(|s| s.to_vec()).unwrap_or_default();
    let max_mib = c.app.settings.http.max_upload_mib;
    let dir = match files::new_folder(&c.root, "uploads") {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let refuse = |status: StatusCode, message: String| {
        let (c, v, dir, tax_nos) = (&c, &v, &dir, &tax_nos);
        async move {
            let _ = tokio::fs::remove_dir_all(dir).await;
            tasks::refused(&c.app, &v.actor, ACTION, "", &message, tax_nos).await;
            list_page(c, v, status, Some(message))
        }
    };
    let up = match receive(mp, &dir, u64::from(max_mib) << 20).await {
        Ok(up) => up,
        Err(UploadError::TooLarge) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("文件超过上传上限 {max_mib} MiB")).await;
        }
        Err(UploadError::Bad(m)) => return refuse(StatusCode::BAD_REQUEST, m).await,
        Err(UploadError::Io(e)) => return internal(e),
    };
    let Some((path, name, _)) = up.file.filter(|f| f.2 > 0) else {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "请选择红冲清单文件".into()).await;
    };
    let report = dir.join("红冲结果.xlsx");
    let asked = BulkAsked { what: "red_flush_list".into(), filter: String::new(), count: 0 };
    let mut asked = serde_json::to_value(&asked).unwrap_or(Value::Null);
    asked["file_name"] = Value::String(name.clone());
    asked["count"] = Value::Null;
    let id = match tasks::open(
        &c.app,
        &v.actor,
        TaskKind::RedFlushList,
        &tax_nos,
        asked,
        &path,
        Some(report.as_path()),
    )
    .await
    {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let (actor, scope) = (v.actor.clone(), v.scope().map(|s| s.to_vec()));
    files::spawn(c.clone(), id, "导入清单、每批十张红冲", move |console, live| async move {
        let progress = |n: u64| live.rows.store(n, Ordering::Relaxed);
        bulk::run_red_flush_list(&console.app, &actor, id, &path, &report, scope.as_deref(), &progress).await
    });
    see_other(&format!("/tasks/{id}"))
}
