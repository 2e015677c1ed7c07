//! How an upstream MCP request is dressed for the upstream's protocol era — the one place
//! both paths get their headers: the MCP client (`mcp::client`, its own POSTs, GET stream and
//! DELETE) and federated calls forwarded through pingora (`mcp::upstream::forward_headers`).
//!
//! - Every era: `traceparent`/`tracestate` under a caller's trace ([`trace_headers`]).
//! - 2025-11-25: `MCP-Protocol-Version`, plus `Mcp-Session-Id` once the server gave one.
//! - 2026-07-28: `MCP-Protocol-Version`, `Mcp-Method` on every message, and `Mcp-Name`
//!   (`params.name` of `tools/call` / `prompts/get`, `params.uri` of `resources/read`),
//!   encoded per the transport's Value Encoding rule ([`encode_value`]).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::mcp::client::Era;

/// The negotiated protocol version, on every request after negotiation.
pub const PROTOCOL_VERSION: &str = "MCP-Protocol-Version";
/// The session id (2025-11-25 era only).
pub const SESSION_ID: &str = "Mcp-Session-Id";
/// The JSON-RPC method (2026-07-28 era), so intermediaries can route without the body.
pub const METHOD: &str = "Mcp-Method";
/// The tool or prompt name, or resource URI, of a name-bearing request (2026-07-28 era).
pub const NAME: &str = "Mcp-Name";

const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";

/// What the upstream agreed to: the era, the version string and (2025-11-25) the session.
#[derive(Debug, Clone, Copy)]
pub struct Dialect<'a> {
    /// The negotiated era.
    pub era: Era,
    /// The negotiated protocol version string (`MCP-Protocol-Version`).
    pub version: &'a str,
    /// The `Mcp-Session-Id` the server gave (2025-11-25 era; ignored in 2026-07-28).
    pub session_id: Option<&'a str>,
}

/// `traceparent`/`tracestate` of an upstream MCP request sent under a caller's trace: the
/// span the caller opened for this call, carried to the client's thread
/// ([`crate::otel::on_thread`]). Empty for the gateway's own traffic (discovery, the GET
/// listening stream). Federated calls forwarded through pingora get theirs in
/// `proxy/trace.rs`.
pub fn trace_headers() -> Vec<(&'static str, String)> {
    crate::otel::current_headers()
}

/// The params key mirrored into `Mcp-Name` for `method`, if it is name-bearing.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The era-specific headers of one upstream request. `method` is the JSON-RPC method of the
/// message (None for the GET listening stream and DELETE); `name` the raw (unencoded) tool or
/// prompt name or resource URI, sent only for name-bearing methods.
pub fn request_headers(d: Dialect<'_>, method: Option<&str>, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![(PROTOCOL_VERSION, d.version.to_string())];
    match d.era {
        Era::Session20251125 => {
            if let Some(id) = d.session_id {
                h.push((SESSION_ID, id.to_string()));
            }
        }
        Era::Stateless20260728 => {
            if let Some(m) = method {
                h.push((METHOD, m.to_string()));
                if let (Some(_), Some(n)) = (name_param(m), name) {
                    h.push((NAME, encode_value(n)));
                }
            }
        }
    }
    h
}

/// [`request_headers`] for a JSON-RPC message, reading the method and name from its body.
pub fn message_headers(d: Dialect<'_>, msg: &Value) -> Vec<(&'static str, String)> {
    let method = msg.get("method").and_then(Value::as_str);
    let name =
        method.and_then(name_param).and_then(|key| msg.get("params").and_then(|p| p.get(key))).and_then(Value::as_str);
    request_headers(d, method, name)
}

/// Encodes a value for `Mcp-Name` / `Mcp-Param-*` (2026-07-28 transport, "Value Encoding"):
/// printable ASCII (0x20–0x7E) without leading or trailing whitespace passes verbatim;
/// anything else — non-ASCII, control characters (tab included), edge whitespace, or a
/// plain value that itself looks like the sentinel — becomes `=?base64?{Base64(UTF-8)}?=`
/// (standard alphabet, padded).
pub fn encode_value(value: &str) -> String {
    let printable = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let edge_space = value.starts_with(' ') || value.ends_with(' ');
    let sentinel_like = value.starts_with(SENTINEL_PREFIX) && value.ends_with(SENTINEL_SUFFIX);
    if printable && !edge_space && !sentinel_like {
        value.to_string()
    } else {
        format!("{SENTINEL_PREFIX}{}{SENTINEL_SUFFIX}", STANDARD.encode(value.as_bytes()))
    }
}

/// The inverse of [`encode_value`], for comparing a received header with the body: plain
/// values come back as they are; a sentinel value is decoded, and `None` when its payload is
/// not canonical Base64 of UTF-8 (a corrupt header must never match a body value).
pub fn decode_value(value: &str) -> Option<String> {
    let Some(payload) = value.strip_prefix(SENTINEL_PREFIX).and_then(|rest| rest.strip_suffix(SENTINEL_SUFFIX)) else {
        return Some(value.to_string());
    };
    let bytes = STANDARD.decode(payload).ok()?;
    if STANDARD.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mcp_name_encoding_follows_the_spec_examples() {
        // The table in 2026-07-28 basic/transports/streamable-http, "Value Encoding".
        assert_eq!(encode_value("us-west1"), "us-west1");
        assert_eq!(encode_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encode_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encode_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(encode_value("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn mcp_name_encoding_of_names_and_uris() {
        // Tool names and resource URIs in the header-safe set go verbatim.
        assert_eq!(encode_value("get_weather"), "get_weather");
        assert_eq!(encode_value("file:///projects/myapp/config.json"), "file:///projects/myapp/config.json");
        assert_eq!(encode_value("a b"), "a b");
        // Non-ASCII names and URIs (an IRI, not percent-encoded) are Base64 of their UTF-8.
        assert_eq!(encode_value("é"), "=?base64?w6k=?=");
        assert_eq!(encode_value("file:///données/ré.txt"), "=?base64?ZmlsZTovLy9kb25uw6llcy9yw6kudHh0?=");
        // Control characters, tab and DEL included; edge whitespace either side.
        assert_eq!(encode_value("a\tb"), "=?base64?YQli?=");
        assert_eq!(encode_value("a\u{7f}"), "=?base64?YX8=?=");
        assert_eq!(encode_value("x "), "=?base64?eCA=?=");
        assert_eq!(encode_value(" x"), "=?base64?IHg=?=");
        assert_eq!(encode_value("a\r\nMcp-Method: x"), "=?base64?YQ0KTWNwLU1ldGhvZDogeA==?=");
        // Only the exact, case-sensitive sentinel shape is ambiguous.
        assert_eq!(encode_value("=?BASE64?x?="), "=?BASE64?x?=");
        assert_eq!(encode_value("=?base64?x"), "=?base64?x");
        assert_ne!(encode_value("=?base64?=").as_str(), "=?base64?=");
    }

    #[test]
    fn encoded_values_round_trip_and_are_header_safe() {
        for v in ["get_weather", "Hello, 世界", " padded ", "line1\nline2", "=?base64?literal?=", "", "🦀", "a\tb"]
        {
            let e = encode_value(v);
            assert!(http::HeaderValue::from_str(&e).is_ok(), "{v:?} -> {e:?}");
            assert_eq!(decode_value(&e).as_deref(), Some(v), "{e:?}");
        }
        assert_eq!(decode_value("=?base64?!!?="), None);
        assert_eq!(decode_value("=?base64?w6l=?="), None, "non-canonical padding bits");
        assert_eq!(decode_value("=?base64?/w==?="), None, "not UTF-8");
    }

    #[test]
    fn session_era_headers() {
        let d = Dialect { era: Era::Session20251125, version: "2025-11-25", session_id: Some("s1") };
        let h = request_headers(d, Some("tools/call"), Some("echo"));
        assert_eq!(h, vec![(PROTOCOL_VERSION, "2025-11-25".to_string()), (SESSION_ID, "s1".to_string())]);
        let d = Dialect { session_id: None, ..d };
        assert_eq!(request_headers(d, None, None), vec![(PROTOCOL_VERSION, "2025-11-25".to_string())]);
    }

    #[test]
    fn stateless_era_headers() {
        let d = Dialect { era: Era::Stateless20260728, version: "2026-07-28", session_id: Some("ignored") };
        let h = request_headers(d, Some("tools/call"), Some("Hello, 世界"));
        assert_eq!(
            h,
            vec![
                (PROTOCOL_VERSION, "2026-07-28".to_string()),
                (METHOD, "tools/call".to_string()),
                (NAME, "=?base64?SGVsbG8sIOS4lueVjA==?=".to_string()),
            ]
        );
        // Mcp-Name only for the name-bearing methods.
        let h = request_headers(d, Some("resources/subscribe"), Some("file:///x"));
        assert!(h.iter().all(|(k, _)| *k != NAME), "{h:?}");
        let h = request_headers(d, Some("tools/list"), None);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn message_headers_read_the_body() {
        let d = Dialect { era: Era::Stateless20260728, version: "2026-07-28", session_id: None };
        let read = json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///é"}});
        let h = message_headers(d, &read);
        assert!(h.contains(&(NAME, encode_value("file:///é"))), "{h:?}");
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo"}});
        assert_eq!(message_headers(d, &call), request_headers(d, Some("tools/call"), Some("echo")));
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(message_headers(d, &note)[1], (METHOD, "notifications/initialized".to_string()));
    }
}
