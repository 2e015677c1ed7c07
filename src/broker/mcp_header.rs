//! MCP upstream credentials: the agent's credentials are removed from a proxied request and the
//! server's own credential is injected. The agent's JWT never leaves the gateway.

use http::{HeaderName, HeaderValue};

use crate::catalog::McpServer;

/// Request headers that carry the agent's or the gateway's secrets: never forwarded.
pub const STRIPPED_REQUEST_HEADERS: &[&str] = &["authorization", "proxy-authorization", "x-action-token"];

/// The header to inject for `server`, if it has a credential.
pub fn credential(server: &McpServer) -> Option<(HeaderName, HeaderValue)> {
    if server.cfg.token.0.is_empty() {
        return None;
    }
    let name = HeaderName::from_bytes(server.cfg.header.as_bytes()).ok()?;
    let mut value = HeaderValue::from_str(&server.cfg.token.0).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}
