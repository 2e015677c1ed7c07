//! `sse-idle`: opens N idle SSE streams on the gateway's federated `/mcp` and holds them.
//!
//! One stream needs one session (a second GET on a session replaces its first stream), so
//! each stream costs three requests: `initialize` (protocol 2025-11-25) → `Mcp-Session-Id`,
//! `notifications/initialized` on it (202), then `GET` with the session id and
//! `Accept: text/event-stream` on a connection of its own, read up to the end of the 200
//! head and then never read again (the gateway's keep-alive comments every 30 s sit in the
//! socket buffer). The POSTs go over one keep-alive connection per opener thread.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::request::{build, Conn, Target};

pub const PROTOCOL: &str = "2025-11-25";

pub struct Options {
    pub target: Target,
    pub count: usize,
    /// Extra headers on every request (the JWT).
    pub headers: Vec<String>,
    /// Opener threads.
    pub parallel: usize,
    pub timeout: Duration,
}

pub struct Opened {
    pub streams: Vec<TcpStream>,
    pub failed: usize,
    pub first_errors: Vec<String>,
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"pacer","version":"0.1.0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const POST_DEFAULTS: &[(&str, &str)] =
    &[("content-type", "application/json"), ("accept", "application/json, text/event-stream")];

/// Opens `count` streams with `parallel` threads; failures are counted, not retried.
pub fn open(opts: Options) -> Result<Opened, String> {
    let addr = opts.target.addr()?;
    let opts = Arc::new(opts);
    let claimed = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Opened { streams: Vec::with_capacity(opts.count), failed: 0, first_errors: vec![] }));
    let threads: Vec<_> = (0..opts.parallel.clamp(1, opts.count.max(1)))
        .map(|_| {
            let (opts, claimed, out) = (opts.clone(), claimed.clone(), out.clone());
            std::thread::spawn(move || opener(&opts, addr, &claimed, &out))
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "opener thread panicked".to_string())?;
    }
    let out = Arc::try_unwrap(out).map_err(|_| "opener still running".to_string())?;
    out.into_inner().map_err(|_| "poisoned".to_string())
}

fn opener(opts: &Options, addr: SocketAddr, claimed: &AtomicUsize, out: &Mutex<Opened>) {
    let mut control: Option<Conn> = None;
    while claimed.fetch_add(1, Ordering::Relaxed) < opts.count {
        let result = open_one(opts, addr, &mut control);
        let Ok(mut o) = out.lock() else { return };
        match result {
            Ok(s) => o.streams.push(s),
            Err(e) => {
                control = None;
                o.failed += 1;
                if o.first_errors.len() < 5 {
                    o.first_errors.push(e);
                }
            }
        }
    }
}

/// initialize → notifications/initialized → GET; the GET's socket, its head read.
fn open_one(opts: &Options, addr: SocketAddr, control: &mut Option<Conn>) -> Result<TcpStream, String> {
    let io = |what: &str, e: io::Error| format!("{what}: {e}");
    if control.is_none() {
        *control = Some(Conn::connect(addr, opts.timeout).map_err(|e| io("connect", e))?);
    }
    let Some(c) = control.as_mut() else { return Err("no connection".into()) };
    let init = build("POST", &opts.target, POST_DEFAULTS, &opts.headers, INITIALIZE.as_bytes());
    let r = c.roundtrip(&init).map_err(|e| io("initialize", e))?;
    if r.head.close {
        *control = None;
    }
    if r.head.status != 200 {
        return Err(format!("initialize answered HTTP {}", r.head.status));
    }
    let session = r.head.session_id.ok_or("initialize answered without Mcp-Session-Id")?;
    let mut headers = opts.headers.clone();
    headers.push(format!("mcp-session-id: {session}"));
    headers.push(format!("mcp-protocol-version: {PROTOCOL}"));
    let note = build("POST", &opts.target, POST_DEFAULTS, &headers, INITIALIZED.as_bytes());
    if control.is_none() {
        *control = Some(Conn::connect(addr, opts.timeout).map_err(|e| io("connect", e))?);
    }
    let Some(c) = control.as_mut() else { return Err("no connection".into()) };
    let r = c.roundtrip(&note).map_err(|e| io("notifications/initialized", e))?;
    if r.head.close {
        *control = None;
    }
    if !(200..300).contains(&r.head.status) {
        return Err(format!("notifications/initialized answered HTTP {}", r.head.status));
    }
    let get = build("GET", &opts.target, &[("accept", "text/event-stream")], &headers, b"");
    let mut s = Conn::connect(addr, opts.timeout).map_err(|e| io("connect stream", e))?;
    std::io::Write::write_all(&mut s.sock, &get).map_err(|e| io("GET", e))?;
    let head = s.read_head().map_err(|e| io("GET head", e))?;
    let sse = head.content_type.as_deref().is_some_and(|t| t.starts_with("text/event-stream"));
    if head.status != 200 || !sse {
        return Err(format!("GET answered HTTP {} ({})", head.status, head.content_type.unwrap_or_default()));
    }
    Ok(s.sock)
}
