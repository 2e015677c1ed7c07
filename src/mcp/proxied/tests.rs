//! The `/mcp/{server}` door without sockets: what it forwards, refuses and records.

use serde_json::{json, Value};

use crate::auth::Principal;
use crate::catalog::McpServer;
use crate::enforce::Outcome;
use crate::gateway::testing::{principal, records, test_gateway};
use crate::gateway::Gateway;
use crate::mcp::inbound::{self, Inbound, ReadResponse, Verdict};
use crate::policy::PolicySnapshot;

fn who(roles: &[&str]) -> Principal {
    principal("a", roles)
}

/// A request to `/mcp/demo` with no optional headers.
fn inbound<'a>(
    policy: &'a PolicySnapshot,
    server: &'a McpServer,
    p: &'a Principal,
    method: &'a str,
    body: &'a [u8],
    parsed: Option<&'a inbound::Parsed>,
) -> Inbound<'a> {
    Inbound {
        policy,
        server,
        principal: p,
        http_method: method,
        body,
        message: parsed,
        target_name: None,
        has_body: !body.is_empty(),
        mcp_method_header: None,
        mcp_name_header: None,
        session_id: None,
        action_token_header: None,
        protocol_version: None,
        path: "/mcp/demo",
        client_ip: "127.0.0.1",
        corr_id: "c",
        session_elicitation: false,
    }
}

/// Sends one request through the door; returns (status or 0 for a forward, outcome, read).
async fn send(
    gw: &Gateway,
    p: &Principal,
    method: &str,
    body: &[u8],
    session: Option<&str>,
) -> (u16, Outcome, Option<ReadResponse>) {
    let server = gw.catalog.server("demo").unwrap();
    let policy = gw.policy.snapshot();
    let parsed = (method == "POST").then(|| inbound::parse(body, None, None));
    let mut req = inbound(&policy, &server, p, method, body, parsed.as_ref());
    req.session_id = session;
    match gw.mcp_server_request(&req).await {
        Verdict::Answer(a) => (a.status, a.outcome, None),
        Verdict::Forward(f) => (0, f.admitted.outcome(), Some(f.read)),
        Verdict::Elicit(_) => (0, Outcome::Held, None),
        Verdict::Accepted(o) => (202, o, None),
    }
}

fn msg(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[tokio::test]
async fn every_message_kind_is_decided_and_only_admitted_ones_forward() {
    let gw = test_gateway("door-kinds", &[("FASTMCP__MCP__SERVERS__DEMO__TOOL_TAGS", "{echo: []}")]);
    let (admin, nobody) = (who(&["mcp-admin"]), who(&["nobody"]));
    let call = msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}}));
    let init = msg(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}));
    let list = msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    let note = msg(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let smuggled = msg(json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "echo"}}));
    let answer = msg(json!({"jsonrpc": "2.0", "id": "s1", "result": {}}));

    assert_eq!(send(&gw, &admin, "POST", &call, None).await, (0, Outcome::Allowed, Some(ReadResponse::Pass)));
    assert_eq!(send(&gw, &admin, "POST", &list, None).await, (0, Outcome::Allowed, Some(ReadResponse::ToolsList)));
    assert_eq!(send(&gw, &admin, "POST", &init, None).await.1, Outcome::Allowed);
    assert_eq!(send(&gw, &admin, "POST", &note, None).await.1, Outcome::Allowed);
    assert_eq!(send(&gw, &admin, "GET", b"", None).await.1, Outcome::Allowed);
    for body in [&call, &init, &list, &note] {
        assert_eq!(send(&gw, &nobody, "POST", body, None).await.1, Outcome::Denied, "no roles reach nothing");
    }
    assert_eq!(send(&gw, &nobody, "POST", &init, None).await.0, 403, "a whole server refused keeps its status");
    assert_eq!(send(&gw, &nobody, "POST", &call, None).await.0, 200, "one call refused: a JSON-RPC error");
    assert_eq!(send(&gw, &nobody, "GET", b"", None).await.0, 403);
    assert_eq!(send(&gw, &admin, "POST", &smuggled, None).await.0, 400, "a tools/call notification is never forwarded");
    assert_eq!(send(&gw, &admin, "POST", &answer, None).await.0, 400, "a response needs the caller's session");
    assert_eq!(send(&gw, &admin, "POST", &answer, Some("stolen")).await.0, 404, "someone else's session is not found");
    assert_eq!(send(&gw, &admin, "GET", &call, None).await.0, 400, "a GET with a body");
    assert_eq!(send(&gw, &admin, "DELETE", b"", None).await.0, 400, "DELETE needs a session");
    assert_eq!(send(&gw, &admin, "POST", b"[1]", None).await.0, 400);
    assert_eq!(send(&gw, &admin, "POST", b"", None).await.0, 400);

    gw.proxied.opened("demo", "mine", "acme\0a", false, chrono::Utc::now().timestamp()).await.unwrap();
    assert_eq!(send(&gw, &admin, "POST", &answer, Some("mine")).await.1, Outcome::Allowed, "own session");
    assert_eq!(send(&gw, &admin, "DELETE", b"", Some("mine")).await.1, Outcome::Allowed);

    let decisions = records(&gw).into_iter().filter(|r| r["phase"] == "decision").count();
    assert_eq!(decisions, 21, "one decision record per request");
}

#[tokio::test]
async fn denied_calls_use_no_quota() {
    let gw = test_gateway("door-quota", &[("RATE_BUCKET_BURST", "2"), ("RATE_LIMIT_DEFAULT_RPS", "0.001")]);
    let call =
        msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {"a": 1}}}));
    for _ in 0..5 {
        assert_eq!(send(&gw, &who(&["agent"]), "POST", &call, None).await.1, Outcome::Denied);
    }
    let admin = who(&["mcp-admin"]);
    // Unannotated tools are destructive: held, but still rate limited after policy.
    assert_eq!(send(&gw, &admin, "POST", &call, None).await.1, Outcome::Held);
    assert_eq!(send(&gw, &admin, "POST", &call, None).await.1, Outcome::Held);
    assert_eq!(send(&gw, &admin, "POST", &call, None).await.1, Outcome::RateLimited);
}

#[tokio::test]
async fn a_held_call_forwards_once_without_the_gateways_token() {
    let gw = test_gateway("door-hold", &[]);
    let admin = who(&["mcp-admin"]);
    let server = gw.catalog.server("demo").unwrap();
    let policy = gw.policy.snapshot();
    let body = |token: Option<&str>| {
        let mut v =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm", "arguments": {"a": 1}}});
        if let Some(t) = token {
            v["params"]["_meta"] = json!({"fastmcp/action_token": t});
        }
        msg(v)
    };
    let run = |b: Vec<u8>| {
        let parsed = inbound::parse(&b, None, None);
        let gw = &gw;
        let (server, policy, admin) = (&server, &policy, &admin);
        async move {
            let req = inbound(policy, server, admin, "POST", &b, Some(&parsed));
            match gw.mcp_server_request(&req).await {
                Verdict::Answer(a) => Err((a.status, a.body)),
                Verdict::Forward(f) => Ok(f.body),
                Verdict::Elicit(_) | Verdict::Accepted(_) => Err((0, Value::Null)),
            }
        }
    };
    let (_, held) = run(body(None)).await.unwrap_err();
    let token = held["error"]["data"]["action_token"].as_str().unwrap().to_string();
    let sent = run(body(Some(&token))).await.unwrap().unwrap();
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    assert!(sent["params"]["_meta"].get("fastmcp/action_token").is_none(), "the gateway's token is not forwarded");
    let (status, spent) = run(body(Some(&token))).await.unwrap_err();
    assert_eq!((status, &spent["error"]["data"]["code"]), (200, &json!("CONFLICT")), "single use, readable");
}

#[tokio::test]
async fn a_call_to_be_held_must_match_the_discovered_input_schema() {
    let gw = test_gateway("door-schema", &[]);
    let schema = json!({"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]});
    gw.fed.set_tools("demo", vec![json!({"name": "rm", "inputSchema": schema})]);
    let admin = who(&["mcp-admin"]);
    let call = |args: Value| {
        msg(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm", "arguments": args}}))
    };
    // Untrusted server: `rm` is destructive and would be held; with bad arguments it is refused.
    assert_eq!(send(&gw, &admin, "POST", &call(json!({"item": 5})), None).await, (200, Outcome::Invalid, None));
    assert_eq!(send(&gw, &admin, "POST", &call(json!({})), None).await.1, Outcome::Invalid);
    assert_eq!(gw.enforce.state.pending_holds().await.unwrap(), 0, "nothing held");
    assert_eq!(send(&gw, &admin, "POST", &call(json!({"item": "x"})), None).await.1, Outcome::Held);
    // A tool the gateway knows no schema for is held as before (the server judges its input).
    let other = msg(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "zap", "arguments": {"any": 1}}}),
    );
    assert_eq!(send(&gw, &admin, "POST", &other, None).await.1, Outcome::Held);
}

#[tokio::test]
async fn mcp_param_headers_are_checked_where_the_schema_is_known() {
    let gw =
        test_gateway("door-params", &[("FASTMCP__MCP__SERVERS__DEMO__TOOL_TAGS", "{query: [], odd: [], other: []}")]);
    let marked = json!({"type": "object", "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"}, "sql": {"type": "string"}}});
    let bad = json!({"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}});
    let tools = vec![json!({"name": "query", "inputSchema": marked}), json!({"name": "odd", "inputSchema": bad})];
    gw.fed.set_tools("demo", tools.clone());
    let admin = who(&["mcp-admin"]);
    let server = gw.catalog.server("demo").unwrap();
    let policy = gw.policy.snapshot();
    let send = |tool: &'static str, headers: &'static [(&'static str, &'static str)], version: &'static str| {
        let body = msg(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": {"region": "us-west1", "sql": "select 1"}}}));
        let (gw, admin, server, policy) = (&gw, &admin, &server, &policy);
        async move {
            let presented = crate::mcp::param_headers::presented(headers.iter().map(|(k, v)| (*k, v.as_bytes())));
            let parsed = inbound::parse(&body, None, None);
            let parsed = inbound::check_params(parsed, &presented, Some(version), |t| gw.fed.params("demo", t));
            let mut req = inbound(policy, server, admin, "POST", &body, Some(&parsed));
            req.protocol_version = Some(version);
            match gw.mcp_server_request(&req).await {
                Verdict::Answer(a) => (a.status, a.outcome, a.body["error"]["code"].as_i64()),
                Verdict::Forward(f) => (0, f.admitted.outcome(), None),
                _ => panic!("neither answered nor forwarded"),
            }
        }
    };
    const NEW: &str = "2026-07-28";
    const OLD: &str = "2025-11-25";
    assert_eq!(send("query", &[("Mcp-Param-Region", "us-west1")], NEW).await, (0, Outcome::Allowed, None));
    assert_eq!(send("query", &[("mcp-param-region", "eu-west1")], NEW).await, (400, Outcome::Invalid, Some(-32020)));
    assert_eq!(send("query", &[("mcp-param-region", "eu-west1")], OLD).await, (400, Outcome::Invalid, Some(-32020)));
    assert_eq!(send("query", &[], NEW).await, (400, Outcome::Invalid, Some(-32020)), "2026-07-28 must mirror it");
    assert_eq!(send("query", &[], OLD).await, (0, Outcome::Allowed, None), "older revisions do not know it");
    assert_eq!(send("odd", &[], NEW).await, (400, Outcome::Invalid, Some(-32602)), "an invalid tool is not offered");
    assert_eq!(send("other", &[("mcp-param-region", "x")], NEW).await.0, 0, "no schema known: not ours to judge");
    let invalid = records(&gw).into_iter().filter(|r| r["phase"] == "decision" && r["decision"]["result"] == "invalid");
    assert_eq!(invalid.count(), 4, "every refusal is recorded");
    // Lists: the invalid tool is dropped, the marked one is kept.
    let lister = gw.tool_lister(&policy, &admin, "c");
    let listed: Vec<bool> = tools.iter().map(|t| gw.tool_visible(&lister, &server, t)).collect();
    assert_eq!(listed, [true, false]);
}
