//! Acceptance (issue 12): MCP sessions on several instances sharing one Redis. A 2025-11-25
//! federated session opened on A continues on B (list, call, and a hold confirmed through an
//! elicitation whose answer is POSTed to A while B waits for it); a 2026-07-28 MRTR
//! `requestState` issued on A opens on B; with A killed (-9) under load, B keeps serving the
//! sessions A opened. The real Python SDK demo server counts what ran.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use serde_json::{json, Value};

fn gateways(tag: &str, redis: &RedisServer, demo: &DemoServer) -> Vec<Gateway> {
    let shared = temp_dir(&format!("{tag}-data"));
    (0..2)
        .map(|i| {
            Gateway::builder(&format!("{tag}-{i}"))
                .env("FASTMCP_DATA_DIR", &shared.display().to_string())
                .env("MCP_DEMO_URL", &demo.url())
                .env("MCP_DEMO_TRUSTED", "true")
                .env("RATE_LIMIT_DEFAULT_RPS", "1000")
                .env("RATE_BUCKET_BURST", "1000")
                .env("REDIS_URL", &redis.url())
                .start()
        })
        .collect()
}

fn post(gw: &Gateway, token: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("accept", "application/json, text/event-stream")];
    headers.extend_from_slice(extra);
    mcp_post(&gw.url("/mcp"), Some(token), body, &headers)
}

/// The JSON-RPC message answering request `id` in a JSON or SSE body.
fn answer(r: &Resp) -> Value {
    let text = String::from_utf8_lossy(&r.body).to_string();
    if r.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")) {
        return text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .rfind(|v| v.get("result").is_some() || v.get("error").is_some())
            .unwrap_or(Value::Null);
    }
    r.json()
}

fn initialize(gw: &Gateway, token: &str, elicitation: bool) -> String {
    let caps = if elicitation { json!({"elicitation": {}}) } else { json!({}) };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": caps, "clientInfo": {"name": "t", "version": "1"}}});
    let r = post(gw, token, &init, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").expect("session id").to_string()
}

/// Opens a streaming POST and returns the reader (the SSE response is read as it comes).
fn open_post(gw: &Gateway, token: &str, sid: &str, body: &Value) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let b = body.to_string();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n\
authorization: Bearer {token}\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{b}",
        gw.port,
        b.len()
    );
    s.write_all(head.as_bytes()).expect("send");
    BufReader::new(s)
}

/// Reads SSE `data:` messages until one satisfies `want` (bounded by the read timeout).
fn read_until(r: &mut BufReader<TcpStream>, want: impl Fn(&Value) -> bool) -> Value {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("the stream stays open");
        assert!(n > 0, "stream ended first: {seen}");
        seen.push_str(&line);
        if let Some(v) = line.strip_prefix("data:").and_then(|d| serde_json::from_str::<Value>(d.trim()).ok()) {
            if want(&v) {
                return v;
            }
        }
    }
}

fn session_continues_on_another_instance(a: &Gateway, b: &Gateway, demo: &DemoServer, token: &str) {
    let sid = initialize(a, token, true);
    let s = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(b, token, &note, &s).status, 202);
    let list = answer(&post(b, token, &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), &s));
    let names: Vec<&str> =
        list["result"]["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"demo__echo"), "{list}");
    let echo = answer(&post(b, token, &tools_call(3, "demo__echo", json!({"text": "on B"})), &s));
    assert_eq!(echo["result"]["content"][0]["text"], "on B", "{echo}");
    // Another principal cannot use the session on any instance.
    let mallory = a.mint("mallory", "acme", "mcp-admin");
    assert_eq!(post(b, &mallory, &tools_call(4, "demo__echo", json!({"text": "x"})), &s).status, 404);

    // Held on B, asked on B's stream, answered on A.
    let before = demo.calls("delete_item");
    let mut stream = open_post(b, token, &sid, &tools_call(5, "demo__delete_item", json!({"item": "cross"})));
    let question = read_until(&mut stream, |v| v["method"] == "elicitation/create");
    let accept =
        json!({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {"confirm": true}}});
    let delivered = post(a, token, &accept, &s);
    assert_eq!(delivered.status, 202, "{}", String::from_utf8_lossy(&delivered.body));
    let done = read_until(&mut stream, |v| v["id"] == 5);
    assert!(done["result"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("cross")), "{done}");
    assert_eq!(demo.calls("delete_item"), before + 1, "confirmed through the elicitation: ran once");
    // Ended on B: gone on A too.
    let end =
        http("DELETE", &b.url("/mcp"), &[("authorization", &format!("Bearer {token}")), ("mcp-session-id", &sid)], b"");
    assert_eq!(end.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while post(a, token, &tools_call(6, "demo__echo", json!({"text": "x"})), &s).status != 404 {
        assert!(Instant::now() < deadline, "the session ended on B still works on A");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mrtr_state_opens_on_another_instance(a: &Gateway, b: &Gateway, demo: &DemoServer, token: &str) {
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}});
    let mut call = tools_call(7, "demo__delete_item", json!({"item": "mrtr"}));
    call["params"]["_meta"] = meta;
    let modern = [("mcp-protocol-version", "2026-07-28")];
    let first = answer(&post(a, token, &call, &modern));
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"].as_str().expect("requestState").to_string();
    let before = demo.calls("delete_item");
    call["params"]["requestState"] = json!(state);
    call["params"]["inputResponses"] = json!({"fastmcp_confirm": {"action": "accept", "content": {"confirm": true}}});
    let retry = answer(&post(b, token, &call, &modern));
    assert!(retry["result"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("mrtr")), "{retry}");
    assert_eq!(demo.calls("delete_item"), before + 1);
    let again = answer(&post(a, token, &call, &modern));
    assert!(again.get("error").is_some(), "single use across instances: {again}");
    assert_eq!(demo.calls("delete_item"), before + 1);
}

/// A request to `port` that may find nobody listening (the instance was killed).
fn try_call(port: u16, token: &str, sid: &str, i: usize) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let b = tools_call(100 + i as u64, "demo__echo", json!({"text": format!("n{i}")})).to_string();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n\
authorization: Bearer {token}\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{b}",
        b.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text).ok()?;
    let line = text.lines().rev().find(|l| l.contains("\"jsonrpc\""))?;
    serde_json::from_str(line.strip_prefix("data:").unwrap_or(line).trim()).ok()
}

fn survivor_serves_the_dead_instances_sessions(a: &mut Gateway, b: &Gateway, token: &str) {
    let sessions: Vec<String> = (0..4).map(|_| initialize(a, token, false)).collect();
    let done = AtomicUsize::new(0);
    let after_kill = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    let (a_port, b_port) = (a.port, b.port);
    std::thread::scope(|s| {
        for sid in &sessions {
            let (done, after_kill, killed) = (&done, &after_kill, &killed);
            s.spawn(move || {
                for i in 0..30 {
                    let dead = killed.load(Ordering::SeqCst);
                    // A load balancer: alternate, and retry on the other instance when one is gone.
                    let first = if i % 2 == 0 { a_port } else { b_port };
                    let got = try_call(first, token, sid, i).or_else(|| try_call(b_port, token, sid, i));
                    let v = got.unwrap_or_else(|| panic!("call {i} on session {sid} got no answer"));
                    assert_eq!(v["result"]["content"][0]["text"], format!("n{i}"), "{v}");
                    done.fetch_add(1, Ordering::SeqCst);
                    if dead {
                        after_kill.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::SeqCst) < 30 {
            assert!(Instant::now() < deadline, "load did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = a.child.kill();
        let _ = a.child.wait();
        killed.store(true, Ordering::SeqCst);
    });
    let after = after_kill.load(Ordering::SeqCst);
    println!(
        "kill -9 of A under load: {} calls answered, {after} of them after the kill (all by B)",
        done.load(Ordering::SeqCst)
    );
    assert_eq!(done.load(Ordering::SeqCst), 120);
    assert!(after > 0, "B served A's sessions after the kill");
}

#[test]
fn sessions_opened_on_one_instance_continue_on_another() {
    let dir = temp_dir("sessions");
    let redis = RedisServer::start(&dir);
    let demo = DemoServer::start(&dir);
    let mut gws = gateways("sessions", &redis, &demo);
    for g in &gws {
        wait_discovered(g, &["demo"], Duration::from_secs(60));
    }
    let token = gws[0].mint("alice", "acme", "mcp-admin");
    session_continues_on_another_instance(&gws[0], &gws[1], &demo, &token);
    mrtr_state_opens_on_another_instance(&gws[0], &gws[1], &demo, &token);
    let (a, b) = gws.split_at_mut(1);
    survivor_serves_the_dead_instances_sessions(&mut a[0], &b[0], &token);
}
