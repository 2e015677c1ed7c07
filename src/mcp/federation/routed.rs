//! A federated call that belongs to one server (`tools/call`, `prompts/get`,
//! `resources/read|subscribe|unsubscribe`, `completion/complete` by the prompt or resource
//! its `ref` names): resolved to its server and name, decided there
//! exactly as at `/mcp/{server}`, then planned for the upstream (pingora for HTTP servers,
//! the upstream client for stdio servers and for calls confirmed by elicitation).

use std::sync::Arc;

use serde_json::{json, Value};

use super::door::{FedRequest, Reply, Routed};
use super::relay::ForwardRelay;
use super::stream::{AfterConfirm, Stream};
use crate::catalog::McpServer;
use crate::enforce::{Completion, MessageKind};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::client::Era;
use crate::mcp::confirm;
use crate::mcp::inbound::{Answer, Verdict};
use crate::mcp::jsonrpc;
use crate::mcp::session::GatewaySession;
use crate::mcp::upstream::{forward_headers, upstream_body};

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn routed<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        gs: Option<Arc<GatewaySession>>,
        id: &'a Value,
        method: &str,
        params: &'a Value,
        body: &'a Value,
        modern: bool,
    ) -> Reply<'a> {
        // `completion/complete` names its prompt or resource in `params.ref`.
        let completion = method == "completion/complete";
        let named = if completion { params.get("ref").unwrap_or(&Value::Null) } else { params };
        let target = named.get("name").or_else(|| named.get("uri")).and_then(Value::as_str).unwrap_or("");
        let by_uri = method.starts_with("resources/") || (completion && named.get("uri").is_some());
        let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
        let resolved: Option<(String, &'a str)> = if by_uri {
            self.fed.resource_owner(target).map(|s| (s, target))
        } else {
            self.fed.resolve(target, &names)
        };
        let server = resolved.as_ref().and_then(|(s, _)| servers.iter().find(|x| &x.name == s));
        let (Some(server), Some((_, upstream_name))) = (server, resolved) else {
            let e = GatewayError::NotFound { message: format!("unknown {}: {target:?}", target_kind(method)) };
            return self.fed_refuse(req, servers, MessageKind::Request, id.clone(), e).await;
        };
        let elicitation = gs.as_ref().is_some_and(|s| s.elicitation());
        let inbound = req.to_server(server, Some(upstream_name), elicitation);
        let verdict = if method == "tools/call" {
            self.tool_call(&inbound, id, params, body).await
        } else {
            self.server_message(&inbound, method, params, MessageKind::Request, id).await
        };
        let (key, declare) = self.fed_client_key(req, server, gs.as_deref());
        let relay = self.relay_route(req, server, gs.as_deref());
        // The body as the upstream names things, without the gateway's confirmation fields.
        let mut outgoing = confirm::strip_retry_fields(jsonrpc::strip_action_token(body.clone()));
        if completion {
            if !by_uri {
                outgoing["params"]["ref"]["name"] = json!(upstream_name);
            }
        } else if !method.starts_with("resources/") {
            outgoing["params"]["name"] = json!(upstream_name);
        }
        let mut forward = match verdict {
            Verdict::Answer(a) => return Reply::Json(a),
            Verdict::Accepted(_) => return Reply::Accepted,
            Verdict::Elicit(held) => {
                let Some(session) = gs else {
                    let e = GatewayError::Unavailable { message: "elicitation needs a session".into() };
                    return self.fed_refuse(req, servers, MessageKind::Request, id.clone(), e).await;
                };
                let then = AfterConfirm::Client { server: server.clone(), key, declare, relay };
                let ask_on = session.id.clone();
                return Reply::Stream(Box::new(Stream::Elicit { held, ask_on, then, body: outgoing, id: id.clone() }));
            }
            Verdict::Forward(f) => f,
        };
        let timeout = server.timeout(&self.cfg.limits);
        let client = match self.fed.upstreams.client(server, &key, timeout, declare, &forward.admitted).await {
            Ok(c) => c,
            Err(e) => {
                let end = Completion { status: Some(e.status()), error_code: Some(e.code().into()), result_hash: None };
                let code = e.code();
                self.enforce.complete(forward.admitted, end).await;
                tracing::warn!(corr_id = req.corr_id, server = %server.name, code, "upstream connect failed");
                return Reply::Json(Answer {
                    status: e.status(),
                    body: e.jsonrpc_body(id, req.corr_id),
                    headers: vec![],
                    outcome: crate::enforce::Outcome::Failed,
                    method: Some(method.to_string()),
                });
            }
        };
        let outgoing = upstream_body(outgoing, client.era(), client.declared_capabilities());
        // A 2026-07-28 client behind a 2025-11-25 upstream needs `resultType` on results.
        let mark_complete = modern && client.era() == Era::Session20251125;
        if server.url.is_none() {
            return Reply::Stream(Box::new(Stream::Execute {
                admitted: forward.admitted,
                client,
                server: server.clone(),
                method: method.to_string(),
                body: outgoing,
                id: id.clone(),
                mark_complete,
                relay,
            }));
        }
        let headers = forward_headers(&client, method, Some(upstream_name));
        // The caller's `Mcp-Param-*` named the federated tool's call as it sent it; the
        // upstream gets the ones its own tool's marks ask for, from the body it receives.
        forward.params = client.param_headers(method, &outgoing["params"]);
        forward.body = Some(bytes::Bytes::from(serde_json::to_vec(&outgoing).unwrap_or_default()));
        let relay = Some(ForwardRelay { route: relay, client });
        Reply::Forward(Box::new(Routed { server: server.clone(), forward, headers, mark_complete, relay }))
    }
}

fn target_kind(method: &str) -> &'static str {
    match method {
        "tools/call" => "tool",
        "prompts/get" => "prompt",
        "completion/complete" => "completion reference",
        _ => "resource",
    }
}
