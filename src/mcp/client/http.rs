//! Streamable-HTTP transport: one POST per JSON-RPC message, answered with JSON or SSE.
//! HTTPS is verified against the gateway's one root set ([`tls::roots`]).
//!
//! Requests made under a caller's trace carry `traceparent`/`tracestate`
//! ([`headers::trace_headers`]); the GET listening stream, the gateway's own, carries none.
//!
//! The brokered credential headers are attached to every request and never appear in an
//! error or log line: errors are built from status codes, body excerpts and ureq error
//! kinds only.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;
use ureq::http::Response;
use ureq::Body;

use crate::upstream::{headers, tls};

use super::wire::{self, Incoming};
use super::ClientError;
use crate::mcp::sse::{SseItem, SseParser};

/// Longest error-body excerpt kept in [`ClientError::Http`].
const BODY_EXCERPT: usize = 512;

/// What a POST produced.
pub(crate) struct Posted {
    /// The JSON-RPC response matching the request id (None for notifications / 202).
    pub response: Option<Value>,
    /// `Mcp-Session-Id` response header, if the server set one.
    pub session_id: Option<String>,
}

/// Outcome of one GET listening stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenOutcome {
    /// The server does not offer a listening stream (405, or not an event stream).
    NotOffered,
    /// The stream ended (server closed it, the time cap elapsed, or stop was requested).
    Ended,
}

/// HTTP connection state that does not change after construction.
pub(crate) struct HttpConn {
    agent: ureq::Agent,
    url: String,
    /// Brokered credential headers; secret, never logged.
    headers: Vec<(String, String)>,
}

impl HttpConn {
    pub(crate) fn new(url: String, headers: Vec<(String, String)>, timeout: Duration) -> Self {
        let agent: ureq::Agent = tls::ureq_agent_config()
            .timeout_global(Some(timeout))
            // Status codes are protocol signals here (404 = expired session, 405 = no GET stream).
            .http_status_as_error(false)
            .build()
            .into();
        Self { agent, url, headers }
    }

    /// POSTs one JSON-RPC message. When `expect_id` is set, reads the JSON or SSE answer
    /// until the response with that id arrives; notifications on the way go to `on_note`
    /// and server-to-client requests are answered with what `on_request` returns (POSTed
    /// back on the same session).
    pub(crate) fn post(
        &self,
        msg: &Value,
        extra: &[(&'static str, String)],
        expect_id: Option<&Value>,
        on_note: &mut dyn FnMut(&Value),
        on_request: &mut dyn FnMut(&Value) -> Value,
    ) -> Result<Posted, ClientError> {
        self.post_with(msg, extra, &[], expect_id, on_note, on_request)
    }

    /// [`HttpConn::post`] with the request's `Mcp-Param-*` headers (`params`; never repeated
    /// on the replies to server requests the answer may carry).
    pub(crate) fn post_with(
        &self,
        msg: &Value,
        extra: &[(&'static str, String)],
        params: &[(String, String)],
        expect_id: Option<&Value>,
        on_note: &mut dyn FnMut(&Value),
        on_request: &mut dyn FnMut(&Value) -> Value,
    ) -> Result<Posted, ClientError> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream");
        for (k, v) in self.headers.iter() {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            req = req.header(*k, v.as_str());
        }
        for (k, v) in params {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in headers::trace_headers() {
            req = req.header(k, v);
        }
        let body = serde_json::to_string(msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = req.send(body.as_str()).map_err(map_ureq)?;
        let status = resp.status().as_u16();
        let session_id = header(&resp, headers::SESSION_ID);
        if !(200..300).contains(&status) {
            // 2026-era servers put JSON-RPC errors on 4xx statuses (404 + "method not found",
            // 400 + "unsupported version"): a body answering our id is the response.
            let body = self.redact(&read_error_body(resp));
            if let Some(found) = expect_id.and_then(|id| matching_response(&body, id)) {
                return Ok(Posted { response: Some(found), session_id });
            }
            return Err(ClientError::Http { status, body: wire::truncate(&body, BODY_EXCERPT) });
        }
        let Some(id) = expect_id else {
            return Ok(Posted { response: None, session_id });
        };
        // Headers of the request minus the per-message routing ones, for replies we POST back.
        let reply_headers: Vec<(&'static str, String)> =
            extra.iter().filter(|(k, _)| *k != headers::METHOD && *k != headers::NAME).cloned().collect();
        let response = if is_event_stream(&resp) {
            let mut reader = resp.into_body().into_reader();
            let mut stop = || false;
            self.read_events(&mut reader, Some(id), &reply_headers, on_note, on_request, &mut stop)?
        } else if status == 202 || status == 204 {
            None
        } else {
            let text = resp.into_body().read_to_string().map_err(map_ureq)?;
            let parsed: Value = serde_json::from_str(&text)
                .map_err(|_| ClientError::Protocol(format!("invalid JSON body: {}", wire::truncate(&text, 200))))?;
            let mut found = None;
            // A JSON body may be a single message or a batch.
            let items = match parsed {
                Value::Array(items) => items,
                other => vec![other],
            };
            for item in items {
                if wire::classify(&item) == Incoming::Response && item.get("id") == Some(id) {
                    found = Some(item);
                } else {
                    self.handle_side_message(&item, &reply_headers, on_note, on_request);
                }
            }
            found
        };
        match response {
            Some(r) => Ok(Posted { response: Some(r), session_id }),
            None => Err(ClientError::Protocol("the server sent no response for the request".into())),
        }
    }

    /// Opens the optional GET listening stream (session era) and feeds notifications to
    /// `on_note` until the server closes it, `max` elapses or `should_stop` returns true.
    pub(crate) fn listen(
        &self,
        extra: &[(&'static str, String)],
        max: Duration,
        should_stop: &mut dyn FnMut() -> bool,
        on_note: &mut dyn FnMut(&Value),
    ) -> Result<ListenOutcome, ClientError> {
        let mut req = self.agent.get(&self.url).header("Accept", "text/event-stream");
        for (k, v) in self.headers.iter() {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            req = req.header(*k, v.as_str());
        }
        // The stream is long-lived: cap it with its own timeout so a stop request is noticed
        // at the latest when it expires (blocking reads cannot be interrupted otherwise).
        let resp = req.config().timeout_global(Some(max)).build().call().map_err(map_ureq)?;
        let status = resp.status().as_u16();
        if status == 405 || ((200..300).contains(&status) && !is_event_stream(&resp)) {
            return Ok(ListenOutcome::NotOffered);
        }
        if !(200..300).contains(&status) {
            return Err(self.http_error(status, resp));
        }
        let mut reader = resp.into_body().into_reader();
        // Requests on the listening stream belong to no call: the standard reply.
        let mut standard = wire::reply_to_server_request;
        match self.read_events(&mut reader, None, extra, on_note, &mut standard, should_stop) {
            Ok(_) | Err(ClientError::Timeout) => Ok(ListenOutcome::Ended),
            Err(e) => Err(e),
        }
    }

    /// Sends DELETE to end a session; failures only matter for logging.
    pub(crate) fn delete(&self, extra: &[(&'static str, String)]) -> Result<u16, ClientError> {
        let mut req = self.agent.delete(&self.url);
        for (k, v) in self.headers.iter() {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            req = req.header(*k, v.as_str());
        }
        for (k, v) in headers::trace_headers() {
            req = req.header(k, v);
        }
        let resp = req.call().map_err(map_ureq)?;
        Ok(resp.status().as_u16())
    }

    fn http_error(&self, status: u16, resp: Response<Body>) -> ClientError {
        ClientError::Http { status, body: wire::truncate(&self.redact(&read_error_body(resp)), BODY_EXCERPT) }
    }

    /// Removes the brokered header values (and their bare tokens, e.g. after `Bearer `)
    /// from server text, in case a server reflects request headers in an error page.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (_, v) in &self.headers {
            for secret in [Some(v.as_str()), v.split_whitespace().last()].into_iter().flatten() {
                if secret.len() >= 4 {
                    out = out.replace(secret, "[redacted]");
                }
            }
        }
        out
    }

    /// Reads SSE events until the response with `expect_id` arrives (returned), the stream
    /// ends (None) or `should_stop` says so (None).
    fn read_events(
        &self,
        reader: &mut dyn Read,
        expect_id: Option<&Value>,
        reply_headers: &[(&'static str, String)],
        on_note: &mut dyn FnMut(&Value),
        on_request: &mut dyn FnMut(&Value) -> Value,
        should_stop: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Value>, ClientError> {
        let mut parser = SseParser::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = reader.read(&mut buf).map_err(map_io)?;
            // Lenient: a server that closes right after its last `data:` line still counts.
            let events: Vec<_> = if n == 0 {
                parser.finish().event.into_iter().collect()
            } else {
                parser.feed(&buf[..n]).into_iter().filter_map(SseItem::into_event).collect()
            };
            for ev in events {
                if ev.event != "message" {
                    continue; // MCP only uses the default event type for JSON-RPC messages
                }
                let Ok(msg) = serde_json::from_str::<Value>(&ev.data) else {
                    tracing::debug!(url = %self.url, "ignoring non-JSON SSE event");
                    continue;
                };
                if wire::classify(&msg) == Incoming::Response {
                    if expect_id.is_some() && msg.get("id") == expect_id {
                        return Ok(Some(msg));
                    }
                } else {
                    self.handle_side_message(&msg, reply_headers, on_note, on_request);
                }
            }
            if n == 0 || should_stop() {
                return Ok(None);
            }
        }
    }

    /// Delivers notifications and answers server-to-client requests (with `on_request`'s
    /// reply, which may take as long as the caller needs to get one).
    fn handle_side_message(
        &self,
        msg: &Value,
        reply_headers: &[(&'static str, String)],
        on_note: &mut dyn FnMut(&Value),
        on_request: &mut dyn FnMut(&Value) -> Value,
    ) {
        match wire::classify(msg) {
            Incoming::Notification => on_note(msg),
            Incoming::Request => {
                let reply = on_request(msg);
                let method = msg.get("method").and_then(Value::as_str).unwrap_or_default();
                tracing::debug!(url = %self.url, method, "answering server-initiated request");
                if let Err(e) = self.post(&reply, reply_headers, None, &mut |_| {}, &mut wire::reply_to_server_request)
                {
                    tracing::debug!(url = %self.url, method, error = %e, "could not deliver reply to server request");
                }
            }
            Incoming::Response | Incoming::Other => {}
        }
    }
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn is_event_stream(resp: &Response<Body>) -> bool {
    header(resp, "content-type").is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"))
}

/// Reads (a bounded prefix of) an error body. It is the server's text, never ours, so it
/// cannot contain the credential header unless the server reflects it back.
fn read_error_body(resp: Response<Body>) -> String {
    resp.into_body().with_config().limit(64 * 1024).read_to_string().unwrap_or_default()
}

/// The JSON-RPC response for `id` in an error body, if the body is one.
fn matching_response(body: &str, id: &Value) -> Option<Value> {
    let msg: Value = serde_json::from_str(body).ok()?;
    (wire::classify(&msg) == Incoming::Response && msg.get("id") == Some(id)).then_some(msg)
}

/// Maps ureq errors onto the client's error kinds (no request details, so no secrets).
pub(crate) fn map_ureq(e: ureq::Error) -> ClientError {
    match e {
        ureq::Error::Timeout(_) => ClientError::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => ClientError::Unreachable(e.to_string()),
        ureq::Error::Io(io) => map_io(io),
        other => ClientError::Io(other.to_string()),
    }
}

/// Maps I/O errors (also what body readers return, wrapping ureq errors).
pub(crate) fn map_io(e: std::io::Error) -> ClientError {
    use std::io::ErrorKind::*;
    match e.kind() {
        TimedOut | WouldBlock => ClientError::Timeout,
        ConnectionRefused | ConnectionReset | NotConnected | AddrNotAvailable => {
            ClientError::Unreachable(e.to_string())
        }
        _ => match e.into_inner() {
            Some(inner) => match inner.downcast::<ureq::Error>() {
                Ok(ue) => map_ureq(*ue),
                Err(other) => ClientError::Io(other.to_string()),
            },
            None => ClientError::Io("I/O error".into()),
        },
    }
}
