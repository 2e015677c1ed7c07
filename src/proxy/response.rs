//! pingora glue for the responses the gateway must read: a `tools/list` answer filtered per
//! caller, results a 2026-07-28 client needs marked `resultType: complete`, and a federated
//! answer's messages (the gateway's voice; the upstream's own requests handed to
//! [`Gateway::relay_request`], which decides them). The fail-closed work is
//! [`ResponseFilter`]'s; this file only moves headers and bytes for the `response_filter` and
//! `response_body_filter` hooks.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::Result;
use serde::Deserialize;
use serde_json::Value;

use super::Ctx;
use crate::enforce::Proof;
use crate::gateway::Gateway;
use crate::mcp::client::wire::{self, Incoming};
use crate::mcp::federation::relay::{ForwardRelay, RelayStep};
use crate::mcp::relay::ReplyTo;
use crate::mcp::response_filter::{ResponseFilter, Rewrite, UpstreamHead};
use crate::mcp::tools_list;

/// Largest response (or single SSE event) the gateway holds to check it. Past it the answer
/// is replaced by an error rather than passed on unchecked.
pub const MAX_HELD_BYTES: usize = 16 << 20;

/// A response the gateway must read: wanted when the request is forwarded, active once the
/// response head is known.
pub enum Rewriting {
    /// The answer to the request with this JSON-RPC id.
    Wanted(Value),
    /// The head was accepted: the body goes through this filter.
    Active(ResponseFilter),
}

impl Rewriting {
    /// For the request body the client sent (its `id`; `null` when it has none).
    pub fn for_body(body: &[u8]) -> Rewriting {
        #[derive(Deserialize)]
        struct Id {
            #[serde(default)]
            id: Value,
        }
        Rewriting::Wanted(serde_json::from_slice::<Id>(body).map(|r| r.id).unwrap_or(Value::Null))
    }
}

/// `response_filter`: starts the filter and makes the head fit a rewritten body (no length,
/// no encoding, chunked, the type the filter answers in).
pub(super) fn on_headers(ctx: &mut Ctx, resp: &mut ResponseHeader) -> Result<()> {
    let id = match ctx.filter.take() {
        Some(Rewriting::Wanted(id)) => id,
        other => {
            ctx.filter = other;
            return Ok(());
        }
    };
    let content_type = joined(resp, "content-type");
    let content_encoding = joined(resp, "content-encoding");
    let head = UpstreamHead {
        status: resp.status.as_u16(),
        content_type: content_type.as_deref(),
        content_encoding: content_encoding.as_deref(),
    };
    let f = ResponseFilter::new(id.clone(), &ctx.corr_id, head, MAX_HELD_BYTES);
    if !f.reads_body() {
        // An interim (1xx) or bodiless answer: the filter waits for the next head.
        ctx.filter = Some(Rewriting::Wanted(id));
        return Ok(());
    }
    resp.remove_header("content-length");
    resp.remove_header("content-encoding");
    resp.insert_header("transfer-encoding", "chunked")?;
    if let Some(ct) = f.content_type() {
        resp.insert_header("content-type", ct)?;
    }
    ctx.filter = Some(Rewriting::Active(f));
    Ok(())
}

/// `response_body_filter`: replaces `body` with what the filter lets out now.
pub(super) fn on_body(gw: &Gateway, ctx: &mut Ctx, body: &mut Option<Bytes>, end: bool) {
    let f = match ctx.filter.as_mut() {
        Some(Rewriting::Active(f)) => f,
        Some(Rewriting::Wanted(_)) => {
            // A body before a head the filter accepted: nothing checked it, so it is dropped.
            if body.take().is_some_and(|b| !b.is_empty()) {
                tracing::warn!(corr_id = %ctx.corr_id, "response body without a checked head dropped");
            }
            return;
        }
        None => return,
    };
    let (server, principal, corr) = (ctx.server.as_deref(), ctx.principal.as_deref(), ctx.corr_id.as_str());
    // A policy filters the list; without a server or a caller to judge by, nothing is shown.
    let mut visible = ctx.policy.as_ref().map(|p| {
        let lister = principal.map(|who| gw.tool_lister(p, who, corr));
        move |tool: &Value| match (server, lister.as_ref()) {
            (Some(s), Some(l)) => gw.tool_visible(l, s, tool),
            _ => false,
        }
    });
    let (mark, voice, relay) = (ctx.mark_complete, ctx.federated, ctx.relay.as_ref());
    let mut rewrite = |msg: &[u8]| {
        if let Some(r) = relay.and_then(|relay| relay_message(gw, relay, msg, corr)) {
            return r;
        }
        let tools = visible.as_mut().map(|v| v as &mut dyn FnMut(&Value) -> bool);
        let out = rewrite_message(msg, tools, mark, corr);
        if voice {
            return speak_as_gateway(out, msg);
        }
        out
    };
    let out = f.push(body.as_deref().unwrap_or_default(), end, &mut rewrite);
    if let Some(why) = f.take_failure() {
        tracing::warn!(corr_id = %corr, reason = %why, "upstream answer replaced by an error: the gateway could not check it");
    }
    *body = if out.is_empty() { None } else { Some(Bytes::from(out)) };
}

/// One complete message: the tools the caller may not see removed (when `tools` is given),
/// then `resultType` added (when `mark`).
fn rewrite_message(msg: &[u8], tools: Option<&mut dyn FnMut(&Value) -> bool>, mark: bool, corr: &str) -> Rewrite {
    let filtered = match tools.map(|visible| tools_list::filter_raw(msg, visible)) {
        None => None,
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            tracing::debug!(corr_id = %corr, error = %e, "tools/list answer not filterable");
            return Rewrite::Fail;
        }
    };
    let marked = if mark {
        match tools_list::mark_complete_raw(filtered.as_deref().unwrap_or(msg)) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(corr_id = %corr, error = %e, "result not markable");
                return Rewrite::Fail;
            }
        }
    } else {
        None
    };
    match marked.or(filtered) {
        Some(bytes) => Rewrite::Replace(bytes),
        None => Rewrite::Keep,
    }
}

/// An upstream's own request in a federated answer: relayed to the client under its new id,
/// or left out while the upstream gets the refusal on its session. `None`: not a request.
fn relay_message(gw: &Gateway, relay: &ForwardRelay, msg: &[u8], corr: &str) -> Option<Rewrite> {
    let v = match server_request(msg) {
        Ok(Some(v)) => v,
        Ok(None) => return None,
        Err(()) => return Some(Rewrite::Fail),
    };
    let to = ReplyTo::Upstream(relay.client.clone());
    Some(match gw.relay_request(&relay.route, &v, to, corr) {
        RelayStep::ToClient(out) => Rewrite::Replace(out.to_string().into_bytes()),
        RelayStep::Answered(reply) => {
            let client = relay.client.clone();
            // The gateway's own answer to the server, off the response path.
            std::thread::spawn(move || {
                if let Err(e) = client.respond(&Proof::gateway_own("relay refusal"), &reply) {
                    tracing::debug!(error = %e, "could not refuse a server's request");
                }
            });
            Rewrite::Drop
        }
    })
}

/// `msg` when it is a server's own request (`None`: something else, or not JSON — the other
/// rewrites judge that). Every message is parsed: a byte pre-check could miss an escaped
/// `"method"` key and let an undecided request through. `Err`: a batch holding a request,
/// which cannot be relayed one by one (fail closed).
fn server_request(msg: &[u8]) -> Result<Option<Value>, ()> {
    let Ok(v) = serde_json::from_slice::<Value>(msg) else { return Ok(None) };
    match &v {
        Value::Array(batch) if batch.iter().any(|m| wire::classify(m) == Incoming::Request) => Err(()),
        _ if wire::classify(&v) == Incoming::Request => Ok(Some(v)),
        _ => Ok(None),
    }
}

/// A federated answer speaks as the gateway (its `serverInfo`), after the other rewrites.
fn speak_as_gateway(out: Rewrite, msg: &[u8]) -> Rewrite {
    let current = match &out {
        Rewrite::Fail => return Rewrite::Fail,
        Rewrite::Drop => return Rewrite::Drop,
        Rewrite::Keep => msg,
        Rewrite::Replace(b) => b.as_slice(),
    };
    match crate::mcp::server_info::as_gateway_raw(current) {
        Ok(Some(b)) => Rewrite::Replace(b),
        Ok(None) => out,
        Err(_) => Rewrite::Fail,
    }
}

/// Every value of header `name` joined with `, ` (`None` when absent). Bytes that are not
/// UTF-8 are replaced, so an odd value is seen as unknown rather than as absent.
fn joined(resp: &ResponseHeader, name: &str) -> Option<String> {
    let values: Vec<String> =
        resp.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[u8] = br#"{"id":1,"result":{"tools":[{"name":"a"}, {"name":"b"}]}}"#;

    fn only_b(t: &Value) -> bool {
        t["name"] == "b"
    }

    #[test]
    fn lists_are_filtered_then_marked() {
        let mut v = only_b;
        assert_eq!(
            rewrite_message(LIST, Some(&mut v), false, "c"),
            Rewrite::Replace(br#"{"id":1,"result":{"tools":[{"name":"b"}]}}"#.to_vec())
        );
        assert_eq!(
            rewrite_message(LIST, Some(&mut v), true, "c"),
            Rewrite::Replace(br#"{"id":1,"result":{"resultType":"complete","tools":[{"name":"b"}]}}"#.to_vec())
        );
        assert_eq!(
            rewrite_message(br#"{"id":1,"result":{}}"#, None, true, "c"),
            Rewrite::Replace(br#"{"id":1,"result":{"resultType":"complete"}}"#.to_vec())
        );
    }

    #[test]
    fn other_messages_are_kept_and_broken_ones_fail() {
        let mut v = only_b;
        let note = br#"{"method":"notifications/progress"}"#;
        assert_eq!(rewrite_message(note, Some(&mut v), true, "c"), Rewrite::Keep);
        assert_eq!(rewrite_message(LIST, None, false, "c"), Rewrite::Keep);
        assert_eq!(rewrite_message(b"[1]", Some(&mut v), false, "c"), Rewrite::Fail);
        assert_eq!(rewrite_message(b"[1]", None, true, "c"), Rewrite::Fail);
    }

    #[test]
    fn server_requests_are_found_however_spelled_and_never_inside_a_batch() {
        let escaped = br#"{"jsonrpc":"2.0","id":0,"\u006dethod":"sampling/createMessage"}"#;
        assert_eq!(server_request(escaped).unwrap().unwrap()["method"], "sampling/createMessage");
        assert!(server_request(br#"{"id":0,"result":{"method":"x"}}"#).unwrap().is_none(), "a result");
        assert!(server_request(br#"{"method":"notifications/progress"}"#).unwrap().is_none(), "a notification");
        assert!(server_request(b"not json").unwrap().is_none(), "judged by the other rewrites");
        assert!(server_request(br#"[{"id":1,"result":{}},{"id":2,"method":"roots/list"}]"#).is_err());
        assert!(server_request(br#"[{"id":1,"result":{}}]"#).unwrap().is_none());
    }

    #[test]
    fn the_request_id_comes_from_the_client_body() {
        let id = |body: &[u8]| match Rewriting::for_body(body) {
            Rewriting::Wanted(id) => id,
            Rewriting::Active(_) => Value::Bool(false),
        };
        assert_eq!(id(br#"{"jsonrpc":"2.0","id":"x-1","method":"tools/list"}"#), Value::from("x-1"));
        assert_eq!(id(br#"{"method":"tools/list"}"#), Value::Null);
        assert_eq!(id(b"garbage"), Value::Null);
    }
}
