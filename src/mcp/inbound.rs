//! One request arriving at an MCP door (after authentication), and what the door decided to
//! do with it. Plain Rust: the proxy glue builds an [`Inbound`] from the HTTP request and
//! carries out the [`Verdict`].

use bytes::Bytes;
use serde_json::Value;

use crate::auth::Principal;
use crate::catalog::McpServer;
use crate::config::RefusalStatus;
use crate::enforce::{Admitted, HeldCall, Origin, Outcome, Refusal};
use crate::error::GatewayError;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::param_headers::{self, Marks};
use crate::policy::PolicySnapshot;

/// One request to `/mcp/{server}` (or a call the federated endpoint routes to `server`).
#[derive(Clone, Copy)]
pub struct Inbound<'a> {
    /// The policy this request is decided by (taken when it arrived).
    pub policy: &'a PolicySnapshot,
    pub server: &'a McpServer,
    pub principal: &'a Principal,
    /// `POST`, `GET` or `DELETE` (others never get here).
    pub http_method: &'a str,
    /// The raw POST body (empty for GET and DELETE).
    pub body: &'a [u8],
    /// The POST body, parsed by [`parse`] (the caller owns it for the request's lifetime).
    pub message: Option<&'a Parsed>,
    /// The tool's (or prompt's) name on `server` when the door renamed it (federated
    /// `{server}__{tool}`); `None`: the name in the body.
    pub target_name: Option<&'a str>,
    /// The request announced a body (Content-Length > 0 or Transfer-Encoding).
    pub has_body: bool,
    pub mcp_method_header: Option<&'a str>,
    pub mcp_name_header: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub action_token_header: Option<&'a str>,
    /// The `MCP-Protocol-Version` header (with the body's `_meta`, tells what the client can
    /// do with a hold: MRTR, elicitation).
    pub protocol_version: Option<&'a str>,
    pub path: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
    /// The client declared elicitation on its 2025-11-25 session: a hold may be asked on the
    /// call's SSE stream ([`Verdict::Elicit`]).
    pub session_elicitation: bool,
}

/// A POST body: one JSON-RPC message and its value, or why it is not one.
pub type Parsed = Result<(Message, Value), GatewayError>;

/// Parses a POST body and checks it against the `Mcp-Method`/`Mcp-Name` headers.
pub fn parse(body: &[u8], mcp_method: Option<&str>, mcp_name: Option<&str>) -> Parsed {
    let (msg, value) = jsonrpc::parse(body)?;
    jsonrpc::check_headers(&msg, mcp_method, mcp_name)?;
    Ok((msg, value))
}

/// Checks a parsed `tools/call` against its `Mcp-Param-*` headers (`presented`) where the
/// gateway knows the tool's `x-mcp-header` marks (`marks(name)`, the name as the body spells
/// it): a header that contradicts the body — or, in a 2026-07-28 request, a missing one — is
/// a `HeaderMismatch` (-32020, 400); a call to a tool whose marks are invalid is refused
/// (-32602, 400: the gateway does not offer it). Refused before any decision, like an
/// `Mcp-Name` mismatch: nothing is forwarded.
pub fn check_params(
    parsed: Parsed,
    presented: &[(String, Vec<u8>)],
    protocol_version: Option<&str>,
    marks: impl FnOnce(&str) -> Option<Marks>,
) -> Parsed {
    let (msg, value) = parsed?;
    let Message::Request { method, params, .. } = &msg else {
        return Ok((msg, value));
    };
    let Some(name) = params.get("name").and_then(Value::as_str).filter(|_| method == "tools/call") else {
        return Ok((msg, value));
    };
    let Some(found) = marks(name) else {
        return Ok((msg, value));
    };
    let marks = found.map_err(|why| GatewayError::BadRequest {
        message: format!("tool {name:?} is not offered: its x-mcp-header annotation is invalid ({why})"),
        jsonrpc_code: -32602,
    })?;
    let arguments = params.get("arguments").unwrap_or(&Value::Null);
    let require = crate::mcp::confirm::ClientProfile::from_request(protocol_version, params).modern;
    param_headers::check(&marks, arguments, presented, require).map_err(|m| GatewayError::BadRequest {
        message: format!("Header mismatch: {m}"),
        jsonrpc_code: jsonrpc::HEADER_MISMATCH,
    })?;
    Ok((msg, value))
}

/// The JSON-RPC id of a body that failed to parse as a message, when it has one.
pub fn id_of(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("id").cloned()).unwrap_or(Value::Null)
}

impl<'a> Inbound<'a> {
    pub fn origin(&self) -> Origin<'a> {
        Origin {
            protocol: "mcp",
            path: self.path,
            http_method: self.http_method,
            client_ip: self.client_ip,
            corr_id: self.corr_id,
        }
    }
}

/// What to do with the request. Every variant is already recorded in the audit trail.
pub enum Verdict<'a> {
    /// Send it upstream: it was admitted.
    Forward(Box<Forward>),
    /// Answer now (a refusal, a hold, an MRTR question, a declined call).
    Answer(Answer),
    /// Ask the user on the call's SSE stream (`elicitation/create`), then settle the hold.
    Elicit(Box<HeldCall<'a>>),
    /// 202, nothing forwarded: the gateway consumed the message (a client's answer to the
    /// gateway's own elicitation).
    Accepted(Outcome),
}

/// How the gateway must treat the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResponse {
    /// Streamed through untouched.
    Pass,
    /// A `tools/list` result: filtered per caller (fails closed).
    ToolsList,
}

/// An admitted request on its way upstream.
pub struct Forward {
    pub admitted: Admitted,
    /// Replacement body when the gateway rewrote it (action token, its own MRTR fields removed).
    pub body: Option<Bytes>,
    pub read: ReadResponse,
    /// The JSON-RPC method (metrics, logs, what the response opens or ends).
    pub method: Option<String>,
    /// An `initialize` that declared the elicitation capability (recorded with the session
    /// the upstream opens).
    pub elicitation: bool,
    /// `Mcp-Param-*` headers the gateway sets on the upstream request (a federated call to a
    /// 2026-07-28 upstream; the caller's own are never forwarded there).
    pub params: Vec<(String, String)>,
}

/// A response the gateway writes itself.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
    pub outcome: Outcome,
    pub method: Option<String>,
}

/// Methods whose refusal refuses the whole server (the caller cannot use it at all): they keep
/// their HTTP status so OAuth-aware clients can step up their token.
const WHOLE_SERVER: &[&str] = &["initialize", "server/discover"];

impl Answer {
    /// A JSON-RPC result or error the gateway produced (status 200).
    pub fn message(body: Value, outcome: Outcome, method: Option<&str>) -> Answer {
        Answer { status: 200, body, headers: vec![], outcome, method: method.map(String::from) }
    }

    /// The JSON-RPC error for a recorded refusal, with the DESIGN shape in `error.data`. The
    /// refusal of one call is HTTP 200 in `jsonrpc` mode (every SDK reads it and keeps its
    /// session); transport and authorization refusals keep their status.
    pub fn refusal(r: &Refusal, id: &Value, corr_id: &str, method: Option<&str>, mode: RefusalStatus) -> Answer {
        let mut a = Answer {
            status: r.error.status(),
            body: r.error.jsonrpc_body(id, corr_id),
            headers: r.error.headers(),
            outcome: r.outcome,
            method: method.map(String::from),
        };
        if mode == RefusalStatus::Jsonrpc && one_call(r, id, method) {
            a.status = 200;
            // The step-up challenge belongs to a 403; `Retry-After` and `RateLimit-*` stay.
            a.headers.retain(|(k, _)| *k != "www-authenticate");
        }
        a
    }
}

/// Is `r` the refusal of one call (rather than of the transport, the token or the server)?
fn one_call(r: &Refusal, id: &Value, method: Option<&str>) -> bool {
    if id.is_null() || method.is_some_and(|m| WHOLE_SERVER.contains(&m)) {
        return false;
    }
    match r.outcome {
        Outcome::Denied | Outcome::RateLimited | Outcome::Conflict | Outcome::Declined => true,
        Outcome::Invalid => r.error.status() == 422,
        _ => false,
    }
}
