//! Wire-level helpers shared by the HTTP and stdio transports: protocol constants, the
//! 2026-07-28 per-request stamping (`_meta` + routing headers) and message classification.

use serde_json::{json, Map, Value};

/// The stateless protocol revision: no handshake, every request self-describing.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The session-based protocol revision used as fallback (`initialize` handshake).
pub const SESSION_VERSION: &str = "2025-11-25";
/// Client name announced to upstream servers.
pub const CLIENT_NAME: &str = "fastmcp-gateway";
/// Client version announced to upstream servers.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// HTTP header carrying the protocol version on every request after negotiation.
pub const HDR_PROTOCOL_VERSION: &str = "MCP-Protocol-Version";
/// HTTP header carrying the session id (2025-11-25 era only).
pub const HDR_SESSION_ID: &str = "Mcp-Session-Id";
/// HTTP header mirroring the JSON-RPC method (2026-07-28 era), so proxies can route.
pub const HDR_METHOD: &str = "Mcp-Method";
/// HTTP header mirroring `params.name` / `params.uri` for name-bearing methods (2026-07-28).
pub const HDR_NAME: &str = "Mcp-Name";

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

/// Stamps a 2026-07-28 request: fills the reserved `_meta` keys (keeping caller-supplied
/// keys such as `progressToken`) and returns the routing headers the HTTP transport sends.
pub fn stamp_modern(msg: &mut Value, version: &str) -> Vec<(&'static str, String)> {
    let method = msg.get("method").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(obj) = msg.as_object_mut() else { return Vec::new() };
    let params = obj.entry("params").or_insert_with(|| Value::Object(Map::new()));
    if !params.is_object() {
        // Non-object params cannot carry `_meta`; leave them alone, the server will complain.
        return vec![(HDR_PROTOCOL_VERSION, version.to_string()), (HDR_METHOD, method)];
    }
    let meta = params
        .as_object_mut()
        .map(|p| p.entry("_meta").or_insert_with(|| Value::Object(Map::new())))
        .and_then(Value::as_object_mut);
    if let Some(meta) = meta {
        meta.insert(META_PROTOCOL_VERSION.into(), Value::String(version.into()));
        meta.insert(META_CLIENT_INFO.into(), client_info());
        meta.insert(META_CLIENT_CAPABILITIES.into(), json!({}));
    }
    let mut headers = vec![(HDR_PROTOCOL_VERSION, version.to_string()), (HDR_METHOD, method.clone())];
    let name_key = match method.as_str() {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(name) = name_key.and_then(|k| params.get(k)).and_then(Value::as_str) {
        headers.push((HDR_NAME, encode_header_value(name)));
    }
    headers
}

/// Encodes a value for an `Mcp-*` header: printable ASCII without edge whitespace passes
/// verbatim, anything else is wrapped as `=?base64?…?=` so it survives HTTP unchanged.
pub fn encode_header_value(value: &str) -> String {
    let safe = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let sentinel_like = value.starts_with("=?base64?") && value.ends_with("?=");
    if safe && value == value.trim() && !sentinel_like {
        value.to_string()
    } else {
        format!("=?base64?{}?=", base64(value.as_bytes()))
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// The reply to a server-to-client request. The gateway has no user to ask (elicitation),
/// no roots and no model (sampling), so everything but `ping` is answered "method not
/// found" — promptly, so the server is not left waiting on a request nobody will answer.
pub fn reply_to_server_request(req: &Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    if req.get("method").and_then(Value::as_str) == Some("ping") {
        return json!({ "jsonrpc": "2.0", "id": id, "result": {} });
    }
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": METHOD_NOT_FOUND, "message": "Method not found: the FastMCP gateway does not handle server-initiated requests" }
    })
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
    fn base64_matches_rfc4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (i, o) in cases {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn header_values_are_encoded_only_when_needed() {
        assert_eq!(encode_header_value("echo"), "echo");
        assert_eq!(encode_header_value("é"), "=?base64?w6k=?=");
        assert_eq!(encode_header_value(" x"), "=?base64?IHg=?=");
    }

    #[test]
    fn modern_stamp_keeps_caller_meta_and_adds_headers() {
        let mut msg = request_message(7, "tools/call", json!({"name": "echo", "_meta": {"progressToken": 1}}));
        let headers = stamp_modern(&mut msg, MODERN_VERSION);
        assert_eq!(msg["params"]["_meta"]["progressToken"], 1);
        assert_eq!(msg["params"]["_meta"][META_PROTOCOL_VERSION], MODERN_VERSION);
        assert!(headers.contains(&(HDR_NAME, "echo".to_string())));
        assert!(headers.contains(&(HDR_METHOD, "tools/call".to_string())));
        let mut bare = request_message(8, "tools/list", Value::Null);
        stamp_modern(&mut bare, MODERN_VERSION);
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
