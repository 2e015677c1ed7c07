//! An upstream server's own requests to the client (`sampling/createMessage`,
//! `elicitation/create`, `roots/list`, `ping`), relayed on a federated client's session.
//!
//! - What the gateway declares upstream: the capabilities the session's client declared at
//!   `initialize` (sampling, elicitation; not roots, see [`RELAYED`]), each only when the policy lets the server
//!   ask for it (`mcp.client.<method>` on the server) — so a server offers the tools that
//!   need them exactly as it would to that client directly.
//! - A request met during a call (on the call's SSE stream, forwarded by pingora or read by
//!   the gateway's client) is decided as `mcp.client.<method>` on the server and recorded
//!   (message `server_request`): allowed, it reaches the client on that stream under a fresh
//!   id ([`crate::mcp::relay`]); refused, the client never sees it and the server gets a
//!   JSON-RPC error.
//! - The client's answer (a POST of a JSON-RPC response on `/mcp`) is decided as
//!   `mcp.response` on the server that asked, recorded, and sent to it on the gateway's
//!   upstream session under the server's own id.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::door::{FedRequest, Reply};
use crate::auth::Principal;
use crate::canonical;
use crate::catalog::McpServer;
use crate::enforce::{Admitted, Call, MessageKind, Origin, Stop};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::client::{wire, McpClient};
use crate::mcp::inbound::Answer;
use crate::mcp::relay::{Relayed, ReplyTo};
use crate::mcp::session::{owner_key, GatewaySession};
use crate::policy::PolicySnapshot;

/// The client capabilities the gateway relays, and the request each lets a server send.
///
/// `roots` is not declared upstream yet: servers ask for roots on their standalone GET stream,
/// outside any call, which the gateway does not relay — declaring it would list tools that
/// then wait out the server's timeout.
pub const RELAYED: &[(&str, &str)] = &[("sampling", "sampling/createMessage"), ("elicitation", "elicitation/create")];

/// Where a federated call's upstream requests are decided and relayed to.
#[derive(Clone)]
pub struct RelayRoute {
    /// The client's gateway session (`None`: a stateless caller, nothing can be relayed).
    pub session: Option<String>,
    pub server: Arc<McpServer>,
    /// The policy and caller the call was decided by.
    pub policy: PolicySnapshot,
    pub principal: Arc<Principal>,
    pub client_ip: String,
}

/// A call forwarded through pingora: its route, and the gateway's upstream client whose
/// session the call went on (answers go back there).
pub struct ForwardRelay {
    pub route: RelayRoute,
    pub client: Arc<McpClient>,
}

/// What becomes of one upstream request.
#[derive(Debug, PartialEq)]
pub enum RelayStep {
    /// Allowed: this message (the request under its relayed id) goes to the client.
    ToClient(Value),
    /// The gateway answers the server itself with this, and the client sees nothing: a
    /// refusal (recorded), or — for a caller without a session — `ping`'s empty result.
    Answered(Value),
}

static NO_PARAMS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));

impl Gateway {
    /// The route of a federated call to `server`.
    pub(super) fn relay_route(
        &self,
        req: &FedRequest<'_>,
        server: &Arc<McpServer>,
        gs: Option<&GatewaySession>,
    ) -> RelayRoute {
        RelayRoute {
            session: gs.map(|s| s.id.clone()),
            server: server.clone(),
            policy: req.policy.clone(),
            principal: Arc::new(req.principal.clone()),
            client_ip: req.client_ip.to_string(),
        }
    }

    /// What the gateway's upstream client for session `gs` declares to `server`: each
    /// capability of [`RELAYED`] the client declared and the policy lets the server use
    /// (`mcp.client.<method>`), as the client declared it. Nothing without a session.
    pub fn upstream_capabilities(
        &self,
        policy: &PolicySnapshot,
        principal: &Principal,
        server: &McpServer,
        gs: Option<&GatewaySession>,
        corr_id: &str,
    ) -> Value {
        let mut out = Map::new();
        let Some(declared) = gs.map(|s| &s.client_capabilities) else {
            return Value::Object(out);
        };
        let resource = self.catalog.server_resource(server, None);
        let origin = Origin { protocol: "mcp", path: "/mcp", http_method: "POST", client_ip: "", corr_id };
        for (cap, method) in RELAYED {
            let Some(value) = declared.get(*cap).filter(|v| v.is_object()) else { continue };
            let action = format!("mcp.client.{method}");
            if self.enforce.visible(policy, principal, &action, &resource, origin, method) {
                out.insert((*cap).to_string(), value.clone());
            }
        }
        Value::Object(out)
    }

    /// The gateway's upstream client for this caller on `server` (per session, or per
    /// principal for stateless callers), declaring what the session relays.
    pub(super) async fn fed_client(
        &self,
        req: &FedRequest<'_>,
        server: &Arc<McpServer>,
        gs: Option<&GatewaySession>,
        admitted: &Admitted,
    ) -> Result<Arc<McpClient>, GatewayError> {
        let (key, declare) = self.fed_client_key(req, server, gs);
        self.fed.upstreams.client(server, &key, server.timeout(&self.cfg.limits), declare, admitted).await
    }

    /// The upstream client key and declared capabilities of this caller on `server`.
    pub(super) fn fed_client_key(
        &self,
        req: &FedRequest<'_>,
        server: &McpServer,
        gs: Option<&GatewaySession>,
    ) -> (String, Value) {
        let key = match gs {
            Some(s) => format!("s:{}", s.id),
            None => format!("o:{}", owner_key(&req.principal.tenant, &req.principal.sub)),
        };
        (key, self.upstream_capabilities(req.policy, req.principal, server, gs, req.corr_id))
    }

    /// An upstream's request `msg` met during a call on `route`: decided as
    /// `mcp.client.<method>` on the server and recorded, without awaiting (it may be met
    /// inside a response hook). Allowed: remembered with `to` (where the answer goes) and
    /// returned under its relayed id for the client. Refused: the error for the server. A
    /// caller without a session cannot be asked: the server's `ping` is answered by the
    /// gateway (as its client always did), anything else is refused.
    pub fn relay_request(&self, route: &RelayRoute, msg: &Value, to: ReplyTo, corr_id: &str) -> RelayStep {
        let method = msg.get("method").and_then(Value::as_str).unwrap_or_default();
        let params = msg.get("params").filter(|p| p.is_object()).unwrap_or(&NO_PARAMS);
        let origin =
            Origin { protocol: "mcp", path: "/mcp", http_method: "POST", client_ip: &route.client_ip, corr_id };
        let resource = self.catalog.server_resource(&route.server, None);
        let mut call = Call::new(
            &route.policy,
            &route.principal,
            format!("mcp.client.{method}"),
            resource,
            params,
            MessageKind::ServerRequest,
            origin,
        );
        call.args_hash = Some(canonical::hash(params));
        call.tool_id = Some(format!("mcp:{}", route.server.name));
        call.provider = Some("mcp".into());
        call.server = Some(route.server.name.clone());
        call.mcp_method = Some(method.to_string());
        let Some(session) = route.session.as_deref() else {
            if method == "ping" {
                return RelayStep::Answered(wire::reply_to_server_request(msg));
            }
            let e = GatewayError::Forbidden {
                message: "the client has no session to relay the server's request on".into(),
                reasons: vec!["no_client_session".into()],
            };
            self.enforce.refuse_now(&call, e);
            return RelayStep::Answered(wire::refusal(msg, "the client cannot be asked (no session)"));
        };
        if let Err(r) = self.enforce.decide_now(&call) {
            tracing::info!(corr_id, server = %route.server.name, method, decision = r.outcome.label(), "server request not relayed");
            return RelayStep::Answered(wire::refusal(msg, "the gateway's policy does not relay this request"));
        }
        let upstream_id = msg.get("id").cloned().unwrap_or(Value::Null);
        let id = self.fed.relays.insert(session, Relayed::new(&route.server.name, upstream_id, to));
        self.fed.relays.expire_later(session, &id);
        let mut out = msg.clone();
        out["id"] = json!(id);
        RelayStep::ToClient(out)
    }

    /// The client answered a relayed request (`relayed`, taken from its session): decided as
    /// `mcp.response` on the server that asked and recorded, then sent to it under the
    /// server's own id. Refused, the client gets the refusal and the server an error.
    pub(super) async fn relay_answer<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        relayed: Relayed,
        value: &Value,
    ) -> Reply<'a> {
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        let Some(server) = servers.iter().find(|s| s.name == relayed.server) else {
            relayed.fail("the server is no longer configured");
            let e = GatewayError::NotFound { message: "the server that asked is no longer configured".into() };
            return self.fed_refuse(req, servers, MessageKind::Response, id, e).await;
        };
        let inbound = req.to_server(server, None, false);
        let call = self.server_call(&inbound, "response", &NO_PARAMS, MessageKind::Response);
        let refused = |r: crate::enforce::Refusal, relayed: Relayed| {
            relayed.fail("the gateway's policy does not relay this answer");
            Reply::Json(Answer::refusal(&r, &id, req.corr_id, None, self.cfg.mcp.refusal_status))
        };
        let permit = match self.enforce.authorize(call).await {
            Ok(p) => p,
            Err(r) => return refused(r, relayed),
        };
        let admitted = match self.enforce.admit(permit, None).await {
            Ok(a) => a,
            Err(Stop::Refused(r)) => return refused(r, relayed),
            Err(Stop::Held(_)) => {
                // Holds are for tool calls; a policy asking to confirm an answer refuses it.
                let e = GatewayError::Forbidden {
                    message: "only tool calls can be confirmed".into(),
                    reasons: vec!["confirmation_unsupported".into()],
                };
                let call = self.server_call(&inbound, "response", &NO_PARAMS, MessageKind::Response);
                let r = self.enforce.refuse(&call, e).await;
                return refused(r, relayed);
            }
        };
        let proof = admitted.proof();
        let answer = value.clone();
        let sent = tokio::task::spawn_blocking(move || relayed.send(&proof, answer)).await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::warn!(corr_id = req.corr_id, server = %server.name, "relayed answer not delivered upstream");
        }
        Reply::Accepted
    }

    /// The tools each server lists on this session's own upstream session, for the servers
    /// the session declares capabilities to (they may offer tools by them, as server-everything
    /// does for sampling, elicitation and roots). Each server asked is a decided, recorded
    /// `mcp.tools/list` of its own; one that refuses or fails keeps discovery's list.
    pub(super) async fn session_tools(
        &self,
        req: &FedRequest<'_>,
        servers: &[Arc<McpServer>],
        gs: Option<&GatewaySession>,
    ) -> BTreeMap<String, Vec<Value>> {
        let mut own = BTreeMap::new();
        let Some(gs) = gs else { return own };
        for server in servers {
            let declare = self.upstream_capabilities(req.policy, req.principal, server, Some(gs), req.corr_id);
            if declare.as_object().is_none_or(Map::is_empty) {
                continue;
            }
            let inbound = req.to_server(server, None, false);
            let call = self.server_call(&inbound, "tools/list", &NO_PARAMS, MessageKind::Request);
            if !self.enforce.visible(
                req.policy,
                req.principal,
                &call.action,
                &call.resource,
                inbound.origin(),
                "tools/list",
            ) {
                continue;
            }
            let Ok(permit) = self.enforce.authorize(call).await else { continue };
            let Ok(admitted) = self.enforce.admit(permit, None).await else { continue };
            let Ok(client) = self.fed_client(req, server, Some(gs), &admitted).await else { continue };
            let proof = admitted.proof();
            match tokio::task::spawn_blocking(move || client.list_tools(&proof)).await {
                Ok(Ok(tools)) => {
                    own.insert(server.name.clone(), tools);
                }
                _ => tracing::warn!(server = %server.name, "session tools/list failed; discovery's list used"),
            }
        }
        own
    }
}

#[cfg(test)]
mod tests;
