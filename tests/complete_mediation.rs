//! Acceptance (issue 9, complete mediation): the attacker's table.
//!
//! Every door (`/mcp/demo`, the federated `/mcp`, REST `POST /tools/mcp:demo:echo/invoke`) ×
//! HTTP method (POST, GET, DELETE, PUT, PATCH, OPTIONS) × message kind (request, notification,
//! allow-listed notification, response, batch, empty, non-JSON, GET with a body, `Upgrade`) ×
//! principal (an unknown role, `mcp-user`, `mcp-admin`) is sent with hostile extra headers to
//! gateways in front of a LENIENT upstream that logs and executes everything it receives
//! (`tests/common/lenient.rs`). For every row the [`oracle`] (written from the issue-9 spec)
//! says the status, whether the upstream must see the message, and the audit outcome; the test
//! checks the status, the upstream's log (exactly the allowed message, with the brokered
//! credential and none of the agent's headers), and the audit trail (exactly one decision
//! record per request naming its outcome, one completion record per forwarded call). All
//! mismatches are collected and reported once; the summary line is always printed.
//!
//! `tools_list_fails_closed` checks that `tools/list` stays filtered when the upstream
//! compresses, ends its SSE stream inside an event, or answers `text/plain`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::lenient::{Lenient, ListMode, Received};
use common::*;
use serde_json::{json, Value};

/// The agent's `User-Agent` (forwarded per the spec's allow-list). Upstream requests without it
/// and without the row's correlation id are the gateway's own (discovery, its MCP client).
const AGENT_UA: &str = "complete-mediation-agent/1.0";
/// The brokered credential (`MCP_DEMO_TOKEN`).
const BROKERED: &str = "Bearer upstream-secret";
/// What the gateway's own client may send upstream by itself (handshake and discovery).
const PLUMBING: &[&str] = &["initialize", "notifications/initialized", "tools/list", "server/discover"];
/// Header values only the agent sends: none may reach the upstream.
const AGENT_SECRETS: &[&str] = &["agent-cookie", "agent-key", "6.6.6.6", "Basic x", "gzip, br"];
/// Header names that must never reach the upstream.
const NEVER_UPSTREAM: &[&str] = &[
    "cookie",
    "x-api-key",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "proxy-authorization",
    "x-action-token",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
];
/// The spec's upstream request-header allow-list (plus `mcp-param-*`).
const ALLOWED_UPSTREAM: &[&str] = &[
    "content-type",
    "accept",
    "content-length",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "traceparent",
    "tracestate",
    "user-agent",
    "host",
    "x-correlation-id",
    "authorization",
];

const METHODS: [&str; 6] = ["POST", "GET", "DELETE", "PUT", "PATCH", "OPTIONS"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Door {
    /// `/mcp/demo`, the transparent proxy.
    Server,
    /// `/mcp`, the federated endpoint (`demo__echo`).
    Federated,
    /// `POST /tools/mcp:demo:echo/invoke`.
    Rest,
}

const DOORS: [Door; 3] = [Door::Server, Door::Federated, Door::Rest];

impl Door {
    fn label(self) -> &'static str {
        match self {
            Door::Server => "server",
            Door::Federated => "federated",
            Door::Rest => "rest",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Door::Server => "/mcp/demo",
            Door::Federated => "/mcp",
            Door::Rest => "/tools/mcp:demo:echo/invoke",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `tools/call` of echo (REST: the argument object).
    Request,
    /// `tools/call` without an id: not on the client allow-list.
    Notification,
    /// `notifications/initialized`: on the allow-list.
    AllowedNotification,
    /// A client response (`id` + `result`).
    Response,
    /// `[tools/call echo, tools/call read_secret]`.
    Batch,
    Empty,
    NonJson,
    /// The request as a chunked body (`Transfer-Encoding`): the GET-with-a-body probe.
    GetBody,
    /// `Upgrade: websocket` + `Connection: Upgrade` (POST carries the request body; other
    /// methods no body).
    Upgrade,
}

const KINDS: [Kind; 9] = [
    Kind::Request,
    Kind::Notification,
    Kind::AllowedNotification,
    Kind::Response,
    Kind::Batch,
    Kind::Empty,
    Kind::NonJson,
    Kind::GetBody,
    Kind::Upgrade,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Notification => "notification",
            Kind::AllowedNotification => "allowed-notification",
            Kind::Response => "response",
            Kind::Batch => "batch",
            Kind::Empty => "empty",
            Kind::NonJson => "non-json",
            Kind::GetBody => "get-body",
            Kind::Upgrade => "upgrade",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// A role the policy does not know: no scopes.
    NoRoles,
    /// `mcp-user`: scope `mcp.demo`, `read_secret` denied.
    User,
    /// `mcp-admin`: `mcp.*`.
    Admin,
}

const WHOS: [Who; 3] = [Who::NoRoles, Who::User, Who::Admin];

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::NoRoles => "noroles",
            Who::User => "user",
            Who::Admin => "admin",
        }
    }

    fn index(self) -> usize {
        match self {
            Who::NoRoles => 0,
            Who::User => 1,
            Who::Admin => 2,
        }
    }

    fn mint(self, gw: &Gateway) -> String {
        match self {
            Who::NoRoles => gw.mint("mallory", "acme", "stranger"),
            Who::User => gw.mint("alice", "acme", "mcp-user"),
            Who::Admin => gw.mint("root", "acme", "mcp-admin"),
        }
    }
}

/// The message the upstream must receive for a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sees {
    /// POST `tools/call` of echo with the row's arguments.
    Call,
    /// POST `notifications/initialized`.
    Note,
    /// POST of the row's client response, with its session.
    Reply,
    /// GET without a body (the SSE stream).
    Stream,
    /// DELETE with the row's session.
    EndSession,
}

/// What the spec says about one row.
#[derive(Clone, Debug)]
struct Expect {
    /// Acceptable (HTTP status, audit `decision.result`) pairs; more than one only where the
    /// spec leaves the order of two checks open.
    outcomes: Vec<(u16, &'static str)>,
    /// What reaches the upstream (`None`: nothing of the caller's).
    sees: Option<Sees>,
    /// A `"phase":"completion"` record follows (forwarded `tools/call`, REST invoke).
    completion: bool,
}

const DENY: (u16, &str) = (403, "deny");
const INVALID: (u16, &str) = (400, "invalid");
const UNPROCESSABLE: (u16, &str) = (422, "invalid");
const NOT_ALLOWED: (u16, &str) = (405, "method_not_allowed");

fn refused(outcomes: &[(u16, &'static str)]) -> Expect {
    Expect { outcomes: outcomes.to_vec(), sees: None, completion: false }
}

fn forwarded(status: u16, sees: Sees) -> Expect {
    Expect { outcomes: vec![(status, "allow")], sees: Some(sees), completion: sees == Sees::Call }
}

/// Answered by the gateway itself, allowed, nothing forwarded.
fn consumed(status: u16) -> Expect {
    Expect { outcomes: vec![(status, "allow")], sees: None, completion: false }
}

/// `yes` for a privileged caller, else `no`.
fn by_role(may: bool, yes: Expect, no: Expect) -> Expect {
    if may {
        yes
    } else {
        no
    }
}

/// THE ORACLE, from /tmp/issue9-spec.md. Order of checks: route → method (405) → Host/Origin
/// → JWT → size → parse (400) → decide (403) → … → forward.
fn oracle(door: Door, method: &str, kind: Kind, who: Who) -> Expect {
    let may = who != Who::NoRoles; // holds mcp.demo (plumbing) and may call echo
    let allowed: &[&str] = if door == Door::Rest { &["POST"] } else { &["POST", "GET", "DELETE"] };
    if !allowed.contains(&method) {
        return refused(&[NOT_ALLOWED]);
    }
    let call = matches!(kind, Kind::Request | Kind::GetBody | Kind::Upgrade);
    // On GET/DELETE only Empty and Upgrade carry no body.
    let body = !matches!(kind, Kind::Empty | Kind::Upgrade);
    match (door, method) {
        (Door::Server, "POST") => match kind {
            _ if call => by_role(may, forwarded(200, Sees::Call), refused(&[DENY])),
            Kind::AllowedNotification => by_role(may, forwarded(202, Sees::Note), refused(&[DENY])),
            // Privileged callers present their own session; the others have none: 400.
            Kind::Response => by_role(may, forwarded(202, Sees::Reply), refused(&[INVALID])),
            _ => refused(&[INVALID]), // tools/call notification, batch, empty, non-JSON
        },
        (Door::Server, "GET") => match (body, may) {
            (true, _) => refused(&[INVALID]),
            (false, true) => forwarded(200, Sees::Stream), // Upgrade: a plain GET
            (false, false) => refused(&[DENY]),
        },
        (Door::Server, _delete) => match (body, may) {
            (true, _) => refused(&[INVALID]),
            (false, true) => forwarded(200, Sees::EndSession),
            (false, false) => refused(&[INVALID]), // no session id
        },
        (Door::Federated, "POST") => match kind {
            _ if call => by_role(may, forwarded(200, Sees::Call), refused(&[DENY])),
            // Consumed. Whether the gateway decides an allow-listed notification for a caller
            // without any server's plumbing is left open by the spec: 202 or 403.
            Kind::AllowedNotification => by_role(may, consumed(202), refused(&[(202, "allow"), DENY])),
            Kind::Response => by_role(may, consumed(202), refused(&[INVALID])),
            _ => refused(&[INVALID]),
        },
        (Door::Federated, "GET") => {
            if kind == Kind::Response && may {
                refused(&[INVALID]) // own session, but a body
            } else if body {
                // No session and a body: which of the two checks comes first is open.
                refused(&[INVALID, NOT_ALLOWED])
            } else if may {
                refused(&[NOT_ALLOWED]) // no session: no stream
            } else {
                refused(&[NOT_ALLOWED, DENY])
            }
        }
        (Door::Federated, _delete) => match (body, may) {
            (true, _) => refused(&[INVALID]),
            (false, true) => consumed(200),
            (false, false) => refused(&[INVALID]),
        },
        (Door::Rest, _post) => match kind {
            _ if call => by_role(may, forwarded(200, Sees::Call), refused(&[DENY])),
            // JSON objects are argument objects: decided, then rejected by echo's input
            // schema (additionalProperties: false).
            Kind::Notification | Kind::AllowedNotification | Kind::Response => {
                by_role(may, refused(&[UNPROCESSABLE, INVALID]), refused(&[DENY]))
            }
            // Whether an empty REST body parses as `{}` (then decided, then schema: `text`
            // is required) or is a parse error is left open.
            Kind::Empty => by_role(may, refused(&[UNPROCESSABLE, INVALID]), refused(&[DENY, INVALID, UNPROCESSABLE])),
            _ => refused(&[INVALID, UNPROCESSABLE]), // batch (not an object), non-JSON
        },
    }
}

/// Rows that present a session: privileged callers, MCP doors, a response or a DELETE.
fn needs_session(door: Door, method: &str, kind: Kind, who: Who) -> bool {
    who != Who::NoRoles
        && door != Door::Rest
        && ["POST", "GET", "DELETE"].contains(&method)
        && (kind == Kind::Response || method == "DELETE")
}

struct Row {
    n: usize,
    door: Door,
    method: &'static str,
    kind: Kind,
    who: Who,
    corr: String,
    expect: Expect,
    session: Option<String>,
    status: u16,
    mismatches: Vec<String>,
}

impl Row {
    fn label(&self) -> String {
        format!("{} {} {} {}", self.door.label(), self.method, self.kind.label(), self.who.label())
    }

    fn text(&self) -> String {
        format!("row-{}", self.n)
    }

    fn reply_id(&self) -> String {
        format!("srv-{}", self.n)
    }

    /// The body and whether it goes chunked.
    fn body(&self) -> (Option<Vec<u8>>, bool) {
        let (echo, secret) = match self.door {
            Door::Federated => ("demo__echo", "demo__read_secret"),
            _ => ("echo", "read_secret"),
        };
        let args = json!({"text": self.text()});
        let call = match self.door {
            Door::Rest => args.clone(),
            _ => json!({"jsonrpc": "2.0", "id": 1000 + self.n, "method": "tools/call",
                        "params": {"name": echo, "arguments": args}}),
        };
        let v = match self.kind {
            Kind::Request | Kind::GetBody => call,
            Kind::Upgrade if self.method == "POST" => call,
            Kind::Upgrade | Kind::Empty => return (None, false),
            Kind::NonJson => return (Some(b"tools/call echo, please {".to_vec()), false),
            Kind::Notification => {
                json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": echo, "arguments": args}})
            }
            Kind::AllowedNotification => json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            Kind::Response => json!({"jsonrpc": "2.0", "id": self.reply_id(), "result": {}}),
            Kind::Batch => json!([
                {"jsonrpc": "2.0", "id": 1000 + self.n, "method": "tools/call", "params": {"name": echo, "arguments": args}},
                {"jsonrpc": "2.0", "id": 5000 + self.n, "method": "tools/call", "params": {"name": secret, "arguments": {"name": "db"}}},
            ]),
        };
        (Some(v.to_string().into_bytes()), self.kind == Kind::GetBody)
    }
}

/// The agent's headers: its token and a hostile set that must never reach the upstream.
fn agent_headers(jwt: &str, corr: &str, session: Option<&str>, upgrade: bool) -> Vec<(String, String)> {
    let mut h: Vec<(&str, String)> = vec![
        ("user-agent", AGENT_UA.into()),
        ("accept", "application/json, text/event-stream".into()),
        ("content-type", "application/json".into()),
        ("authorization", format!("Bearer {jwt}")),
        ("cookie", "sid=agent-cookie".into()),
        ("x-api-key", "agent-key".into()),
        ("forwarded", "for=6.6.6.6".into()),
        ("x-forwarded-for", "6.6.6.6".into()),
        ("x-forwarded-host", "evil".into()),
        ("proxy-authorization", "Basic x".into()),
        ("accept-encoding", "gzip, br".into()),
        ("x-correlation-id", corr.into()),
    ];
    if let Some(s) = session {
        h.push(("mcp-session-id", s.into()));
    }
    if upgrade {
        h.push(("upgrade", "websocket".into()));
        h.push(("connection", "Upgrade".into()));
        h.push(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".into()));
        h.push(("sec-websocket-version", "13".into()));
    } else {
        h.push(("connection", "close".into()));
    }
    h.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A response as the agent saw it. `note` says what went wrong at the HTTP level.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    note: Option<String>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn excerpt(&self) -> String {
        let b = String::from_utf8_lossy(&self.body[..self.body.len().min(160)]).to_string();
        match &self.note {
            Some(n) => format!("{b} ({n})"),
            None => b,
        }
    }
}

/// One raw HTTP/1.1 request on its own connection. A 101 is returned at once (the tunnel is
/// not entered); an SSE answer to a GET is not read unless `read_stream` (the stream may be
/// long-lived).
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    chunked: bool,
    read_stream: bool,
) -> Reply {
    let fail = |note: String| Reply { status: 0, headers: vec![], body: vec![], note: Some(note) };
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return fail(format!("connect: {e}")),
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut payload = Vec::new();
    match body {
        Some(b) if chunked => {
            req.push_str("transfer-encoding: chunked\r\n");
            let (a, z) = b.split_at(b.len() / 2);
            for part in [a, z] {
                payload.extend_from_slice(format!("{:X}\r\n", part.len()).as_bytes());
                payload.extend_from_slice(part);
                payload.extend_from_slice(b"\r\n");
            }
            payload.extend_from_slice(b"0\r\n\r\n");
        }
        Some(b) => {
            req.push_str(&format!("content-length: {}\r\n", b.len()));
            payload.extend_from_slice(b);
        }
        None if ["POST", "PUT", "PATCH"].contains(&method) => req.push_str("content-length: 0\r\n"),
        None => {}
    }
    req.push_str("\r\n");
    if let Err(e) = s.write_all(req.as_bytes()) {
        return fail(format!("write: {e}"));
    }
    // A refused request may be answered before its body is read; a reset then is fine.
    let _ = s.write_all(&payload);
    let mut r = BufReader::new(s);
    let (status, headers) = loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return fail("connection closed without a response".into()),
            Err(e) => return fail(format!("no response: {e}")),
            Ok(_) => {}
        }
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                break;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        if status == 100 {
            continue;
        }
        break (status, headers);
    };
    let mut reply = Reply { status, headers, body: vec![], note: None };
    if status == 101 {
        reply.note = Some("101: the connection became a tunnel".into());
        return reply;
    }
    let sse = reply.header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
    if sse && method == "GET" && !read_stream {
        return reply;
    }
    let chunked = reply.header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let len = reply.header("content-length").and_then(|v| v.parse::<usize>().ok());
    let read = if chunked {
        read_chunked(&mut r, &mut reply.body)
    } else if let Some(n) = len {
        reply.body.resize(n, 0);
        r.read_exact(&mut reply.body).map_err(|e| e.to_string())
    } else {
        r.read_to_end(&mut reply.body).map(|_| ()).map_err(|e| e.to_string())
    };
    if let Err(e) = read {
        reply.note = Some(format!("body cut off: {e}"));
    }
    reply
}

fn read_chunked<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> Result<(), String> {
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).map_err(|e| e.to_string())? == 0 {
            return Err("EOF before the last chunk".into());
        }
        let n = usize::from_str_radix(size.trim(), 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        if n == 0 {
            let mut end = String::new();
            let _ = r.read_line(&mut end);
            return Ok(());
        }
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The audit trail of one gateway, read incrementally (complete lines only).
struct AuditIndex {
    dir: PathBuf,
    read: HashMap<PathBuf, usize>,
    by_corr: HashMap<String, Vec<Value>>,
    lines: Vec<String>,
}

impl AuditIndex {
    fn new(dir: PathBuf) -> AuditIndex {
        AuditIndex { dir, read: HashMap::new(), by_corr: HashMap::new(), lines: vec![] }
    }

    fn ingest(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                name.starts_with("audit-") && name.ends_with(".jsonl")
            })
            .collect();
        files.sort();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let done = self.read.entry(f.clone()).or_insert(0);
            let Some(last_nl) = bytes.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            if last_nl < *done {
                continue;
            }
            for line in String::from_utf8_lossy(&bytes[*done..=last_nl]).lines() {
                if line.trim().is_empty() {
                    continue;
                }
                self.lines.push(line.to_string());
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    let corr = v["corr_id"].as_str().unwrap_or_default().to_string();
                    self.by_corr.entry(corr).or_default().push(v);
                }
            }
            *done = last_nl + 1;
        }
    }

    fn phase(&self, corr: &str, phase: &str) -> Vec<&Value> {
        self.by_corr.get(corr).map(|v| v.iter().filter(|r| r["phase"] == phase).collect()).unwrap_or_default()
    }
}

/// Header hygiene of one upstream request: the brokered credential, none of the agent's
/// headers or secrets; for requests carrying the agent's traffic, only allow-listed names.
/// At most two lines per request.
fn hygiene(req: &Received, jwts: &[String], agent_traffic: bool) -> Vec<String> {
    let mut out = Vec::new();
    let what = req.summary();
    let auth = req.headers_named("authorization");
    if auth != [BROKERED] {
        let shown: Vec<&str> =
            auth.iter().map(|a| if jwts.iter().any(|j| a.contains(j.as_str())) { "<agent JWT>" } else { a }).collect();
        out.push(format!("upstream got authorization {shown:?}, want only {BROKERED:?}: {what}"));
    }
    let mut leaked: Vec<String> = Vec::new();
    let mut unlisted: Vec<String> = Vec::new();
    for (k, v) in &req.headers {
        if k == "authorization" {
            continue;
        }
        let secret = jwts.iter().any(|j| v.contains(j.as_str())) || AGENT_SECRETS.iter().any(|s| v.contains(*s));
        let upgrade = k == "connection" && v.to_ascii_lowercase().contains("upgrade");
        if NEVER_UPSTREAM.contains(&k.as_str()) || secret || upgrade {
            leaked.push(format!("{k}: {v}"));
        } else if agent_traffic
            && !(ALLOWED_UPSTREAM.contains(&k.as_str()) || k.starts_with("mcp-param-") || k == "connection")
        {
            unlisted.push(k.clone());
        }
    }
    if !leaked.is_empty() {
        out.push(format!("upstream got the agent's {leaked:?}: {what}"));
    }
    if !unlisted.is_empty() {
        out.push(format!("upstream got headers outside the spec's allow-list {unlisted:?}: {what}"));
    }
    out
}

/// Is `req` the gateway's own handshake/discovery traffic (not the caller's message)?
fn own_plumbing(req: &Received, corr: &str) -> bool {
    let ours = req.header("x-correlation-id") == Some(corr);
    let agent = req.header("user-agent") == Some(AGENT_UA);
    !ours && !agent && req.method == "POST" && req.rpc_method().is_some_and(|m| PLUMBING.contains(&m.as_str()))
}

/// Does `req` carry the message `sees` for `row`?
fn carries(req: &Received, row: &Row, sees: Sees) -> Result<(), String> {
    let body = req.json().unwrap_or(Value::Null);
    let ours = req.header("x-correlation-id") == Some(row.corr.as_str());
    let need_corr = |ok: bool| if ok { Ok(()) } else { Err("without the row's x-correlation-id".to_string()) };
    // The session the agent presented, or (should the gateway map session ids) one the
    // upstream issued itself.
    let session_ok = || match (req.header("mcp-session-id"), row.session.as_deref()) {
        (Some(got), Some(want)) if want.starts_with("lenient-") => got == want,
        (Some(got), Some(_)) => got.starts_with("lenient-"),
        _ => false,
    };
    match sees {
        Sees::Call => {
            let ok = req.method == "POST"
                && body["method"] == "tools/call"
                && body["params"]["name"] == "echo"
                && body["params"]["arguments"]["text"] == row.text().as_str();
            if !ok {
                return Err("not the allowed tools/call of echo with the row's arguments".into());
            }
            // The REST door runs the call through the gateway's MCP client.
            need_corr(ours || row.door == Door::Rest)
        }
        Sees::Note => {
            let ok = req.method == "POST" && body["method"] == "notifications/initialized" && body.get("id").is_none();
            if !ok {
                return Err("not notifications/initialized".into());
            }
            need_corr(ours)
        }
        Sees::Reply => {
            let ok = req.method == "POST" && body["id"] == row.reply_id().as_str() && body.get("result").is_some();
            if !ok {
                return Err("not the row's client response".into());
            }
            if !session_ok() {
                return Err(format!("session {:?}, want {:?}", req.header("mcp-session-id"), row.session));
            }
            need_corr(ours)
        }
        Sees::Stream => {
            if req.method != "GET" || !req.body.is_empty() {
                return Err("not a body-less GET".into());
            }
            need_corr(ours)
        }
        Sees::EndSession => {
            if req.method != "DELETE" || !req.body.is_empty() || !session_ok() {
                return Err(format!("not a body-less DELETE of session {:?}", row.session));
            }
            need_corr(ours)
        }
    }
}

fn demo_gateway(tag: &str, upstream: &Lenient, discover: bool) -> Gateway {
    Gateway::builder(tag)
        // Statuses from the error table (the operator's `http` mode), which this test checks.
        .env("FASTMCP__MCP__REFUSAL_STATUS", "http")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_DEMO_TOKEN", BROKERED)
        .env("RATE_LIMIT_DEFAULT_RPS", "100000")
        .env("RATE_BUCKET_BURST", "100000")
        .config(&format!(
            "mcp:\n  refresh_interval_seconds: 3600\n  servers:\n    demo:\n      url: \"{}\"\n      discover: {discover}\n      trusted: true\n      tool_tags: {{echo: []}}\n",
            upstream.url()
        ))
        .start()
}

/// Opens a session through `door` for `jwt` (its `initialize` answer's `Mcp-Session-Id`).
fn open_session(port: u16, door: Door, jwt: &str, corr: &str) -> Result<String, String> {
    let init = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "complete-mediation", "version": "1.0"}}});
    let headers = agent_headers(jwt, corr, None, false);
    let r = send(port, "POST", door.path(), &headers, Some(init.to_string().as_bytes()), false, false);
    match r.header("mcp-session-id") {
        Some(s) if r.status == 200 => Ok(s.to_string()),
        _ => Err(format!("initialize through {} gave {} without a session: {}", door.path(), r.status, r.excerpt())),
    }
}

#[test]
fn complete_mediation_table() {
    let started = Instant::now();
    // Gateway A: /mcp/demo, no discovery (nothing but the callers' traffic upstream).
    let up_a = Lenient::start();
    let mut gw_a = demo_gateway("cm-server", &up_a, false);
    // Gateway B: the federated /mcp and REST need the discovered tools.
    let up_b = Lenient::start();
    let mut gw_b = demo_gateway("cm-fed", &up_b, true);
    wait_discovered(&gw_b, &["demo"], Duration::from_secs(30));

    let jwts_a: Vec<String> = WHOS.iter().map(|w| w.mint(&gw_a)).collect();
    let jwts_b: Vec<String> = WHOS.iter().map(|w| w.mint(&gw_b)).collect();
    let all_jwts: Vec<String> = jwts_a.iter().chain(jwts_b.iter()).cloned().collect();
    let mut global: BTreeSet<String> = BTreeSet::new();

    // Discovery traffic before the table: the gateway's own, plumbing only, dressed right.
    for (name, up) in [("A", &up_a), ("B", &up_b)] {
        for req in up.log() {
            for issue in hygiene(&req, &all_jwts, false) {
                global.insert(format!("before the table, upstream {name}: {issue}"));
            }
            if !own_plumbing(&req, "") {
                global.insert(format!("before the table, upstream {name} got {}", req.summary()));
            }
        }
    }

    let mut rows: Vec<Row> = Vec::new();
    for door in DOORS {
        for method in METHODS {
            for kind in KINDS {
                for who in WHOS {
                    let n = rows.len() + 1;
                    let corr = format!(
                        "cm-{n:03}-{}-{}-{}-{}",
                        door.label(),
                        method.to_ascii_lowercase(),
                        kind.label(),
                        who.label()
                    );
                    let expect = oracle(door, method, kind, who);
                    rows.push(Row {
                        n,
                        door,
                        method,
                        kind,
                        who,
                        corr,
                        expect,
                        session: None,
                        status: 0,
                        mismatches: vec![],
                    });
                }
            }
        }
    }

    for row in rows.iter_mut() {
        let (gw, jwt) = match row.door {
            Door::Server => (&gw_a, &jwts_a[row.who.index()]),
            _ => (&gw_b, &jwts_b[row.who.index()]),
        };
        let setup_marks = (up_a.log_len(), up_b.log_len());
        if needs_session(row.door, row.method, row.kind, row.who) {
            match open_session(gw.port, row.door, jwt, &format!("{}-setup", row.corr)) {
                Ok(s) => row.session = Some(s),
                Err(e) => row.mismatches.push(format!("setup: {e}")),
            }
        }
        let marks = (up_a.log_len(), up_b.log_len());
        for req in up_a.log_since(setup_marks.0).into_iter().take(marks.0 - setup_marks.0) {
            row.mismatches.extend(hygiene(&req, &all_jwts, false).into_iter().map(|i| format!("setup: {i}")));
        }
        for req in up_b.log_since(setup_marks.1).into_iter().take(marks.1 - setup_marks.1) {
            row.mismatches.extend(hygiene(&req, &all_jwts, false).into_iter().map(|i| format!("setup: {i}")));
        }

        let (body, chunked) = row.body();
        let headers = agent_headers(jwt, &row.corr, row.session.as_deref(), row.kind == Kind::Upgrade);
        let reply = send(gw.port, row.method, row.door.path(), &headers, body.as_deref(), chunked, false);
        row.status = reply.status;

        // The status.
        if reply.status == 101 {
            row.mismatches.push("a 101 reached the client: the request became a tunnel".into());
        } else if !row.expect.outcomes.iter().any(|(s, _)| *s == reply.status) {
            let want: Vec<u16> = row.expect.outcomes.iter().map(|(s, _)| *s).collect();
            row.mismatches.push(format!("status {} (want {want:?}): {}", reply.status, reply.excerpt()));
        }

        // What the upstreams received while the row ran (a forwarded message is logged
        // before the upstream answers, hence before the gateway answers the agent).
        let mut delivered: Vec<(&str, Received)> = Vec::new();
        for (name, up, mark) in [("A", &up_a, marks.0), ("B", &up_b, marks.1)] {
            for req in up.log_since(mark) {
                let ours = req.header("x-correlation-id") == Some(row.corr.as_str());
                let agent = ours || req.header("user-agent") == Some(AGENT_UA);
                row.mismatches.extend(hygiene(&req, &all_jwts, agent));
                if let Some(c) = req.header("x-correlation-id").filter(|c| c.starts_with("cm-") && !ours) {
                    row.mismatches.push(format!("upstream {name} got another row's request ({c}): {}", req.summary()));
                }
                if !own_plumbing(&req, &row.corr) {
                    delivered.push((name, req));
                }
            }
        }
        let want_upstream = if row.door == Door::Server { "A" } else { "B" };
        match (row.expect.sees, delivered.as_slice()) {
            (None, []) => {}
            (None, got) => {
                for (name, req) in got {
                    row.mismatches.push(format!("upstream {name} must see nothing but got {}", req.summary()));
                }
            }
            (Some(sees), []) => row.mismatches.push(format!("upstream never saw the allowed {sees:?}")),
            (Some(sees), [(name, req)]) => {
                if *name != want_upstream {
                    row.mismatches.push(format!("{sees:?} reached upstream {name}, want {want_upstream}"));
                }
                if let Err(e) = carries(req, row, sees) {
                    row.mismatches.push(format!("upstream {name} got {}: {e} (want {sees:?})", req.summary()));
                }
            }
            (Some(sees), got) => {
                let all: Vec<String> = got.iter().map(|(n, r)| format!("{n}: {}", r.summary())).collect();
                row.mismatches.push(format!("upstream must see exactly one {sees:?}, got {}: {all:?}", got.len()));
            }
        }
    }
    let table_marks = (up_a.log_len(), up_b.log_len());

    // The audit trail: wait (bounded) until every row's expected records are there, then stop
    // the gateways and count exactly.
    let mut audit_a = AuditIndex::new(gw_a.audit_dir());
    let mut audit_b = AuditIndex::new(gw_b.audit_dir());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        audit_a.ingest();
        audit_b.ingest();
        let complete = rows.iter().all(|row| {
            let audit = if row.door == Door::Server { &audit_a } else { &audit_b };
            !audit.phase(&row.corr, "decision").is_empty()
                && (!row.expect.completion || !audit.phase(&row.corr, "completion").is_empty())
        });
        if complete || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    gw_a.stop();
    gw_b.stop();
    audit_a.ingest();
    audit_b.ingest();

    for row in rows.iter_mut() {
        let audit = if row.door == Door::Server { &audit_a } else { &audit_b };
        let decisions = audit.phase(&row.corr, "decision");
        let results: Vec<&str> = decisions.iter().map(|d| d["decision"]["result"].as_str().unwrap_or("?")).collect();
        if decisions.len() != 1 {
            row.mismatches.push(format!("audit: {} decision records {results:?}, want exactly 1", decisions.len()));
        }
        if let Some(d) = decisions.first() {
            let result = d["decision"]["result"].as_str().unwrap_or("?");
            let for_status: Vec<&str> =
                row.expect.outcomes.iter().filter(|(s, _)| *s == row.status).map(|(_, r)| *r).collect();
            let wanted: Vec<&str> =
                if for_status.is_empty() { row.expect.outcomes.iter().map(|(_, r)| *r).collect() } else { for_status };
            if !wanted.contains(&result) {
                row.mismatches.push(format!("audit: decision.result {result:?}, want {wanted:?}"));
            }
            let recorded = d["outcome"]["status"].as_u64();
            if row.expect.sees.is_none() && row.status >= 400 && recorded != Some(u64::from(row.status)) {
                row.mismatches.push(format!("audit: outcome.status {recorded:?}, the agent got {}", row.status));
            }
        }
        let completions = audit.phase(&row.corr, "completion");
        if row.expect.completion {
            let statuses: Vec<Option<u64>> = completions.iter().map(|c| c["outcome"]["status"].as_u64()).collect();
            if statuses != [Some(200)] {
                row.mismatches
                    .push(format!("audit: completion records with upstream statuses {statuses:?}, want exactly [200]"));
            }
        } else if row.expect.sees.is_none() && !completions.is_empty() {
            row.mismatches
                .push(format!("audit: {} completion records for a request never forwarded", completions.len()));
        }
    }

    // Nothing of the callers' may arrive after the table either.
    for (name, up, mark) in [("A", &up_a, table_marks.0), ("B", &up_b, table_marks.1)] {
        for req in up.log_since(mark) {
            if !own_plumbing(&req, "") {
                global.insert(format!("after the table, upstream {name} got {}", req.summary()));
            }
        }
    }
    // The gateway's own upstream traffic (discovery, its MCP client), for the record.
    let own: Vec<Received> =
        up_a.log().into_iter().chain(up_b.log()).filter(|r| r.header("user-agent") != Some(AGENT_UA)).collect();
    let own_methods: BTreeSet<String> =
        own.iter().map(|r| format!("{} {}", r.method, r.rpc_method().unwrap_or_default())).collect();
    let own_agents: BTreeSet<&str> = own.iter().filter_map(|r| r.header("user-agent")).collect();
    println!("gateway's own upstream requests: {} ({own_methods:?}; user-agents {own_agents:?})", own.len());
    // Records never hold tokens.
    for line in audit_a.lines.iter().chain(audit_b.lines.iter()) {
        for secret in all_jwts.iter().map(String::as_str).chain(["upstream-secret", "agent-cookie", "agent-key"]) {
            if line.contains(secret) {
                let s = if secret.len() > 20 { "an agent JWT" } else { secret };
                global.insert(format!("an audit record contains {s}"));
            }
        }
    }

    let failed: Vec<&Row> = rows.iter().filter(|r| !r.mismatches.is_empty()).collect();
    let mut report = String::new();
    for row in &failed {
        report.push_str(&format!("[{}] {} (corr {})\n", row.n, row.label(), row.corr));
        for m in &row.mismatches {
            report.push_str(&format!("    - {m}\n"));
        }
    }
    for g in &global {
        report.push_str(&format!("[global] {g}\n"));
    }
    let summary = format!(
        "complete mediation: {} rows, {} passed, {} failed ({} doors × {} methods × {} kinds × {} principals; {} global issues; {:.1} s)",
        rows.len(),
        rows.len() - failed.len(),
        failed.len(),
        DOORS.len(),
        METHODS.len(),
        KINDS.len(),
        WHOS.len(),
        global.len(),
        started.elapsed().as_secs_f64()
    );
    if !report.is_empty() {
        println!("{report}");
    }
    println!("{summary}");
    assert!(failed.is_empty() && global.is_empty(), "{summary}\n{}", first_lines(&report, 60));
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let mut out = lines.iter().take(n).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > n {
        out.push_str(&format!("\n… {} more lines (run with --nocapture for all)", lines.len() - n));
    }
    out
}

/// The JSON-RPC messages in a response body: one JSON document, or SSE `data:` lines.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    let mut out = Vec::new();
    for event in body.replace("\r\n", "\n").split("\n\n") {
        let data: Vec<&str> =
            event.lines().filter_map(|l| l.strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n")) {
            out.push(v);
        }
    }
    out
}

#[test]
fn tools_list_fails_closed() {
    let up = Lenient::start();
    let gw = demo_gateway("cm-list", &up, false);
    let user = Who::User.mint(&gw);
    let admin = Who::Admin.mint(&gw);
    // (mode, label, caller's Accept-Encoding, must the answer be the JSON-RPC error?)
    let cases: [(ListMode, &str, Option<&str>, Option<bool>); 5] = [
        (ListMode::Plain, "plain JSON (control: the filter works)", None, Some(false)),
        (ListMode::GzipWhenAsked, "gzip when asked, agent sends Accept-Encoding: gzip, br", Some("gzip, br"), None),
        (ListMode::GzipAlways, "gzip always, agent sends Accept-Encoding: gzip, br", Some("gzip, br"), Some(true)),
        (ListMode::SseUnterminated, "SSE whose final event is unterminated", None, Some(true)),
        (ListMode::TextPlain, "text/plain answer", None, Some(true)),
    ];
    let mut failures: Vec<String> = Vec::new();
    let mut failed_cases = 0;
    for (i, (mode, label, accept_encoding, must_error)) in cases.iter().enumerate() {
        up.set_list_mode(*mode);
        let mark = up.log_len();
        let id = 70 + i as u64;
        let corr = format!("cm-list-{i}");
        let mut headers: Vec<(String, String)> = vec![
            ("user-agent".into(), AGENT_UA.into()),
            ("authorization".into(), format!("Bearer {user}")),
            ("content-type".into(), "application/json".into()),
            ("accept".into(), "application/json, text/event-stream".into()),
            ("x-correlation-id".into(), corr.clone()),
            ("connection".into(), "close".into()),
        ];
        if let Some(ae) = accept_encoding {
            headers.push(("accept-encoding".into(), ae.to_string()));
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string();
        let r = send(gw.port, "POST", "/mcp/demo", &headers, Some(body.as_bytes()), false, true);
        let mut problems = Vec::new();
        let raw = r.body.clone();
        let decoded = if r.header("content-encoding").is_some_and(|e| e.contains("gzip")) {
            let mut out = Vec::new();
            match flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out) {
                Ok(_) => out,
                Err(e) => {
                    problems.push(format!("gzip answer that does not decode ({e})"));
                    raw.clone()
                }
            }
        } else {
            raw.clone()
        };
        let text = String::from_utf8_lossy(&decoded).to_string();
        if text.contains("read_secret") || String::from_utf8_lossy(&raw).contains("read_secret") {
            problems.push("read_secret (denied to mcp-user) reached mcp-user unfiltered".into());
        }
        if let Some(e) = r.header("content-encoding") {
            problems.push(format!("the agent got Content-Encoding: {e}: bytes the filter could not read"));
        }
        let answer = messages(&text).into_iter().find(|m| m["id"] == id);
        let code = answer.as_ref().and_then(|a| a.pointer("/error/data/code")).and_then(Value::as_str);
        let names: Vec<String> = answer
            .as_ref()
            .and_then(|a| a.pointer("/result/tools"))
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(|t| t["name"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        let is_error = code == Some("PROVIDER_ERROR");
        let is_filtered = names.contains(&"echo".to_string()) && !names.contains(&"read_secret".to_string());
        match must_error {
            Some(true) if !is_error => {
                problems.push(format!("want a JSON-RPC error for id {id} with data.code PROVIDER_ERROR"))
            }
            Some(false) if !is_filtered => problems.push(format!("want the filtered list, got tools {names:?}")),
            None if !is_error && !is_filtered => {
                problems.push("want the filtered list or a PROVIDER_ERROR JSON-RPC error".into())
            }
            _ => {}
        }
        let reached: Vec<Received> = up.log_since(mark);
        if !reached.iter().any(|q| q.rpc_method().as_deref() == Some("tools/list")) {
            problems.push("the upstream never got the tools/list (the case proves nothing)".into());
        }
        for q in &reached {
            problems.extend(hygiene(q, std::slice::from_ref(&user), true));
        }
        if *mode == ListMode::Plain {
            let mut h = headers.clone();
            h[1].1 = format!("Bearer {admin}");
            let r = send(gw.port, "POST", "/mcp/demo", &h, Some(body.as_bytes()), false, true);
            if !String::from_utf8_lossy(&r.body).contains("read_secret") {
                problems.push(format!("mcp-admin must see read_secret in the plain list: {}", r.excerpt()));
            }
        }
        if !problems.is_empty() {
            failed_cases += 1;
            failures.push(format!(
                "{label}: status {} body {:?}{}",
                r.status,
                &text[..text.len().min(200)],
                r.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
            ));
            failures.extend(problems.into_iter().map(|p| format!("    - {p}")));
        }
    }
    let summary = format!(
        "tools/list fail-closed: {} cases, {} passed, {failed_cases} failed",
        cases.len(),
        cases.len() - failed_cases
    );
    if !failures.is_empty() {
        println!("{}", failures.join("\n"));
    }
    println!("{summary}");
    assert!(failures.is_empty(), "{summary}\n{}", failures.join("\n"));
}
