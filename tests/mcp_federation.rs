//! Acceptance: the federated `/mcp` endpoint with the official Python SDK client in both
//! protocol eras, in front of two real servers (the Python SDK demo server and the npm
//! server-everything): filtered union of tools, routed calls, denials, and MCP-native holds
//! (MRTR for 2026-07-28, elicitation on the SSE stream for 2025-11-25, the action-token error
//! for clients without elicitation) that run exactly once.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

struct Setup {
    demo: DemoServer,
    _everything: EverythingServer,
    gw: Gateway,
}

fn start(tag: &str) -> Setup {
    let dir = temp_dir(tag);
    let demo = DemoServer::start(&dir);
    let everything = EverythingServer::start(&dir);
    let gw = Gateway::builder(tag)
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_DEMO_URL", &demo.url())
        .env("MCP_DEMO_TRUSTED", "true")
        .env("MCP_EVERYTHING_URL", &everything.url())
        // server-everything annotates nothing, so its tools count as destructive; echo is not.
        .env("FASTMCP__MCP__SERVERS__EVERYTHING__TOOL_TAGS", "{echo: []}")
        .start();
    wait_discovered(&gw, &["demo", "everything"], Duration::from_secs(30));
    Setup { demo, _everything: everything, gw }
}

fn names(v: &Value) -> Vec<String> {
    v["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools in {v}"))
        .iter()
        .map(|t| t.as_str().unwrap_or("").into())
        .collect()
}

fn flow(mode: &str) {
    let Setup { demo, gw, _everything: _keep } = start(&format!("fed-{mode}"));
    let url = gw.url("/mcp");
    let user = gw.mint("alice", "acme", "mcp-user");
    let admin = gw.mint("root", "acme", "mcp-admin");

    // The union of allowed tools, renamed {server}__{tool}, in a stable order.
    let listed = sdk_client(&url, &user, mode, &["list"]);
    assert_eq!(listed["ok"], true, "{listed}");
    assert_eq!(names(&listed), ["demo__add", "demo__delete_item", "demo__echo"], "mcp-user: demo only, no secret");
    let listed = sdk_client(&url, &admin, mode, &["list"]);
    let all = names(&listed);
    assert!(all.contains(&"demo__read_secret".to_string()), "{all:?}");
    assert!(all.contains(&"everything__echo".to_string()), "{all:?}");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "deterministic order");

    // Allowed calls are routed to the owning server.
    let r = sdk_client(&url, &user, mode, &["call", "demo__echo", r#"{"text":"hi"}"#]);
    assert_eq!((r["ok"].clone(), r["text"].clone()), (json!(true), json!("hi")), "{r}");
    assert_eq!(demo.calls("echo"), 1);
    let r = sdk_client(&url, &admin, mode, &["call", "everything__echo", r#"{"message":"fed"}"#]);
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["text"].as_str().unwrap_or("").contains("fed"), "{r}");

    // Denied: by a deny rule, and for a server the caller has no scope for.
    let r = sdk_client(&url, &user, mode, &["call", "demo__read_secret", r#"{"name":"db"}"#]);
    assert_eq!((r["status"].clone(), r["data"]["code"].clone()), (json!(200), json!("FORBIDDEN")), "{r}");
    let r = sdk_client(&url, &user, mode, &["call", "everything__echo", r#"{"message":"x"}"#]);
    assert_eq!(r["data"]["code"], "FORBIDDEN", "{r}");
    assert_eq!(demo.calls("read_secret"), 0);

    // Held, confirmed natively (MRTR for 2026-07-28, SSE elicitation for 2025-11-25): once.
    let r = sdk_client(&url, &user, mode, &["--elicit", "accept", "call", "demo__delete_item", r#"{"item":"a"}"#]);
    assert_eq!((r["ok"].clone(), r["text"].clone()), (json!(true), json!("deleted a")), "{r}");
    assert_eq!(r["elicited"].as_array().map(Vec::len), Some(1), "asked exactly once: {r}");
    assert_eq!(demo.calls("delete_item"), 1);

    // Declined: the call does not run.
    let r = sdk_client(&url, &user, mode, &["--elicit", "decline", "call", "demo__delete_item", r#"{"item":"b"}"#]);
    assert_eq!((r["ok"].clone(), r["is_error"].clone()), (json!(true), json!(true)), "{r}");
    assert_eq!(demo.calls("delete_item"), 1);

    // No elicitation declared: the action-token error, then the confirmed call runs once.
    let r = sdk_client(&url, &user, mode, &["call", "demo__delete_item", r#"{"item":"c"}"#]);
    assert_eq!(r["code"], -32010, "{r}");
    let token = r["data"]["action_token"].as_str().expect("action token").to_string();
    // `=` form: a URL-safe token may start with `-`, which argparse would take for an option.
    let token_arg = format!("--action-token={token}");
    let args = ["call", "demo__delete_item", r#"{"item":"c"}"#, token_arg.as_str()];
    let r = sdk_client(&url, &user, mode, &args);
    assert_eq!(r["text"], "deleted c", "{r}");
    let r = sdk_client(&url, &user, mode, &args);
    assert_eq!(r["data"]["code"], "CONFLICT", "{r}");
    assert_eq!(demo.calls("delete_item"), 2);

    // The hold's confirm_url is the REST confirm: it runs the held MCP call once.
    let r = sdk_client(&url, &user, mode, &["call", "demo__delete_item", r#"{"item":"d"}"#]);
    let (token, confirm_url) = (r["data"]["action_token"].clone(), r["data"]["confirm_url"].clone());
    assert_eq!(confirm_url, "/tools/mcp:demo:delete_item/confirm", "{r}");
    let auth = format!("Bearer {user}");
    let body = json!({"action_token": token}).to_string();
    let c = http("POST", &gw.url(confirm_url.as_str().unwrap()), &[("authorization", &auth)], body.as_bytes());
    assert_eq!(c.status, 200, "{}", String::from_utf8_lossy(&c.body));
    assert_eq!(c.json()["result"]["content"][0]["text"], "deleted d");
    assert_eq!(demo.calls("delete_item"), 3);

    let out = gw.cli(&["audit", "verify", &gw.audit_dir().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let audit = audit_text(&gw.audit_dir());
    assert!(audit.contains(r#""decision":{"allow":true,"policy_revision""#) || audit.contains("\"confirmed\""));
    assert!(audit.contains("\"server\":\"demo\""), "records name the server");
    assert!(audit.contains("\"declined\""), "the declined call is recorded");
}

#[test]
fn federated_sdk_client_modern_era() {
    flow("auto");
}

#[test]
fn federated_sdk_client_legacy_era() {
    flow("legacy");
}

#[test]
fn federated_endpoint_refuses_smuggling_mismatch_and_foreign_origins() {
    let Setup { demo, gw, _everything: _keep } = start("fed-refusals");
    let url = gw.url("/mcp");
    let user = gw.mint("alice", "acme", "mcp-user");
    let auth = format!("Bearer {user}");

    // A batch cannot smuggle a denied call next to an allowed one.
    let batch =
        json!([tools_call(1, "demo__echo", json!({"text": "a"})), tools_call(2, "demo__read_secret", json!({}))]);
    let r = mcp_post(&url, Some(&user), &batch, &[]);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], -32600);

    // Header/body mismatch.
    let call = tools_call(3, "demo__echo", json!({"text": "a"}));
    let r = mcp_post(&url, Some(&user), &call, &[("mcp-name", "demo__read_secret")]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32020);
    let r = mcp_post(&url, Some(&user), &call, &[("mcp-method", "tools/list")]);
    assert_eq!(r.json()["error"]["code"], -32020);

    // A foreign Origin, or a foreign Host (DNS rebinding), is refused before anything else.
    let r = mcp_post(&url, Some(&user), &call, &[("origin", "http://evil.example")]);
    assert_eq!(r.status, 403);
    let rebound = [("host", "evil.example.com"), ("origin", "http://evil.example.com")];
    let r = mcp_post(&url, Some(&user), &call, &rebound);
    assert_eq!(r.status, 403, "a rebinding page sends matching Host and Origin");
    let r = mcp_post(&gw.url("/mcp/demo"), Some(&user), &tools_call(9, "echo", json!({"text": "a"})), &rebound);
    assert_eq!(r.status, 403);
    assert_eq!(demo.calls("echo"), 0, "nothing reached the server");

    // Notifications are accepted with 202 and no body.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = http(
        "POST",
        &url,
        &[("authorization", &auth), ("content-type", "application/json")],
        note.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202);

    // A session belongs to its creator.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = mcp_post(&url, Some(&user), &init, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sid = r.header("mcp-session-id").expect("session id").to_string();
    let mallory = gw.mint("mallory", "acme", "mcp-user");
    let r = mcp_post(
        &url,
        Some(&mallory),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        &[("mcp-session-id", &sid)],
    );
    assert_eq!(r.status, 404, "another principal cannot use the session");

    // A call to a server the caller has no scope for is one refused call (HTTP 200, the
    // missing scope named); a whole server refused at the handshake keeps its 403.
    let r = mcp_post(&url, Some(&user), &tools_call(4, "everything__echo", json!({"message": "x"})), &[]);
    assert_eq!(r.status, 200);
    let reasons = r.json()["error"]["data"]["details"]["reasons"].to_string();
    assert!(reasons.contains("missing_scope:mcp.everything"), "{reasons}");

    // Protected resource metadata for the federated endpoint.
    let meta = http("GET", &gw.url("/.well-known/oauth-protected-resource/mcp"), &[], b"").json();
    assert!(meta["resource"].as_str().unwrap_or("").ends_with("/mcp"), "{meta}");
}

#[test]
fn discovery_copes_with_a_server_that_starts_late() {
    let dir = temp_dir("fed-late");
    let port = free_port();
    let gw = Gateway::builder("fed-late")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_LATE_URL", &format!("http://127.0.0.1:{port}/mcp"))
        .env("MCP_DISCOVERY_RETRIES", "3")
        .env("MCP_DISCOVERY_BACKOFF_MS", "200")
        .start();
    let status = gw.admin("GET", "/admin/mcp/servers").json();
    assert_eq!(status["servers"]["late"]["tools"], 0, "{status}");
    // A 2025-11-25 session listens on its GET stream for tools/list_changed.
    let admin = gw.mint("root", "acme", "mcp-admin");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = mcp_post(&gw.url("/mcp"), Some(&admin), &init, &[]);
    assert_eq!(r.json()["result"]["capabilities"]["tools"]["listChanged"], true);
    let sid = r.header("mcp-session-id").expect("session").to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(90))).expect("timeout");
    let get = format!(
        "GET /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\naccept: text/event-stream\r\nauthorization: Bearer {admin}\r\nmcp-session-id: {sid}\r\n\r\n",
        gw.port
    );
    std::io::Write::write_all(&mut stream, get.as_bytes()).expect("send");
    // The scenario: the server comes up 5 s after the gateway.
    std::thread::sleep(Duration::from_secs(5));
    let _late = DemoServer::start_on(&dir, port);
    wait_discovered(&gw, &["late"], Duration::from_secs(60));
    let mut seen = String::new();
    let mut reader = std::io::BufReader::new(stream);
    while !seen.contains("notifications/tools/list_changed") {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut reader, &mut line).expect("the stream stays open");
        assert!(n > 0, "stream ended before tools/list_changed: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    let listed = sdk_client(&gw.url("/mcp"), &admin, "auto", &["list"]);
    assert!(names(&listed).contains(&"late__echo".to_string()), "{listed}");
}

#[test]
fn rest_invoke_of_an_mcp_tool_runs_it_as_a_client_in_its_era() {
    let Setup { demo, gw, _everything: _keep } = start("fed-rest");
    let admin = gw.mint("root", "acme", "mcp-admin");
    let auth = format!("Bearer {admin}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    // The demo server speaks 2026-07-28, server-everything 2025-11-25 (a session).
    let r = http("POST", &gw.url("/tools/mcp:demo:echo/invoke"), &headers, br#"{"text":"via rest"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["toolId"], "mcp:demo:echo");
    assert_eq!(v["result"]["content"][0]["text"], "via rest");
    assert_eq!(demo.calls("echo"), 1);
    let r = http("POST", &gw.url("/tools/mcp:everything:echo/invoke"), &headers, br#"{"message":"legacy"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["result"]["content"][0]["text"].as_str().unwrap_or("").contains("legacy"));
    // The catalog lists discovered MCP tools the caller may call.
    let cat = http("GET", &gw.url("/tool-catalog"), &[("authorization", &auth)], b"").json();
    assert!(cat.to_string().contains("mcp:demo:echo"), "{cat}");
    // Held MCP tools are held on REST too.
    let r = http("POST", &gw.url("/tools/mcp:demo:delete_item/invoke"), &headers, br#"{"item":"r"}"#);
    assert_eq!(r.status, 202);
    assert_eq!(demo.calls("delete_item"), 0);
}

#[test]
fn a_stdio_server_is_federated_too() {
    let entry = repo().join("tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let gw = Gateway::builder("fed-stdio")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_LOCAL_TRANSPORT", "stdio")
        .env("MCP_LOCAL_COMMAND", &format!("node {} stdio", entry.display()))
        .env("FASTMCP__MCP__SERVERS__LOCAL__TOOL_TAGS", "{echo: []}")
        .start();
    wait_discovered(&gw, &["local"], Duration::from_secs(30));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let url = gw.url("/mcp");
    for mode in ["auto", "legacy"] {
        let listed = sdk_client(&url, &admin, mode, &["list"]);
        assert!(names(&listed).contains(&"local__echo".to_string()), "{listed}");
        let r = sdk_client(&url, &admin, mode, &["call", "local__echo", r#"{"message":"over stdio"}"#]);
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["text"].as_str().unwrap_or("").contains("over stdio"), "{r}");
    }
    // Denied like any other server: no scope for mcp.local.
    let user = gw.mint("alice", "acme", "mcp-user");
    let r = sdk_client(&url, &user, "auto", &["call", "local__echo", r#"{"message":"x"}"#]);
    assert_eq!(r["data"]["code"], "FORBIDDEN", "{r}");
}

#[test]
fn upstream_progress_notifications_stream_through_the_federated_endpoint() {
    let dir = temp_dir("fed-progress");
    let everything = EverythingServer::start(&dir);
    let gw = Gateway::builder("fed-progress")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_EVERYTHING_URL", &everything.url())
        .env("MCP_EVERYTHING_TRUSTED", "true")
        .start();
    wait_discovered(&gw, &["everything"], Duration::from_secs(30));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let url = gw.url("/mcp");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let sid = mcp_post(&url, Some(&admin), &init, &[]).header("mcp-session-id").expect("session").to_string();
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "everything__trigger-long-running-operation",
        "arguments": {"duration": 1, "steps": 3},
        "_meta": {"progressToken": "p-1"}}});
    let r = mcp_post(&url, Some(&admin), &call, &[("mcp-session-id", &sid), ("mcp-protocol-version", "2025-11-25")]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("content-type").unwrap_or("").starts_with("text/event-stream"));
    assert!(r.header("mcp-session-id").is_none(), "the upstream's session id is not the client's");
    let messages: Vec<Value> = String::from_utf8_lossy(&r.body)
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let progress: Vec<&Value> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3, "{messages:?}");
    assert!(progress.iter().all(|p| p["params"]["progressToken"] == "p-1"));
    let last = messages.last().expect("a response");
    assert_eq!(last["id"], 7, "the result comes last, under the client's id: {last}");
    assert!(last["result"]["content"][0]["text"].as_str().unwrap_or("").contains("completed"), "{last}");
}
