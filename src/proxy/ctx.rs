//! Per-request state carried between the pingora hooks.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::Principal;
use crate::catalog::McpServer;
use crate::enforce::{Admitted, Outcome};
use crate::mcp::federation::relay::ForwardRelay;
use crate::mcp::inbound::ReadResponse;
use crate::policy::PolicySnapshot;

use super::response::Rewriting;
use super::route::Route;

/// What the hooks know about one request.
pub struct Ctx {
    pub corr_id: String,
    pub start: Instant,
    pub route: Route,
    pub server: Option<Arc<McpServer>>,
    pub principal: Option<Arc<Principal>>,
    /// The policy this request is decided by (also for its `tools/list` filtering).
    pub policy: Option<PolicySnapshot>,
    /// The JSON-RPC method (metrics, logs).
    pub method: Option<String>,
    /// How the request ended (metrics, logs; the early record when nothing else wrote one).
    pub outcome: Option<Outcome>,
    /// A door wrote this request's decision record (else `logging` writes an early one).
    pub recorded: bool,
    /// Reasons of a refusal answered by the glue itself (for its early record).
    pub early_reasons: Vec<String>,
    /// The admitted call being forwarded: `upstream_peer` connects only with one.
    pub admitted: Option<Admitted>,
    /// How to treat the upstream's answer.
    pub read: ReadResponse,
    /// The response the gateway must read (`tools/list`, `resultType` marking).
    pub filter: Option<Rewriting>,
    /// Length of the body sent upstream (the upstream `Content-Length`).
    pub forward_len: Option<usize>,
    pub upstream_start: Option<Instant>,
    pub upstream_status: Option<u16>,
    /// The upstream failed (for the completion record).
    pub upstream_error: Option<&'static str>,
    /// Status and error code of a response the gateway wrote itself.
    pub answered: Option<(u16, Option<&'static str>)>,
    pub is_post: bool,
    /// Headers set on the upstream request (federated: the upstream's era and session).
    pub upstream_headers: Vec<(&'static str, String)>,
    /// `Mcp-Param-*` headers set on the upstream request (federated: from the upstream
    /// tool's `x-mcp-header` marks).
    pub upstream_params: Vec<(String, String)>,
    /// A federated request: the upstream's session header is not the client's.
    pub federated: bool,
    /// A 2026-07-28 client behind a 2025-11-25 upstream: results get `resultType`.
    pub mark_complete: bool,
    /// A federated call: the upstream's own requests in its answer are decided and relayed
    /// to the client (or refused) here.
    pub relay: Option<ForwardRelay>,
    /// A forwarded `initialize` on `/mcp/{server}`: the session the upstream opens is
    /// recorded for this principal (`Some(declared elicitation)`).
    pub opens_session: Option<bool>,
    /// A forwarded DELETE of this session id.
    pub ends_session: Option<String>,
    /// The request's span (trace context continued or started in `request_filter`).
    pub trace: Option<crate::otel::Trace>,
    /// The forwarded call's span: the upstream's `traceparent` names it.
    pub upstream_span: Option<crate::otel::Span>,
}

impl Ctx {
    pub fn new() -> Ctx {
        Ctx {
            corr_id: String::new(),
            start: Instant::now(),
            route: Route::NotFound,
            server: None,
            principal: None,
            policy: None,
            method: None,
            outcome: None,
            recorded: false,
            early_reasons: Vec::new(),
            admitted: None,
            read: ReadResponse::Pass,
            filter: None,
            forward_len: None,
            upstream_start: None,
            upstream_status: None,
            upstream_error: None,
            answered: None,
            is_post: false,
            upstream_headers: Vec::new(),
            upstream_params: Vec::new(),
            federated: false,
            mark_complete: false,
            relay: None,
            opens_session: None,
            ends_session: None,
            trace: None,
            upstream_span: None,
        }
    }

    /// The metrics and log label of the request's outcome.
    pub fn outcome_label(&self) -> &'static str {
        self.outcome.map(Outcome::label).unwrap_or("none")
    }
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx::new()
    }
}
