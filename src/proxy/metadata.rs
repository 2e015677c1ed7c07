//! RFC 9728 protected-resource metadata and the `WWW-Authenticate` challenge that points to it.

use pingora::prelude::*;
use serde_json::{json, Value};

use super::{header_str, GatewayProxy};

impl GatewayProxy {
    fn base_url(&self, session: &Session) -> String {
        let host =
            header_str(session, "host").filter(|h| h.bytes().all(|b| b.is_ascii_graphic())).unwrap_or("localhost");
        format!("http://{host}")
    }

    pub(super) fn www_authenticate(&self, session: &Session, reason: &str) -> String {
        let resource = session.req_header().uri.path().trim_end_matches('/');
        let mut v = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource{}\"",
            self.base_url(session),
            resource
        );
        if reason != "missing" {
            v.push_str(", error=\"invalid_token\"");
        }
        v
    }

    /// RFC 9728 protected resource metadata for `/mcp{...}`.
    pub(super) fn resource_metadata(&self, session: &Session, suffix: &str) -> Value {
        let auth = &self.gw.cfg.auth;
        let servers = if auth.authorization_servers.is_empty() {
            vec![auth.issuer.clone()]
        } else {
            auth.authorization_servers.clone()
        };
        let resource = if suffix.is_empty() { "/mcp" } else { suffix };
        json!({
            "resource": format!("{}{}", self.base_url(session), resource),
            "authorization_servers": servers,
            "scopes_supported": auth.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "FastMCP gateway",
        })
    }
}
