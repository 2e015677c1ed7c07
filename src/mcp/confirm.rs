//! MCP-native confirmation of a held call (DESIGN §7): the shapes the client sees.
//!
//! - 2026-07-28 clients that declared elicitation: an MRTR `input_required` result carrying an
//!   `elicitation/create` form and a sealed `requestState`; the retry's `inputResponses`
//!   answer it.
//! - 2025-11-25 clients that declared elicitation (federated sessions): the same form as an
//!   `elicitation/create` request on the call's SSE stream.
//! - Anyone else: the JSON-RPC error with the action token (see `holds::IssuedHold::data`).

use serde_json::{json, Value};

/// The `inputRequests` key of the gateway's confirmation form.
pub const INPUT_KEY: &str = "fastmcp_confirm";

/// What the client's profile allows for a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientProfile {
    /// The request is 2026-07-28 (per-request `_meta`, MRTR).
    pub modern: bool,
    /// The client declared the elicitation capability.
    pub elicitation: bool,
}

impl ClientProfile {
    /// Reads a 2026-07-28 request's `_meta` (protocol version, client capabilities). A
    /// 2025-11-25 request carries neither: its profile comes from the session.
    pub fn from_request(header_version: Option<&str>, params: &Value) -> ClientProfile {
        let meta = params.get("_meta");
        let version = meta
            .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
            .and_then(Value::as_str)
            .or(header_version);
        let modern = version.is_some_and(is_modern);
        let elicitation = meta
            .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"))
            .and_then(|c| c.get("elicitation"))
            .is_some_and(|e| !e.is_null());
        ClientProfile { modern, elicitation: modern && elicitation }
    }
}

/// Protocol versions of the stateless era.
pub fn is_modern(version: &str) -> bool {
    version >= "2026-07-28"
}

/// The `elicitation/create` params asking the user to confirm `tool_id`.
pub fn elicitation_params(tool_id: &str, reasons: &[String]) -> Value {
    let why = if reasons.is_empty() { String::new() } else { format!(" (policy: {})", reasons.join(", ")) };
    json!({
        "mode": "form",
        "message": format!("The agent wants to run {tool_id}, which needs your confirmation{why}. Run it?"),
        "requestedSchema": {
            "type": "object",
            "properties": {
                "confirm": {"type": "boolean", "title": "Run this call", "default": false}
            },
            "required": []
        }
    })
}

/// The MRTR `input_required` response to request `id`.
pub fn input_required(id: &Value, tool_id: &str, reasons: &[String], request_state: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "resultType": "input_required",
            "inputRequests": {
                INPUT_KEY: {"method": "elicitation/create", "params": elicitation_params(tool_id, reasons)}
            },
            "requestState": request_state,
        }
    })
}

/// The user's answer to the confirmation form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    /// Declined, cancelled, or accepted with `confirm: false`.
    Decline,
}

/// Reads an `ElicitResult` (`{"action": "accept"|"decline"|"cancel", "content": {...}}`).
/// Accepting the form with `confirm` explicitly false counts as a decline.
pub fn answer_of(result: &Value) -> Option<Answer> {
    match result.get("action").and_then(Value::as_str)? {
        "accept" => {
            let confirm = result.get("content").and_then(|c| c.get("confirm"));
            if confirm.and_then(Value::as_bool) == Some(false) {
                Some(Answer::Decline)
            } else {
                Some(Answer::Accept)
            }
        }
        "decline" | "cancel" => Some(Answer::Decline),
        _ => None,
    }
}

/// The answer carried by a retry's `params.inputResponses`, if any.
pub fn retry_answer(params: &Value) -> Option<Answer> {
    params.get("inputResponses").and_then(|r| r.get(INPUT_KEY)).and_then(answer_of)
}

/// The tool result for a call the user declined: it did not run.
pub fn declined_result(id: &Value, tool_id: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "resultType": "complete",
            "content": [{"type": "text", "text": format!("The user declined the call to {tool_id}; it did not run.")}],
            "isError": true,
        }
    })
}

/// Removes the gateway's MRTR fields from a `tools/call` body before it goes upstream: its
/// own `requestState` and its answer in `inputResponses` (other answers, for the upstream
/// server's own input requests, stay).
pub fn strip_retry_fields(mut body: Value) -> Value {
    if let Some(p) = body.get_mut("params").and_then(Value::as_object_mut) {
        if p.get("requestState").and_then(Value::as_str).is_some_and(crate::mcp::request_state::is_ours) {
            p.remove("requestState");
        }
        if let Some(r) = p.get_mut("inputResponses").and_then(Value::as_object_mut) {
            r.remove(INPUT_KEY);
            if r.is_empty() {
                p.remove("inputResponses");
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_from_request_meta() {
        let params = json!({"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}
        }});
        assert_eq!(ClientProfile::from_request(None, &params), ClientProfile { modern: true, elicitation: true });
        let legacy = ClientProfile::from_request(Some("2025-11-25"), &json!({}));
        assert_eq!(legacy, ClientProfile::default());
        let no_elicit = ClientProfile::from_request(Some("2026-07-28"), &json!({}));
        assert_eq!(no_elicit, ClientProfile { modern: true, elicitation: false });
    }

    #[test]
    fn answers() {
        assert_eq!(answer_of(&json!({"action": "accept", "content": {"confirm": true}})), Some(Answer::Accept));
        assert_eq!(answer_of(&json!({"action": "accept"})), Some(Answer::Accept));
        assert_eq!(answer_of(&json!({"action": "accept", "content": {"confirm": false}})), Some(Answer::Decline));
        assert_eq!(answer_of(&json!({"action": "cancel"})), Some(Answer::Decline));
        assert_eq!(answer_of(&json!({"action": "maybe"})), None);
        let ours = format!("{}x", crate::mcp::request_state::PREFIX);
        let retry = json!({"inputResponses": {INPUT_KEY: {"action": "decline"}}, "requestState": ours});
        assert_eq!(retry_answer(&retry), Some(Answer::Decline));
        let stripped = strip_retry_fields(json!({"params": retry}));
        assert_eq!(stripped, json!({"params": {}}));
        // An upstream server's own MRTR fields pass through.
        let theirs =
            json!({"params": {"inputResponses": {"github_login": {"action": "accept"}}, "requestState": "up"}});
        assert_eq!(strip_retry_fields(theirs.clone()), theirs);
    }

    #[test]
    fn input_required_shape() {
        let v = input_required(&json!(3), "mcp:demo:rm", &["r".into()], "sealed");
        assert_eq!(v["result"]["resultType"], "input_required");
        assert_eq!(v["result"]["requestState"], "sealed");
        assert_eq!(v["result"]["inputRequests"][INPUT_KEY]["method"], "elicitation/create");
        assert_eq!(v["result"]["inputRequests"][INPUT_KEY]["params"]["mode"], "form");
    }
}
