//! Upstream sessions of the federated endpoint, and how a forwarded request is dressed for
//! the upstream's protocol era.
//!
//! Each gateway session (or, for stateless clients, each principal) gets its own upstream
//! client per server, so upstream session state (subscriptions, log level, …) is never shared
//! between callers. Clients connect lazily, on a blocking thread (the client is synchronous),
//! declaring the client capabilities they are given (a federated session's relayed ones, see
//! [`crate::mcp::federation::relay`]); a client keeps what it declared when it connected.
//! Every client mirrors `x-mcp-header` arguments into `Mcp-Param-*` headers from one
//! [`Registry`] of the discovered tools' marks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::broker;
use crate::catalog::McpServer;
use crate::enforce::Admitted;
use crate::error::GatewayError;
use crate::mcp::client::{ClientError, Era, McpClient, Transport};
use crate::mcp::param_headers::Registry;

/// How the gateway reaches `server` as a client.
pub fn transport(server: &McpServer, timeout: Duration) -> Transport {
    if server.cfg.transport == "stdio" {
        // Exactly what the operator listed (plus PATH, see the stdio transport).
        let env = server.cfg.env.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        return Transport::Stdio { command: server.cfg.command.clone(), env, timeout };
    }
    let headers = broker::credential(server)
        .and_then(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .into_iter()
        .collect();
    Transport::Http { url: server.cfg.url.clone(), headers, timeout }
}

/// Maps a client failure to the error table (never echoing upstream bodies or credentials).
pub fn client_error(server: &str, e: &ClientError) -> GatewayError {
    match e {
        ClientError::Timeout => GatewayError::ProviderTimeout { message: format!("MCP server {server} timed out") },
        _ => GatewayError::Provider { message: format!("MCP server {server} failed") },
    }
}

/// Upstream clients kept at most; past it the least recently used are closed (a stateless
/// caller's next request simply connects again).
const MAX_CLIENTS: usize = 4096;

/// (server, caller key) → (client, last use tick).
type ClientMap = HashMap<(String, String), (Arc<McpClient>, u64)>;

/// Upstream clients by (server, caller key), with a use counter for eviction.
#[derive(Default)]
pub struct Upstreams {
    clients: Mutex<ClientMap>,
    clock: std::sync::atomic::AtomicU64,
    /// The discovered tools' `x-mcp-header` marks, shared with every client.
    pub params: Arc<Registry>,
}

impl Upstreams {
    /// The client for `server` on behalf of `key`, connecting it if needed and declaring
    /// `capabilities` then (the same key must always be given the same). Only an admitted
    /// call gets one (connecting runs the session handshake upstream on its behalf).
    pub async fn client(
        &self,
        server: &Arc<McpServer>,
        key: &str,
        timeout: Duration,
        capabilities: Value,
        _admitted: &Admitted,
    ) -> Result<Arc<McpClient>, GatewayError> {
        let map_key = (server.name.clone(), key.to_string());
        let tick = self.clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((c, used)) = self.clients.lock().get_mut(&map_key) {
            *used = tick;
            return Ok(c.clone());
        }
        let t = transport(server, timeout);
        // The handshake is the caller's doing: its requests carry the caller's trace.
        let span = crate::otel::child("upstream.connect", opentelemetry::trace::SpanKind::Client);
        let trace = span.as_ref().map(|s| s.trace().clone());
        let connected = crate::otel::spawn_blocking(trace, move || McpClient::connect_with(t, None, capabilities))
            .await
            .map_err(|_| GatewayError::Provider { message: "upstream connect task failed".into() })?;
        drop(span);
        let client = match connected {
            Ok(c) => {
                c.mirror_params(self.params.clone(), &server.name);
                Arc::new(c)
            }
            Err(e) => {
                tracing::warn!(server = %server.name, error = %e, "upstream MCP connect failed");
                return Err(client_error(&server.name, &e));
            }
        };
        let mut map = self.clients.lock();
        if map.len() >= MAX_CLIENTS {
            // Close the least recently used eighth, off this thread.
            let mut by_use: Vec<(u64, (String, String))> = map.iter().map(|(k, (_, t))| (*t, k.clone())).collect();
            by_use.sort();
            let gone: Vec<Arc<McpClient>> =
                by_use.into_iter().take(MAX_CLIENTS / 8).filter_map(|(_, k)| map.remove(&k).map(|(c, _)| c)).collect();
            std::thread::spawn(move || gone.iter().for_each(|c| c.close()));
        }
        // A concurrent request may have connected first: keep one.
        Ok(map.entry(map_key).or_insert((client, tick)).0.clone())
    }

    /// Forgets (and closes, off-thread) every client of `key` (its session ended).
    pub fn end(&self, key: &str) {
        let mut gone = Vec::new();
        self.clients.lock().retain(|(_, k), (c, _)| {
            if k == key {
                gone.push(c.clone());
                false
            } else {
                true
            }
        });
        if !gone.is_empty() {
            std::thread::spawn(move || gone.iter().for_each(|c| c.close()));
        }
    }
}

/// Headers that carry a forwarded request in `client`'s era: its negotiated version and
/// session, dressed by [`crate::upstream::headers::request_headers`] — the function the
/// client uses for its own requests, so `Mcp-Name` is encoded the same way on both paths.
/// `name` is the upstream's own (unencoded) tool or prompt name or resource URI; the
/// caller's `Mcp-Name` named the federated tool, so it is always replaced.
pub fn forward_headers(client: &McpClient, method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    client.request_headers(Some(method), name)
}

/// The body as the upstream expects it: a 2026-07-28 upstream needs the per-request `_meta`
/// a 2025-11-25 client never sends, declaring `capabilities` (what the gateway's client for
/// this caller declares, [`McpClient::declared_capabilities`]).
pub fn upstream_body(mut body: Value, era: Era, capabilities: &Value) -> Value {
    if era != Era::Stateless20260728 {
        return body;
    }
    let Some(params) = body.as_object_mut().and_then(|o| {
        o.entry("params").or_insert_with(|| json!({}));
        o.get_mut("params")?.as_object_mut()
    }) else {
        return body;
    };
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.entry("io.modelcontextprotocol/protocolVersion").or_insert_with(|| json!("2026-07-28"));
        m.entry("io.modelcontextprotocol/clientInfo")
            .or_insert_with(|| json!({"name": "fastmcp-gateway", "version": env!("CARGO_PKG_VERSION")}));
        // The gateway's client declares what it relays, whatever the caller put there.
        m.insert("io.modelcontextprotocol/clientCapabilities".into(), capabilities.clone());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_upstreams_get_request_meta() {
        let none = json!({});
        let b =
            upstream_body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}), Era::Stateless20260728, &none);
        assert_eq!(b["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
        assert_eq!(b["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"], json!({}));
        let kept = json!({"params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-08-01",
            "io.modelcontextprotocol/clientCapabilities": {"roots": {}}}}});
        let b = upstream_body(kept, Era::Stateless20260728, &json!({"sampling": {}}));
        assert_eq!(b["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-08-01");
        assert_eq!(
            b["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"],
            json!({"sampling": {}}),
            "what the gateway relays, not what the caller claimed"
        );
        let legacy = upstream_body(json!({"params": {}}), Era::Session20251125, &none);
        assert_eq!(legacy, json!({"params": {}}));
    }
}
