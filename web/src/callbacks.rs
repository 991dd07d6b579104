//! `/callbacks` (issue 19, 按单回调): the failed callbacks (or all, `?all=1`) as
//! `fapiao callbacks list`; finance and admin retry chosen ones (`fapiao callbacks retry ID…`).
//! Auditors read; a scoped user sees and retries their enterprises' bills' callbacks only.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use fapiao_usecases::audit::{self, Entry};
use fapiao_usecases::callbacks;
use serde::Deserialize;

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{Me, error_page, internal, require_to_change};
use crate::view::time;

type St = State<Arc<Console>>;

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/callbacks", get(list)).route("/callbacks/retry", post(retry))
}

pub struct CallbackView {
    pub id: i64,
    pub bill: String,
    pub seller: String,
    pub interface: String,
    pub state: String,
    pub state_class: &'static str,
    pub attempts: i32,
    pub next: String,
    pub error: String,
    pub url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "callbacks.html")]
struct CallbacksPage {
    me: Me,
    all: bool,
    can_retry: bool,
    rows: Vec<CallbackView>,
    message: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    all: Option<String>,
}

/// The callbacks `v` sees (failed only unless `all`), each with its bill's seller.
async fn visible(c: &Console, v: &Viewer, all: bool) -> Result<Vec<CallbackView>, Response> {
    let rows = callbacks::list(&c.app, !all).await.map_err(internal)?;
    let bills: Vec<String> = rows.iter().map(|r| r.bill_no.clone()).collect();
    let sellers = callbacks::sellers(&c.app, &bills).await.map_err(internal)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let seller = sellers.get(&r.bill_no).cloned().unwrap_or_default();
            v.user.sees(&seller).then(|| {
                let state = r.state.to_string();
                CallbackView {
                    id: r.id,
                    bill: r.bill_no.clone(),
                    seller,
                    interface: r.interface_code.clone(),
                    state_class: match state.as_str() {
                        "failed" => "failed",
                        "succeeded" => "succeeded",
                        _ => "running",
                    },
                    state,
                    attempts: r.attempts,
                    next: time(&r.next_attempt_at, c.tz),
                    error: r.last_error.clone().unwrap_or_default(),
                    url: r.url.clone(),
                }
            })
        })
        .collect())
}

async fn page(c: &Console, v: &Viewer, status: StatusCode, all: bool, message: Option<String>) -> Response {
    let rows = match visible(c, v, all).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let page = CallbacksPage { me: Me::of(v), all, can_retry: v.may(Perm::Invoicing), rows, message };
    (status, page).into_response()
}

pub async fn list(State(c): St, v: Viewer, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = v.require(Perm::ViewInvoicing) {
        return r;
    }
    page(&c, &v, StatusCode::OK, q.all.as_deref() == Some("1"), None).await
}

/// `POST /callbacks/retry` (`id` repeated): start the chosen failed callbacks again and deliver.
pub async fn retry(State(c): St, v: Viewer, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let ids: Vec<i64> =
        fields.iter().filter(|(f, _)| f == "id").filter_map(|(_, v)| v.trim().parse().ok()).collect();
    let target: String = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    if let Err(r) = require_to_change(&c, &v, Perm::Invoicing, "callback.retry", &target).await {
        return r;
    }
    if ids.is_empty() {
        return page(&c, &v, StatusCode::UNPROCESSABLE_ENTITY, false, Some("请先勾选回调".into())).await;
    }
    // Every chosen callback must be one the user sees (an empty list would mean "all failed").
    let seen = match visible(&c, &v, true).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut tax_nos = Vec::new();
    for id in &ids {
        match seen.iter().find(|r| r.id == *id) {
            Some(r) => tax_nos.push(r.seller.clone()),
            None => {
                let detail = format!("回调{id}不存在或不在您负责的企业范围内");
                fapiao_usecases::tasks::refused(&c.app, &v.actor, "callback.retry", &target, &detail, &[])
                    .await;
                return error_page(StatusCode::FORBIDDEN, &detail);
            }
        }
    }
    tax_nos.sort();
    tax_nos.dedup();
    let result = callbacks::retry(&c.app, &v.actor, &ids).await;
    let detail = match &result {
        Ok(r) => format!(
            "重新开始{}条，投递{}条，成功{}条，待重试{}条",
            r.restarted, r.delivery.attempted, r.delivery.succeeded, r.delivery.retrying
        ),
        Err(_) => String::new(),
    };
    let entry = Entry {
        actor: &v.actor,
        action: "callback.retry",
        target: &target,
        outcome: audit::Outcome::Ok,
        detail: &detail,
        tax_nos: &tax_nos,
    };
    audit::record_result(&c.app.pool, entry, &result, |e| e.kind()).await;
    match result {
        Ok(_) => page(&c, &v, StatusCode::OK, false, Some(detail)).await,
        Err(e) => internal(e),
    }
}
