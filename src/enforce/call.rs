//! What a door hands the enforcement core: one call to decide, in door-neutral terms.

use serde_json::Value;

use crate::auth::Principal;
use crate::policy::PolicySnapshot;

/// The kind of message being decided (recorded in the audit record's `message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A JSON-RPC request (it expects an answer).
    Request,
    /// A JSON-RPC notification (no `id`).
    Notification,
    /// A client's JSON-RPC response to a server's request (elicitation, sampling, roots).
    Response,
    /// A server's own request to the client (sampling, elicitation, roots, ping), relayed
    /// through the federated endpoint.
    ServerRequest,
    /// A GET opening the server's SSE stream.
    Stream,
    /// A DELETE ending a session.
    EndSession,
    /// A REST tool API call.
    Rest,
}

impl MessageKind {
    pub fn label(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Notification => "notification",
            MessageKind::Response => "response",
            MessageKind::ServerRequest => "server_request",
            MessageKind::Stream => "stream",
            MessageKind::EndSession => "end_session",
            MessageKind::Rest => "rest",
        }
    }
}

/// Facts about the HTTP request a call arrived in (policy input `request`/`context`).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `mcp` or `rest`.
    pub protocol: &'static str,
    pub path: &'a str,
    pub http_method: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
}

/// An action token presented with the call: the call is a confirmation. Whether it is
/// redeemed as the caller's own or as an approver's is the core's to say (roles).
#[derive(Debug, Clone)]
pub struct Presented {
    pub token: String,
}

/// One call to decide. Built by a door; the core owns every step after it.
pub struct Call<'a> {
    /// The policy the request is decided by (taken when it arrived).
    pub policy: &'a PolicySnapshot,
    pub principal: &'a Principal,
    /// `tools.invoke`, `mcp.<method>`, `catalog:list`, `manifests.register`, …
    pub action: String,
    /// The policy input's `resource`.
    pub resource: Value,
    /// The policy input's `request.arguments` (tool input, or the method's params).
    pub arguments: &'a Value,
    /// Canonical hash of `arguments` (audit `request_hash`, hold binding).
    pub args_hash: Option<String>,
    /// Audit `toolId` (`mcp:{server}:{tool}`, `mcp:{server}` for server methods).
    pub tool_id: Option<String>,
    /// Audit `provider` (`mcp`, `database`, …).
    pub provider: Option<String>,
    /// Audit `server` (MCP server name).
    pub server: Option<String>,
    /// Audit `mcp_method` (JSON-RPC method).
    pub mcp_method: Option<String>,
    pub message: MessageKind,
    pub origin: Origin<'a>,
    /// Token bucket to take from once allowed; `None`: not rate limited.
    pub rate_key: Option<String>,
    /// Which configured default limit applies.
    pub rate_class: crate::ratelimit::RateClass,
    /// A call that changes something upstream (tools): its decision record is fsynced
    /// before it is answered and a completion record follows.
    pub write_class: bool,
    /// An action token presented with the call (a confirmation).
    pub presented: Option<Presented>,
    /// What tool-definition pinning says about the tool (set by the core for MCP tools on a
    /// server with pinning on; written into the audit record).
    pub pin: Option<crate::pinning::PinFacts>,
}

impl<'a> Call<'a> {
    /// A call with the given action and resource; every optional fact empty.
    pub fn new(
        policy: &'a PolicySnapshot,
        principal: &'a Principal,
        action: impl Into<String>,
        resource: Value,
        arguments: &'a Value,
        message: MessageKind,
        origin: Origin<'a>,
    ) -> Call<'a> {
        Call {
            policy,
            principal,
            action: action.into(),
            resource,
            arguments,
            args_hash: None,
            tool_id: None,
            provider: None,
            server: None,
            mcp_method: None,
            message,
            origin,
            rate_key: None,
            rate_class: crate::ratelimit::RateClass::Call,
            write_class: false,
            presented: None,
            pin: None,
        }
    }

    /// The action the audit record names: a redeemed token is a confirmation.
    pub fn audit_action(&self) -> &str {
        if self.presented.is_some() {
            "tools.confirm"
        } else {
            &self.action
        }
    }
}
