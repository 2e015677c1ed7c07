//! A fake OAuth token endpoint for tests: HTTP/1.1 on 127.0.0.1, one thread per connection,
//! form bodies decoded, every request recorded, answers from a handler closure.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// Lower-cased header names.
    pub headers: HashMap<String, String>,
    pub form: BTreeMap<String, String>,
}

impl Request {
    pub fn form(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }

    /// `(id, secret)` from `Authorization: Basic …`, url-decoded.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let value = self.headers.get("authorization")?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(value).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((url_decode(id), url_decode(secret)))
    }
}

type Handler = dyn Fn(&Request, usize) -> (u16, String) + Send + Sync;

/// The running server. Its threads live until the test process exits.
pub struct FakeServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
    requests: Arc<parking_lot::Mutex<Vec<Request>>>,
}

impl FakeServer {
    /// Starts a server answering every request with `handler(request, hit_number)` (1-based),
    /// as `(status, json_body)`.
    pub fn start(handler: impl Fn(&Request, usize) -> (u16, String) + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        let hits = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (h, r) = (hits.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (h, r, handler) = (h.clone(), r.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &h, &r, &*handler));
            }
        });
        FakeServer { url, hits, requests }
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The last request received.
    pub fn last(&self) -> Request {
        self.requests.lock().last().cloned().expect("no request")
    }
}

fn serve(stream: TcpStream, hits: &AtomicUsize, requests: &parking_lot::Mutex<Vec<Request>>, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let form = String::from_utf8_lossy(&body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect();
    let request = Request { path, headers, form };
    requests.lock().push(request.clone());
    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
    let (status, body) = handler(&request, n);
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

/// Decodes `application/x-www-form-urlencoded`.
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).expect("bad percent escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

/// A JSON token response.
pub fn token_json(access_token: &str, expires_in: Option<u64>) -> String {
    let mut v = serde_json::json!({ "access_token": access_token, "token_type": "bearer" });
    if let Some(e) = expires_in {
        v["expires_in"] = e.into();
    }
    v.to_string()
}
