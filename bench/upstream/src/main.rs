//! bench-upstream: the smallest useful MCP upstream for load-testing the gateway.
//!
//! A hand-rolled HTTP/1.1 keep-alive server on 127.0.0.1:PORT (2 tokio worker threads). Every
//! request, whatever its method or path, gets
//!
//! ```text
//! 200 OK, content-type: application/json
//! {"jsonrpc":"2.0","id":<id>,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}
//! ```
//!
//! where `<id>` is the top-level JSON-RPC `id` of the request body when it is a plain number,
//! a string without escapes, or null; otherwise 1. Request bodies are read fully, framed by
//! Content-Length or `Transfer-Encoding: chunked` (trailers included), so the connection
//! stays usable. `Expect: 100-continue` is honoured. Buffers are per connection and reused:
//! no allocation per request in the steady state.
//!
//! Usage: `bench-upstream --port P` (P = 0 picks a free port; the bound address is printed).

use std::io::{self, Write as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head (request line + headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How much of a body is kept for `id` extraction; the rest is read and discarded.
const MAX_KEPT_BODY: usize = 64 * 1024;
const INITIAL_BUF: usize = 8 * 1024;

const BODY_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
const BODY_SUFFIX: &[u8] = br#","result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#;

fn main() {
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" | "-p" => {
                let v = args.next().unwrap_or_default();
                port = v.parse().unwrap_or_else(|_| usage(&format!("bad port {v:?}")));
            }
            s if s.starts_with("--port=") => {
                let v = &s["--port=".len()..];
                port = v.parse().unwrap_or_else(|_| usage(&format!("bad port {v:?}")));
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bench-upstream: bind 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            }
        };
        let addr = listener.local_addr().expect("local_addr");
        println!("bench-upstream listening on http://{addr}");
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(async move {
                        let _ = Conn::new(sock).serve().await;
                    });
                }
                Err(e) => {
                    // EMFILE and friends: report and let other tasks make progress.
                    eprintln!("bench-upstream: accept: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    });
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("bench-upstream: {msg}");
    }
    eprintln!("usage: bench-upstream --port PORT");
    std::process::exit(if msg.is_empty() { 0 } else { 2 });
}

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// What the head of a request says about framing and the connection.
struct Head {
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    expect_continue: bool,
    is_head: bool,
}

struct Conn {
    sock: TcpStream,
    /// Read buffer; unconsumed bytes are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Kept prefix of the current request body.
    body: Vec<u8>,
    /// Response being written.
    out: Vec<u8>,
}

impl Conn {
    fn new(sock: TcpStream) -> Self {
        Conn {
            sock,
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            body: Vec::with_capacity(1024),
            out: Vec::with_capacity(512),
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes into the buffer. Ok(0) = peer closed.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_HEAD + INITIAL_BUF {
                return Err(bad("request head too large"));
            }
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let n = self.sock.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Fills until the buffer holds a line ending (CRLF); returns the index of '\r' relative
    /// to `start`.
    async fn line(&mut self) -> io::Result<usize> {
        let mut searched = 0;
        loop {
            let p = self.pending();
            if let Some(i) = find(&p[searched..], b"\r\n") {
                return Ok(searched + i);
            }
            searched = p.len().saturating_sub(1);
            if p.len() > MAX_HEAD {
                return Err(bad("line too long"));
            }
            if self.fill().await? == 0 {
                return Err(bad("eof inside chunked framing"));
            }
        }
    }

    /// Consumes `n` body bytes, keeping up to MAX_KEPT_BODY of them in `self.body`.
    async fn take_body(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.start == self.end && self.fill().await? == 0 {
                return Err(bad("eof inside body"));
            }
            let avail = (self.end - self.start) as u64;
            let k = avail.min(n) as usize;
            let room = MAX_KEPT_BODY.saturating_sub(self.body.len()).min(k);
            if room > 0 {
                self.body.extend_from_slice(&self.buf[self.start..self.start + room]);
            }
            self.start += k;
            n -= k as u64;
        }
        Ok(())
    }

    async fn serve(mut self) -> io::Result<()> {
        loop {
            // 1. Head.
            let head_len = {
                let mut searched = 0;
                loop {
                    let p = self.pending();
                    if let Some(i) = find(&p[searched..], b"\r\n\r\n") {
                        break searched + i + 4;
                    }
                    searched = p.len().saturating_sub(3);
                    if p.len() > MAX_HEAD {
                        self.reply_error(b"431 Request Header Fields Too Large").await?;
                        return Ok(());
                    }
                    if self.fill().await? == 0 {
                        return Ok(()); // clean close between requests (or truncated head)
                    }
                }
            };
            let head = match parse_head(&self.buf[self.start..self.start + head_len]) {
                Some(h) => h,
                None => {
                    self.reply_error(b"400 Bad Request").await?;
                    return Ok(());
                }
            };
            self.start += head_len;

            // 2. Body.
            self.body.clear();
            if head.expect_continue && (head.chunked || head.content_length.unwrap_or(0) > 0) {
                self.sock.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            }
            if head.chunked {
                loop {
                    let i = self.line().await?;
                    let size = parse_chunk_size(&self.buf[self.start..self.start + i])
                        .ok_or_else(|| bad("bad chunk size"))?;
                    self.start += i + 2;
                    if size == 0 {
                        // Trailers, up to and including the empty line.
                        loop {
                            let i = self.line().await?;
                            self.start += i + 2;
                            if i == 0 {
                                break;
                            }
                        }
                        break;
                    }
                    self.take_body(size).await?;
                    let i = self.line().await?;
                    if i != 0 {
                        return Err(bad("chunk not followed by CRLF"));
                    }
                    self.start += 2;
                }
            } else if let Some(n) = head.content_length {
                self.take_body(n).await?;
            }

            // 3. Response.
            self.out.clear();
            let id = extract_id(&self.body).unwrap_or(b"1");
            let body_len = BODY_PREFIX.len() + id.len() + BODY_SUFFIX.len();
            self.out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ",
            );
            let _ = write!(self.out, "{body_len}");
            if head.close {
                self.out.extend_from_slice(b"\r\nconnection: close");
            }
            self.out.extend_from_slice(b"\r\n\r\n");
            if !head.is_head {
                self.out.extend_from_slice(BODY_PREFIX);
                self.out.extend_from_slice(id);
                self.out.extend_from_slice(BODY_SUFFIX);
            }
            self.sock.write_all(&self.out).await?;
            if head.close {
                let _ = self.sock.shutdown().await;
                return Ok(());
            }
            if self.body.capacity() > 4 * MAX_KEPT_BODY {
                self.body = Vec::with_capacity(1024);
            }
        }
    }

    async fn reply_error(&mut self, status: &[u8]) -> io::Result<()> {
        self.out.clear();
        self.out.extend_from_slice(b"HTTP/1.1 ");
        self.out.extend_from_slice(status);
        self.out
            .extend_from_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        self.sock.write_all(&self.out).await?;
        let _ = self.sock.shutdown().await;
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Parses the request line and the headers that matter. `raw` ends with CRLF CRLF.
fn parse_head(raw: &[u8]) -> Option<Head> {
    let mut lines = raw[..raw.len() - 4].split(|&b| b == b'\n');
    let request_line = lines.next()?;
    let request_line = request_line.strip_suffix(b"\r").unwrap_or(request_line);
    let mut parts = request_line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let method = parts.next()?;
    let _target = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with(b"HTTP/1.") {
        return None;
    }
    let http10 = version == b"HTTP/1.0";
    let mut head = Head {
        content_length: None,
        chunked: false,
        close: http10,
        expect_continue: false,
        is_head: method == b"HEAD",
    };
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return None;
        };
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let s = std::str::from_utf8(value).ok()?;
            let n: u64 = s.parse().ok()?;
            if head.content_length.is_some_and(|m| m != n) {
                return None;
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only `chunked` (possibly after other codings) is supported as framing.
            let last = value.rsplit(|&b| b == b',').next().map(trim).unwrap_or(b"");
            if last.eq_ignore_ascii_case(b"chunked") {
                head.chunked = true;
            } else if !value.is_empty() {
                return None;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if contains_token(value, b"close") {
                head.close = true;
            } else if contains_token(value, b"keep-alive") {
                head.close = false;
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            head.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    if head.chunked {
        // RFC 9112 6.3: Transfer-Encoding overrides Content-Length.
        head.content_length = None;
    }
    Some(head)
}

/// Hex chunk size, ignoring chunk extensions (`;name=value`).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = trim(line.split(|&b| b == b';').next()?);
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = (b as char).to_digit(16)? as u64;
        n = n * 16 + d;
    }
    Some(n)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Finds the top-level `"id"` member of a JSON object and returns its raw value when it is a
/// number, a string without escapes, or null. Anything else (absent, nested-only, object,
/// escaped string, batch array, truncated body) gives None.
fn extract_id(b: &[u8]) -> Option<&[u8]> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut depth: u32 = 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Scan a string; note whether it is exactly `id` with no escapes.
                let s = i + 1;
                let mut j = s;
                let mut escaped = false;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        escaped = true;
                        j += 1;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return None;
                }
                let is_id_key = depth == 1 && !escaped && &b[s..j] == b"id";
                i = j + 1;
                if is_id_key {
                    let k = skip_ws(b, i);
                    if b.get(k) == Some(&b':') {
                        let v = skip_ws(b, k + 1);
                        return id_value(b, v);
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn id_value(b: &[u8], v: usize) -> Option<&[u8]> {
    match *b.get(v)? {
        b'"' => {
            let mut j = v + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' || b[j] < 0x20 {
                    return None;
                }
                j += 1;
            }
            (j < b.len()).then(|| &b[v..=j])
        }
        b'-' | b'0'..=b'9' => {
            let mut j = v + 1;
            while j < b.len() && matches!(b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            // Must be followed by a delimiter, i.e. not truncated.
            matches!(skip_ws(b, j), k if k < b.len() && matches!(b[k], b',' | b'}'))
                .then(|| &b[v..j])
        }
        b'n' if b[v..].starts_with(b"null") => Some(&b[v..v + 4]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"jsonrpc":"2.0","id":7,"method":"x"}"#, Some("7")),
            (r#"{"jsonrpc":"2.0","id":"ab-c","method":"x"}"#, Some("\"ab-c\"")),
            (r#"{ "id" : -12.5e3 }"#, Some("-12.5e3")),
            (r#"{"id":null}"#, Some("null")),
            (r#"{"params":{"id":5},"id":9}"#, Some("9")),
            (r#"{"params":{"id":5}}"#, None),
            (r#"{"x":"id","id":3}"#, Some("3")),
            (r#"{"x":"\"id\":4","id":3}"#, Some("3")),
            (r#"{"id":"a\"b"}"#, None),
            (r#"{"id":{"a":1}}"#, None),
            (r#"[{"id":1}]"#, None),
            (r#"{"id":12"#, None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = extract_id(input.as_bytes()).map(|v| std::str::from_utf8(v).unwrap());
            assert_eq!(got, *want, "input {input}");
        }
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"0;ext=1"), Some(0));
        assert_eq!(parse_chunk_size(b"FF "), Some(255));
        assert_eq!(parse_chunk_size(b"zz"), None);
        assert_eq!(parse_chunk_size(b""), None);
    }

    #[test]
    fn heads() {
        let h = parse_head(b"POST /mcp HTTP/1.1\r\nContent-Length: 10\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(h.content_length, Some(10));
        assert!(!h.close && !h.chunked);
        let h = parse_head(
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip, Chunked\r\ncontent-length: 3\r\nConnection: Close\r\n\r\n",
        )
        .unwrap();
        assert!(h.chunked && h.close && h.content_length.is_none());
        let h = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(h.close);
        assert!(parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_none());
    }
}
