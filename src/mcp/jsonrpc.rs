//! Parsing one JSON-RPC message from a Streamable HTTP POST body.

use serde_json::{Map, Value};

use crate::error::GatewayError;

/// JSON-RPC code for an `Mcp-Method`/`Mcp-Name` header that contradicts the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// One client → server message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A client's response to a server request (e.g. an elicitation answer).
    Response {
        id: Value,
    },
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    pub fn id(&self) -> Value {
        match self {
            Message::Request { id, .. } | Message::Response { id } => id.clone(),
            Message::Notification { .. } => Value::Null,
        }
    }

    /// The `Mcp-Name` a request targets: tool or prompt name, resource URI.
    pub fn target_name(&self) -> Option<&str> {
        let Message::Request { method, params, .. } = self else {
            return None;
        };
        let key = match method.as_str() {
            "tools/call" | "prompts/get" => "name",
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => "uri",
            _ => return None,
        };
        params.get(key).and_then(Value::as_str)
    }
}

/// Parses a POST body. Batches are refused: one message per request, so no call can be
/// smuggled past the policy inside an array.
pub fn parse(body: &[u8]) -> Result<(Message, Value), GatewayError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::BadRequest { message: format!("body is not JSON: {e}"), jsonrpc_code: -32700 })?;
    let obj = match &value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(GatewayError::bad_request("JSON-RPC batch arrays are not accepted"));
        }
        _ => return Err(GatewayError::bad_request("body is not a JSON-RPC object")),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(GatewayError::bad_request("jsonrpc must be \"2.0\""));
    }
    let msg = message_of(obj)?;
    Ok((msg, value))
}

fn message_of(obj: &Map<String, Value>) -> Result<Message, GatewayError> {
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    if !(params.is_null() || params.is_object()) {
        return Err(GatewayError::BadRequest { message: "params must be an object".into(), jsonrpc_code: -32602 });
    }
    match (obj.get("method"), obj.get("id")) {
        (Some(Value::String(m)), Some(id)) => {
            if !(id.is_string() || id.is_number()) {
                return Err(GatewayError::bad_request("id must be a string or number"));
            }
            Ok(Message::Request { id: id.clone(), method: m.clone(), params })
        }
        (Some(Value::String(m)), None) => Ok(Message::Notification { method: m.clone(), params }),
        (Some(_), _) => Err(GatewayError::bad_request("method must be a string")),
        (None, Some(id)) if obj.contains_key("result") || obj.contains_key("error") => {
            Ok(Message::Response { id: id.clone() })
        }
        _ => Err(GatewayError::bad_request("not a JSON-RPC request, notification or response")),
    }
}

/// Refuses a request whose `Mcp-Method` / `Mcp-Name` headers disagree with its body.
pub fn check_headers(msg: &Message, mcp_method: Option<&str>, mcp_name: Option<&str>) -> Result<(), GatewayError> {
    let mismatch = |what: &str| GatewayError::BadRequest {
        message: format!("{what} header does not match the request body"),
        jsonrpc_code: HEADER_MISMATCH,
    };
    if let Some(h) = mcp_method {
        if msg.method() != Some(h) {
            return Err(mismatch("Mcp-Method"));
        }
    }
    if let Some(h) = mcp_name {
        // 2026-07-28 clients encode names that are not plain printable ASCII.
        let name = crate::upstream::headers::decode_value(h);
        if name.is_none() || msg.target_name() != name.as_deref() {
            return Err(mismatch("Mcp-Name"));
        }
    }
    Ok(())
}

/// A `tools/call`'s name, arguments and gateway action token (`_meta["fastmcp/action_token"]`).
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
    pub action_token: Option<String>,
}

pub const ACTION_TOKEN_META: &str = "fastmcp/action_token";

pub fn tool_call(params: &Value) -> Result<ToolCall, GatewayError> {
    let invalid = |m: &str| GatewayError::BadRequest { message: m.into(), jsonrpc_code: -32602 };
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("tools/call needs params.name"))?
        .to_string();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(invalid("params.arguments must be an object")),
    };
    let action_token =
        params.get("_meta").and_then(|m| m.get(ACTION_TOKEN_META)).and_then(Value::as_str).map(String::from);
    Ok(ToolCall { name, arguments, action_token })
}

/// The body with the gateway's action token removed from `params._meta` (it is ours, not the
/// upstream's).
pub fn strip_action_token(mut body: Value) -> Value {
    if let Some(meta) = body.pointer_mut("/params/_meta").and_then(Value::as_object_mut) {
        meta.remove(ACTION_TOKEN_META);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_notifications_and_responses() {
        let (m, _) = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#).unwrap();
        assert_eq!(m.target_name(), Some("x"));
        let (m, _) = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let (m, _) = parse(br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#).unwrap();
        assert!(matches!(m, Message::Response { .. }));
    }

    #[test]
    fn refuses_batches_garbage_and_bad_params() {
        for body in [
            &br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call"}]"#[..],
            b"{",
            b"3",
            br#"{"id":1,"method":"x"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
            br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
        ] {
            assert_eq!(parse(body).unwrap_err().status(), 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn header_mismatch_is_32020() {
        let (m, _) = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#).unwrap();
        assert!(check_headers(&m, Some("tools/call"), Some("echo")).is_ok());
        assert_eq!(check_headers(&m, Some("tools/list"), None).unwrap_err().jsonrpc_code(), HEADER_MISMATCH);
        assert_eq!(check_headers(&m, None, Some("rm")).unwrap_err().jsonrpc_code(), HEADER_MISMATCH);
    }

    #[test]
    fn tool_call_reads_meta_token_and_strip_removes_it() {
        let (_, v) = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1},"_meta":{"fastmcp/action_token":"T","k":1}}}"#).unwrap();
        let c = tool_call(&v["params"]).unwrap();
        assert_eq!((c.name.as_str(), c.action_token.as_deref()), ("a", Some("T")));
        let s = strip_action_token(v);
        assert!(s["params"]["_meta"].get(ACTION_TOKEN_META).is_none());
        assert_eq!(s["params"]["_meta"]["k"], 1);
    }
}
