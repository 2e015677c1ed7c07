//! The `/mcp/{server}` door: what may reach one upstream MCP server, decided message by
//! message. Deny by default: a message is forwarded only as an [`crate::enforce::Admitted`]
//! call; every other message is refused before a byte goes upstream.
//!
//! | message | decided as |
//! |---|---|
//! | request `tools/call` | `tools.invoke` on the tool |
//! | any other request (`initialize`, `ping`, `tools/list`, `resources/read`, …) | `mcp.<method>` on the server |
//! | client notification (`notifications/initialized`, `…/cancelled`, `…/progress`, `…/roots/list_changed`) | `mcp.<method>` |
//! | other notifications (e.g. a `tools/call` without `id`) | refused: 400 |
//! | client response (answer to the server's own request) | `mcp.response`, only on the caller's own session |
//! | GET (open the SSE stream) | `mcp.connect` |
//! | DELETE (end the session) | `mcp.disconnect` |
//!
//! A request naming an `Mcp-Session-Id` must name one its principal opened through the
//! gateway ([`crate::mcp::proxied_sessions`]); anything else is "session not found" (404).

use serde_json::{json, Value};

use crate::canonical;
use crate::enforce::{Call, MessageKind};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::inbound::{id_of, Answer, Forward, Inbound, ReadResponse, Verdict};
use crate::mcp::jsonrpc::Message;
use crate::mcp::session::owner_key;
use crate::ratelimit;

/// Notifications a client may send a server (MCP 2025-11-25 and 2026-07-28).
pub const CLIENT_NOTIFICATIONS: &[&str] = &[
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// Methods that are protocol plumbing rather than content: their own, generous rate limit.
pub const PLUMBING: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "subscriptions/listen",
    "logging/setLevel",
    "completion/complete",
    "response",
    "connect",
    "disconnect",
];

static NO_PARAMS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));

impl Gateway {
    /// One request to `/mcp/{server}`, any method, after authentication.
    pub async fn mcp_server_request<'a>(&self, req: &Inbound<'a>) -> Verdict<'a> {
        let mut req = *req;
        if let Some(sid) = req.session_id {
            let owner = owner_key(&req.principal.tenant, &req.principal.sub);
            let now = chrono::Utc::now().timestamp();
            match self.proxied.owned(&req.server.name, sid, &owner, now).await {
                // A 2025-11-25 session that declared elicitation: holds are asked natively.
                Ok(Some(s)) => req.session_elicitation = s.elicitation,
                Err(_) => {
                    let e = GatewayError::Unavailable { message: "session store unavailable".into() };
                    return self.refuse_message(&req, kind_of_method(req.http_method), None, e).await;
                }
                Ok(None) => {
                    let e = GatewayError::NotFound { message: "session not found; initialize again".into() };
                    return self.refuse_message(&req, kind_of_method(req.http_method), None, e).await;
                }
            }
        }
        match req.http_method {
            "GET" | "DELETE" => self.stream_or_end(&req).await,
            _ => self.mcp_post(&req).await,
        }
    }

    /// GET opens the server's stream, DELETE ends the session: both decided, neither with a body.
    async fn stream_or_end<'a>(&self, req: &Inbound<'a>) -> Verdict<'a> {
        let (kind, action) = match req.http_method {
            "GET" => (MessageKind::Stream, "connect"),
            _ => (MessageKind::EndSession, "disconnect"),
        };
        if req.has_body {
            let e = GatewayError::bad_request(format!("{} takes no body", req.http_method));
            return self.refuse_message(req, kind, None, e).await;
        }
        if kind == MessageKind::EndSession && req.session_id.is_none() {
            let e = GatewayError::bad_request("DELETE needs an Mcp-Session-Id");
            return self.refuse_message(req, kind, None, e).await;
        }
        self.server_message(req, action, &NO_PARAMS, kind, &Value::Null).await
    }

    /// A POST: one JSON-RPC message.
    pub async fn mcp_post<'a>(&self, req: &Inbound<'a>) -> Verdict<'a> {
        let (msg, value) = match req.message {
            Some(Ok(p)) => (&p.0, &p.1),
            Some(Err(e)) => {
                return self.refuse_message(req, MessageKind::Request, Some(id_of(req.body)), e.clone()).await
            }
            None => {
                return self.refuse_message(req, MessageKind::Request, None, GatewayError::bad_request("no body")).await
            }
        };
        let params = value.get("params").filter(|p| p.is_object()).unwrap_or(&NO_PARAMS);
        match msg {
            Message::Request { id, method, .. } => {
                if method == "tools/call" {
                    return self.tool_call(req, id, params, value).await;
                }
                self.server_message(req, method, params, MessageKind::Request, id).await
            }
            Message::Notification { method, .. } => {
                if !CLIENT_NOTIFICATIONS.contains(&method.as_str()) {
                    let e = GatewayError::bad_request(format!("{method:?} is not a client notification"));
                    return self.refuse_message(req, MessageKind::Notification, None, e).await;
                }
                self.server_message(req, method, params, MessageKind::Notification, &Value::Null).await
            }
            Message::Response { id } => {
                let Some(sid) = req.session_id else {
                    let e = GatewayError::bad_request("a client response needs the Mcp-Session-Id it answers on");
                    return self.refuse_message(req, MessageKind::Response, Some(id.clone()), e).await;
                };
                if self.fed.pending.waits(&pending_key(&req.server.name, sid), id).await {
                    return self.own_answer(req, sid, id, value).await;
                }
                self.server_message(req, "response", &NO_PARAMS, MessageKind::Response, id).await
            }
        }
    }

    /// The client answered the gateway's own elicitation on its session: decided like any
    /// response, handed to the waiting call, never forwarded.
    async fn own_answer<'a>(&self, req: &Inbound<'a>, sid: &str, id: &Value, value: &Value) -> Verdict<'a> {
        let call = self.server_call(req, "response", &NO_PARAMS, MessageKind::Response);
        match self.enforce.authorize(call).await {
            Ok(p) => {
                self.enforce.answered(p).await;
                self.fed.pending.deliver(&pending_key(&req.server.name, sid), id, value.clone()).await;
                Verdict::Accepted(crate::enforce::Outcome::Allowed)
            }
            Err(r) => Verdict::Answer(Answer::refusal(&r, id, req.corr_id, None, self.cfg.mcp.refusal_status)),
        }
    }

    /// A message that is not a tool call, decided as `mcp.<method>` on the server.
    pub(crate) async fn server_message<'a>(
        &self,
        req: &Inbound<'a>,
        method: &str,
        params: &'a Value,
        kind: MessageKind,
        id: &Value,
    ) -> Verdict<'a> {
        let call = self.server_call(req, method, params, kind);
        let permit = match self.enforce.authorize(call).await {
            Ok(p) => p,
            Err(r) => {
                return Verdict::Answer(Answer::refusal(&r, id, req.corr_id, Some(method), self.cfg.mcp.refusal_status))
            }
        };
        match self.enforce.admit(permit, None).await {
            Ok(admitted) => Verdict::Forward(Box::new(Forward {
                admitted,
                body: None,
                read: if method == "tools/list" { ReadResponse::ToolsList } else { ReadResponse::Pass },
                method: Some(method.to_string()),
                elicitation: method == "initialize"
                    && params.pointer("/capabilities/elicitation").is_some_and(|e| !e.is_null()),
                params: Vec::new(),
            })),
            Err(crate::enforce::Stop::Refused(r)) => {
                Verdict::Answer(Answer::refusal(&r, id, req.corr_id, Some(method), self.cfg.mcp.refusal_status))
            }
            Err(crate::enforce::Stop::Held(_)) => {
                // Holds are for tool calls; a policy that asks to confirm plumbing is refused
                // rather than forwarded unconfirmed.
                let e = GatewayError::Forbidden {
                    message: "only tool calls can be confirmed".into(),
                    reasons: vec!["confirmation_unsupported".into()],
                };
                let call = self.server_call(req, method, params, kind);
                let r = self.enforce.refuse(&call, e).await;
                Verdict::Answer(Answer::refusal(&r, id, req.corr_id, Some(method), self.cfg.mcp.refusal_status))
            }
        }
    }

    /// The [`Call`] for `mcp.<method>` on `req.server`.
    pub(crate) fn server_call<'a>(
        &self,
        req: &Inbound<'a>,
        method: &str,
        params: &'a Value,
        kind: MessageKind,
    ) -> Call<'a> {
        let target = params.get("name").or_else(|| params.get("uri")).and_then(Value::as_str);
        let resource = self.catalog.server_resource(req.server, target);
        let resource_id = format!("mcp:{}", req.server.name);
        let mut call =
            Call::new(req.policy, req.principal, format!("mcp.{method}"), resource, params, kind, req.origin());
        call.args_hash = Some(canonical::hash(params));
        call.rate_key =
            Some(ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, &format!("{resource_id}:{method}")));
        if PLUMBING.contains(&method) || kind == MessageKind::Notification {
            call.rate_class = crate::ratelimit::RateClass::Plumbing;
        }
        call.tool_id = Some(resource_id);
        call.provider = Some("mcp".into());
        call.server = Some(req.server.name.clone());
        call.mcp_method = (kind != MessageKind::Stream && kind != MessageKind::EndSession).then(|| method.to_string());
        call
    }

    /// Records and answers a message refused before it could be decided.
    async fn refuse_message<'a>(
        &self,
        req: &Inbound<'a>,
        kind: MessageKind,
        id: Option<Value>,
        e: GatewayError,
    ) -> Verdict<'a> {
        let call = self.server_call(req, "request", &NO_PARAMS, kind);
        let mut call = call;
        call.action = "mcp.request".into();
        call.mcp_method = None;
        call.rate_key = None;
        let r = self.enforce.refuse(&call, e).await;
        Verdict::Answer(Answer::refusal(&r, &id.unwrap_or(Value::Null), req.corr_id, None, self.cfg.mcp.refusal_status))
    }
}

/// Where the gateway's own questions on a proxied session wait for their answers.
pub fn pending_key(server: &str, session_id: &str) -> String {
    format!("p\0{server}\0{session_id}")
}

fn kind_of_method(http_method: &str) -> MessageKind {
    match http_method {
        "GET" => MessageKind::Stream,
        "DELETE" => MessageKind::EndSession,
        _ => MessageKind::Request,
    }
}

#[cfg(test)]
mod tests;
