//! Who is asking: the session cookie → the user (role, tenant scope), and what each role may do.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use fapiao_usecases::users::{Role, User};
use fapiao_usecases::{Actor, sessions};

use crate::Console;
use crate::pages::error_page;

pub const COOKIE: &str = "fapiao_session";

/// Everything a handler may be asked to do, and which roles may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// `/`: everyone logged in (each sees the parts of their role, in their scope).
    Dashboard,
    /// `/jobs`, `/runs`, `/runs/{id}`.
    ViewJobs,
    /// Pause, resume, run now.
    ControlJobs,
    ViewParams,
    EditParams,
    ViewAudit,
    /// `/imports` and each import's page: finance works there, auditors read.
    ViewImports,
    /// Upload a workbook (`POST /imports`).
    Import,
    /// `/exports`: see and build reconciliation exports (auditors pull them; admin).
    Export,
    /// `/pending` and an invoice's page: finance works there, auditors read.
    ViewInvoicing,
    /// Issue chosen pending invoices, return them, delete failed ones.
    Invoicing,
    /// `/receipts/stats` (小票码统计): finance and auditors read it (admin too).
    ViewReceiptStats,
}

impl Perm {
    pub fn allows(self, role: Role) -> bool {
        use Role::*;
        match self {
            Perm::Dashboard => true,
            Perm::ViewJobs | Perm::ViewParams => matches!(role, Admin | Ops | Auditor),
            Perm::ControlJobs => matches!(role, Admin | Ops),
            Perm::EditParams => role == Admin,
            Perm::ViewAudit => matches!(role, Admin | Auditor),
            Perm::ViewImports => matches!(role, Admin | Finance | Auditor),
            Perm::Import => matches!(role, Admin | Finance),
            Perm::Export => matches!(role, Admin | Auditor),
            Perm::ViewInvoicing => matches!(role, Admin | Finance | Auditor),
            Perm::Invoicing => matches!(role, Admin | Finance),
            Perm::ViewReceiptStats => matches!(role, Admin | Finance | Auditor),
        }
    }
}

/// The logged-in user of a request.
pub struct Viewer {
    pub user: User,
    pub actor: Actor,
    pub token: String,
}

impl Viewer {
    pub fn may(&self, perm: Perm) -> bool {
        perm.allows(self.user.role)
    }

    /// 403 unless the user's role allows `perm`.
    pub fn require(&self, perm: Perm) -> Result<(), Response> {
        if self.may(perm) {
            return Ok(());
        }
        tracing::warn!(user = %self.user.name, role = %self.user.role, ?perm, "refused: role");
        Err(error_page(StatusCode::FORBIDDEN, "无权限：您的角色不能进行此操作"))
    }

    pub fn scope(&self) -> Option<&[String]> {
        self.user.scope()
    }

    /// The enterprises a page of per-enterprise figures asks about: the one `named` (if the user
    /// sees it), else each of the user's scope, else all (`None`). `Err` when the named one is
    /// outside the user's scope.
    pub fn enterprises_asked(&self, named: Option<&str>) -> Result<Vec<Option<String>>, OutOfScope> {
        match (named, self.scope()) {
            (Some(t), _) if self.user.sees(t) => Ok(vec![Some(t.to_string())]),
            (Some(_), _) => Err(OutOfScope),
            (None, Some(scope)) => Ok(scope.iter().cloned().map(Some).collect()),
            (None, None) => Ok(vec![None]),
        }
    }
}

/// An enterprise named that is not in the user's tenant scope.
#[derive(Debug)]
pub struct OutOfScope;

impl OutOfScope {
    pub const MESSAGE: &'static str = "该企业不在您负责的范围内";
}

/// The client's address as the server saw it (no forwarded headers: they can be forged).
pub fn client(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into())
}

pub fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The Set-Cookie value of a new session (or, with `None`, of its removal).
pub fn cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(t) => format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

impl FromRequestParts<Arc<Console>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Viewer, Response> {
        let unauthenticated = |parts: &Parts| {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                Redirect::to("/login").into_response()
            } else {
                error_page(StatusCode::UNAUTHORIZED, "未登录或会话已过期，请重新登录")
            }
        };
        let Some(token) = session_token(parts) else {
            return Err(unauthenticated(parts));
        };
        match sessions::user(&console.app, &token).await {
            Ok(Some(user)) => {
                let actor = Actor::Console { user: user.name.clone(), from: client(parts) };
                Ok(Viewer { user, actor, token })
            }
            Ok(None) => Err(unauthenticated(parts)),
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                Err(error_page(StatusCode::INTERNAL_SERVER_ERROR, "内部错误"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_gets_what_the_issue_gives_it() {
        use Role::*;
        let table = |perm: Perm| Role::ALL.into_iter().filter(|r| perm.allows(*r)).collect::<Vec<_>>();
        assert_eq!(table(Perm::Dashboard), vec![Admin, Ops, Finance, Auditor]);
        assert_eq!(table(Perm::ViewJobs), vec![Admin, Ops, Auditor]);
        assert_eq!(table(Perm::ControlJobs), vec![Admin, Ops]);
        assert_eq!(table(Perm::ViewParams), vec![Admin, Ops, Auditor]);
        assert_eq!(table(Perm::EditParams), vec![Admin]);
        assert_eq!(table(Perm::ViewAudit), vec![Admin, Auditor]);
        assert_eq!(table(Perm::ViewImports), vec![Admin, Finance, Auditor]);
        assert_eq!(table(Perm::Import), vec![Admin, Finance]);
        assert_eq!(table(Perm::Export), vec![Admin, Auditor]);
        assert_eq!(table(Perm::ViewInvoicing), vec![Admin, Finance, Auditor]);
        assert_eq!(table(Perm::Invoicing), vec![Admin, Finance]);
        assert_eq!(table(Perm::ViewReceiptStats), vec![Admin, Finance, Auditor]);
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        assert_eq!(cookie(Some("ab"), false), "fapiao_session=ab; Path=/; HttpOnly; SameSite=Strict");
        assert!(cookie(Some("ab"), true).ends_with("; Secure"));
        assert!(cookie(None, false).contains("Max-Age=0"));
    }
}
