//! The fail-closed rewriter for one upstream response the gateway must read (a `tools/list`
//! result to filter per caller, results to mark `resultType: complete`).
//!
//! Whatever leaves it was checked: a body the gateway cannot read completely (compressed,
//! of an unknown type, not JSON, cut off inside an SSE event, larger than the cap) is
//! replaced by a JSON-RPC error for the request id, never passed on as the upstream sent
//! it. JSON bodies are held to the end and rewritten once; SSE events are rewritten as each
//! completes, so a stream is never held beyond one event and what was emitted before a
//! failure (already checked) stays emitted. Pure: no sockets, no headers written.

use serde::de::IgnoredAny;
use serde_json::{json, Value};

use crate::mcp::sse::{EventEdit, SseEvent, SseRewriter};

/// `error.message` of the replacement answer.
pub const FAILURE_MESSAGE: &str = "the upstream's answer could not be checked by the gateway";

/// What the caller's rewrite decides for one complete JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Pass the upstream's bytes on unchanged.
    Keep,
    /// Send these bytes instead.
    Replace(Vec<u8>),
    /// Leave the message out (an SSE event; a JSON body cannot lose its one message, so
    /// there it fails).
    Drop,
    /// The message cannot be checked: answer with the error instead.
    Fail,
}

/// The parts of the upstream response's head the filter decides on.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamHead<'a> {
    pub status: u16,
    /// `Content-Type` (every value joined with `, ` when repeated).
    pub content_type: Option<&'a str>,
    /// `Content-Encoding` (every value joined with `, ` when repeated).
    pub content_encoding: Option<&'a str>,
}

/// The rewriter for one response.
pub struct ResponseFilter {
    id: Value,
    corr_id: String,
    cap: usize,
    /// The failure answer is one SSE event (else one JSON body).
    sse: bool,
    /// The upstream's type is unknown: the downstream gets `application/json`.
    json_instead: bool,
    state: State,
    failure: Option<String>,
}

enum State {
    /// A status without a body (1xx, 204, 304): nothing to check.
    Pass,
    /// `application/json`: held until the end.
    Json(Vec<u8>),
    /// `text/event-stream`: rewritten event by event.
    Sse(SseRewriter),
    /// Unreadable (why): fails at the first body byte; an empty body stays empty.
    Refuse(String),
    /// Finished or failed: anything more from the upstream is dropped.
    Done,
}

impl ResponseFilter {
    /// The filter for the answer to request `id`, holding at most `cap` bytes.
    pub fn new(id: Value, corr_id: &str, head: UpstreamHead<'_>, cap: usize) -> Self {
        let media = head.content_type.map(media_type);
        let sse = media.as_deref() == Some("text/event-stream");
        let json = media.as_deref() == Some("application/json");
        let state = if matches!(head.status, 100..=199 | 204 | 304) {
            State::Pass
        } else if !is_identity(head.content_encoding) {
            State::Refuse(format!("the answer is encoded ({})", head.content_encoding.unwrap_or_default()))
        } else if sse {
            State::Sse(SseRewriter::default())
        } else if json {
            State::Json(Vec::new())
        } else {
            State::Refuse(format!("the answer's content type is {:?}", head.content_type.unwrap_or("none")))
        };
        let json_instead = !sse && !json && !matches!(state, State::Pass);
        ResponseFilter { id, corr_id: corr_id.to_string(), cap, sse, json_instead, state, failure: None }
    }

    /// False for a status without a body: the glue leaves such a response alone.
    pub fn reads_body(&self) -> bool {
        !matches!(self.state, State::Pass)
    }

    /// The `Content-Type` the glue must send downstream instead of the upstream's, if any.
    pub fn content_type(&self) -> Option<&'static str> {
        self.json_instead.then_some("application/json")
    }

    /// Why the response was replaced, once (for the glue's log line).
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Feeds a body chunk (`end`: the last one) and returns the bytes to send now. `rewrite`
    /// gets each complete JSON-RPC message, already checked to be JSON.
    pub fn push(&mut self, chunk: &[u8], end: bool, rewrite: &mut dyn FnMut(&[u8]) -> Rewrite) -> Vec<u8> {
        let mut out = Vec::new();
        let outcome = match &mut self.state {
            State::Pass => {
                out.extend_from_slice(chunk);
                Ok(())
            }
            State::Done => Ok(()),
            State::Refuse(why) if !chunk.is_empty() => Err(std::mem::take(why)),
            State::Refuse(_) => Ok(()),
            State::Json(held) if held.len() + chunk.len() > self.cap => Err(over_cap(self.cap)),
            State::Json(held) => {
                held.extend_from_slice(chunk);
                if end {
                    json_body(std::mem::take(held), &mut out, rewrite)
                } else {
                    Ok(())
                }
            }
            State::Sse(r) => sse_chunk(r, chunk, end, self.cap, &mut out, rewrite),
        };
        match outcome {
            Err(why) => self.fail(&mut out, why),
            Ok(()) if end && !matches!(self.state, State::Pass) => self.state = State::Done,
            Ok(()) => {}
        }
        out
    }

    /// Appends the error answer and drops the rest of the response.
    fn fail(&mut self, out: &mut Vec<u8>, why: String) {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {
                "code": -32603,
                "message": FAILURE_MESSAGE,
                "data": {"code": "PROVIDER_ERROR", "message": why, "corr_id": self.corr_id},
            }
        });
        let body = body.to_string();
        if self.sse {
            out.extend_from_slice(b"event: message\ndata: ");
            out.extend_from_slice(body.as_bytes());
            out.extend_from_slice(b"\n\n");
        } else {
            out.extend_from_slice(body.as_bytes());
        }
        self.failure = Some(why);
        self.state = State::Done;
    }
}

/// The whole JSON body: checked, rewritten once. An empty body (a 202) stays empty.
fn json_body(whole: Vec<u8>, out: &mut Vec<u8>, rewrite: &mut dyn FnMut(&[u8]) -> Rewrite) -> Result<(), String> {
    if whole.is_empty() {
        return Ok(());
    }
    if serde_json::from_slice::<IgnoredAny>(&whole).is_err() {
        return Err("the answer is not valid JSON".into());
    }
    match rewrite(&whole) {
        Rewrite::Keep => out.extend_from_slice(&whole),
        Rewrite::Replace(bytes) => out.extend_from_slice(&bytes),
        Rewrite::Fail | Rewrite::Drop => {
            return Err("the answer is not a JSON-RPC message the gateway can rewrite".into())
        }
    }
    Ok(())
}

/// One SSE chunk: complete events checked and rewritten, the held tail bounded by `cap`, and
/// at the end no event left cut off.
fn sse_chunk(
    r: &mut SseRewriter,
    chunk: &[u8],
    end: bool,
    cap: usize,
    out: &mut Vec<u8>,
    rewrite: &mut dyn FnMut(&[u8]) -> Rewrite,
) -> Result<(), String> {
    let mut transform = |ev: &SseEvent| {
        if serde_json::from_str::<IgnoredAny>(&ev.data).is_err() {
            return Err("an event's data is not valid JSON".to_string());
        }
        match rewrite(ev.data.as_bytes()) {
            Rewrite::Keep => Ok(EventEdit::Keep),
            Rewrite::Replace(data) => Ok(EventEdit::Replace(data)),
            Rewrite::Drop => Ok(EventEdit::Drop),
            Rewrite::Fail => Err("an event is not a JSON-RPC message the gateway can rewrite".to_string()),
        }
    };
    r.push(chunk, out, &mut transform)?;
    if r.pending_len() > cap {
        return Err(over_cap(cap));
    }
    if end {
        r.finish(out)?;
    }
    Ok(())
}

fn over_cap(cap: usize) -> String {
    format!("the answer (or one of its events) is larger than {cap} bytes")
}

/// `type/subtype` of a `Content-Type`, lowercased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// No `Content-Encoding`, or only `identity`: the bytes are the message.
fn is_identity(encoding: Option<&str>) -> bool {
    encoding.is_none_or(|e| e.split(',').map(str::trim).all(|t| t.is_empty() || t.eq_ignore_ascii_case("identity")))
}

#[cfg(test)]
mod tests;
