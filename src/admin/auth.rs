//! Who may use the admin API: the admin bearer token (`admin.token_file` or env
//! `FASTMCP_ADMIN_TOKEN`), or a gateway JWT verified by the gateway's own [`Authenticator`]
//! that carries one of `admin.roles`. The token is kept only as its SHA-256 and compared in
//! constant time; neither it nor a presented credential is ever logged or echoed.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::error::AdminError;
use crate::audit::AuditActor;
use crate::auth::{Authenticator, Principal};
use crate::config::Config;

/// The authenticated operator of one admin request.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The holder of the admin bearer token.
    Token,
    /// A gateway JWT with an admin role (platform-wide).
    Jwt(Arc<Principal>),
    /// A gateway JWT with a tenant approver role (`admin.approver_roles`): the approvals
    /// routes only, for its own tenant.
    Approver(Arc<Principal>),
}

impl Actor {
    /// The identity its audit records name.
    pub fn audit(&self) -> AuditActor {
        match self {
            Actor::Token => AuditActor { kind: "admin_token", sub: String::new(), tenant: String::new() },
            Actor::Jwt(p) => AuditActor { kind: "jwt", sub: p.sub.clone(), tenant: p.tenant.clone() },
            Actor::Approver(p) => AuditActor { kind: "jwt_approver", sub: p.sub.clone(), tenant: p.tenant.clone() },
        }
    }

    /// The tenant this actor is confined to (`None`: platform-wide).
    pub fn tenant_scope(&self) -> Option<&str> {
        match self {
            Actor::Approver(p) => Some(&p.tenant),
            _ => None,
        }
    }

    /// A short label (a hold's `approved_by`, log lines).
    pub fn label(&self) -> String {
        match self {
            Actor::Token => "admin-token".into(),
            Actor::Jwt(p) | Actor::Approver(p) => format!("jwt:{}", p.sub),
        }
    }

    /// Is this the subject `sub` (the requester of a hold)? Subjects are compared alone, not
    /// with the tenant claim: an IdP's `sub` names one account, whatever tenant it carries.
    pub fn is_subject(&self, sub: &str) -> bool {
        matches!(self, Actor::Jwt(p) | Actor::Approver(p) if p.sub == sub)
    }
}

/// The admin listener's credential check.
pub struct AdminAuth {
    /// SHA-256 of the admin bearer token, if one is configured.
    token: Option<[u8; 32]>,
    roles: Vec<String>,
    approver_roles: Vec<String>,
    open_paths: Vec<String>,
}

impl AdminAuth {
    /// From config; reads `admin.token_file` (a startup error names the key, never the token).
    pub fn from_config(cfg: &Config) -> Result<AdminAuth, String> {
        let a = &cfg.admin;
        let token = if !a.token_file.is_empty() {
            let text = std::fs::read_to_string(&a.token_file)
                .map_err(|e| format!("admin.token_file: {}: {e}", a.token_file))?;
            let token = text.trim();
            if let Some(problem) = crate::config::admin_token_problem(token) {
                return Err(format!("admin.token_file: {problem}"));
            }
            warn_if_readable_by_others(&a.token_file);
            Some(token.to_string())
        } else if !a.token.0.is_empty() {
            Some(a.token.0.clone())
        } else {
            None
        };
        Ok(AdminAuth {
            token: token.map(|t| digest(t.as_bytes())),
            roles: a.roles.clone(),
            approver_roles: a.approver_roles.clone(),
            open_paths: a.open_paths.clone(),
        })
    }

    /// Is `path` served without a credential?
    pub fn is_open(&self, path: &str) -> bool {
        self.open_paths.iter().any(|p| p == path)
    }

    /// How an operator gets in (the startup log line).
    pub fn describe(&self, jwt: bool) -> String {
        match (self.token.is_some(), jwt) {
            (true, true) => format!("admin token or a JWT with one of roles {:?}", self.roles),
            (true, false) => "admin token only (authentication is disabled)".into(),
            (false, true) => format!("a JWT with one of roles {:?} (no admin token configured)", self.roles),
            (false, false) => "NO ONE: authentication is disabled and no admin token is configured".into(),
        }
    }

    /// Checks the `Authorization` header: the admin token, else a JWT with an admin role.
    /// `jwt` is the gateway's authenticator (`None` when authentication is disabled: then
    /// only the admin token gets in, and without one nothing does).
    pub async fn check(&self, jwt: Option<&Authenticator>, header: Option<&[u8]>) -> Result<Actor, AdminError> {
        let Some(header) = header else {
            return Err(AdminError::Unauthenticated { presented: false, reason: "missing" });
        };
        let Some(presented) = bearer(header) else {
            return Err(AdminError::Unauthenticated { presented: true, reason: "malformed" });
        };
        if let Some(expected) = &self.token {
            if constant_time_eq(&digest(presented), expected) {
                return Ok(Actor::Token);
            }
        }
        let Some(jwt) = jwt else {
            let reason = if self.token.is_some() { "invalid" } else { "unconfigured" };
            return Err(AdminError::Unauthenticated { presented: true, reason });
        };
        let principal = jwt
            .authenticate(Some(header))
            .await
            .map_err(|_| AdminError::Unauthenticated { presented: true, reason: "invalid" })?;
        if principal.roles.iter().any(|r| self.roles.contains(r)) {
            Ok(Actor::Jwt(principal))
        } else if principal.roles.iter().any(|r| self.approver_roles.contains(r)) {
            Ok(Actor::Approver(principal))
        } else {
            Err(AdminError::Forbidden {
                message: "this token carries no admin role".into(),
                reasons: vec!["admin_role_required".into()],
            })
        }
    }
}

/// The credential of `Bearer <credential>` (scheme case-insensitive).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = (header.get(..7)?, header.get(7..)?);
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    let cred = &rest[start..];
    (!cred.is_empty() && cred.iter().all(u8::is_ascii_graphic)).then_some(cred)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Equality of two digests without an early exit (the time does not say how much matched;
/// hashing first hides the token's length).
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &str) {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
        tracing::warn!(file = %path, "admin.token_file is readable by group or others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-admin-token-0123";

    fn with(env: &[(&str, &str)]) -> AdminAuth {
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        AdminAuth::from_config(&Config::load(None, env).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn the_admin_token_or_nothing_without_jwt() {
        let auth = with(&[("FASTMCP_ADMIN_TOKEN", TOKEN)]);
        let ok = format!("Bearer {TOKEN}");
        assert!(matches!(auth.check(None, Some(ok.as_bytes())).await, Ok(Actor::Token)));
        assert!(matches!(auth.check(None, Some(format!("bearer  {TOKEN}").as_bytes())).await, Ok(Actor::Token)));
        let missing = auth.check(None, None).await.unwrap_err();
        assert_eq!(missing, AdminError::Unauthenticated { presented: false, reason: "missing" });
        for wrong in [format!("Bearer {TOKEN}x"), "Bearer s3cret".into(), format!("Basic {TOKEN}"), "Bearer ".into()] {
            let e = auth.check(None, Some(wrong.as_bytes())).await.unwrap_err();
            assert_eq!(e.status(), 401, "{wrong}");
            assert!(!e.body("c").to_string().contains("s3cret"), "never echoed");
        }
        // No token and no JWT verification: fail closed.
        let none = with(&[]);
        let e = none.check(None, Some(ok.as_bytes())).await.unwrap_err();
        assert_eq!(e, AdminError::Unauthenticated { presented: true, reason: "unconfigured" });
    }

    #[test]
    fn token_file_is_read_trimmed_and_checked() {
        let dir = std::env::temp_dir().join(format!("fastmcp-admin-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
        let auth = with(&[("FASTMCP__ADMIN__TOKEN_FILE", &file.display().to_string())]);
        assert_eq!(auth.token, Some(digest(TOKEN.as_bytes())));
        std::fs::write(&file, "short\n").unwrap();
        let env = vec![("FASTMCP__ADMIN__TOKEN_FILE".to_string(), file.display().to_string())];
        let e = AdminAuth::from_config(&Config::load(None, env).unwrap()).err().unwrap();
        assert!(e.starts_with("admin.token_file") && !e.contains("short"), "{e}");
    }

    #[test]
    fn open_paths_and_actor_identity() {
        let auth = with(&[]);
        assert!(auth.is_open("/health") && auth.is_open("/metrics") && !auth.is_open("/admin/holds"));
        let p = Arc::new(Principal { sub: "ops".into(), tenant: "platform".into(), ..Principal::anonymous() });
        let a = Actor::Jwt(p);
        assert!(a.is_subject("ops") && !a.is_subject("alice") && !Actor::Token.is_subject(""));
        assert_eq!((a.audit().kind, a.tenant_scope()), ("jwt", None));
        let p = Arc::new(Principal { sub: "bob".into(), tenant: "acme".into(), ..Principal::anonymous() });
        let t = Actor::Approver(p);
        assert!(t.is_subject("bob") && t.tenant_scope() == Some("acme") && t.audit().kind == "jwt_approver");
        assert_eq!(Actor::Token.audit().sub, "");
    }
}
