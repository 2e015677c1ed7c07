//! A LENIENT upstream MCP server for the complete-mediation tests: raw HTTP/1.1 on std threads
//! (keep-alive, `Content-Length` and chunked request bodies) that records every request it
//! receives and executes everything, as a careless real server would. Whatever the gateway
//! lets through shows up in [`Lenient::log`] and has an effect; the tests then compare that
//! log with what the policy allowed.
//!
//! - POST `tools/call` → a result naming the tool that ran; `tools/list` → `echo`,
//!   `read_secret`, `delete_item` (annotated); `initialize` → a result and
//!   `Mcp-Session-Id: lenient-N`; `server/discover` → a 2026-07-28 answer (so the gateway's
//!   own client is stateless and opens no GET listening stream of its own); any other request
//!   → an empty result; a batch → every item executed.
//! - A notification or a client response → 202.
//! - GET → an SSE stream with one event, then the end; a GET whose body is a JSON-RPC call
//!   executes that call instead.
//! - DELETE → 200.
//! - Any request with `Upgrade:` → `101 Switching Protocols`, then the connection echoes raw
//!   bytes (a tunnel).
//!
//! [`ListMode`] changes how `tools/list` is answered, for the fail-closed filtering tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// How `tools/list` is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListMode {
    /// `application/json`, uncompressed.
    Plain,
    /// gzip (`Content-Encoding: gzip`) when the request's `Accept-Encoding` mentions gzip.
    GzipWhenAsked,
    /// gzip whatever the request asked for.
    GzipAlways,
    /// `text/event-stream` whose only (final) event is unterminated: no blank line before
    /// the body ends and the connection closes.
    SseUnterminated,
    /// The unfiltered JSON list labelled `text/plain`.
    TextPlain,
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names lowercased, in arrival order (repeated headers stay repeated).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lowercase).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The JSON-RPC `method` of a single-message body.
    pub fn rpc_method(&self) -> Option<String> {
        self.json()?.get("method")?.as_str().map(String::from)
    }

    /// One line for failure messages: HTTP method, JSON-RPC method or body excerpt, and the
    /// headers that tell who sent it.
    pub fn summary(&self) -> String {
        let what = match self.json() {
            Some(v) if v.get("method").is_some() => format!(
                "{}{}",
                v["method"].as_str().unwrap_or("?"),
                if v.get("id").is_some() { "" } else { " (notification)" }
            ),
            Some(v) if v.is_array() => format!("batch of {}", v.as_array().map(Vec::len).unwrap_or(0)),
            Some(v) if v.get("result").is_some() || v.get("error").is_some() => "client response".into(),
            _ if self.body.is_empty() => "no body".into(),
            _ => format!("{:?}", String::from_utf8_lossy(&self.body[..self.body.len().min(40)])),
        };
        format!(
            "{} {} [{what}] ua={:?} corr={:?}",
            self.method,
            self.path,
            self.header("user-agent").unwrap_or(""),
            self.header("x-correlation-id").unwrap_or("")
        )
    }
}

/// A running lenient upstream. Threads live until the test process ends.
pub struct Lenient {
    pub port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<ListMode>>,
}

impl Lenient {
    pub fn start() -> Lenient {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind lenient upstream");
        let port = listener.local_addr().expect("addr").port();
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let mode = Arc::new(Mutex::new(ListMode::Plain));
        let sessions = Arc::new(AtomicU64::new(0));
        let (l, m) = (log.clone(), mode.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (l, m, s) = (l.clone(), m.clone(), sessions.clone());
                std::thread::spawn(move || serve(stream, &l, &m, &s));
            }
        });
        Lenient { port, log, mode }
    }

    /// The MCP endpoint URL to configure the gateway with.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn set_list_mode(&self, mode: ListMode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Everything received so far.
    pub fn log(&self) -> Vec<Received> {
        self.log.lock().expect("log").clone()
    }

    pub fn log_len(&self) -> usize {
        self.log.lock().expect("log").len()
    }

    /// Requests received after the first `from` (a mark taken with [`Lenient::log_len`]).
    pub fn log_since(&self, from: usize) -> Vec<Received> {
        self.log.lock().expect("log").iter().skip(from).cloned().collect()
    }

    /// Forgets everything received (marks taken before are then meaningless).
    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }
}

/// One connection: requests until EOF, `Connection: close`, or an upgrade.
fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>, mode: &Mutex<ListMode>, sessions: &AtomicU64) {
    let mut out = match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        log.lock().expect("log").push(req.clone());
        if let Some(proto) = req.header("upgrade") {
            // A careless server takes the upgrade and tunnels whatever comes next.
            let _ = write!(out, "HTTP/1.1 101 Switching Protocols\r\nupgrade: {proto}\r\nconnection: Upgrade\r\n\r\n");
            let _ = out.flush();
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let list_mode = *mode.lock().expect("mode");
        let resp = answer(&req, list_mode, sessions);
        let close = resp.close || req.header("connection").is_some_and(|c| c.to_ascii_lowercase().contains("close"));
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n", resp.body.len()));
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(&resp.body)).and_then(|_| out.flush()).is_err() {
            return;
        }
        if close {
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Reads one request (head and body, `Content-Length` or chunked). `None` at EOF or on
/// garbage.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Received> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if r.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let n = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
            if n == 0 {
                // Trailers until the blank line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Received { method, path, headers, body })
}

struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Close the connection after the body.
    close: bool,
}

impl Resp {
    fn json(status: u16, v: &Value) -> Resp {
        Resp {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: v.to_string().into_bytes(),
            close: false,
        }
    }

    fn empty(status: u16) -> Resp {
        Resp { status, headers: vec![], body: vec![], close: false }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        _ => "Whatever",
    }
}

/// The tools the lenient server offers.
pub fn tools() -> Value {
    json!([
        {"name": "echo", "description": "Echoes text",
         "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                         "required": ["text"], "additionalProperties": false},
         "annotations": {"readOnlyHint": true, "destructiveHint": false}},
        {"name": "read_secret", "description": "Reads a secret",
         "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
         "annotations": {"readOnlyHint": true, "destructiveHint": false}},
        {"name": "delete_item", "description": "Deletes an item",
         "inputSchema": {"type": "object", "properties": {"item": {}}},
         "annotations": {"readOnlyHint": false, "destructiveHint": true}},
    ])
}

fn answer(req: &Received, mode: ListMode, sessions: &AtomicU64) -> Resp {
    match req.method.as_str() {
        "DELETE" => return Resp::empty(200),
        "GET" if req.body.is_empty() => {
            let event = json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "hello from the lenient stream"}});
            return Resp {
                status: 200,
                headers: vec![("content-type", "text/event-stream".into()), ("cache-control", "no-cache".into())],
                body: format!("event: message\ndata: {event}\n\n").into_bytes(),
                close: false,
            };
        }
        _ => {}
    }
    // Every other request (a GET with a body included) is executed as JSON-RPC.
    let parse_error =
        |msg: &str| Resp::json(400, &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": msg}}));
    if req.body.is_empty() {
        return parse_error("empty body");
    }
    let Some(v) = req.json() else {
        return parse_error("not JSON");
    };
    match v {
        Value::Array(items) => {
            let answers: Vec<Value> = items.iter().filter_map(|m| execute(m, sessions).map(|(a, _)| a)).collect();
            if answers.is_empty() {
                Resp::empty(202)
            } else {
                Resp::json(200, &Value::Array(answers))
            }
        }
        msg => {
            let is_list = msg.get("method").and_then(Value::as_str) == Some("tools/list") && msg.get("id").is_some();
            match execute(&msg, sessions) {
                None => Resp::empty(202),
                Some((a, _)) if is_list => list_answer(&a, req, mode),
                Some((a, session)) => {
                    let mut r = Resp::json(200, &a);
                    if let Some(s) = session {
                        r.headers.push(("mcp-session-id", s));
                    }
                    r
                }
            }
        }
    }
}

/// Runs one message: `None` for notifications and client responses (202), else the answer
/// and, for `initialize`, a new session id.
fn execute(msg: &Value, sessions: &AtomicU64) -> Option<(Value, Option<String>)> {
    let id = msg.get("id")?.clone();
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        return None; // a client response: accepted
    };
    let params = msg.get("params").cloned().unwrap_or(json!({}));
    let mut session = None;
    let result = match method {
        "initialize" => {
            session = Some(format!("lenient-{}", sessions.fetch_add(1, Ordering::Relaxed) + 1));
            json!({
                "protocolVersion": params.get("protocolVersion").and_then(Value::as_str).unwrap_or("2025-11-25"),
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "lenient", "version": "1.0"},
            })
        }
        "server/discover" => json!({
            "supportedVersions": ["2026-07-28", "2025-11-25"],
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "lenient", "version": "1.0"},
        }),
        "tools/list" => json!({"tools": tools()}),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("?");
            json!({"content": [{"type": "text", "text": format!("ran {name}")}], "isError": false})
        }
        _ => json!({}),
    };
    Some((json!({"jsonrpc": "2.0", "id": id, "result": result}), session))
}

/// The `tools/list` answer in the configured [`ListMode`].
fn list_answer(answer: &Value, req: &Received, mode: ListMode) -> Resp {
    let text = answer.to_string();
    let asked_gzip = req.header("accept-encoding").is_some_and(|a| a.to_ascii_lowercase().contains("gzip"));
    let gzip = |text: &str| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = enc.write_all(text.as_bytes());
        enc.finish().unwrap_or_default()
    };
    match mode {
        ListMode::GzipAlways | ListMode::GzipWhenAsked if mode == ListMode::GzipAlways || asked_gzip => Resp {
            status: 200,
            headers: vec![("content-type", "application/json".into()), ("content-encoding", "gzip".into())],
            body: gzip(&text),
            close: false,
        },
        ListMode::SseUnterminated => Resp {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            // The data line ends, the event does not: no blank line follows.
            body: format!("event: message\ndata: {text}\n").into_bytes(),
            close: true,
        },
        ListMode::TextPlain => Resp {
            status: 200,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: text.into_bytes(),
            close: false,
        },
        _ => Resp::json(200, answer),
    }
}
