//! The channel client: tokens, the envelope, bounded concurrency, and retries for idempotent
//! calls only. An issuing call is never re-sent after it may have arrived; a lost answer is the
//! caller's to settle by querying the same serial number.

use std::time::{Duration, Instant};

use fapiao_schemas::config::{ChannelSettings, DataEncoding, Secret};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Semaphore};

use crate::codec::Codec;
use crate::codes::{error as code, interface};
use crate::envelope::{self, AppTokenRequest, LoginRequest, TokenReply};
use crate::error::{ChannelError, Disposition};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: uniform in [0, min(max, base × 2^(attempt-1))].
    fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub app_id: String,
    pub app_secret: Secret,
    pub account_id: String,
    pub tenant_id: String,
    pub user: String,
    pub business_system_code: String,
    pub codec: Codec,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn from_settings(s: &ChannelSettings) -> ClientConfig {
        ClientConfig {
            base_url: s.base_url.trim_end_matches('/').to_string(),
            app_id: s.app_id.clone(),
            app_secret: s.app_secret.clone(),
            account_id: s.account_id.clone(),
            tenant_id: s.tenant_id.clone(),
            user: s.user.clone(),
            business_system_code: s.business_system_code.clone(),
            codec: match s.data_encoding {
                DataEncoding::Base64 => Codec::Base64,
                DataEncoding::Aes => Codec::aes(s.encryption_password.expose()),
            },
            max_in_flight: s.max_in_flight as usize,
            timeout: Duration::from_secs(s.timeout_secs),
            retry: RetryPolicy::default(),
        }
    }
}

struct Token {
    value: String,
    renew_at: Instant,
}

pub struct ChannelClient {
    http: reqwest::Client,
    config: ClientConfig,
    token: Mutex<Option<Token>>,
    in_flight: Semaphore,
}

impl ChannelClient {
    pub fn new(config: ClientConfig) -> ChannelClient {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.max_in_flight)
            .build()
            .expect("HTTP client with static settings");
        ChannelClient {
            http,
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
            config,
            token: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A valid access token: cached, renewed before it expires (a fifth of its life early,
    /// at most a minute), and fetched anew after `invalidate_token`.
    pub async fn access_token(&self) -> Result<String, ChannelError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        // The lifetime counts from before the request: the server's clock started no earlier.
        let requested_at = Instant::now();
        let (value, lifetime) = self.fetch_token().await?;
        let margin = (lifetime / 5).min(Duration::from_secs(60));
        *slot = Some(Token { value: value.clone(), renew_at: requested_at + lifetime - margin });
        tracing::debug!(lifetime_ms = lifetime.as_millis() as u64, "access token renewed");
        Ok(value)
    }

    async fn invalidate_token(&self, used: &str) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.value == used) {
            *slot = None;
        }
    }

    /// getAppToken.do then login.do (token calls are idempotent: retried like queries).
    async fn fetch_token(&self) -> Result<(String, Duration), ChannelError> {
        let c = &self.config;
        let app = AppTokenRequest {
            app_id: c.app_id.clone(),
            app_secret: c.app_secret.expose().to_string(),
            account_id: c.account_id.clone(),
            tenant_id: c.tenant_id.clone(),
        };
        let app_token = self.token_call("/api/getAppToken.do", &app).await?.app_token.unwrap_or_default();
        let login = LoginRequest {
            apptoken: app_token,
            account_id: c.account_id.clone(),
            user: c.user.clone(),
            usertype: "UserName".into(),
        };
        let data = self.token_call("/api/login.do", &login).await?;
        let token = data
            .access_token
            .ok_or_else(|| ChannelError::Decode { op: "login".into(), detail: "no access_token".into() })?;
        Ok((token, Duration::from_millis(data.expire_time.max(1) as u64)))
    }

    async fn token_call<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<envelope::TokenData, ChannelError> {
        let op = path.trim_start_matches("/api/");
        self.with_retries(op, true, || async {
            let reply: TokenReply =
                self.post_json(op, &format!("{}{path}", self.config.base_url), body, None).await?;
            if !reply.data.success {
                let detail = format!("{} {}", reply.data.error_code, reply.data.error_desc);
                return Err(if reply.data.error_code == code::CREDENTIALS_REJECTED {
                    ChannelError::Credentials(detail)
                } else {
                    ChannelError::Api {
                        op: op.into(),
                        code: reply.data.error_code,
                        message: reply.data.error_desc,
                    }
                });
            }
            Ok(reply.data)
        })
        .await
    }

    /// One business call. `idempotent` calls are retried per the policy; the others only when
    /// the request provably never left, or after a token renewal (an auth refusal means the
    /// request was not processed). A token refused again right after a renewal (a fault of the
    /// moment at the token service) is renewed again with backoff, up to the policy's attempts.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        interface_code: &'static str,
        body: &Req,
        idempotent: bool,
    ) -> Result<Resp, ChannelError> {
        let json = serde_json::to_string(body)
            .map_err(|e| ChannelError::Decode { op: interface_code.into(), detail: e.to_string() })?;
        let mut renewals = 0;
        loop {
            let result =
                self.with_retries(interface_code, idempotent, || self.send_once(interface_code, &json)).await;
            match result {
                Err((ChannelError::Api { code: c, .. }, Some(used)))
                    if c == code::TOKEN_INVALID && renewals < self.config.retry.max_attempts =>
                {
                    tracing::info!(interface = interface_code, renewals, "token refused; renewing");
                    self.invalidate_token(&used).await;
                    if renewals > 0 {
                        tokio::time::sleep(self.config.retry.delay(renewals)).await;
                    }
                    renewals += 1;
                }
                other => return other.map_err(|(e, _)| e),
            }
        }
    }

    async fn with_retries<T, E, F, Fut>(
        &self,
        op: &str,
        idempotent: bool,
        mut attempt_once: F,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: RetryView,
    {
        let policy = &self.config.retry;
        let mut attempt = 1;
        loop {
            let err = match attempt_once().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let channel_error = err.channel_error();
            let disposition = channel_error.disposition();
            let token_refused = channel_error.api_code() == Some(code::TOKEN_INVALID);
            let may_retry = !token_refused
                && match disposition {
                    Disposition::Retry | Disposition::RetryAfter(_) => {
                        idempotent || matches!(channel_error, ChannelError::NotSent { .. })
                    }
                    Disposition::UnknownOutcome => {
                        idempotent && !matches!(channel_error, ChannelError::Decode { .. })
                    }
                    _ => false,
                };
            if !may_retry || attempt >= policy.max_attempts {
                return Err(err);
            }
            let wait = match disposition {
                Disposition::RetryAfter(d) => d.max(policy.delay(attempt)),
                _ => policy.delay(attempt),
            };
            tracing::debug!(op, attempt, wait_ms = wait.as_millis() as u64, error = %channel_error, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One envelope round trip. On failure, also the token that was used (to invalidate it).
    async fn send_once<Resp: DeserializeOwned>(
        &self,
        interface_code: &'static str,
        json: &str,
    ) -> Result<Resp, (ChannelError, Option<String>)> {
        let _permit = self.in_flight.acquire().await.expect("semaphore never closed");
        let token = self.access_token().await.map_err(|e| (e, None))?;
        let c = &self.config;
        let request = envelope::Request {
            request_id: envelope::request_id(),
            business_system_code: c.business_system_code.clone(),
            interface_code: interface_code.into(),
            data: c.codec.encode(json),
        };
        let gateway = if interface::is_rim(interface_code) { "rim" } else { "sim" };
        let url = format!("{}/kapi/app/{gateway}/openApi", c.base_url);
        let fail = |e| (e, Some(token.clone()));
        let answer: envelope::Response =
            self.post_json(interface_code, &url, &request, Some(&token)).await.map_err(fail)?;
        if !answer.success || !code::is_ok(&answer.error_code) {
            return Err(fail(ChannelError::Api {
                op: interface_code.into(),
                code: answer.error_code,
                message: answer.message,
            }));
        }
        let data = answer.data.unwrap_or_else(|| c.codec.encode("null"));
        let plain = c
            .codec
            .decode(&data)
            .map_err(|source| fail(ChannelError::Codec { op: interface_code.into(), source }))?;
        serde_json::from_str(&plain)
            .map_err(|e| fail(ChannelError::Decode { op: interface_code.into(), detail: e.to_string() }))
    }

    /// An invoice file (PDF, OFD, XML) from a URL the channel gave (its file host may be another
    /// than the API's): a plain GET without our token, retried like a query.
    pub async fn file(&self, url: &str) -> Result<Vec<u8>, ChannelError> {
        const OP: &str = "file";
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ChannelError::Decode { op: OP.into(), detail: format!("not a file URL: {url:?}") });
        }
        self.with_retries(OP, true, || async {
            let _permit = self.in_flight.acquire().await.expect("semaphore never closed");
            let response = self.http.get(url).send().await.map_err(|e| transport_error(OP, e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(ChannelError::Http { op: OP.into(), status: status.as_u16(), retry_after: None });
            }
            let bytes = response.bytes().await.map_err(|e| ChannelError::AnswerLost {
                op: OP.into(),
                detail: e.without_url().to_string(),
            })?;
            Ok(bytes.to_vec())
        })
        .await
    }

    async fn post_json<B: Serialize, R: DeserializeOwned>(
        &self,
        op: &str,
        url: &str,
        body: &B,
        token: Option<&str>,
    ) -> Result<R, ChannelError> {
        let mut request = self.http.post(url).json(body);
        if let Some(t) = token {
            // In a header, not the query string, so that no URL in a log carries it.
            request = request.header("access_token", t);
        }
        let response = request.send().await.map_err(|e| transport_error(op, e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .map(Duration::from_secs);
            return Err(ChannelError::Http { op: op.into(), status: status.as_u16(), retry_after });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ChannelError::AnswerLost { op: op.into(), detail: e.without_url().to_string() })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ChannelError::Decode { op: op.into(), detail: e.to_string() })
    }
}

fn transport_error(op: &str, e: reqwest::Error) -> ChannelError {
    let connect = e.is_connect();
    let detail = e.without_url().to_string();
    if connect {
        ChannelError::NotSent { op: op.into(), detail }
    } else {
        ChannelError::AnswerLost { op: op.into(), detail }
    }
}

/// Lets one retry loop serve both plain errors and (error, token used) pairs.
trait RetryView {
    fn channel_error(&self) -> &ChannelError;
}
impl RetryView for ChannelError {
    fn channel_error(&self) -> &ChannelError {
        self
    }
}
impl RetryView for (ChannelError, Option<String>) {
    fn channel_error(&self) -> &ChannelError {
        &self.0
    }
}
