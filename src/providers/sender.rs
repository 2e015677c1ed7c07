//! Sends one buffered HTTP request to a provider through pingora's connector (its
//! connection pool and timeouts), and reads the whole, bounded response.
//!
//! REST invocations need the provider's complete answer before they reply (output schema,
//! the `{"toolId","result","token_meta"}` envelope, idempotency records), so they use the
//! connector directly rather than the streaming proxy path.
//!
//! Names resolve once through [`upstream::resolve_all`]; for a destination only a manifest
//! named ([`Egress::Checked`]) every address must pass the egress policy
//! ([`upstream::egress`]) and the connection goes to the checked address itself (pingora is
//! handed a socket address, never the name), so no second DNS answer can slip in. The `Host`
//! header follows [`upstream::endpoint::authority`], and HTTPS is verified by pingora's
//! connector against the roots [`upstream::tls`] documents (the same loader, the same
//! certificates). Redirects are never followed: a 3xx is handed back like any other answer.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::SpanKind;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use crate::otel;
use crate::upstream::{self, EgressError, EgressPolicy};

/// Largest provider response read (bytes); more is a provider error.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// One request, fully formed by a provider. `tls`, `host` and `port` are the provider's
/// [`upstream::Endpoint`]'s.
pub struct Outgoing<'a> {
    pub tls: bool,
    pub host: &'a str,
    pub port: u16,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Option<&'a [u8]>,
    /// Whether the destination's addresses are checked before connecting.
    pub egress: Egress<'a>,
}

/// How the sender treats the addresses a destination resolves to.
#[derive(Debug, Clone, Copy)]
pub enum Egress<'a> {
    /// The destination is operator configuration (a built-in provider's base URL, a URL a
    /// credential is bound to): connect to what it resolves to.
    Operator,
    /// A manifest named the destination: every resolved address must pass the policy, and the
    /// checked address is the one connected to.
    Checked(&'a EgressPolicy),
}

/// The provider's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    #[error("provider timed out")]
    Timeout,
    #[error("provider unreachable or failed: {0}")]
    Failed(String),
    /// The egress policy refused the destination; nothing was connected to.
    #[error("{0}")]
    Refused(EgressError),
}

/// The shared connector.
pub struct Sender {
    connector: Connector,
}

impl Default for Sender {
    fn default() -> Self {
        Sender { connector: Connector::new(None) }
    }
}

impl Sender {
    /// Sends `req`, failing with [`SendError::Timeout`] when connecting takes longer than
    /// `connect` or the whole exchange longer than `total`.
    ///
    /// Under a request's trace ([`otel::current`]) the call is a child span and the provider
    /// gets `traceparent`/`tracestate` naming it.
    pub async fn send(&self, req: &Outgoing<'_>, connect: Duration, total: Duration) -> Result<Reply, SendError> {
        let span = otel::child("upstream", SpanKind::Client);
        if let Some(s) = span.as_ref().filter(|s| s.trace().is_recording()) {
            s.set("server.address", req.host.to_string());
            s.set("server.port", i64::from(req.port));
            s.set("http.request.method", req.method.to_string());
        }
        let trace_headers = span.as_ref().map(otel::Span::headers).unwrap_or_default();
        let out = match tokio::time::timeout(total, self.exchange(req, &trace_headers, connect, total)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout),
        };
        if let Some(s) = span.as_ref() {
            match &out {
                Ok(reply) => s.set("http.response.status_code", i64::from(reply.status)),
                Err(SendError::Timeout) => s.fail("provider timed out"),
                Err(SendError::Refused(_)) => s.fail("egress refused"),
                Err(SendError::Failed(_)) => s.fail("provider unreachable or failed"),
            }
        }
        out
    }

    async fn exchange(
        &self,
        req: &Outgoing<'_>,
        trace_headers: &[(&'static str, String)],
        connect: Duration,
        total: Duration,
    ) -> Result<Reply, SendError> {
        if let Egress::Checked(policy) = req.egress {
            // Literal and numeric-form hosts are judged before any lookup.
            policy.check_host(req.host, req.port).map_err(SendError::Refused)?;
        }
        let addrs = upstream::resolve_all(req.host, req.port).await.map_err(|e| SendError::Failed(e.to_string()))?;
        let addr = match req.egress {
            Egress::Checked(policy) => policy.check_resolved(req.host, &addrs).map_err(SendError::Refused)?,
            Egress::Operator => *addrs.first().ok_or_else(|| SendError::Failed("no address".into()))?,
        };
        let mut peer = HttpPeer::new(addr, req.tls, req.host.to_string());
        peer.options.connection_timeout = Some(connect);
        peer.options.read_timeout = Some(total);
        peer.options.write_timeout = Some(total);
        let (mut session, _reused) = self.connector.get_http_session(&peer).await.map_err(map_err)?;
        let mut header = RequestHeader::build(req.method, req.path_and_query.as_bytes(), None).map_err(map_err)?;
        header.insert_header("host", upstream::endpoint::authority(req.tls, req.host, req.port)).map_err(map_err)?;
        for (k, v) in req.headers {
            header.insert_header(k.clone(), v.as_str()).map_err(map_err)?;
        }
        for (k, v) in trace_headers {
            header.insert_header(*k, v.as_str()).map_err(map_err)?;
        }
        let body = req.body.unwrap_or_default();
        header.insert_header("content-length", body.len().to_string()).map_err(map_err)?;
        session.write_request_header(Box::new(header)).await.map_err(map_err)?;
        if !body.is_empty() {
            session.write_request_body(Bytes::copy_from_slice(body), true).await.map_err(map_err)?;
        }
        session.finish_request_body().await.map_err(map_err)?;
        session.read_response_header().await.map_err(map_err)?;
        let (status, content_type) = match session.response_header() {
            Some(h) => {
                (h.status.as_u16(), h.headers.get("content-type").and_then(|v| v.to_str().ok()).map(String::from))
            }
            None => return Err(SendError::Failed("no response header".into())),
        };
        let mut out = Vec::new();
        while let Some(chunk) = session.read_response_body().await.map_err(map_err)? {
            if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(SendError::Failed("response too large".into()));
            }
            out.extend_from_slice(&chunk);
        }
        self.connector.release_http_session(session, &peer, Some(Duration::from_secs(60))).await;
        Ok(Reply { status, content_type, body: out })
    }
}

#[allow(clippy::boxed_local)] // pingora hands its errors out boxed
fn map_err(e: Box<pingora::Error>) -> SendError {
    use pingora::ErrorType::*;
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout => SendError::Timeout,
        // The detail is for the log (it names hosts and TLS problems, never credentials).
        _ => SendError::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    #[tokio::test]
    async fn sends_and_reads_a_whole_exchange() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let reply = r#"{"ok":true}"#;
            write!(
                s,
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
            (head, body)
        });
        let headers = vec![("x-api-key".to_string(), "k".to_string())];
        let req = Outgoing {
            tls: false,
            host: "127.0.0.1",
            port,
            method: "POST",
            path_and_query: "/v1/deals?api_token=t",
            headers: &headers,
            body: Some(br#"{"title":"t"}"#),
            egress: Egress::Operator,
        };
        let mut caller = http::HeaderMap::new();
        caller.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        let trace = otel::Trace::request(&caller, "POST /tools/{toolId}/invoke".into());
        let sender = Sender::default();
        let sent = otel::scope(Some(trace), sender.send(&req, Duration::from_secs(2), Duration::from_secs(5)));
        let reply = sent.await.unwrap();
        assert_eq!(reply.status, 201);
        assert_eq!(reply.body, br#"{"ok":true}"#);
        let (head, body) = server.join().unwrap();
        // The provider hears of the caller's trace through the gateway's own child span.
        let tp = head.lines().find_map(|l| l.strip_prefix("traceparent: ")).expect("traceparent sent");
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !tp.contains("00f067aa0ba902b7"), "{tp}");
        assert!(head.starts_with("POST /v1/deals?api_token=t HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("x-api-key: k"));
        assert!(head.to_ascii_lowercase().contains(&format!("host: 127.0.0.1:{port}\r\n")), "{head}");
        assert_eq!(body, br#"{"title":"t"}"#);
    }

    #[tokio::test]
    async fn silence_is_a_timeout_and_refusal_a_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let req = Outgoing {
            tls: false,
            host: "127.0.0.1",
            port,
            method: "GET",
            path_and_query: "/",
            headers: &[],
            body: None,
            egress: Egress::Operator,
        };
        let err = Sender::default().send(&req, Duration::from_secs(1), Duration::from_millis(300)).await.unwrap_err();
        assert_eq!(err, SendError::Timeout);
        drop(hold.join());
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let req = Outgoing { port: closed, ..req };
        let err = Sender::default().send(&req, Duration::from_secs(1), Duration::from_secs(2)).await.unwrap_err();
        assert!(matches!(err, SendError::Failed(_)), "{err:?}");
    }

    /// A listener that answers `204` to whatever connects, counting connections.
    fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
            }
        });
        (port, seen)
    }

    #[tokio::test]
    async fn a_checked_destination_is_refused_before_connecting_whatever_the_host_spelling() {
        let (port, seen) = counting_listener();
        let policy = EgressPolicy::new(&[], true, &[]).unwrap();
        let secret = vec![("authorization".to_string(), "Bearer SECRET".to_string())];
        for host in ["127.0.0.1", "localhost", "::ffff:127.0.0.1", "2130706433", "0x7f.1"] {
            let req = Outgoing {
                tls: false,
                host,
                port,
                method: "GET",
                path_and_query: "/",
                headers: &secret,
                body: None,
                egress: Egress::Checked(&policy),
            };
            let err = Sender::default().send(&req, Duration::from_secs(1), Duration::from_secs(2)).await.unwrap_err();
            assert!(matches!(err, SendError::Refused(_)), "{host}: {err:?}");
            assert!(!err.to_string().contains("SECRET"));
        }
        // The same listener, listed: reached, through the checked address.
        let listed = EgressPolicy::new(&[format!("127.0.0.1:{port}")], true, &[]).unwrap();
        let req = Outgoing {
            tls: false,
            host: "127.0.0.1",
            port,
            method: "GET",
            path_and_query: "/",
            headers: &[],
            body: None,
            egress: Egress::Checked(&listed),
        };
        let reply = Sender::default().send(&req, Duration::from_secs(1), Duration::from_secs(2)).await.unwrap();
        assert_eq!(reply.status, 204);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1, "only the allowed request connected");
    }
}
