//! The approvals console: `/admin/ui/` serves three static files compiled into the binary
//! (`ui/index.html`, `ui/app.js`, `ui/app.css`; no CDN, no build step). They hold no data, so
//! they are served without a credential; the page signs in by asking for the operator's
//! admin JWT (or admin token), keeps it in memory only, and sends it as `Authorization:
//! Bearer` on every data request (live streams are read with `fetch`, never with a token in
//! a URL). Served with a strict CSP (no inline script or style, nothing from elsewhere, no
//! framing), `nosniff` and `X-Frame-Options: DENY`.
//!
//! `GET /admin/session` (authenticated) tells the page who signed in and which policy
//! revision is in force.

use serde_json::json;

use super::auth::Actor;
use super::reply::Reply;
use super::AdminApp;

const INDEX: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The static file `name` (one of the routes' names).
pub fn asset(name: &str) -> Reply {
    let (content_type, body) = match name {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => ("text/html; charset=utf-8", INDEX),
    };
    let mut reply = Reply::text(content_type, body.as_bytes().to_vec());
    reply.headers = vec![
        ("content-security-policy", CSP.into()),
        ("x-frame-options", "DENY".into()),
        ("referrer-policy", "no-referrer".into()),
        ("cross-origin-opener-policy", "same-origin".into()),
    ];
    reply
}

impl AdminApp {
    /// `GET /admin/session`: the signed-in identity, its scope, and the policy in force.
    pub(super) fn session(&self, actor: Option<&Actor>) -> Reply {
        let who = actor.map(Actor::audit);
        Reply::json(
            200,
            json!({
                "actor": who.map(|a| json!({"kind": a.kind, "sub": a.sub, "tenant": a.tenant})),
                "scope": if actor.and_then(Actor::tenant_scope).is_some() { "tenant" } else { "platform" },
                "policy_revision": self.gw.policy.revision(),
                "shadow": self.gw.policy.shadow().is_some(),
                "audit_last_seq": self.gw.audit.last_written(),
                "now": chrono::Utc::now().timestamp(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_have_a_strict_policy_and_no_inline_script() {
        let page = asset("index.html");
        assert!(page.content_type.starts_with("text/html"));
        let csp = &page.headers.iter().find(|(k, _)| *k == "content-security-policy").unwrap().1;
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"));
        let html = String::from_utf8(page.body).unwrap();
        assert!(html.contains(r#"<script src="/admin/ui/app.js""#) && !html.contains("<script>"), "no inline script");
        assert!(!html.contains("style=") && !html.contains("<style"), "no inline style");
        assert!(!html.contains("http://") && !html.contains("https://"), "nothing from elsewhere");
        assert!(asset("app.js").content_type.starts_with("text/javascript"));
    }
}
