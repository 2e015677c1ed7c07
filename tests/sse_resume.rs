//! Acceptance (issue 11): resumable SSE for 2025-11-25 clients.
//!
//! - `/mcp/{server}` passes `Last-Event-ID` through to the upstream (resumption there is the
//!   upstream's own).
//! - The federated `/mcp`: every event of a session's streams carries an id; a client that
//!   drops its GET stream and reconnects with `Last-Event-ID` gets exactly the events it
//!   missed, then the live ones (no duplicates); an id the window no longer covers, or another
//!   session's id, gets a fresh stream that starts by telling the client to re-list; a POST's
//!   reply (a held call confirmed by elicitation) whose connection dropped is resumed by GET
//!   and delivers the call's result, the call having run once.
//!
//! Tool-list changes are made deterministic with a fake 2026-07-28 upstream whose list grows
//! when the test says so; the gateway re-lists it every second and announces each change.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::lenient::Lenient;
use common::versioned::VersionedServer;
use common::*;
use serde_json::{json, Value};

const LIST_CHANGED: &str = "notifications/tools/list_changed";

type Versioned = VersionedServer;

/// The fake server of these tests: `tools/list` answers `t0..=t{version}`.
fn versioned() -> Versioned {
    VersionedServer::start("versioned", |n| {
        (0..=n).map(|i| json!({"name": format!("t{i}"), "inputSchema": {"type": "object"}})).collect()
    })
}

/// One SSE event as the client sees it.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: Option<String>,
    data: String,
}

impl Event {
    fn method(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.data).ok()?.get("method")?.as_str().map(String::from)
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
    fn stream(&self) -> &str {
        self.id.as_deref().and_then(|i| i.split_once('-')).map(|(s, _)| s).unwrap_or("")
    }
    fn seq(&self) -> u64 {
        self.id.as_deref().and_then(|i| i.split_once('-')).and_then(|(_, n)| n.parse().ok()).unwrap_or(0)
    }
}

/// An SSE response read event by event from a raw connection (chunked or not).
struct SseConn {
    status: u16,
    reader: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes left in the current chunk.
    left: usize,
    buf: String,
    ended: bool,
}

impl SseConn {
    fn open(port: u16, request: &str) -> SseConn {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        s.write_all(request.as_bytes()).expect("send");
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        reader.read_line(&mut line).expect("status line");
        let status = line.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        let mut chunked = false;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).expect("header");
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if h.starts_with("transfer-encoding:") && h.contains("chunked") {
                chunked = true;
            }
        }
        SseConn { status, reader, chunked, left: 0, buf: String::new(), ended: false }
    }

    fn get(port: u16, jwt: &str, sid: &str, last_event_id: Option<&str>) -> SseConn {
        let resume = last_event_id.map(|l| format!("last-event-id: {l}\r\n")).unwrap_or_default();
        SseConn::open(
            port,
            &format!(
                "GET /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\naccept: text/event-stream\r\n\
                 authorization: Bearer {jwt}\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\n{resume}\r\n"
            ),
        )
    }

    /// More body bytes into `buf`; false at the end of the body.
    fn fill(&mut self) -> bool {
        if self.ended {
            return false;
        }
        if self.chunked && self.left == 0 {
            let mut size = String::new();
            if self.reader.read_line(&mut size).unwrap_or(0) == 0 {
                self.ended = true;
                return false;
            }
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                self.ended = true;
                return false;
            }
            self.left = n;
        }
        let mut tmp = vec![0u8; if self.chunked { self.left.min(8192) } else { 8192 }];
        let got = self.reader.read(&mut tmp).unwrap_or(0);
        if got == 0 {
            self.ended = true;
            return false;
        }
        self.buf.push_str(&String::from_utf8_lossy(&tmp[..got]));
        if self.chunked {
            self.left -= got;
            if self.left == 0 {
                let mut crlf = String::new();
                let _ = self.reader.read_line(&mut crlf);
            }
        }
        true
    }

    /// The next event (comments skipped); `None` when the response ended.
    fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut data, mut any) = (None, Vec::new(), false);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                        any = true;
                    }
                }
                if any {
                    return Some(Event { id, data: data.join("\n") });
                }
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Every event until the response ends.
    fn rest(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.next()).collect()
    }
}

fn initialize(gw: &Gateway, jwt: &str, capabilities: Value) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities,
                   "clientInfo": {"name": "resume-test", "version": "1"}}});
    let r = mcp_post(&gw.url("/mcp"), Some(jwt), &init, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").expect("session id").to_string()
}

/// Waits until discovery lists `n` tools on `fake` (its change is then announced).
fn wait_tools(gw: &Gateway, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = gw.admin("GET", "/admin/mcp/servers");
        let status = if r.status == 200 { r.json() } else { json!({"status": r.status}) };
        if status["servers"]["fake"]["tools"].as_u64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "discovery never saw {n} tools: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(tag: &str, fake: &Versioned, max_events: usize) -> Gateway {
    start_on(tag, fake, max_events, None)
}

/// A gateway whose sessions live in `redis` when given (this instance adopts them).
fn start_on(tag: &str, fake: &Versioned, max_events: usize, redis: Option<&str>) -> Gateway {
    let mut b = Gateway::builder(tag);
    if let Some(url) = redis {
        b = b.env("REDIS_URL", url);
    }
    let gw = b
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .config(&format!(
            "mcp:\n  refresh_interval_seconds: 1\n  replay:\n    max_events_per_session: {max_events}\n  servers:\n    fake:\n      url: \"{}\"\n",
            fake.url()
        ))
        .start();
    wait_tools(&gw, 1);
    gw
}

#[test]
fn a_dropped_standalone_stream_resumes_with_exactly_the_missed_events() {
    let fake = versioned();
    let gw = start("resume-standalone", &fake, 3);
    standalone_resumes(&gw, &fake);
}

/// The same with sessions kept in Redis: the instance serving a session holds its streams.
#[test]
fn a_shared_session_resumes_its_stream_on_the_instance_serving_it() {
    let redis = common::redis::RedisServer::start(&temp_dir("resume-redis"));
    let fake = versioned();
    let gw = start_on("resume-standalone-redis", &fake, 3, Some(&redis.url()));
    standalone_resumes(&gw, &fake);
}

fn standalone_resumes(gw: &Gateway, fake: &Versioned) {
    let admin = gw.mint("root", "acme", "mcp-admin");
    let sid = initialize(gw, &admin, json!({}));
    let change = |to: u32| {
        fake.version.store(to, Ordering::SeqCst);
        wait_tools(gw, u64::from(to) + 1);
    };

    // A fresh stream starts with a priming event: an id, no message.
    let mut first = SseConn::get(gw.port, &admin, &sid, None);
    assert_eq!(first.status, 200);
    let prime = first.next().expect("priming event");
    assert!(prime.id.is_some() && prime.data.is_empty(), "{prime:?}");
    change(1);
    let e1 = first.next().expect("the first change");
    assert_eq!(e1.method().as_deref(), Some(LIST_CHANGED), "{e1:?}");
    assert_eq!(e1.stream(), prime.stream(), "one stream, one id prefix");
    assert!(e1.seq() > prime.seq());
    drop(first); // the connection drops after the first notification

    change(2);
    change(3);
    let mut again = SseConn::get(gw.port, &admin, &sid, e1.id.as_deref());
    assert_eq!(again.status, 200);
    let (e2, e3) = (again.next().expect("missed 1"), again.next().expect("missed 2"));
    for e in [&e2, &e3] {
        assert_eq!(e.method().as_deref(), Some(LIST_CHANGED), "{e:?}");
        assert_eq!(e.stream(), e1.stream(), "{e:?}");
    }
    assert!(e1.seq() < e2.seq() && e2.seq() < e3.seq(), "replayed in order: {e1:?} {e2:?} {e3:?}");
    // Then live: the next event is the next change, nothing replayed twice in between.
    change(4);
    let e4 = again.next().expect("live after the replay");
    assert_eq!(e4.method().as_deref(), Some(LIST_CHANGED));
    assert!(e4.seq() > e3.seq(), "{e3:?} then {e4:?}");

    // An id of another session matches nothing there: a fresh stream of its own, which first
    // tells the client to re-list (it may have missed changes).
    let other = initialize(gw, &admin, json!({}));
    let mut theirs = SseConn::get(gw.port, &admin, &other, e1.id.as_deref());
    let p = theirs.next().expect("priming");
    assert!(p.data.is_empty() && p.stream() != e1.stream(), "{p:?}");
    let resync = theirs.next().expect("re-list");
    assert_eq!((resync.method().as_deref(), resync.stream()), (Some(LIST_CHANGED), p.stream()));
    drop(theirs);

    // Past the window (3 events): resuming from e4 after 4 more changes starts fresh.
    drop(again);
    for v in 5..=8 {
        change(v);
    }
    let mut late = SseConn::get(gw.port, &admin, &sid, e4.id.as_deref());
    let p = late.next().expect("priming of the fresh stream");
    assert!(p.data.is_empty(), "not a replay: {p:?}");
    assert!(p.seq() > e4.seq());
    let resync = late.next().expect("re-list");
    assert_eq!(resync.method().as_deref(), Some(LIST_CHANGED));
    drop(late);

    // The session ends: its streams cannot be resumed.
    let auth = format!("Bearer {admin}");
    let r = http("DELETE", &gw.url("/mcp"), &[("authorization", &auth), ("mcp-session-id", &sid)], b"");
    assert_eq!(r.status, 200);
    let gone = SseConn::get(gw.port, &admin, &sid, e4.id.as_deref());
    assert_eq!(gone.status, 404);
}

#[test]
fn a_confirmation_whose_connection_dropped_is_resumed_and_the_call_runs_once() {
    let fake = versioned();
    let gw = start("resume-post", &fake, 64);
    let user = gw.mint("root", "acme", "mcp-admin");
    let sid = initialize(&gw, &user, json!({"elicitation": {}}));
    // Untrusted and unannotated: t0 counts as destructive, so the call is held and asked.
    let call = tools_call(7, "fake__t0", json!({})).to_string();
    let mut post = SseConn::open(
        gw.port,
        &format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\nauthorization: Bearer {user}\r\n\
             mcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{call}",
            gw.port,
            call.len()
        ),
    );
    assert_eq!(post.status, 200);
    let prime = post.next().expect("priming event");
    assert!(prime.data.is_empty() && prime.id.is_some(), "{prime:?}");
    let question = post.next().expect("the elicitation");
    assert_eq!(question.method().as_deref(), Some("elicitation/create"), "{question:?}");
    assert_eq!(question.stream(), prime.stream());
    drop(post); // the POST's connection drops before the answer

    let answer = json!({"jsonrpc": "2.0", "id": question.json()["id"],
        "result": {"action": "accept", "content": {"confirm": true}}});
    let r = mcp_post(&gw.url("/mcp"), Some(&user), &answer, &[("mcp-session-id", &sid)]);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));

    // Resumed by GET: the rest of that reply — the call's result — and the stream ends.
    let mut resumed = SseConn::get(gw.port, &user, &sid, question.id.as_deref());
    assert_eq!(resumed.status, 200);
    let rest = resumed.rest();
    assert_eq!(rest.len(), 1, "{rest:?}");
    let result = rest[0].json();
    assert_eq!(result["id"], 7, "{result}");
    assert_eq!(result["result"]["content"][0]["text"], "ran t0", "{result}");
    assert_eq!(rest[0].stream(), question.stream(), "the POST's own stream");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "ran once");

    // From the priming id: the whole reply again, question and result.
    let all = SseConn::get(gw.port, &user, &sid, prime.id.as_deref()).rest();
    let methods: Vec<Option<String>> = all.iter().map(Event::method).collect();
    assert_eq!(methods, [Some("elicitation/create".to_string()), None], "{all:?}");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "a replay runs nothing");
}

#[test]
fn last_event_id_reaches_the_upstream_on_the_proxied_door() {
    let upstream = Lenient::start();
    let gw = Gateway::builder("resume-proxied")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .config(&format!(
            "mcp:\n  refresh_interval_seconds: 3600\n  servers:\n    demo:\n      url: \"{}\"\n      discover: false\n",
            upstream.url()
        ))
        .start();
    let user = gw.mint("alice", "acme", "mcp-user");
    let auth = format!("Bearer {user}");
    let mark = upstream.log_len();
    let headers = [
        ("authorization", auth.as_str()),
        ("accept", "text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
        ("last-event-id", "upstream-stream-42"),
    ];
    let r = http("GET", &gw.url("/mcp/demo"), &headers, b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let gets: Vec<_> = upstream.log_since(mark).into_iter().filter(|x| x.method == "GET").collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].header("last-event-id"), Some("upstream-stream-42"));

    // Two of them are ambiguous: refused, nothing forwarded.
    let mark = upstream.log_len();
    let mut twice = headers.to_vec();
    twice.push(("last-event-id", "other"));
    let r = http("GET", &gw.url("/mcp/demo"), &twice, b"");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(upstream.log_since(mark).len(), 0);
}
