//! Where requests go (a plain `http://host:port/path` URL) and their bytes, built once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::http::{parse_head, parse_response, Head, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` as written, for the Host header and name resolution.
    pub authority: String,
    pub path: String,
}

impl Target {
    /// Parses `http://host[:port][/path]` (no TLS; default port 80, path `/`).
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Target { authority, path: path.to_string() })
    }

    pub fn addr(&self) -> Result<SocketAddr, String> {
        self.authority
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.authority))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.authority))
    }
}

/// The bytes of one request: `method path`, Host, `defaults` unless `extra` names the same
/// header, `extra` (`name: value` strings), Content-Length when there is a body.
pub fn build(method: &str, target: &Target, defaults: &[(&str, &str)], extra: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {} HTTP/1.1\r\nhost: {}\r\n", target.path, target.authority);
    let named =
        |name: &str| extra.iter().any(|h| h.split_once(':').is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name)));
    for (name, value) in defaults {
        if !named(name) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    for h in extra {
        out.push_str(h.trim());
        out.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A keep-alive client connection with its read buffer.
pub struct Conn {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let sock = TcpStream::connect_timeout(&addr, timeout)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(timeout))?;
        Ok(Conn { sock, buf: Vec::with_capacity(4096) })
    }

    /// Writes `request` and reads one whole response (a read timeout is an error).
    pub fn roundtrip(&mut self, request: &[u8]) -> io::Result<Response> {
        self.sock.write_all(request)?;
        self.read_response()
    }

    /// Reads one whole response; the bytes after it stay buffered for the next one.
    pub fn read_response(&mut self) -> io::Result<Response> {
        let mut eof = false;
        loop {
            match parse_response(&self.buf, eof) {
                Ok(Some(r)) => {
                    self.buf.drain(..r.len);
                    return Ok(r);
                }
                Ok(None) if eof => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-response")),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.0)),
            }
            eof = self.fill()? == 0;
        }
    }

    /// Reads until a response head is complete (a stream's body is left unread).
    pub fn read_head(&mut self) -> io::Result<Head> {
        loop {
            match parse_head(&self.buf) {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.0)),
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the response head"));
            }
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.sock.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:3001/mcp/bench").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("127.0.0.1:3001", "/mcp/bench"));
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("localhost:80", "/"));
        assert!(Target::parse("https://x/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn request_bytes_let_extra_headers_replace_defaults() {
        let t = Target::parse("http://h:1/p").unwrap();
        let extra = vec!["Accept: text/event-stream".to_string(), "authorization: Bearer x".to_string()];
        let r = build("POST", &t, &[("content-type", "application/json"), ("accept", "*/*")], &extra, b"{}");
        let r = String::from_utf8(r).unwrap();
        assert_eq!(
            r,
            "POST /p HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\nAccept: text/event-stream\r\n\
             authorization: Bearer x\r\ncontent-length: 2\r\n\r\n{}"
        );
        let g = String::from_utf8(build("GET", &t, &[], &[], b"")).unwrap();
        assert_eq!(g, "GET /p HTTP/1.1\r\nhost: h:1\r\n\r\n");
    }
}
