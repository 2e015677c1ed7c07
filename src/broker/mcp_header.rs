//! MCP upstream credentials: the server's own credential, injected into every forwarded
//! request (the agent's never goes: `proxy::headers` forwards an allow-list only).

use http::{HeaderName, HeaderValue};

use crate::catalog::McpServer;

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
