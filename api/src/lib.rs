//! The inbound ERP API (issue 17, seed 001 开票申请单异构对接): an ERP written against the
//! Kingdee interfaces points its base URL at fapiao and works. It speaks the channel's own
//! envelope (`schemas/channel.md`), with the channel's envelope types and data codec.
//!
//! Routes (all POST; every answer is 200 with the envelope or token reply, never an error page):
//! * `/api/getAppToken.do` `{appId, appSecret, accountId}` → app token;
//! * `/api/login.do` `{apptoken, accountId, user}` → access token;
//! * `/kapi/app/sim/openApi` (token in the `access_token` header or query):
//!   `BILL.PUSH`, `BILL.WITHDRAW`, `BILL.INVOICE.QUERY`.
//!
//! Handlers are thin: read the body within the size limit, ask `fapiao_usecases::systems` who is
//! calling, call one use case of `fapiao_usecases::erp`, answer, log the call. Limits (body size,
//! bills and lines per push, calls per second per system) are `[api]` configuration.

mod answer;
mod limits;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use axum::routing::post;
use fapiao_channel::codec::Codec;
use fapiao_channel::codes::error as code;
use fapiao_channel::envelope;
use fapiao_usecases::erp::{self, LogEntry, PushedBill};
use fapiao_usecases::systems::{self, Caller};
use fapiao_usecases::{Actor, App};
use fapiao_usecases::{receipt_order, receipts};
use serde::Deserialize;

use answer::{Refusal, TOO_LARGE};
pub use limits::RateLimiter;

/// Interface codes this API serves (public codes, reference/domain-facts.md §1).
pub mod interface {
    pub const BILL_PUSH: &str = "BILL.PUSH";
    pub const BILL_WITHDRAW: &str = "BILL.WITHDRAW";
    pub const BILL_INVOICE_QUERY: &str = "BILL.INVOICE.QUERY";
    /// Ours for 3.2.01 上传销售单获取二维码链接 (receipt codes, mode 2; no public code found).
    pub const RECEIPT_UPLOAD: &str = "RECEIPT.UPLOAD";
}

/// What every handler works with.
pub struct Api {
    pub app: App,
    pub rate: RateLimiter,
}

impl Api {
    pub fn new(app: App) -> Api {
        let rate = RateLimiter::new(app.settings.api.rate_per_sec, app.settings.api.rate_burst);
        Api { app, rate }
    }
}

/// Every route of the API.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/getAppToken.do", post(app_token).fallback(wrong_method))
        .route("/api/login.do", post(login).fallback(wrong_method))
        .route("/kapi/app/sim/openApi", post(open_api).fallback(wrong_method))
        // The body is read by `read_body` under `api.max_body_kib`, refused in the envelope.
        .layer(DefaultBodyLimit::disable())
        .with_state(api)
}

async fn wrong_method() -> Response {
    answer::envelope(Err(Refusal::new(code::BAD_REQUEST, "接口只接受POST请求")), &Codec::Base64)
}

/// The body, at most `api.max_body_kib`.
async fn read_body(api: &Api, body: Body) -> Result<Bytes, Refusal> {
    let limit = api.app.settings.api.max_body_kib as usize * 1024;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Refusal::new(TOO_LARGE, format!("请求报文超过{}KB", api.app.settings.api.max_body_kib)))
}

/// The caller's address: the connection's peer when served with connect info.
fn remote(ext: &Extensions) -> Option<String> {
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppTokenBody {
    #[serde(default)]
    app_id: String,
    /// Seed 001's sample spells it appSecuret.
    #[serde(default, alias = "appSecuret")]
    app_secret: String,
    #[serde(default)]
    account_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    #[serde(default)]
    apptoken: String,
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    user: String,
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|_| Refusal::new(code::BAD_REQUEST, "报文不是有效的JSON"))
}

async fn app_token(State(api): State<Arc<Api>>, ext: Extensions, body: Body) -> Response {
    let started = Instant::now();
    let result = async {
        let req: AppTokenBody = parse(&read_body(&api, body).await?)?;
        systems::app_token(&api.app, &req.app_id, &req.app_secret, &req.account_id)
            .await
            .map(|t| (t.token, t.expire_ms))
            .map_err(|e| Refusal::of(&e))
    }
    .await;
    log_token_call(&api, "getAppToken.do", &result, started, &ext).await;
    answer::token(result, true)
}

async fn login(State(api): State<Arc<Api>>, ext: Extensions, body: Body) -> Response {
    let started = Instant::now();
    let result = async {
        let req: LoginBody = parse(&read_body(&api, body).await?)?;
        systems::login(&api.app, &req.apptoken, &req.account_id, &req.user)
            .await
            .map(|t| (t.token, t.expire_ms))
            .map_err(|e| Refusal::of(&e))
    }
    .await;
    log_token_call(&api, "login.do", &result, started, &ext).await;
    answer::token(result, false)
}

async fn log_token_call(
    api: &Api,
    interface: &str,
    result: &Result<(String, i64), Refusal>,
    started: Instant,
    ext: &Extensions,
) {
    let (outcome, message) = match result {
        Ok(_) => (code::OK.to_string(), String::new()),
        Err(r) => (r.code.clone(), r.message.clone()),
    };
    let entry = LogEntry {
        interface_code: interface.into(),
        outcome,
        message,
        duration_ms: started.elapsed().as_millis() as u32,
        remote: remote(ext),
        ..LogEntry::default()
    };
    erp::log(&api.app, &entry).await;
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// What a business call did, for its answer and the log.
struct Done {
    json: String,
    success: bool,
    code: String,
    message: String,
    bills: u32,
    accepted: u32,
}

async fn open_api(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    ext: Extensions,
    Query(q): Query<TokenQuery>,
    body: Body,
) -> Response {
    let started = Instant::now();
    let token =
        headers.get("access_token").and_then(|v| v.to_str().ok()).map(str::to_string).or(q.access_token);
    let mut entry = LogEntry { remote: remote(&ext), ..LogEntry::default() };
    let mut codec = Codec::Base64;
    let result = async {
        let bytes = read_body(&api, body).await?;
        let request: envelope::Request = parse(&bytes)?;
        entry.interface_code = request.interface_code.clone();
        entry.request_id = Some(request.request_id.clone());
        let caller = systems::authorize(&api.app, token.as_deref()).await.map_err(|e| Refusal::of(&e))?;
        entry.system_code = Some(caller.code.clone());
        if let Some(password) = &caller.data_password {
            codec = Codec::aes(password);
        }
        if !api.rate.allow(&caller.code) {
            return Err(Refusal::new(code::BUSY, "请求过于频繁，请稍后再试"));
        }
        let data = codec
            .decode(&request.data)
            .map_err(|e| Refusal::new(code::BAD_REQUEST, format!("data解码失败：{e}")))?;
        let actor =
            Actor::Erp { system: caller.code.clone(), from: entry.remote.clone().unwrap_or_default() };
        dispatch(&api, &actor, &caller, &request.interface_code, &data).await
    }
    .await;
    entry.duration_ms = started.elapsed().as_millis() as u32;
    let response = match result {
        Ok(done) => {
            entry.bills = done.bills;
            entry.accepted = done.accepted;
            entry.refused = done.bills - done.accepted;
            entry.outcome = if done.success { code::OK.into() } else { done.code.clone() };
            entry.message = done.message.clone();
            if done.success {
                answer::envelope(Ok((done.json, done.message, true)), &codec)
            } else {
                answer::envelope_with_code(done.json, done.code, done.message, &codec)
            }
        }
        Err(r) => {
            entry.outcome = r.code.clone();
            entry.message = r.message.clone();
            answer::envelope(Err(r), &codec)
        }
    };
    if entry.interface_code.is_empty() {
        entry.interface_code = "?".into();
    }
    erp::log(&api.app, &entry).await;
    response
}

async fn dispatch(
    api: &Api,
    actor: &Actor,
    caller: &Caller,
    interface: &str,
    data: &str,
) -> Result<Done, Refusal> {
    let unreadable = |e: wire::Unreadable| Refusal::new(code::BAD_REQUEST, e.0);
    match interface {
        interface::BILL_PUSH => {
            let bills = wire::bills(data).map_err(unreadable)?;
            let limits = &api.app.settings.api;
            let lines: usize = bills.iter().map(|(b, _)| b.lines.len()).sum();
            if bills.len() > limits.max_bills as usize || lines > limits.max_lines as usize {
                return Err(Refusal::new(
                    TOO_LARGE,
                    format!(
                        "单次推送最多{}张单据、{}行明细（本次{}张、{}行）",
                        limits.max_bills,
                        limits.max_lines,
                        bills.len(),
                        lines
                    ),
                ));
            }
            let pushed = bills.into_iter().map(|(bill, body_hash)| PushedBill { bill, body_hash }).collect();
            let answers = erp::push(&api.app, actor, caller, pushed, &wire::wire_name)
                .await
                .map_err(|e| Refusal::of(&e))?;
            let accepted = answers.iter().filter(|a| a.success).count() as u32;
            let bills = answers.len() as u32;
            let first_refused = answers.iter().find(|a| !a.success);
            let json = serde_json::to_string(&answers).expect("plain JSON");
            Ok(match first_refused {
                None => Done {
                    json,
                    success: true,
                    code: code::OK.into(),
                    message: "推单成功".into(),
                    bills,
                    accepted,
                },
                Some(r) => Done {
                    json,
                    success: false,
                    code: r.error_code.clone(),
                    message: format!("{}张单据被拒绝，第一张{}：{}", bills - accepted, r.bill_no, r.message),
                    bills,
                    accepted,
                },
            })
        }
        interface::BILL_WITHDRAW => {
            let refs = wire::bill_refs(data).map_err(unreadable)?;
            let count = refs.len() as u32;
            for r in &refs {
                erp::withdraw(&api.app, actor, caller, &r.bill_no, &r.seller_taxpayer_id)
                    .await
                    .map_err(|e| Refusal::of(&e))?;
            }
            let json = serde_json::to_string(&refs.iter().map(|r| &r.bill_no).collect::<Vec<_>>())
                .expect("plain JSON");
            Ok(Done {
                json,
                success: true,
                code: code::OK.into(),
                message: "撤销成功".into(),
                bills: count,
                accepted: count,
            })
        }
        interface::BILL_INVOICE_QUERY => {
            let refs = wire::bill_refs(data).map_err(unreadable)?;
            let mut found = Vec::with_capacity(refs.len());
            for r in &refs {
                found.push(
                    erp::query(&api.app, caller, &r.bill_no, &r.seller_taxpayer_id)
                        .await
                        .map_err(|e| Refusal::of(&e))?,
                );
            }
            let count = refs.len() as u32;
            let json = serde_json::to_string(&found).expect("plain JSON");
            Ok(Done {
                json,
                success: true,
                code: code::OK.into(),
                message: "成功".into(),
                bills: count,
                accepted: count,
            })
        }
        interface::RECEIPT_UPLOAD => {
            // Each order read from its JSON text: amounts exact (receipt_order), never an f64.
            let unreadable =
                |e: &dyn std::fmt::Display| Refusal::new(code::BAD_REQUEST, format!("data不是订单JSON：{e}"));
            let orders: Vec<receipt_order::Order> = if data.trim_start().starts_with('[') {
                let raw: Vec<Box<serde_json::value::RawValue>> =
                    serde_json::from_str(data).map_err(|e| unreadable(&e))?;
                raw.iter()
                    .map(|o| receipt_order::parse(o.get()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| unreadable(&e))?
            } else {
                vec![receipt_order::parse(data).map_err(|e| unreadable(&e))?]
            };
            let now = chrono::Utc::now();
            let mut answers = Vec::with_capacity(orders.len());
            for o in &orders {
                answers.push(
                    receipts::upload_order(&api.app, actor, &caller.tax_nos, o, now)
                        .await
                        .map_err(|e| Refusal::of(&e))?,
                );
            }
            let accepted = answers.iter().filter(|a| a.success).count() as u32;
            let first_refused = answers.iter().find(|a| !a.success);
            Ok(Done {
                json: serde_json::to_string(&answers).expect("plain JSON"),
                success: first_refused.is_none(),
                code: first_refused.map(|a| a.error_code.clone()).unwrap_or_else(|| code::OK.into()),
                message: first_refused.map(|a| a.message.clone()).unwrap_or_else(|| "成功".into()),
                bills: answers.len() as u32,
                accepted,
            })
        }
        other => Err(Refusal::new(code::BAD_REQUEST, format!("不支持的接口编码：{other}"))),
    }
}
