//! The sandbox: an axum server that plays the invoice cloud, the tax bureau and an ERP, over the
//! same envelope as the real channel (`fapiao sandbox`, or `Sandbox::start` in-process).
//!
//! Routes: `POST /api/getAppToken.do`, `POST /api/login.do`, `POST /kapi/app/{sim|rim}/openApi`,
//! `POST /erp/callback/{system}` (the ERP), and test controls under `/sandbox/…` (see
//! `schemas/channel.md`).

mod delay;
pub mod erp_client;
mod faults;
mod generate;
mod samples;
mod selection;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub use faults::{Fault, FaultPlan, FaultSpecError};
pub use generate::invoices_for;
pub use samples::sample_invoice;
pub use selection::Selections;
pub use world::{ApiError, Merchant, World};

use crate::codec::Codec;
use crate::codes::error as code;
use crate::envelope::{self, TokenData, TokenReply};

#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Seeds generated invoices and fault rolls.
    pub seed: u64,
    pub faults: FaultPlan,
    /// Lifetime of an access token (2 h like the real one; seconds in tests).
    pub token_ttl: Duration,
    /// How long an issue stays 开票中 before its result shows.
    pub issue_delay: Duration,
    /// The "请<time>后再试" time of an injected 局端内部错误 is this far ahead (minute precision).
    pub repair_after: Duration,
    /// How long a download application takes to become ready.
    pub download_delay: Duration,
    /// How long the bureau takes to approve a red info sheet.
    pub red_info_delay: Duration,
    /// An asynchronous selection batch is pending this long, then processing as long again.
    pub select_delay: Duration,
    pub app_id: String,
    pub app_secret: String,
    pub codec: Codec,
    /// Base of file URLs in answers (set by `start` to the listening address).
    pub public_url: String,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 1,
            faults: FaultPlan::none(),
            token_ttl: Duration::from_secs(7200),
            issue_delay: Duration::from_millis(100),
            repair_after: Duration::from_secs(600),
            download_delay: Duration::from_millis(200),
            red_info_delay: Duration::from_millis(200),
            select_delay: Duration::from_millis(200),
            app_id: "sandbox-app".into(),
            app_secret: "sandbox-secret".into(),
            codec: Codec::Base64,
            public_url: String::new(),
        }
    }
}

type Shared = Arc<Mutex<World>>;

/// A running sandbox; stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    world: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sandbox {
    /// Listen on `listen` (e.g. `127.0.0.1:0` for any free port) and serve in the background.
    pub async fn start(mut config: SandboxConfig, listen: &str) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        config.public_url = format!("http://{addr}");
        let world: Shared = Arc::new(Mutex::new(World::new(config)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(world.clone());
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "sandbox server stopped");
            }
        });
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox { addr, world, stop: Some(stop) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `tenantBase` to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The world, for tests and the demo to look at or steer.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("sandbox state lock")
    }

    /// Serve until the process is interrupted.
    pub async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(world: Shared) -> Router {
    Router::new()
        .route("/api/getAppToken.do", post(app_token))
        .route("/api/login.do", post(login))
        .route("/kapi/app/sim/openApi", post(open_api))
        .route("/kapi/app/rim/openApi", post(open_api))
        .route("/erp/callback/{system}", post(erp_callback))
        .route("/sandbox/erp/callbacks", get(erp_received))
        .route("/sandbox/erp/fail", post(erp_fail))
        .route("/sandbox/red-confirm/{uuid}/{action}", post(counterparty))
        .route("/sandbox/red-confirm/inbound", post(inbound_form))
        .route("/sandbox/red-info/{id}/{action}", post(bureau_decides))
        .route("/sandbox/stats", get(stats))
        .route("/merchant/order", post(merchant_order))
        .route("/sandbox/merchant/orders", post(merchant_add_order))
        .route("/files/{name}", get(invoice_file))
        .with_state(world)
}

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().expect("sandbox state lock")
}

fn token_reply(result: Result<(String, Duration), ApiError>, app: bool) -> Json<TokenReply> {
    let data = match result {
        Ok((token, ttl)) => TokenData {
            success: true,
            app_token: app.then(|| token.clone()),
            access_token: (!app).then_some(token),
            expire_time: ttl.as_millis() as i64,
            error_code: "0".into(),
            error_desc: String::new(),
        },
        Err(e) => TokenData {
            success: false,
            error_code: e.code.into(),
            error_desc: e.message,
            ..TokenData::default()
        },
    };
    let status = data.success;
    Json(TokenReply { data, status })
}

async fn app_token(
    State(world): State<Shared>,
    Json(req): Json<envelope::AppTokenRequest>,
) -> Json<TokenReply> {
    let mut w = lock(&world);
    *w.calls.entry("getAppToken.do".into()).or_default() += 1;
    token_reply(w.app_token(&req.app_id, &req.app_secret, Instant::now()), true)
}

async fn login(State(world): State<Shared>, Json(req): Json<envelope::LoginRequest>) -> Json<TokenReply> {
    let mut w = lock(&world);
    *w.calls.entry("login.do".into()).or_default() += 1;
    token_reply(w.login(&req.apptoken, &req.user, Instant::now()), false)
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

async fn open_api(
    State(world): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<envelope::Request>(&body) else {
        return envelope_answer(
            Err(ApiError { code: code::BAD_REQUEST, message: "报文不是有效的JSON信封".into() }),
            &Codec::Base64,
        );
    };
    let op = request.interface_code.clone();
    let latency = lock(&world).dice.plan().latency(&op);
    if !latency.is_zero() {
        delay::wait(latency).await;
    }
    let token =
        headers.get("access_token").and_then(|v| v.to_str().ok()).map(str::to_string).or(q.access_token);
    let (result, codec, drop_answer) = {
        let mut w = lock(&world);
        let codec = w.config.codec.clone();
        *w.calls.entry(op.clone()).or_default() += 1;
        if let Err(e) = w.authorize(token.as_deref(), &op, Instant::now()) {
            return envelope_answer(Err(e), &codec);
        }
        if w.dice.roll(Fault::Http5xx, &op) {
            return (StatusCode::SERVICE_UNAVAILABLE, "sandbox: injected 503").into_response();
        }
        let result = match codec.decode(&request.data) {
            Ok(plain) => w.dispatch(&op, &plain, Instant::now()),
            Err(e) => Err(ApiError { code: code::BAD_REQUEST, message: format!("data解码失败：{e}") }),
        };
        let drop_answer = w.dice.roll(Fault::Drop, &op);
        (result, codec, drop_answer)
    };
    if drop_answer {
        // The work is done; the answer is cut off mid-body, as a lost connection would.
        let broken = futures_util::stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("sandbox: injected dropped answer"))
        });
        return (StatusCode::OK, Body::from_stream(broken)).into_response();
    }
    envelope_answer(result, &codec)
}

fn envelope_answer(result: Result<String, ApiError>, codec: &Codec) -> Response {
    let response = match result {
        Ok(json) => envelope::Response {
            success: true,
            error_code: code::OK.into(),
            message: "成功".into(),
            data: Some(codec.encode(&json)),
        },
        Err(e) => {
            envelope::Response { success: false, error_code: e.code.into(), message: e.message, data: None }
        }
    };
    Json(response).into_response()
}

/// The ERP side of per-bill callbacks: records every body; fails while told to.
async fn erp_callback(
    State(world): State<Shared>,
    Path(system): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut w = lock(&world);
    w.erp.received.push(json!({ "system": system, "body": body }));
    if w.erp.fail_next > 0 {
        w.erp.fail_next -= 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "success": false, "message": "ERP unavailable" })),
        )
            .into_response();
    }
    Json(json!({ "success": true, "errorCode": "0", "message": "ok" })).into_response()
}

async fn erp_received(State(world): State<Shared>) -> Json<Value> {
    Json(Value::Array(lock(&world).erp.received.clone()))
}

/// The merchant's order query (GET.ORDER, 3.1.02): `{interfaceCode: "GET.ORDER", data:
/// {billNo, sellerTaxpayerId}}` → `{code: "0", data: {billNo, …, billAmount, billDetail[]}}`, or
/// `{code: "404", message}` for an order it does not know.
async fn merchant_order(State(world): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let mut w = lock(&world);
    w.merchant.queries += 1;
    *w.calls.entry("GET.ORDER".into()).or_default() += 1;
    let bill_no = body["data"]["billNo"].as_str().unwrap_or_default();
    match w.merchant.orders.get(bill_no) {
        Some(order) => Json(json!({ "code": "0", "message": "ok", "data": order })),
        None => Json(json!({ "code": "404", "message": "订单不存在" })),
    }
}

/// Test control: the merchant knows this order (`data` of its GET.ORDER answer).
async fn merchant_add_order(State(world): State<Shared>, Json(order): Json<Value>) -> StatusCode {
    let Some(bill_no) = order["billNo"].as_str().map(String::from) else { return StatusCode::BAD_REQUEST };
    lock(&world).merchant.orders.insert(bill_no, order);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct FailCount {
    count: u32,
}

async fn erp_fail(State(world): State<Shared>, Json(req): Json<FailCount>) -> StatusCode {
    lock(&world).erp.fail_next = req.count;
    StatusCode::NO_CONTENT
}

fn control_answer<T: serde::Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            (StatusCode::CONFLICT, Json(json!({ "errorCode": e.code, "message": e.message }))).into_response()
        }
    }
}

async fn counterparty(State(world): State<Shared>, Path((uuid, action)): Path<(String, String)>) -> Response {
    control_answer(lock(&world).counterparty(&uuid, &action))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundForm {
    invoice_num: String,
    amount: fapiao_schemas::Money,
    tax_amount: fapiao_schemas::Money,
    red_reason: String,
}

async fn inbound_form(State(world): State<Shared>, Json(req): Json<InboundForm>) -> Response {
    control_answer(lock(&world).inbound_form(&req.invoice_num, req.amount, req.tax_amount, &req.red_reason))
}

async fn bureau_decides(State(world): State<Shared>, Path((id, action)): Path<(String, String)>) -> Response {
    control_answer(lock(&world).bureau_decides(&id, action == "approve"))
}

/// The file URLs of issued invoices (`/files/<number>.<pdf|ofd|xml>`).
async fn invoice_file(State(world): State<Shared>, Path(name): Path<String>) -> Response {
    let found = name.rsplit_once('.').and_then(|(num, ext)| lock(&world).file(num, ext));
    match found {
        Some(bytes) => bytes.into_response(),
        None => (StatusCode::NOT_FOUND, "sandbox: no such invoice file").into_response(),
    }
}

async fn stats(State(world): State<Shared>) -> Json<Value> {
    let w = lock(&world);
    Json(json!({ "calls": w.calls, "issued": w.issued_count(), "callbacks": w.erp.received.len() }))
}
