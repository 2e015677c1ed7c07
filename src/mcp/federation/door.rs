//! The federated `/mcp` door: FastMCP answers the protocol itself (initialize,
//! server/discover, ping, the lists) and routes calls to the owning server. Every message is
//! decided by the enforcement core; the door returns a [`Reply`] the glue only writes.
//!
//! The gateway's own plumbing (`initialize`, `ping`, the GET stream, …) is decided as
//! `mcp.<method>` against every configured server: a caller that may use none of them is
//! refused. Client notifications and responses are consumed here, never forwarded.

use std::sync::Arc;

use serde_json::{json, Value};

use super::stream::Stream;
use super::{discover_result, initialize_result};
use crate::auth::Principal;
use crate::catalog::McpServer;
use crate::enforce::{Call, MessageKind, Outcome, Permit, Refusal};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::confirm;
use crate::mcp::inbound::{id_of, Answer, Forward, Inbound, Parsed};
use crate::mcp::jsonrpc::Message;
use crate::mcp::proxied::CLIENT_NOTIFICATIONS;
use crate::mcp::session::{owner_key, GatewaySession, SessionError};
use crate::policy::PolicySnapshot;

/// One request to `/mcp`, after authentication.
pub struct FedRequest<'a> {
    pub policy: &'a PolicySnapshot,
    pub principal: &'a Principal,
    /// `POST`, `GET` or `DELETE`.
    pub http_method: &'a str,
    pub body: &'a [u8],
    pub message: Option<&'a Parsed>,
    pub has_body: bool,
    pub session_id: Option<&'a str>,
    pub action_token_header: Option<&'a str>,
    pub protocol_version: Option<&'a str>,
    /// `Last-Event-ID` (a GET resuming one of the session's streams).
    pub last_event_id: Option<&'a str>,
    pub path: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
}

/// What the glue writes. Every variant is already recorded.
pub enum Reply<'a> {
    /// A JSON response (result, error, or refusal).
    Json(Answer),
    /// 202 with no body: a notification or response consumed by the gateway.
    Accepted,
    /// Forward through pingora to the server's HTTP endpoint.
    Forward(Box<Routed>),
    /// An SSE response the core produces ([`Gateway::run_stream`]).
    Stream(Box<Stream<'a>>),
}

/// An admitted call for an HTTP upstream, dressed for its era.
pub struct Routed {
    pub server: Arc<McpServer>,
    pub forward: Box<Forward>,
    /// Headers that carry it in the upstream's era (version, session, method, name).
    pub headers: Vec<(&'static str, String)>,
    /// A 2026-07-28 client behind a 2025-11-25 upstream: results get `resultType`.
    pub mark_complete: bool,
    /// Where the upstream's own requests on the response stream are decided and relayed.
    pub relay: Option<super::relay::ForwardRelay>,
}

impl<'a> FedRequest<'a> {
    /// This request as one to `server` (for its decisions and routed calls).
    pub fn to_server(&self, server: &'a McpServer, target_name: Option<&'a str>, elicitation: bool) -> Inbound<'a> {
        Inbound {
            policy: self.policy,
            server,
            principal: self.principal,
            http_method: self.http_method,
            body: self.body,
            message: self.message,
            target_name,
            has_body: self.has_body,
            mcp_method_header: None,
            mcp_name_header: None,
            session_id: None,
            action_token_header: self.action_token_header,
            protocol_version: self.protocol_version,
            path: self.path,
            client_ip: self.client_ip,
            corr_id: self.corr_id,
            session_elicitation: elicitation,
        }
    }

    fn owner(&self) -> String {
        owner_key(&self.principal.tenant, &self.principal.sub)
    }
}

static NO_PARAMS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));

impl Gateway {
    /// One request to the federated endpoint.
    pub async fn federated<'a>(&self, req: &FedRequest<'a>, servers: &'a [Arc<McpServer>]) -> Reply<'a> {
        let now = chrono::Utc::now().timestamp();
        let gsession = match req.session_id {
            Some(id) => match self.fed.sessions.get(id, &req.owner(), now).await {
                Ok(s) => Some(s),
                Err(SessionError::Unavailable) => {
                    let e = GatewayError::Unavailable { message: "session store unavailable".into() };
                    return self.fed_refuse(req, servers, MessageKind::Request, Value::Null, e).await;
                }
                Err(_) => {
                    // The spec's answer to an unknown session: 404, and the client re-initializes.
                    let e = GatewayError::NotFound { message: "session not found; initialize again".into() };
                    return self.fed_refuse(req, servers, MessageKind::Request, Value::Null, e).await;
                }
            },
            None => None,
        };
        match req.http_method {
            "GET" | "DELETE" => self.fed_stream_or_end(req, servers, gsession).await,
            _ => self.fed_post(req, servers, gsession).await,
        }
    }

    async fn fed_stream_or_end<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        gs: Option<Arc<GatewaySession>>,
    ) -> Reply<'a> {
        let get = req.http_method == "GET";
        let kind = if get { MessageKind::Stream } else { MessageKind::EndSession };
        if req.has_body {
            let e = GatewayError::bad_request(format!("{} takes no body", req.http_method));
            return self.fed_refuse(req, servers, kind, Value::Null, e).await;
        }
        let Some(gs) = gs else {
            let e = if get {
                // Stateless (2026-07-28) clients have no standalone stream (the spec allows 405).
                GatewayError::MethodNotAllowed { message: "GET needs an Mcp-Session-Id".into() }
            } else {
                GatewayError::bad_request("DELETE needs an Mcp-Session-Id")
            };
            return self.fed_refuse(req, servers, kind, Value::Null, e).await;
        };
        let action = if get { "connect" } else { "disconnect" };
        let permit = match self.fed_plumbing(req, servers, action, &NO_PARAMS, kind).await {
            Ok(p) => p,
            Err(r) => {
                return Reply::Json(Answer::refusal(&r, &Value::Null, req.corr_id, None, self.cfg.mcp.refusal_status))
            }
        };
        self.enforce.answered(permit).await;
        if get {
            let last_event_id = req.last_event_id.map(String::from);
            return Reply::Stream(Box::new(Stream::Listen { session: gs, owner: req.owner(), last_event_id }));
        }
        let _ = self.fed.sessions.remove(&gs.id, &req.owner()).await;
        self.fed.upstreams.end(&format!("s:{}", gs.id));
        self.fed.relays.end(&gs.id);
        Reply::Json(Answer { status: 200, body: json!({}), headers: vec![], outcome: Outcome::Allowed, method: None })
    }

    async fn fed_post<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        gs: Option<Arc<GatewaySession>>,
    ) -> Reply<'a> {
        let (msg, value) = match req.message {
            Some(Ok((m, v))) => (m, v),
            Some(Err(e)) => {
                return self.fed_refuse(req, servers, MessageKind::Request, id_of(req.body), e.clone()).await
            }
            None => {
                return self
                    .fed_refuse(req, servers, MessageKind::Request, Value::Null, GatewayError::bad_request("no body"))
                    .await
            }
        };
        let params = value.get("params").filter(|p| p.is_object()).unwrap_or(&NO_PARAMS);
        let (id, method) = match msg {
            Message::Request { id, method, .. } => (id, method.as_str()),
            Message::Notification { method, .. } => {
                if !CLIENT_NOTIFICATIONS.contains(&method.as_str()) {
                    let e = GatewayError::bad_request(format!("{method:?} is not a client notification"));
                    return self.fed_refuse(req, servers, MessageKind::Notification, Value::Null, e).await;
                }
                return match self.fed_plumbing(req, servers, method, params, MessageKind::Notification).await {
                    Ok(p) => {
                        self.enforce.answered(p).await;
                        Reply::Accepted
                    }
                    Err(r) => Reply::Json(Answer::refusal(
                        &r,
                        &Value::Null,
                        req.corr_id,
                        Some(method),
                        self.cfg.mcp.refusal_status,
                    )),
                };
            }
            Message::Response { id } => {
                let Some(s) = gs else {
                    let e = GatewayError::bad_request("a client response needs the Mcp-Session-Id it answers on");
                    return self.fed_refuse(req, servers, MessageKind::Response, id.clone(), e).await;
                };
                if let Some(relayed) = self.fed.relays.take(&s.id, id) {
                    // The answer to an upstream's own request relayed on this session.
                    return self.relay_answer(req, servers, relayed, value).await;
                }
                return match self.fed_plumbing(req, servers, "response", &NO_PARAMS, MessageKind::Response).await {
                    Ok(p) => {
                        self.enforce.answered(p).await;
                        self.fed.pending.deliver(&s.id, id, value.clone()).await;
                        Reply::Accepted
                    }
                    Err(r) => Reply::Json(Answer::refusal(&r, id, req.corr_id, None, self.cfg.mcp.refusal_status)),
                };
            }
        };
        let modern = gs.is_none() && confirm::ClientProfile::from_request(req.protocol_version, params).modern;
        match method {
            "tools/call" | "prompts/get" | "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let on = gs.clone();
                super::stream::resumable(self.routed(req, servers, gs, id, method, params, value, modern).await, on)
            }
            "resources/list" | "resources/templates/list" | "prompts/list" => {
                self.aggregate(req, servers, gs.as_deref(), id, method, modern).await
            }
            "logging/setLevel" => self.set_level(req, servers, gs.as_deref(), id, params, modern).await,
            "completion/complete" => {
                let on = gs.clone();
                super::stream::resumable(self.routed(req, servers, gs, id, method, params, value, modern).await, on)
            }
            "initialize" | "server/discover" | "ping" | "tools/list" => {
                let permit = match self.fed_plumbing(req, servers, method, params, MessageKind::Request).await {
                    Ok(p) => p,
                    Err(r) => {
                        return Reply::Json(Answer::refusal(
                            &r,
                            id,
                            req.corr_id,
                            Some(method),
                            self.cfg.mcp.refusal_status,
                        ))
                    }
                };
                self.answer_plumbing(req, servers, gs.as_deref(), permit, id, method, params, modern).await
            }
            _ => {
                let e = GatewayError::NotFound { message: format!("method not found: {method}") };
                let r = self.fed_refuse_quiet(req, servers, MessageKind::Request, e).await;
                // JSON-RPC's own answer to an unknown method.
                let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": r.error.message()}});
                Reply::Json(Answer::message(body, r.outcome, Some(method)))
            }
        }
    }

    /// The gateway's answer to its own protocol methods (already allowed).
    #[allow(clippy::too_many_arguments)]
    async fn answer_plumbing<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        gs: Option<&GatewaySession>,
        permit: Permit<'_>,
        id: &Value,
        method: &str,
        params: &Value,
        modern: bool,
    ) -> Reply<'a> {
        let result = match method {
            "initialize" => {
                let requested = params.get("protocolVersion").and_then(Value::as_str);
                let init = initialize_result(requested, self.fed.offered());
                let version = init["protocolVersion"].as_str().unwrap_or_default().to_string();
                let declared = params.get("capabilities").cloned().unwrap_or_else(|| json!({}));
                let now = chrono::Utc::now().timestamp();
                match self.fed.sessions.create(req.owner(), version, declared, now).await {
                    Ok(created) => {
                        for ended in &created.ended {
                            self.fed.upstreams.end(&format!("s:{ended}"));
                            self.fed.relays.end(ended);
                        }
                        let s = created.session;
                        self.enforce.answered(permit).await;
                        let body = json!({"jsonrpc": "2.0", "id": id, "result": init});
                        let mut a = Answer::message(body, Outcome::Allowed, Some(method));
                        a.headers.push(("mcp-session-id", s.id.clone()));
                        return Reply::Json(a);
                    }
                    Err(why) => {
                        let message = if why == SessionError::Unavailable {
                            "session store unavailable; retry later"
                        } else {
                            "too many sessions (mcp.max_sessions); retry later"
                        };
                        let e = GatewayError::Unavailable { message: message.into() };
                        let r = self.enforce.refuse_permit(permit, e).await;
                        return Reply::Json(Answer::refusal(
                            &r,
                            id,
                            req.corr_id,
                            Some(method),
                            self.cfg.mcp.refusal_status,
                        ));
                    }
                }
            }
            "server/discover" => discover_result(self.fed.offered()),
            "ping" if modern => json!({"resultType": "complete"}),
            "ping" => json!({}),
            _ => {
                let own = self.session_tools(req, servers, gs).await;
                let mut r = json!({"tools": self.visible_tools(req, servers, &own)});
                if modern {
                    super::lists::cacheable(&mut r);
                }
                r
            }
        };
        self.enforce.answered(permit).await;
        Reply::Json(Answer::message(
            json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Outcome::Allowed,
            Some(method),
        ))
    }

    /// `mcp.<method>` for the gateway itself: allowed when the caller may send it to any
    /// configured server.
    pub(super) async fn fed_plumbing<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        method: &str,
        params: &'a Value,
        kind: MessageKind,
    ) -> Result<Permit<'a>, Refusal> {
        let calls: Vec<Call<'a>> =
            servers.iter().map(|s| self.server_call(&req.to_server(s, None, false), method, params, kind)).collect();
        if calls.is_empty() {
            let e = GatewayError::Forbidden {
                message: "no MCP server is configured".into(),
                reasons: vec!["no_servers".into()],
            };
            return Err(self.fed_refuse_quiet(req, servers, kind, e).await);
        }
        let mut calls = calls;
        for c in &mut calls {
            // The gateway answers: recorded as a federated call, not one to that server.
            c.server = None;
            c.tool_id = Some("mcp:*".into());
        }
        self.enforce.authorize_any(calls).await
    }

    /// Records a refusal of a federated request and answers it.
    pub(super) async fn fed_refuse<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        kind: MessageKind,
        id: Value,
        e: GatewayError,
    ) -> Reply<'a> {
        let r = self.fed_refuse_quiet(req, servers, kind, e).await;
        Reply::Json(Answer::refusal(&r, &id, req.corr_id, None, self.cfg.mcp.refusal_status))
    }

    pub(super) async fn fed_refuse_quiet(
        &self,
        req: &FedRequest<'_>,
        _servers: &[Arc<McpServer>],
        kind: MessageKind,
        e: GatewayError,
    ) -> Refusal {
        let resource = json!({"toolId": "mcp:*", "provider_id": "mcp", "required_scopes": []});
        let origin = crate::enforce::Origin {
            protocol: "mcp",
            path: req.path,
            http_method: req.http_method,
            client_ip: req.client_ip,
            corr_id: req.corr_id,
        };
        let mut call = Call::new(req.policy, req.principal, "mcp.request", resource, &NO_PARAMS, kind, origin);
        call.tool_id = Some("mcp:*".into());
        call.provider = Some("mcp".into());
        self.enforce.refuse(&call, e).await
    }
}
