//! RFC 9728 protected-resource metadata and the `WWW-Authenticate` challenge that points to it,
//! both naming the gateway by its public origin (`forwarded.rs`).

use pingora::prelude::*;
use serde_json::{json, Value};

use super::{header_str, GatewayProxy};
use crate::proxy::forwarded::Addressed;

/// How `session` was addressed: its TCP peer and the headers naming the gateway.
pub(super) fn addressed(session: &Session) -> Addressed<'_> {
    Addressed {
        peer: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()),
        host: header_str(session, "host"),
        forwarded_proto: header_str(session, "x-forwarded-proto"),
        forwarded_host: header_str(session, "x-forwarded-host"),
    }
}

impl GatewayProxy {
    /// `scheme://authority` the client reached us at (`public_url`, else the listener's scheme
    /// and `Host`, or a trusted proxy's `X-Forwarded-*`: `forwarded.rs`).
    fn base_url(&self, session: &Session) -> String {
        self.public.base(&addressed(session))
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
