//! 业务系统 (系统管理 → 业务系统列表, seed 001): the ERPs that call the inbound API — their
//! credentials (appId, and an appSecret shown once, stored as an Argon2id hash), the sellers
//! each may act for, its own callback URL, and the tokens it is given (getAppToken.do →
//! login.do, stored by SHA-256 with an expiry, so several `fapiao serve` processes share them).

use chrono::{DateTime, Utc};
use fapiao_channel::codes::error as code;
use fapiao_schemas::TaxNo;
use fapiao_schemas::messages::{ACCOUNT_ID_WRONG, APP_CREDENTIALS_WRONG, NOT_AUTHORIZED};
use rand::{Rng, RngCore};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{self, Entry, Outcome};
use crate::users::{hash, verify};
use crate::{Actor, App, Error, Result};

/// What `system add` is given.
#[derive(Clone, Debug)]
pub struct NewSystem {
    pub code: String,
    pub name: String,
    pub callback_url: Option<String>,
    pub tax_nos: Vec<TaxNo>,
    /// `data` is AES-GCM encrypted with a password generated here (else plain Base64).
    pub aes: bool,
}

/// Shown once, when a system is added or its secret rotated; never stored in clear (the AES
/// password excepted: a symmetric key must be kept to decrypt).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub code: String,
    pub app_id: String,
    pub app_secret: String,
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_password: Option<String>,
}

/// A business system as listed (never its secret or AES password).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct SystemRow {
    pub code: String,
    pub name: String,
    pub app_id: String,
    pub aes: bool,
    pub callback_url: Option<String>,
    pub tax_nos: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// The system a valid access token belongs to: what a business call may do.
#[derive(Clone, Debug)]
pub struct Caller {
    pub code: String,
    pub tax_nos: Vec<String>,
    /// The AES password of `data`; `None`: Base64.
    pub data_password: Option<String>,
}

/// A token given out, and how long it lives.
#[derive(Clone, Debug)]
pub struct Token {
    pub token: String,
    pub expire_ms: i64,
}

fn random_text(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn check_code(code: &str) -> Result<()> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        return Err(Error::bad_input("SYSTEM_CODE", "业务系统编码须为1–64个字母、数字或 . _ -"));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::bad_input("CALLBACK_URL", format!("回调地址须以http://或https://开头：{url}")));
    }
    Ok(())
}

async fn audit_system(app: &App, actor: &Actor, action: &str, code: &str, detail: &str, tax_nos: &[String]) {
    let entry = Entry { actor, action, target: code, outcome: Outcome::Ok, detail, tax_nos };
    audit::record(&app.pool, entry).await;
}

/// `system add`: a new business system; its appId and appSecret are returned once.
pub async fn add(app: &App, actor: &Actor, new: &NewSystem) -> Result<Credentials> {
    check_code(&new.code)?;
    if let Some(url) = &new.callback_url {
        check_url(url)?;
    }
    for tax_no in &new.tax_nos {
        crate::tenant::require_enterprise(app, tax_no).await?;
    }
    let app_id = format!("fp{}", random_text(16));
    let app_secret = random_text(32);
    let data_password = new.aes.then(|| random_text(24));
    let tax_nos: Vec<String> = new.tax_nos.iter().map(|t| t.as_str().to_string()).collect();
    let inserted = sqlx::query(
        "INSERT INTO business_system (code, name, app_id, secret_hash, data_password, callback_url, tax_nos)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&new.code)
    .bind(&new.name)
    .bind(&app_id)
    .bind(hash(&app_secret).await?)
    .bind(&data_password)
    .bind(&new.callback_url)
    .bind(&tax_nos)
    .execute(&app.pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::Conflict {
            code: "SYSTEM_EXISTS",
            message: format!("业务系统{}已存在", new.code),
        });
    }
    audit_system(app, actor, "system.add", &new.code, &format!("name={}", new.name), &tax_nos).await;
    Ok(Credentials {
        code: new.code.clone(),
        app_id,
        app_secret,
        account_id: app.settings.api.account_id.clone(),
        data_password,
    })
}

pub async fn list(app: &App) -> Result<Vec<SystemRow>> {
    Ok(sqlx::query_as(
        "SELECT code, name, app_id, data_password IS NOT NULL AS aes, callback_url, tax_nos, disabled, created_at
           FROM business_system ORDER BY code",
    )
    .fetch_all(&app.pool)
    .await?)
}

fn no_such(code: &str) -> Error {
    Error::NotFound { code: "SYSTEM_NOT_FOUND", message: format!("业务系统{code}不存在") }
}

/// `system disable`: its tokens end now and no new ones are given.
pub async fn disable(app: &App, actor: &Actor, code: &str) -> Result<()> {
    let mut tx = app.pool.begin().await?;
    let done = sqlx::query("UPDATE business_system SET disabled = true, updated_at = now() WHERE code = $1")
        .bind(code)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(no_such(code));
    }
    sqlx::query("DELETE FROM api_token WHERE system_code = $1").bind(code).execute(&mut *tx).await?;
    tx.commit().await?;
    audit_system(app, actor, "system.disable", code, "", &[]).await;
    Ok(())
}

/// `system rotate-secret`: a new appSecret (returned once); the old one and every token end.
pub async fn rotate_secret(app: &App, actor: &Actor, code: &str) -> Result<Credentials> {
    let app_secret = random_text(32);
    let mut tx = app.pool.begin().await?;
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "UPDATE business_system SET secret_hash = $2, updated_at = now() WHERE code = $1 RETURNING app_id, data_password",
    )
    .bind(code)
    .bind(hash(&app_secret).await?)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((app_id, data_password)) = row else { return Err(no_such(code)) };
    sqlx::query("DELETE FROM api_token WHERE system_code = $1").bind(code).execute(&mut *tx).await?;
    tx.commit().await?;
    audit_system(app, actor, "system.rotate-secret", code, "", &[]).await;
    Ok(Credentials {
        code: code.to_string(),
        app_id,
        app_secret,
        account_id: app.settings.api.account_id.clone(),
        data_password,
    })
}

/// `system set-callback`: the system's own callback URL (`None`: back to `callbacks.url`).
pub async fn set_callback(app: &App, actor: &Actor, code: &str, url: Option<&str>) -> Result<()> {
    if let Some(url) = url {
        check_url(url)?;
    }
    let done =
        sqlx::query("UPDATE business_system SET callback_url = $2, updated_at = now() WHERE code = $1")
            .bind(code)
            .bind(url)
            .execute(&app.pool)
            .await?;
    if done.rows_affected() == 0 {
        return Err(no_such(code));
    }
    audit_system(app, actor, "system.set-callback", code, url.unwrap_or("(template)"), &[]).await;
    Ok(())
}

/// Whether the system also hears, by callback, that each pushed bill was received (seed 001).
pub async fn set_callback_on_receipt(app: &App, actor: &Actor, code: &str, on: bool) -> Result<()> {
    let done = sqlx::query(
        "UPDATE business_system SET callback_on_receipt = $2, updated_at = now() WHERE code = $1",
    )
    .bind(code)
    .bind(on)
    .execute(&app.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(no_such(code));
    }
    let value = if on { "on" } else { "off" };
    audit_system(app, actor, "system.callback-on-receipt", code, value, &[]).await;
    Ok(())
}

fn refused(code: &'static str, message: String) -> Error {
    Error::Refused { code, message }
}

async fn give_token(app: &App, system: &str, kind: &str, secs: u64) -> Result<Token> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    sqlx::query(
        "INSERT INTO api_token (token_hash, system_code, kind, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(token_hash(&token))
    .bind(system)
    .bind(kind)
    .bind(secs as f64)
    .execute(&app.pool)
    .await?;
    // Now and then, forget tokens that ended.
    if bytes[0] == 0 {
        sqlx::query("DELETE FROM api_token WHERE expires_at < now()").execute(&app.pool).await?;
    }
    Ok(Token { token, expire_ms: secs as i64 * 1000 })
}

/// getAppToken.do: appId + appSecret + accountId → an app token. Refusals carry 9403 (never
/// retry) and the documented messages.
pub async fn app_token(app: &App, app_id: &str, app_secret: &str, account_id: &str) -> Result<Token> {
    if account_id != app.settings.api.account_id {
        return Err(refused(code::CREDENTIALS_REJECTED, ACCOUNT_ID_WRONG.into()));
    }
    let row: Option<(String, String, bool)> =
        sqlx::query_as("SELECT code, secret_hash, disabled FROM business_system WHERE app_id = $1")
            .bind(app_id)
            .fetch_optional(&app.pool)
            .await?;
    // A wrong appId still costs one hash check, so the two refusals take as long.
    const DUMMY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$uvTBQWu9Opc5O3dt2Hrr9Z8lfmxPbx46ebaJrQ5dpnE";
    let phc = row.as_ref().map_or(DUMMY, |(_, h, _)| h.as_str());
    let ok = verify(app_secret, phc).await;
    match row {
        Some((code, _, disabled)) if ok => {
            if disabled {
                return Err(refused(
                    code::CREDENTIALS_REJECTED,
                    format!("{NOT_AUTHORIZED}：业务系统{code}已停用"),
                ));
            }
            give_token(app, &code, "app", app.settings.api.app_token_secs).await
        }
        _ => Err(refused(code::CREDENTIALS_REJECTED, APP_CREDENTIALS_WRONG.into())),
    }
}

/// login.do: a live app token + accountId + user → an access token.
pub async fn login(app: &App, app_token: &str, account_id: &str, user: &str) -> Result<Token> {
    if account_id != app.settings.api.account_id {
        return Err(refused(code::CREDENTIALS_REJECTED, ACCOUNT_ID_WRONG.into()));
    }
    if user.trim().is_empty() {
        return Err(refused(code::CREDENTIALS_REJECTED, format!("{NOT_AUTHORIZED}：user不能为空")));
    }
    let system: Option<String> = sqlx::query_scalar(
        "SELECT t.system_code FROM api_token t JOIN business_system s ON s.code = t.system_code
          WHERE t.token_hash = $1 AND t.kind = 'app' AND t.expires_at > now() AND NOT s.disabled",
    )
    .bind(token_hash(app_token))
    .fetch_optional(&app.pool)
    .await?;
    let Some(system) = system else {
        return Err(refused(code::CREDENTIALS_REJECTED, format!("{NOT_AUTHORIZED}：apptoken无效或已过期")));
    };
    give_token(app, &system, "access", app.settings.api.access_token_secs).await
}

/// A business call's token → its system; 9401 (renew the token) when missing, unknown, expired
/// or its system disabled — seed 001's 未进行接口授权.
pub async fn authorize(app: &App, access_token: Option<&str>) -> Result<Caller> {
    let expired = || {
        refused(code::TOKEN_INVALID, format!("{NOT_AUTHORIZED}：access_token无效或已过期，请重新获取授权"))
    };
    let Some(token) = access_token.filter(|t| !t.is_empty()) else { return Err(expired()) };
    let row: Option<(String, Vec<String>, Option<String>)> = sqlx::query_as(
        "SELECT s.code, s.tax_nos, s.data_password FROM api_token t JOIN business_system s ON s.code = t.system_code
          WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at > now() AND NOT s.disabled",
    )
    .bind(token_hash(token))
    .fetch_optional(&app.pool)
    .await?;
    let (code, tax_nos, data_password) = row.ok_or_else(expired)?;
    Ok(Caller { code, tax_nos, data_password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_plain_identifiers() {
        assert!(check_code("ERP-1_a.b").is_ok());
        assert!(check_code("").is_err());
        assert!(check_code("a b").is_err());
        assert!(check_code("系统").is_err());
    }

    #[test]
    fn tokens_are_stored_by_hash() {
        assert_eq!(token_hash("abc").len(), 64);
        assert_ne!(token_hash("abc"), "abc");
    }
}
