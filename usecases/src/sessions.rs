//! Console sessions in PostgreSQL: a random token in the cookie, its SHA-256 in `web_session`.
//! A session ends when unused for `http.idle_minutes`, `http.absolute_hours` after login, at
//! logout, or when its user is disabled or given a new password.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::audit::{self, Entry, Outcome};
use crate::users::{USER_COLUMNS, User, UserRow};
use crate::{Actor, App, Result};

fn id_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Open a session for `user` (just logged in); the token for the cookie.
pub async fn create(app: &App, user: &User, from: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    sqlx::query(
        "INSERT INTO web_session (id_hash, user_id, expires_at, source)
         VALUES ($1, $2, now() + make_interval(hours => $3), $4)",
    )
    .bind(id_hash(&token))
    .bind(user.id)
    .bind(app.settings.http.absolute_hours as i32)
    .bind(from)
    .execute(&app.pool)
    .await?;
    // Now and then, forget sessions that ended long ago.
    if bytes[0] == 0 {
        sweep(app).await?;
    }
    Ok(token)
}

/// The user of a live session, or `None`: unknown, idle too long, past its absolute end, or
/// its user disabled. Use is recorded (`last_seen`) at most once a minute: a read-only lookup
/// otherwise, so a page view costs no commit to disk (idle expiry is exact to that minute).
pub async fn user(app: &App, token: &str) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH s AS (
             SELECT user_id FROM web_session
             WHERE id_hash = $1 AND expires_at > now() AND last_seen > now() - make_interval(mins => $2)),
         touched AS (
             UPDATE web_session SET last_seen = now()
             WHERE id_hash = $1 AND last_seen < now() - interval '1 minute' AND EXISTS (SELECT 1 FROM s))
         SELECT {USER_COLUMNS} FROM app_user WHERE id = (SELECT user_id FROM s) AND NOT disabled"
    )))
    .bind(id_hash(token))
    .bind(app.settings.http.idle_minutes as i32)
    .fetch_optional(&app.pool)
    .await?;
    Ok(row.map(User::from))
}

/// Logout: the session of `user` ends (audited).
pub async fn end(app: &App, actor: &Actor, user: &User, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_session WHERE id_hash = $1").bind(id_hash(token)).execute(&app.pool).await?;
    audit::record(
        &app.pool,
        Entry {
            actor,
            action: "logout",
            target: &user.name,
            outcome: Outcome::Ok,
            detail: "",
            tax_nos: &user.tax_nos,
        },
    )
    .await;
    Ok(())
}

/// Delete sessions that can no longer be used.
pub async fn sweep(app: &App) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM web_session WHERE expires_at < now() OR last_seen < now() - make_interval(mins => $1)",
    )
    .bind(app.settings.http.idle_minutes as i32)
    .execute(&app.pool)
    .await?;
    Ok(done.rows_affected())
}
