//! Wire-level helpers shared by the HTTP and stdio transports: protocol constants, the
//! 2026-07-28 per-request `_meta` stamping and message classification. The HTTP headers a
//! request carries come from [`crate::upstream::headers`].

use serde_json::{json, Map, Value};

/// The stateless protocol revision: no handshake, every request self-describing.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The session-based protocol revision used as fallback (`initialize` handshake).
pub const SESSION_VERSION: &str = "2025-11-25";
/// Client name announced to upstream servers.
pub const CLIENT_NAME: &str = "fastmcp-gateway";
/// Client version announced to upstream servers.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `_meta` key for the per-request protocol version (2026-07-28).
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key for the client implementation info (2026-07-28).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key for the client capabilities (2026-07-28).
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key under which a discover result carries the server info (2026-07-28).
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// JSON-RPC "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;
/// MCP "unsupported protocol version" (its `data.supported` lists what the server speaks).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// The `clientInfo` object sent in `initialize` and in 2026-era `_meta`.
pub fn client_info() -> Value {
    json!({ "name": CLIENT_NAME, "version": CLIENT_VERSION })
}

/// Builds a JSON-RPC request object; `Null` params are omitted.
pub fn request_message(id: u64, method: &str, params: Value) -> Value {
    let mut msg = json!({ "jsonrpc": "2.0", "id": id, "method": method });
    if !params.is_null() {
        msg["params"] = params;
    }
    msg
}

/// Builds a JSON-RPC notification object; `Null` params are omitted.
pub fn notification_message(method: &str, params: Value) -> Value {
    let mut msg = json!({ "jsonrpc": "2.0", "method": method });
    if !params.is_null() {
        msg["params"] = params;
    }
    msg
}

/// Stamps a 2026-07-28 message: fills the reserved `_meta` keys (`capabilities`: what the
/// client declares), keeping caller-supplied keys such as `progressToken`. Non-object params
/// cannot carry `_meta` and are left alone (the server will complain).
pub fn stamp_meta(msg: &mut Value, version: &str, capabilities: &Value) {
    let Some(obj) = msg.as_object_mut() else { return };
    let params = obj.entry("params").or_insert_with(|| Value::Object(Map::new()));
    let meta = params
        .as_object_mut()
        .map(|p| p.entry("_meta").or_insert_with(|| Value::Object(Map::new())))
        .and_then(Value::as_object_mut);
    if let Some(meta) = meta {
        meta.insert(META_PROTOCOL_VERSION.into(), Value::String(version.into()));
        meta.insert(META_CLIENT_INFO.into(), client_info());
        meta.insert(META_CLIENT_CAPABILITIES.into(), capabilities.clone());
    }
}

/// What an incoming JSON-RPC message is, from the client's point of view.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// A response (has `id` and `result` or `error`).
    Response,
    /// A server-to-client request (has `method` and a non-null `id`).
    Request,
    /// A notification (has `method`, no `id`).
    Notification,
    /// Anything else; ignored.
    Other,
}

/// Classifies an incoming JSON-RPC message.
pub fn classify(msg: &Value) -> Incoming {
    let has_id = msg.get("id").is_some_and(|id| !id.is_null());
    if msg.get("method").is_some_and(Value::is_string) {
        if has_id {
            Incoming::Request
        } else {
            Incoming::Notification
        }
    } else if msg.get("result").is_some() || msg.get("error").is_some() {
        Incoming::Response
    } else {
        Incoming::Other
    }
}

/// The reply to a server-to-client request when the caller relays nothing. The gateway has
/// no user to ask (elicitation), no roots and no model (sampling), so everything but `ping`
/// is answered "method not found" — promptly, so the server is not left waiting on a request
/// nobody will answer.
pub fn reply_to_server_request(req: &Value) -> Value {
    if req.get("method").and_then(Value::as_str) == Some("ping") {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        return json!({ "jsonrpc": "2.0", "id": id, "result": {} });
    }
    refusal(req, "Method not found: the FastMCP gateway does not handle server-initiated requests")
}

/// A JSON-RPC error answering the server's request `req` (`message` says why; nothing of the
/// gateway's policy is shown to the server).
pub fn refusal(req: &Value, message: &str) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": METHOD_NOT_FOUND, "message": message } })
}

/// Truncates text to at most `max` characters (on a char boundary) for error messages.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_stamp_keeps_caller_meta() {
        let mut msg = request_message(7, "tools/call", json!({"name": "echo", "_meta": {"progressToken": 1}}));
        stamp_meta(&mut msg, MODERN_VERSION, &json!({"sampling": {}}));
        assert_eq!(msg["params"]["_meta"]["progressToken"], 1);
        assert_eq!(msg["params"]["_meta"][META_CLIENT_CAPABILITIES], json!({"sampling": {}}));
        assert_eq!(msg["params"]["_meta"][META_PROTOCOL_VERSION], MODERN_VERSION);
        assert_eq!(msg["params"]["name"], "echo");
        let mut bare = request_message(8, "tools/list", Value::Null);
        stamp_meta(&mut bare, MODERN_VERSION, &json!({}));
        assert_eq!(bare["params"]["_meta"][META_CLIENT_INFO]["name"], CLIENT_NAME);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&json!({"jsonrpc":"2.0","id":1,"result":{}})), Incoming::Response);
        assert_eq!(classify(&json!({"jsonrpc":"2.0","id":1,"method":"roots/list"})), Incoming::Request);
        assert_eq!(classify(&json!({"jsonrpc":"2.0","method":"notifications/progress"})), Incoming::Notification);
        assert_eq!(reply_to_server_request(&json!({"id":3,"method":"roots/list"}))["error"]["code"], METHOD_NOT_FOUND);
    }
}
