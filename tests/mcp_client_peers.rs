//! Integration tests against real MCP peers: the Python SDK demo server (2026-07-28 and
//! 2025-11-25) and the Node server-everything (2025-11-25, HTTP and stdio).

mod peers;

use std::time::Duration;

use fastmcp::mcp::client::{ClientError, Era, McpClient, Transport};
use peers::*;
use serde_json::{json, Value};

fn http(url: String) -> Transport {
    Transport::Http { url, headers: vec![], timeout: Duration::from_secs(30) }
}

#[test]
fn demo_negotiates_stateless_era_and_calls_tools() {
    let peer = demo(&[]);
    let client = McpClient::connect(http(demo_url(peer.port))).unwrap();
    assert_eq!(client.era(), Era::Stateless20260728);
    assert_eq!(client.protocol_version(), "2026-07-28");
    assert_eq!(client.server_info().unwrap()["name"], "demo");
    assert!(client.capabilities().get("tools").is_some());
    let names = tool_names(&client.list_tools(&own()).unwrap());
    for t in ["echo", "add", "read_secret", "delete_item"] {
        assert!(names.contains(&t.to_string()), "{t} missing from {names:?}");
    }
    let resp = client
        .request(&own(), "tools/call", json!({"name": "echo", "arguments": {"text": "héllo"}}), &mut |_| {})
        .unwrap();
    assert_eq!(first_text(&resp), "héllo");
    let resp = client
        .request(&own(), "tools/call", json!({"name": "add", "arguments": {"a": 2, "b": 40}}), &mut |_| {})
        .unwrap();
    assert_eq!(resp["result"]["structuredContent"]["result"], 42);
    // An unknown method comes back as a JSON-RPC error response, not a transport error.
    let resp = client.request(&own(), "no/such/method", Value::Null, &mut |_| {}).unwrap();
    assert!(resp.get("error").is_some(), "{resp}");
    // No prompts registered → empty, not an error.
    assert!(client.list_resource_templates(&own()).unwrap().is_empty());
    client.close();
}

#[test]
fn demo_json_response_and_stateless_flags() {
    for flags in [&["--json-response"][..], &["--stateless"][..], &["--stateless", "--json-response"][..]] {
        let peer = demo(flags);
        let client = McpClient::connect(http(demo_url(peer.port))).unwrap();
        assert_eq!(client.era(), Era::Stateless20260728, "{flags:?}");
        let resp = client
            .request(&own(), "tools/call", json!({"name": "read_secret", "arguments": {"name": "x"}}), &mut |_| {})
            .unwrap();
        assert_eq!(first_text(&resp), "secret-x", "{flags:?}");
    }
}

#[test]
fn everything_negotiates_session_era_with_sse() {
    let peer = everything();
    let client = McpClient::connect(http(everything_url(peer.port))).unwrap();
    assert_eq!(client.era(), Era::Session20251125);
    assert_eq!(client.protocol_version(), "2025-11-25");
    assert!(client.session_id().is_some());
    assert_eq!(client.server_info().unwrap()["name"], "mcp-servers/everything");
    let names = tool_names(&client.list_tools(&own()).unwrap());
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    let resp = client
        .request(&own(), "tools/call", json!({"name": "echo", "arguments": {"message": "hi"}}), &mut |_| {})
        .unwrap();
    assert_eq!(first_text(&resp), "Echo: hi");
    assert!(!client.list_resources(&own()).unwrap().is_empty());
    assert!(!client.list_prompts(&own()).unwrap().is_empty());
    client.list_resource_templates(&own()).unwrap();
    client.close();
}

#[test]
fn everything_progress_notifications_reach_the_callback() {
    let peer = everything();
    let client = McpClient::connect(http(everything_url(peer.port))).unwrap();
    let mut notes = Vec::new();
    let params = json!({
        "name": "trigger-long-running-operation",
        "arguments": {"duration": 1, "steps": 3},
        "_meta": {"progressToken": "tok-1"}
    });
    let resp = client.request(&own(), "tools/call", params, &mut |n| notes.push(n.clone())).unwrap();
    assert!(resp.get("result").is_some(), "{resp}");
    let progress: Vec<_> = notes.iter().filter(|n| n["method"] == "notifications/progress").collect();
    assert_eq!(progress.len(), 3, "{notes:?}");
    assert!(progress.iter().all(|n| n["params"]["progressToken"] == "tok-1"));
}

#[test]
fn everything_session_expiry_reinitialises_once() {
    let peer = everything();
    let url = everything_url(peer.port);
    let client = McpClient::connect(http(url.clone())).unwrap();
    let old = client.session_id().unwrap();
    // End the session behind the client's back; its next request gets 404.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let status = agent.delete(&url).header("Mcp-Session-Id", &old).call().unwrap().status();
    assert!(status.is_success(), "{status}");
    let names = tool_names(&client.list_tools(&own()).unwrap());
    assert!(names.contains(&"echo".to_string()));
    assert_ne!(client.session_id().unwrap(), old);
}

#[test]
fn everything_stdio() {
    let client = McpClient::connect(Transport::Stdio {
        command: format!("node {EVERYTHING} stdio"),
        env: vec![],
        timeout: Duration::from_secs(30),
    })
    .unwrap();
    assert_eq!(client.era(), Era::Session20251125);
    let names = tool_names(&client.list_tools(&own()).unwrap());
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    let resp = client
        .request(&own(), "tools/call", json!({"name": "echo", "arguments": {"message": "yo"}}), &mut |_| {})
        .unwrap();
    assert_eq!(first_text(&resp), "Echo: yo");
    // Concurrent requests from several threads, each with its own progress stream.
    let client = std::sync::Arc::new(client);
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let c = client.clone();
            std::thread::spawn(move || {
                let mut notes = Vec::new();
                let params = json!({
                    "name": "trigger-long-running-operation",
                    "arguments": {"duration": 1, "steps": 2},
                    "_meta": {"progressToken": i}
                });
                let resp = c.request(&own(), "tools/call", params, &mut |n| notes.push(n.clone())).unwrap();
                assert!(resp.get("result").is_some(), "{resp}");
                let mine = notes.iter().filter(|n| n["params"]["progressToken"] == i).count();
                assert_eq!(mine, 2, "{notes:?}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    client.close();
    assert!(matches!(client.list_tools(&own()), Err(ClientError::Unreachable(_))));
}

#[test]
fn unreachable_and_bad_command_errors() {
    let port = free_port();
    let err = McpClient::connect(http(demo_url(port))).unwrap_err();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
    let err = McpClient::connect(Transport::stdio("/nonexistent/mcp-server")).unwrap_err();
    assert!(matches!(err, ClientError::Unreachable(_)), "{err:?}");
}

#[test]
fn credential_never_appears_in_errors() {
    // The demo server rejects a foreign Host with 421; the error must not echo our header.
    let peer = demo(&[]);
    let t = Transport::Http {
        url: format!("http://127.0.0.1:{}/nope", peer.port),
        headers: vec![("authorization".into(), "Bearer SUPERSECRET".into())],
        timeout: Duration::from_secs(10),
    };
    let err = McpClient::connect(t.clone()).unwrap_err();
    assert!(matches!(err, ClientError::Http { status: 404, .. }), "{err:?}");
    assert!(!err.to_string().contains("SUPERSECRET") && !format!("{err:?}").contains("SUPERSECRET"));
    assert!(!format!("{t:?}").contains("SUPERSECRET"));
}

#[test]
fn demo_in_pinned_session_era() {
    let peer = demo(&[]);
    let client = McpClient::connect_with_era(http(demo_url(peer.port)), Some(Era::Session20251125)).unwrap();
    assert_eq!(client.era(), Era::Session20251125);
    assert_eq!(client.protocol_version(), "2025-11-25");
    assert!(client.session_id().is_some());
    assert_eq!(client.server_info().unwrap()["name"], "demo");
    assert_eq!(tool_names(&client.list_tools(&own()).unwrap()).len(), 4);
    let resp =
        client.request(&own(), "tools/call", json!({"name": "echo", "arguments": {"text": "s"}}), &mut |_| {}).unwrap();
    assert_eq!(first_text(&resp), "s");
    // The Python SDK offers the GET listening stream in stateful mode.
    let outcome = client.listen(Duration::from_millis(500), &mut || false, &mut |_| {}).unwrap();
    assert_eq!(outcome, fastmcp::mcp::client::ListenOutcome::Ended);
    client.close();
}

#[test]
fn everything_listening_stream_delivers_server_notifications() {
    let peer = everything();
    let client = McpClient::connect(http(everything_url(peer.port))).unwrap();
    let resp = client
        .request(&own(), "tools/call", json!({"name": "toggle-simulated-logging", "arguments": {}}), &mut |_| {})
        .unwrap();
    assert!(resp.get("result").is_some(), "{resp}");
    // The server logs to the session every 5 s on the GET stream; stop at the first one.
    let got = std::cell::RefCell::new(Vec::new());
    let outcome = client
        .listen(Duration::from_secs(15), &mut || !got.borrow().is_empty(), &mut |n| got.borrow_mut().push(n.clone()))
        .unwrap();
    assert_eq!(outcome, fastmcp::mcp::client::ListenOutcome::Ended);
    let got = got.into_inner();
    assert_eq!(got.first().map(|n| n["method"].clone()), Some(json!("notifications/message")), "{got:?}");
}

/// The tests drive the client as the gateway's own traffic.
fn own() -> fastmcp::enforce::Proof {
    fastmcp::enforce::Proof::gateway_own("test")
}
