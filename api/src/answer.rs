//! The one place an outcome becomes an HTTP answer: always 200 with the envelope (`{success,
//! errorCode, message, data}`) or the token reply (`{data: {success, error_code, error_desc}}`),
//! never a bare error page. Internal failures say only that they happened (the log has the rest):
//! no answer echoes a secret, a token or a database message.

use axum::Json;
use axum::response::{IntoResponse, Response};
use fapiao_channel::codec::Codec;
use fapiao_channel::codes::error as code;
use fapiao_channel::envelope::{self, TokenData, TokenReply};
use fapiao_usecases::{Error, ErrorKind};

/// Ours: the request is larger than `api.max_body_kib`, or has more bills or lines than allowed.
pub const TOO_LARGE: &str = "9413";

/// A refusal of the whole request: its code and message.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &str, message: impl Into<String>) -> Refusal {
        Refusal { code: code.to_string(), message: message.into() }
    }

    /// The use cases' error in the envelope: numeric codes (9401, 9403, 1130) as they are, a
    /// missing bill as 9404 (无记录), our own failures as 9500 without detail, other refusals
    /// with their stable English code.
    pub fn of(e: &Error) -> Refusal {
        match e.kind() {
            ErrorKind::Internal | ErrorKind::Unavailable => {
                tracing::error!(error = %e, "ERP API call failed");
                Refusal::new(code::INTERNAL, "内部错误，请稍后重试")
            }
            ErrorKind::NotFound => Refusal::new(code::NOT_FOUND, e.to_string()),
            _ => Refusal::new(e.code(), e.to_string()),
        }
    }
}

/// A business call's answer; `data` is encoded like the request's.
pub fn envelope(result: Result<(String, String, bool), Refusal>, codec: &Codec) -> Response {
    let body = match result {
        Ok((json, message, success)) => envelope::Response {
            success,
            error_code: if success { code::OK.into() } else { String::new() },
            message,
            data: Some(codec.encode(&json)),
        },
        Err(r) => envelope::Response { success: false, error_code: r.code, message: r.message, data: None },
    };
    Json(body).into_response()
}

/// A push answer whose bills were not all accepted carries the first refusal's code.
pub fn envelope_with_code(json: String, code: String, message: String, codec: &Codec) -> Response {
    Json(envelope::Response { success: false, error_code: code, message, data: Some(codec.encode(&json)) })
        .into_response()
}

/// The token calls' answer.
pub fn token(result: Result<(String, i64), Refusal>, app: bool) -> Response {
    let data = match result {
        Ok((token, expire_ms)) => TokenData {
            success: true,
            app_token: app.then(|| token.clone()),
            access_token: (!app).then_some(token),
            expire_time: expire_ms,
            error_code: code::OK.into(),
            error_desc: String::new(),
        },
        Err(r) => {
            TokenData { success: false, error_code: r.code, error_desc: r.message, ..TokenData::default() }
        }
    };
    let status = data.success;
    Json(TokenReply { data, status }).into_response()
}
