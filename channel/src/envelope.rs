//! The wire envelope: token calls and the `{requestId, businessSystemCode, interfaceCode, data}`
//! request with its `{success, errorCode, message, data}` answer.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub request_id: String,
    pub business_system_code: String,
    pub interface_code: String,
    /// Encoded JSON (see `codec`).
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub success: bool,
    pub error_code: String,
    #[serde(default)]
    pub message: String,
    /// Encoded JSON like the request's, when there is an answer body.
    #[serde(default)]
    pub data: Option<String>,
}

/// `requestId` = 13-digit millisecond timestamp + 3 random digits ([KD-DOC] 4.18).
pub fn request_id() -> String {
    let ms = chrono::Utc::now().timestamp_millis();
    format!("{ms:013}{:03}", rand::rng().random_range(0..1000))
}

/// `POST /api/getAppToken.do`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppTokenRequest {
    pub app_id: String,
    pub app_secret: String,
    pub account_id: String,
    #[serde(rename = "tenantid")]
    pub tenant_id: String,
}

/// `POST /api/login.do`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub apptoken: String,
    pub account_id: String,
    pub user: String,
    pub usertype: String,
}

/// The answer of both token calls: `{data: {success, app_token | access_token, expire_time}, status}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenReply {
    pub data: TokenData,
    #[serde(default)]
    pub status: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenData {
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Milliseconds the token stays valid.
    #[serde(default)]
    pub expire_time: i64,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_desc: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_16_digits() {
        let id = super::request_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }
}
