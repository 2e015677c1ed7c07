//! The federated lists: `tools/list` from what discovery found (or, for a server the
//! session declares client capabilities to, what its own upstream session lists), and
//! `resources/list`, `resources/templates/list`, `prompts/list` gathered from every server
//! the caller may ask. `logging/setLevel` fans out the same way, to the servers that offer
//! logging.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::door::{FedRequest, Reply};
use crate::catalog::McpServer;
use crate::enforce::{MessageKind, Outcome};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::inbound::Answer;
use crate::mcp::session::GatewaySession;

impl Gateway {
    /// Every discovered tool the caller may call, across servers, renamed `{server}__{tool}`;
    /// `own` lists replace discovery's for their servers.
    pub(super) fn visible_tools(
        &self,
        req: &FedRequest<'_>,
        servers: &[Arc<McpServer>],
        own: &BTreeMap<String, Vec<Value>>,
    ) -> Vec<Value> {
        let lister = self.tool_lister(req.policy, req.principal, req.corr_id);
        self.fed.visible_tools_over(own, |name, tool| {
            servers.iter().find(|s| s.name == name).is_some_and(|s| self.tool_visible(&lister, s, tool))
        })
    }

    /// `resources/list`, `resources/templates/list` or `prompts/list` over every server the
    /// caller may ask. Each server asked is a decided, recorded call of its own (a list fans
    /// out); a server that refuses or fails is skipped. Prompts are renamed like tools;
    /// resources keep their URIs and remember their owner for `resources/read`.
    pub(super) async fn aggregate<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        gs: Option<&GatewaySession>,
        id: &Value,
        method: &str,
        modern: bool,
    ) -> Reply<'a> {
        let key = match method {
            "prompts/list" => "prompts",
            "resources/templates/list" => "resourceTemplates",
            _ => "resources",
        };
        let empty = json!({});
        let mut all = Vec::new();
        let mut asked = 0;
        for server in servers {
            let inbound = req.to_server(server, None, false);
            let call = self.server_call(&inbound, method, &empty, MessageKind::Request);
            // Whether the caller may ask this server at all is not worth a refusal record
            // per server: only the servers it may ask are decided and recorded.
            if !self.enforce.visible(req.policy, req.principal, &call.action, &call.resource, inbound.origin(), method)
            {
                continue;
            }
            let Ok(permit) = self.enforce.authorize(call).await else { continue };
            let Ok(admitted) = self.enforce.admit(permit, None).await else { continue };
            asked += 1;
            let Ok(client) = self.fed_client(req, server, gs, &admitted).await else {
                continue;
            };
            let m = method.to_string();
            let proof = admitted.proof();
            let span = crate::otel::child("upstream", opentelemetry::trace::SpanKind::Client);
            if let Some(s) = span.as_ref().filter(|s| s.trace().is_recording()) {
                s.set("fastmcp.server", server.name.clone());
            }
            let listed =
                crate::otel::spawn_blocking(span.as_ref().map(|s| s.trace().clone()), move || match m.as_str() {
                    "prompts/list" => client.list_prompts(&proof),
                    "resources/templates/list" => client.list_resource_templates(&proof),
                    _ => client.list_resources(&proof),
                })
                .await;
            drop(span);
            let Ok(Ok(items)) = listed else {
                tracing::warn!(server = %server.name, method, "upstream list failed; server skipped");
                continue;
            };
            for mut item in items {
                if key == "prompts" {
                    if let Some(name) = item.get("name").and_then(Value::as_str) {
                        item["name"] = json!(self.fed.exposed_name(&server.name, name));
                    }
                } else if let Some(uri) = item.get("uri").or_else(|| item.get("uriTemplate")).and_then(Value::as_str) {
                    // Templates too: `completion/complete` names one by its URI template.
                    self.fed.set_resource_owner(uri, &server.name);
                }
                all.push(item);
            }
        }
        if asked == 0 {
            let e = GatewayError::Forbidden {
                message: "forbidden by policy".into(),
                reasons: vec!["no_server_allows".into()],
            };
            let r = self.fed_refuse_quiet(req, servers, MessageKind::Request, e).await;
            return Reply::Json(Answer::refusal(&r, id, req.corr_id, Some(method), self.cfg.mcp.refusal_status));
        }
        let mut r = json!({ key: all });
        if modern {
            cacheable(&mut r);
        }
        Reply::Json(Answer::message(json!({"jsonrpc": "2.0", "id": id, "result": r}), Outcome::Allowed, Some(method)))
    }
}

impl Gateway {
    /// `logging/setLevel` on every server that offers logging and the caller may ask; each
    /// server asked is a decided, recorded call of its own (like the lists). No server offers
    /// logging: the method does not exist here (-32601, the capability is not offered
    /// either); none of them lets the caller ask: refused. A server that fails is skipped;
    /// when every one asked failed, the last failure is the answer.
    pub(super) async fn set_level<'a>(
        &self,
        req: &FedRequest<'a>,
        servers: &'a [Arc<McpServer>],
        gs: Option<&GatewaySession>,
        id: &Value,
        params: &'a Value,
        modern: bool,
    ) -> Reply<'a> {
        const METHOD: &str = "logging/setLevel";
        let offering = self.fed.offering("logging");
        let targets: Vec<&Arc<McpServer>> = servers.iter().filter(|s| offering.contains(&s.name)).collect();
        if targets.is_empty() {
            let e =
                GatewayError::NotFound { message: format!("method not found: {METHOD} (no server offers logging)") };
            let r = self.fed_refuse_quiet(req, servers, MessageKind::Request, e).await;
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": r.error.message()}});
            return Reply::Json(Answer::message(body, r.outcome, Some(METHOD)));
        }
        let (mut asked, mut done, mut failure) = (0, 0, None);
        for server in targets {
            let inbound = req.to_server(server, None, false);
            let call = self.server_call(&inbound, METHOD, params, MessageKind::Request);
            if !self.enforce.visible(req.policy, req.principal, &call.action, &call.resource, inbound.origin(), METHOD)
            {
                continue;
            }
            let Ok(permit) = self.enforce.authorize(call).await else { continue };
            let Ok(admitted) = self.enforce.admit(permit, None).await else { continue };
            asked += 1;
            let client = match self.fed_client(req, server, gs, &admitted).await {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            let (p, proof) = (params.clone(), admitted.proof());
            let span = crate::otel::child("upstream", opentelemetry::trace::SpanKind::Client);
            if let Some(s) = span.as_ref().filter(|s| s.trace().is_recording()) {
                s.set("fastmcp.server", server.name.clone());
            }
            let trace = span.as_ref().map(|s| s.trace().clone());
            let set = crate::otel::spawn_blocking(trace, move || client.request(&proof, METHOD, p, &mut |_| {})).await;
            drop(span);
            match set {
                Ok(Ok(_)) => done += 1,
                Ok(Err(e)) => {
                    tracing::warn!(server = %server.name, error = %e, "logging/setLevel failed upstream");
                    failure = Some(crate::mcp::upstream::client_error(&server.name, &e));
                }
                Err(_) => {
                    failure = Some(GatewayError::Provider { message: format!("MCP server {} failed", server.name) })
                }
            }
        }
        if asked == 0 {
            let e = GatewayError::Forbidden {
                message: "forbidden by policy".into(),
                reasons: vec!["no_server_allows".into()],
            };
            let r = self.fed_refuse_quiet(req, servers, MessageKind::Request, e).await;
            return Reply::Json(Answer::refusal(&r, id, req.corr_id, Some(METHOD), self.cfg.mcp.refusal_status));
        }
        if let (0, Some(e)) = (done, failure) {
            return Reply::Json(Answer {
                status: e.status(),
                body: e.jsonrpc_body(id, req.corr_id),
                headers: vec![],
                outcome: Outcome::Failed,
                method: Some(METHOD.into()),
            });
        }
        let result = if modern { json!({"resultType": "complete"}) } else { json!({}) };
        Reply::Json(Answer::message(
            json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Outcome::Allowed,
            Some(METHOD),
        ))
    }
}

/// The 2026-07-28 cacheable-result fields: the list is filtered per caller, so it is private
/// and not to be reused (`ttlMs` 0) — a policy change applies at once.
pub(super) fn cacheable(r: &mut Value) {
    r["resultType"] = json!("complete");
    r["ttlMs"] = json!(0);
    r["cacheScope"] = json!("private");
}
