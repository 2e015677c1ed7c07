//! Acceptance (issue 9): approver mode holds on every door alike. A `financial` MCP tool held
//! on `/mcp/{server}`, on the federated `/mcp` (even for a client that declared elicitation:
//! it may not confirm its own financial call) and on the REST API cannot be confirmed by the
//! agent that asked; once an approver released it, the agent's confirmation runs it exactly
//! once (the real Python SDK demo server counts its calls).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The JSON-RPC message of a JSON or SSE answer.
fn message(r: &Resp) -> Value {
    let text = String::from_utf8_lossy(&r.body).to_string();
    if r.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")) {
        let mut data =
            text.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).filter(|d| d.contains("\"id\""));
        return data.next_back().map(|d| serde_json::from_str(d).expect("event JSON")).unwrap_or(Value::Null);
    }
    r.json()
}

fn approve(gw: &Gateway, hold_id: &str) {
    let r = gw.admin("POST", &format!("/admin/holds/{hold_id}/approve"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// A `tools/call` to an MCP door; `token` is the gateway's action token.
fn call(url: &str, agent: &str, name: &str, token: Option<&str>, session: Option<&str>) -> Value {
    let mut body = tools_call(7, name, json!({"item": "invoice-42"}));
    if let Some(t) = token {
        body["params"]["_meta"] = json!({"fastmcp/action_token": t});
    }
    let mut extra = vec![];
    if let Some(s) = session {
        extra.push(("mcp-session-id", s));
    }
    message(&mcp_post(url, Some(agent), &body, &extra))
}

/// Held with approval required: the hold id and action token.
fn held(v: &Value) -> (String, String) {
    assert_eq!(v["error"]["code"], -32010, "{v}");
    let data = &v["error"]["data"];
    assert_eq!(data["approval_required"], true, "{v}");
    (data["hold_id"].as_str().expect("hold id").into(), data["action_token"].as_str().expect("token").into())
}

#[test]
fn a_financial_call_needs_someone_else_on_every_door() {
    let dir = temp_dir("approver");
    let demo = DemoServer::start(&dir);
    let gw = Gateway::builder("approver")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_DEMO_URL", &demo.url())
        .env("MCP_DEMO_TRUSTED", "true")
        .env("FASTMCP__MCP__SERVERS__DEMO__TOOL_TAGS", "{delete_item: [financial]}")
        .env("FASTMCP__REST__APPROVER_ROLES", "[approver]")
        .env("FASTMCP__REST__APPROVAL_TAGS", "[financial]")
        .start();
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    let agent = gw.mint("alice", "acme", "mcp-user");
    let mut runs = 0;

    // Door 1: /mcp/demo, on a 2025-11-25 session opened through the gateway.
    let url = gw.url("/mcp/demo");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = mcp_post(&url, Some(&agent), &init, &[]);
    let up = r.header("mcp-session-id").expect("upstream session").to_string();
    let s = Some(up.as_str());
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(mcp_post(&url, Some(&agent), &note, &[("mcp-session-id", &up)]).status, 202);
    let (hold, token) = held(&call(&url, &agent, "delete_item", None, s));
    let own = call(&url, &agent, "delete_item", Some(&token), s);
    assert_eq!(own["error"]["data"]["code"], "FORBIDDEN", "the agent cannot confirm its own: {own}");
    assert!(own.to_string().contains("awaiting_approval"), "{own}");
    assert_eq!(demo.calls("delete_item"), runs);
    approve(&gw, &hold);
    let ran = call(&url, &agent, "delete_item", Some(&token), s);
    assert!(ran["result"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("invoice-42")), "{ran}");
    runs += 1;
    assert_eq!(demo.calls("delete_item"), runs);
    assert_eq!(call(&url, &agent, "delete_item", Some(&token), s)["error"]["data"]["code"], "CONFLICT");

    // Door 2: the federated /mcp, a session that declared elicitation (never asked: approver mode).
    let fed = gw.url("/mcp");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = mcp_post(&fed, Some(&agent), &init, &[]);
    let sid = r.header("mcp-session-id").expect("session").to_string();
    let (hold, token) = held(&call(&fed, &agent, "demo__delete_item", None, Some(&sid)));
    let own = call(&fed, &agent, "demo__delete_item", Some(&token), Some(&sid));
    assert!(own.to_string().contains("awaiting_approval"), "{own}");
    assert_eq!(demo.calls("delete_item"), runs);
    approve(&gw, &hold);
    let ran = call(&fed, &agent, "demo__delete_item", Some(&token), Some(&sid));
    assert!(ran["result"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("invoice-42")), "{ran}");
    runs += 1;
    assert_eq!(demo.calls("delete_item"), runs);

    // Door 3: the REST API.
    let auth = format!("Bearer {agent}");
    let invoke = gw.url("/tools/mcp:demo:delete_item/invoke");
    let r = http("POST", &invoke, &[("authorization", &auth)], br#"{"item":"invoice-42"}"#);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["approval_required"], true);
    let (hold, token) =
        (body["hold_id"].as_str().unwrap().to_string(), body["action_token"].as_str().unwrap().to_string());
    let confirm = gw.url("/tools/mcp:demo:delete_item/confirm");
    let payload = json!({"action_token": token}).to_string();
    let r = http("POST", &confirm, &[("authorization", &auth)], payload.as_bytes());
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(demo.calls("delete_item"), runs);
    approve(&gw, &hold);
    let r = http("POST", &confirm, &[("authorization", &auth)], payload.as_bytes());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    runs += 1;
    assert_eq!(demo.calls("delete_item"), runs, "each door ran the approved call exactly once");
}
