//! Acceptance: request bodies up to the limit reach the upstream byte-identical (past
//! pingora's 64 KiB replay buffer), larger ones get 413; SSE responses stream unbuffered and
//! `tools/list` results are filtered inside SSE events split across chunks, and a `tools/list`
//! answer the gateway cannot check is replaced by a JSON-RPC error (fail closed).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;

fn gateway(upstream_port: u16, tag: &str) -> Gateway {
    Gateway::builder(tag)
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .config(&format!(
            "mcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{upstream_port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: [], read_secret: []}}\n"
        ))
        .start()
}

fn ok_response(s: &mut TcpStream) {
    let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
    let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
}

/// A tools/call body of exactly `size` bytes.
fn body_of_size(size: usize) -> Vec<u8> {
    let base = tools_call(1, "echo", json!({"text": ""})).to_string();
    let pad = size - base.len();
    tools_call(1, "echo", json!({"text": "x".repeat(pad)})).to_string().into_bytes()
}

#[test]
fn one_mebibyte_body_reaches_upstream_intact() {
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = received.clone();
    let port = fake_upstream(move |_head, body, s| {
        sink.lock().expect("lock").push(body);
        ok_response(s);
    });
    let gw = gateway(port, "body");
    let token = gw.mint("alice", "acme", "mcp-user");
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];

    for size in [200 * 1024, 1024 * 1024] {
        let body = body_of_size(size);
        assert_eq!(body.len(), size);
        let r = http("POST", &gw.url("/mcp/demo"), &headers, &body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let got = received.lock().expect("lock").pop().expect("upstream got the request");
        assert!(got == body, "upstream body differs ({} vs {} bytes)", got.len(), body.len());
    }

    let too_big = body_of_size(1024 * 1024 + 1);
    let r = http("POST", &gw.url("/mcp/demo"), &headers, &too_big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["data"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(received.lock().expect("lock").is_empty(), "an oversized body must not reach the upstream");
}

#[test]
fn first_sse_event_arrives_before_the_upstream_ends_the_stream() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let port = fake_upstream(move |_head, _body, s| {
        let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
        let ev1 = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n";
        let _ = write!(s, "{:X}\r\n{ev1}\r\n", ev1.len());
        let _ = s.flush();
        // Hold the stream open until the test has seen the first event through the gateway.
        let _ = release_rx.lock().expect("lock").recv_timeout(Duration::from_secs(30));
        let ev2 = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n\n";
        let _ = write!(s, "{:X}\r\n{ev2}\r\n0\r\n\r\n", ev2.len());
    });
    let gw = gateway(port, "sse");
    let token = gw.mint("alice", "acme", "mcp-user");

    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let body = tools_call(1, "echo", json!({"text": "hi"})).to_string();
    write!(
        s,
        "POST /mcp/demo HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut reader = BufReader::new(s);
    let mut seen = String::new();
    while !seen.contains("\"progress\":1}}\n\n") {
        let mut line = String::new();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) => panic!("first event must arrive while the upstream stream is still open ({e}); got: {seen:?}"),
        };
        assert!(n > 0, "stream ended before the first event: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("content-type: text/event-stream"));
    release_tx.send(()).expect("release upstream");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("rest of stream");
    assert!(rest.contains("\"result\""), "second event follows: {rest}");
}

#[test]
fn tools_list_filtered_inside_sse_split_across_chunks() {
    let port = fake_upstream(move |_head, _body, s| {
        let tools = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[
            {"name":"echo","inputSchema":{"type":"object"}},
            {"name":"read_secret","inputSchema":{"type":"object"}}
        ]}});
        let event = format!("event: message\ndata: {tools}\n\n");
        let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
        // Tiny chunks: the event is split mid-JSON many times.
        for piece in event.as_bytes().chunks(7) {
            let _ = write!(s, "{:X}\r\n", piece.len());
            let _ = s.write_all(piece);
            let _ = write!(s, "\r\n");
            let _ = s.flush();
        }
        let _ = write!(s, "0\r\n\r\n");
    });
    let gw = gateway(port, "ssefilter");
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    let tool_names = |token: &str| -> Vec<String> {
        let r = mcp_post(&gw.url("/mcp/demo"), Some(token), &list, &[]);
        assert_eq!(r.status, 200);
        assert!(r.header("content-length").is_none(), "rewritten bodies are chunked");
        let text = String::from_utf8(r.body).expect("utf8");
        let data: String = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
        let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {text}"));
        v["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(tool_names(&gw.mint("alice", "acme", "mcp-user")), ["echo"]);
    assert_eq!(tool_names(&gw.mint("root", "acme", "mcp-admin")), ["echo", "read_secret"]);
}

#[test]
fn tools_list_answers_that_cannot_be_checked_are_replaced_by_an_error() {
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = heads.clone();
    let port = fake_upstream(move |head, body, s| {
        seen.lock().expect("lock").push(head.to_ascii_lowercase());
        let id = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["id"].as_u64()).unwrap_or(0);
        let tools = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[{{"name":"echo"}},{{"name":"read_secret"}}]}}}}"#
        );
        let (ct, extra, body) = match id {
            1 => ("application/json", "content-encoding: gzip\r\n", tools),
            2 => ("text/plain", "", tools),
            3 => ("application/json", "", tools.trim_end_matches('}').to_string()),
            _ => ("text/event-stream", "", format!("event: message\ndata: {tools}")),
        };
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\n{extra}content-length: {}\r\n\r\n{body}", body.len());
        let _ = s.flush();
    });
    let gw = gateway(port, "failclosed");
    let token = gw.mint("alice", "acme", "mcp-user");
    for id in 1..=4u64 {
        let list = json!({"jsonrpc":"2.0","id":id,"method":"tools/list"});
        let r = mcp_post(&gw.url("/mcp/demo"), Some(&token), &list, &[("accept-encoding", "gzip, br")]);
        let text = String::from_utf8(r.body.clone()).expect("utf8");
        assert!(!text.contains("read_secret"), "case {id} leaked: {text}");
        assert!(r.header("content-encoding").is_none(), "case {id}");
        let json = match id {
            4 => text.strip_prefix("event: message\ndata: ").and_then(|t| t.strip_suffix("\n\n")).unwrap_or(&text),
            _ => &text,
        };
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("case {id}: {e}: {text}"));
        assert_eq!(v["id"], id, "{text}");
        assert_eq!(v["error"]["code"], -32603, "{text}");
        assert_eq!(v["error"]["data"]["code"], "PROVIDER_ERROR", "{text}");
        assert_eq!(v["error"]["data"]["corr_id"].as_str(), r.header("x-correlation-id"), "{text}");
        if id == 2 {
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
    }
    let heads = heads.lock().expect("lock");
    assert_eq!(heads.len(), 4);
    assert!(heads.iter().all(|h| !h.contains("accept-encoding")), "{heads:?}");
}
