//! The console's users (`fapiao user …`, the login form): a name, a role, an optional tenant
//! scope (the enterprises they see and act on) and an Argon2id password hash. Every change and
//! every login, failed or not, is in the audit log — never the password.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use crate::audit::{self, Entry, Outcome};
use crate::{Actor, App, Error, Result};

/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Failed logins for one name before each further attempt must wait.
pub const FREE_FAILURES: i32 = 5;
/// The longest wait between attempts once throttled.
pub const MAX_DELAY_SECS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, users and parameters.
    Admin,
    /// Jobs (pause / resume with a reason, run now); parameters read-only.
    Ops,
    /// Imports, applications, pending invoices, issuing, red-flush, callbacks.
    Finance,
    /// Reads everything in scope, pulls exports, changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Ops, Role::Finance, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
        }
    }

    /// The role's name on the console.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "管理员",
            Role::Ops => "运维",
            Role::Finance => "财务",
            Role::Auditor => "审计",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The enterprises this user is limited to; empty: all.
    pub tax_nos: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// The enterprises this user may see, `None` for all (admins, and users without `--tax-no`).
    pub fn scope(&self) -> Option<&[String]> {
        (self.role != Role::Admin && !self.tax_nos.is_empty()).then_some(self.tax_nos.as_slice())
    }

    pub fn sees(&self, tax_no: &str) -> bool {
        self.scope().is_none_or(|s| s.iter().any(|t| t == tax_no))
    }
}

#[derive(FromRow)]
pub(crate) struct UserRow {
    id: i64,
    name: String,
    role: String,
    tax_nos: Vec<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
}

pub(crate) const USER_COLUMNS: &str = "id, name, role, tax_nos, disabled, created_at";

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            name: r.name,
            // The column's CHECK allows only these.
            role: Role::parse(&r.role).unwrap_or(Role::Auditor),
            tax_nos: r.tax_nos,
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::bad_input("PASSWORD_TOO_SHORT", format!("密码至少{MIN_PASSWORD_CHARS}个字符")));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name.chars().all(|c| c.is_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(Error::bad_input("USER_NAME", "用户名须为1–64个字母、数字或 . _ - @"));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes), off the async threads.
pub(crate) async fn hash(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string())
    })
    .await
    .map_err(|e| Error::Password(e.to_string()))?
    .map_err(|e| Error::Password(e.to_string()))
}

pub(crate) async fn verify(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

async fn audit_user(
    app: &App,
    actor: &Actor,
    action: &str,
    name: &str,
    tax_nos: &[String],
    r: &Result<User>,
) {
    let detail = match r {
        Ok(u) => format!("role={} tax_nos={}", u.role, u.tax_nos.join(",")),
        Err(_) => String::new(),
    };
    let e = Entry { actor, action, target: name, outcome: Outcome::Ok, detail: &detail, tax_nos };
    audit::record_result(&app.pool, e, r, Error::kind).await;
}

/// `user add`: a new user; the password at least ten characters, the tax numbers enterprises
/// that exist.
pub async fn add(
    app: &App,
    actor: &Actor,
    name: &str,
    role: Role,
    tax_nos: &[String],
    password: &str,
) -> Result<User> {
    let result = add_inner(app, name, role, tax_nos, password).await;
    audit_user(app, actor, "user.add", name, tax_nos, &result).await;
    if result.is_ok() {
        tracing::info!(actor = %actor, user = name, role = %role, "user added");
    }
    result
}

async fn add_inner(app: &App, name: &str, role: Role, tax_nos: &[String], password: &str) -> Result<User> {
    check_name(name)?;
    check_password(password)?;
    let mut tax_nos = tax_nos.to_vec();
    tax_nos.sort();
    tax_nos.dedup();
    let known: Vec<String> = sqlx::query_scalar("SELECT tax_no FROM enterprise WHERE tax_no = ANY($1)")
        .bind(&tax_nos)
        .fetch_all(&app.pool)
        .await?;
    if let Some(unknown) = tax_nos.iter().find(|t| !known.contains(t)) {
        return Err(Error::NotFound {
            code: "ENTERPRISE_NOT_FOUND",
            message: format!("企业{unknown}不存在"),
        });
    }
    let phc = hash(password).await?;
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO app_user (name, role, tax_nos, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING RETURNING {USER_COLUMNS}"
    )))
    .bind(name)
    .bind(role.as_str())
    .bind(&tax_nos)
    .bind(&phc)
    .fetch_optional(&app.pool)
    .await?;
    row.map(User::from)
        .ok_or_else(|| Error::Conflict { code: "USER_EXISTS", message: format!("用户{name}已存在") })
}

pub async fn list(app: &App) -> Result<Vec<User>> {
    let rows: Vec<UserRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM app_user ORDER BY name")))
            .fetch_all(&app.pool)
            .await?;
    Ok(rows.into_iter().map(User::from).collect())
}

pub async fn get(app: &App, name: &str) -> Result<User> {
    let row: Option<UserRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM app_user WHERE name = $1")))
            .bind(name)
            .fetch_optional(&app.pool)
            .await?;
    row.map(User::from).ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> Error {
    Error::NotFound { code: "USER_NOT_FOUND", message: format!("用户{name}不存在") }
}

/// `user disable`: the user can no longer log in, and their sessions end now.
pub async fn disable(app: &App, actor: &Actor, name: &str) -> Result<User> {
    let result = async {
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE app_user SET disabled = true, updated_at = now() WHERE name = $1 RETURNING {USER_COLUMNS}"
        )))
        .bind(name)
        .fetch_optional(&app.pool)
        .await?;
        end_sessions(app, name, row).await
    }
    .await;
    audit_user(app, actor, "user.disable", name, &[], &result).await;
    result
}

/// `user passwd`: a new password (at least ten characters); the user's sessions end.
pub async fn passwd(app: &App, actor: &Actor, name: &str, password: &str) -> Result<User> {
    let result = async {
        check_password(password)?;
        let phc = hash(password).await?;
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE app_user SET password_hash = $2, updated_at = now() WHERE name = $1 RETURNING {USER_COLUMNS}"
        )))
        .bind(name)
        .bind(&phc)
        .fetch_optional(&app.pool)
        .await?;
        end_sessions(app, name, row).await
    }
    .await;
    audit_user(app, actor, "user.passwd", name, &[], &result).await;
    result
}

/// The user `row` the update returned (none: no such user) has every session ended.
async fn end_sessions(app: &App, name: &str, row: Option<UserRow>) -> Result<User> {
    let user = row.map(User::from).ok_or_else(|| not_found(name))?;
    sqlx::query("DELETE FROM web_session WHERE user_id = $1").bind(user.id).execute(&app.pool).await?;
    Ok(user)
}

/// A random password of 20 letters and digits (the demo's admin).
pub fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// An admin named `name` with this password: added, or given the password (and enabled) if
/// the name exists.
pub async fn set_admin(app: &App, actor: &Actor, name: &str, password: &str) -> Result<User> {
    match add(app, actor, name, Role::Admin, &[], password).await {
        Err(Error::Conflict { .. }) => {
            sqlx::query(
                "UPDATE app_user SET role = 'admin', tax_nos = '{}', disabled = false WHERE name = $1",
            )
            .bind(name)
            .execute(&app.pool)
            .await?;
            passwd(app, actor, name, password).await
        }
        other => other,
    }
}

/// How long a name must wait before its next attempt after `failures` failures, in seconds:
/// none for the first five, then 2, 4, 8, … up to five minutes.
pub fn delay_secs(failures: i32) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let exp = (failures - FREE_FAILURES).min(16) as u32;
    (2_i64 << exp).min(MAX_DELAY_SECS)
}

/// Check a login. A wrong name and a wrong password are the same refusal (`LOGIN_FAILED`);
/// after five failures for a name the next attempt must wait a growing delay (`LOGIN_THROTTLED`,
/// checked before the password). Every attempt is audited, never with the password.
pub async fn login(app: &App, name: &str, password: &str, from: &str) -> Result<User> {
    let actor = Actor::Console { user: name.to_string(), from: from.to_string() };
    let row: Option<(i64, String, bool, Vec<String>)> =
        sqlx::query_as("SELECT id, password_hash, disabled, tax_nos FROM app_user WHERE name = $1")
            .bind(name)
            .fetch_optional(&app.pool)
            .await?;
    // A known user's login rows are about their enterprises (a scoped viewer sees only their own).
    let scope = row.as_ref().map(|r| r.3.clone()).unwrap_or_default();
    let throttle: Option<(i32, i64)> = sqlx::query_as(
        "SELECT failures, ceil(extract(epoch FROM now() - last_failure))::bigint FROM login_failure WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&app.pool)
    .await?;
    if let Some((failures, since)) = throttle {
        let wait = delay_secs(failures) - since;
        if wait > 0 {
            let e = Error::Refused {
                code: "LOGIN_THROTTLED",
                message: format!("登录失败次数过多，请{wait}秒后再试"),
            };
            tracing::warn!(user = name, from, failures, "login refused: throttled");
            audit::record(
                &app.pool,
                Entry {
                    actor: &actor,
                    action: "login",
                    target: name,
                    outcome: Outcome::Refused,
                    detail: &e.to_string(),
                    tax_nos: &scope,
                },
            )
            .await;
            return Err(e);
        }
    }
    // An unknown name costs the same hash as a known one.
    const DUMMY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$uvTBQWu9Opc5O3dt2Hrr9Z8lfmxPbx46ebaJrQ5dpnE";
    let ok = match &row {
        Some((_, phc, disabled, _)) => verify(password, phc).await && !disabled,
        None => {
            verify(password, DUMMY).await;
            false
        }
    };
    if !ok {
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO login_failure (name, failures, last_failure) VALUES ($1, 1, now())
             ON CONFLICT (name) DO UPDATE SET failures = login_failure.failures + 1, last_failure = now()
             RETURNING failures",
        )
        .bind(name)
        .fetch_one(&app.pool)
        .await?;
        tracing::warn!(user = name, from, failures, "login failed");
        audit::record(
            &app.pool,
            Entry {
                actor: &actor,
                action: "login",
                target: name,
                outcome: Outcome::Refused,
                detail: &format!("用户名或密码错误（第{failures}次）"),
                tax_nos: &scope,
            },
        )
        .await;
        return Err(Error::Refused { code: "LOGIN_FAILED", message: "用户名或密码错误".into() });
    }
    sqlx::query("DELETE FROM login_failure WHERE name = $1").bind(name).execute(&app.pool).await?;
    let user = get(app, name).await?;
    tracing::info!(user = name, from, "login");
    audit::record(
        &app.pool,
        Entry {
            actor: &actor,
            action: "login",
            target: name,
            outcome: Outcome::Ok,
            detail: "",
            tax_nos: &scope,
        },
    )
    .await;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_starts_after_five_failures_and_grows_to_a_bound() {
        assert_eq!((0..5).map(delay_secs).collect::<Vec<_>>(), vec![0; 5]);
        assert_eq!(delay_secs(5), 2);
        assert_eq!(delay_secs(6), 4);
        assert_eq!(delay_secs(9), 32);
        assert_eq!(delay_secs(40), MAX_DELAY_SECS);
    }

    #[test]
    fn short_passwords_and_odd_names_are_refused() {
        assert_eq!(check_password("123456789").unwrap_err().code(), "PASSWORD_TOO_SHORT");
        assert!(check_password("一二三四五六七八九十").is_ok());
        assert!(check_name("li.ming").is_ok());
        assert_eq!(check_name("li ming").unwrap_err().code(), "USER_NAME");
        assert_eq!(check_name("").unwrap_err().code(), "USER_NAME");
    }

    #[test]
    fn admins_and_unscoped_users_see_every_enterprise() {
        let mut u = User {
            id: 1,
            name: "a".into(),
            role: Role::Admin,
            tax_nos: vec!["A".into()],
            disabled: false,
            created_at: Utc::now(),
        };
        assert!(u.sees("B"));
        u.role = Role::Auditor;
        assert!(u.sees("A") && !u.sees("B"));
        u.tax_nos.clear();
        assert!(u.sees("B"));
    }
}
