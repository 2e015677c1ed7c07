//! A tiny scripted HTTP MCP server for what the real peers do not exercise: cursor paging
//! over the wire, server-to-client requests on an SSE response, and the 2026 routing
//! headers / brokered credential on every request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use fastmcp::mcp::client::{Era, McpClient, Transport};
use fastmcp::mcp::param_headers::Registry;
use parking_lot::Mutex;
use serde_json::{json, Value};

type Log = Arc<Mutex<Vec<(HashMap<String, String>, Value)>>>;

fn start_fake() -> (u16, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let l = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let l = l.clone();
            std::thread::spawn(move || serve(stream, &l));
        }
    });
    (port, log)
}

fn serve(mut stream: TcpStream, log: &Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if line.contains("/reflect") {
        // A careless server that reflects request headers into its error page.
        let body = format!("bad token: {}", headers.get("authorization").cloned().unwrap_or_default());
        let r =
            format!("HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        stream.write_all(r.as_bytes()).unwrap();
        return;
    }
    log.lock().push((headers, msg.clone()));
    let id = msg["id"].clone();
    let json_reply = |result: Value| {
        let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match msg["method"].as_str() {
        Some("server/discover") => {
            let r = json_reply(json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}));
            stream.write_all(r.as_bytes()).unwrap();
        }
        Some("tools/list") => {
            let (tool, next) = match msg["params"]["cursor"].as_str() {
                None => ("a", json!("p2")),
                Some("p2") => ("b", json!("p3")),
                _ => ("c", Value::Null),
            };
            let r = json_reply(json!({"tools": [{"name": tool}], "nextCursor": next}));
            stream.write_all(r.as_bytes()).unwrap();
        }
        Some("tools/call") => {
            // SSE answer, written in awkward pieces: priming event, a server request, a
            // notification, then the response.
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                .unwrap();
            let events = format!(
                ": hi\n\nid: 0\ndata:\n\n\
                 data: {}\n\n\
                 event: message\r\ndata: {}\r\n\r\n\
                 data: {}\n\n",
                json!({"jsonrpc": "2.0", "id": "s1", "method": "roots/list"}),
                json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}),
                json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}}),
            );
            for piece in events.as_bytes().chunks(7) {
                stream.write_all(piece).unwrap();
                stream.flush().unwrap();
            }
        }
        _ => {
            stream.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
        }
    }
}

#[test]
fn paging_server_requests_and_headers_over_http() {
    let (port, log) = start_fake();
    let client = McpClient::connect(Transport::Http {
        url: format!("http://127.0.0.1:{port}/mcp"),
        headers: vec![("authorization".into(), "Bearer brokered".into())],
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    assert_eq!(client.era(), Era::Stateless20260728);

    let tools = client.list_tools(&own()).unwrap();
    let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    // No prompts capability → empty without asking.
    assert!(client.list_prompts(&own()).unwrap().is_empty());

    let mut notes = Vec::new();
    let resp = client
        .request(&own(), "tools/call", json!({"name": "wéird", "arguments": {}}), &mut |n| notes.push(n.clone()))
        .unwrap();
    assert_eq!(resp["result"]["content"][0]["text"], "done");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["method"], "notifications/message");

    let log = log.lock();
    // Every request carried the credential and the 2026 stamping.
    for (headers, msg) in log.iter() {
        assert_eq!(headers["authorization"], "Bearer brokered");
        assert_eq!(headers["accept"], "application/json, text/event-stream");
        assert_eq!(headers["mcp-protocol-version"], "2026-07-28");
        if let Some(method) = msg["method"].as_str() {
            assert_eq!(headers["mcp-method"], method);
            assert_eq!(msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
            assert_eq!(msg["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"], "fastmcp-gateway");
        }
    }
    let call = log.iter().find(|(_, m)| m["method"] == "tools/call").unwrap();
    assert_eq!(call.0["mcp-name"], "=?base64?d8OpaXJk?=");
    // The server's roots/list request was answered with "method not found".
    let reply = log.iter().find(|(_, m)| m["id"] == "s1").map(|(_, m)| m.clone()).unwrap();
    assert_eq!(reply["error"]["code"], -32601);
    assert_eq!(log.iter().filter(|(_, m)| m["method"] == "tools/list").count(), 3);
}

#[test]
fn tools_calls_mirror_x_mcp_header_arguments() {
    let (port, log) = start_fake();
    let client = McpClient::connect(Transport::http(format!("http://127.0.0.1:{port}/mcp"))).unwrap();
    let registry = Arc::new(Registry::default());
    let schema = json!({"type": "object", "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "n": {"type": "integer", "x-mcp-header": "N"}}});
    registry.set("up", &[json!({"name": "query", "inputSchema": schema})]);
    client.mirror_params(registry.clone(), "up");
    let args = json!({"region": "Zürich", "n": 3});
    let call = json!({"name": "query", "arguments": args});
    assert_eq!(
        client.param_headers("tools/call", &call),
        [("Mcp-Param-Region".to_string(), "=?base64?WsO8cmljaA==?=".to_string()), ("Mcp-Param-N".into(), "3".into())]
    );
    assert!(client.param_headers("prompts/get", &call).is_empty(), "only tools/call mirrors arguments");
    client.request(&own(), "tools/call", call, &mut |_| {}).unwrap();
    client.request(&own(), "tools/call", json!({"name": "other", "arguments": args}), &mut |_| {}).unwrap();
    let log = log.lock();
    let calls: Vec<&HashMap<String, String>> =
        log.iter().filter(|(_, m)| m["method"] == "tools/call").map(|(h, _)| h).collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].get("mcp-param-region").map(String::as_str), Some("=?base64?WsO8cmljaA==?="));
    assert_eq!(calls[0].get("mcp-param-n").map(String::as_str), Some("3"));
    assert!(!calls[1].keys().any(|k| k.starts_with("mcp-param-")), "a tool without marks: {:?}", calls[1]);
    // The reply to the server's own request on that stream is not a tools/call: no Mcp-Param.
    let replies: Vec<&HashMap<String, String>> = log.iter().filter(|(_, m)| m["id"] == "s1").map(|(h, _)| h).collect();
    assert!(!replies.is_empty() && replies.iter().all(|h| !h.keys().any(|k| k.starts_with("mcp-param-"))));
}

#[test]
fn reflected_credentials_are_redacted_from_errors() {
    let (port, _log) = start_fake();
    let err = McpClient::connect(Transport::Http {
        url: format!("http://127.0.0.1:{port}/reflect"),
        headers: vec![("authorization".into(), "Bearer s3cr3t-token".into())],
        timeout: Duration::from_secs(10),
    })
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("401") && text.contains("[redacted]"), "{text}");
    assert!(!text.contains("s3cr3t-token"), "{text}");
}

/// The tests drive the client as the gateway's own traffic.
fn own() -> fastmcp::enforce::Proof {
    fastmcp::enforce::Proof::gateway_own("test")
}
