//! The federated lists: `tools/list` from what discovery found (or, for a server the
//! session declares client capabilities to, what its own upstream session lists), and
//! `resources/list`, `resources/templates/list`, `prompts/list` gathered from every server
//! the caller may ask.

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
        self.fed.visible_tools_over(own, |name, tool| {
            servers
                .iter()
                .find(|s| s.name == name)
                .is_some_and(|s| self.tool_visible(req.policy, s, req.principal, tool, req.corr_id))
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
            let listed = tokio::task::spawn_blocking(move || match m.as_str() {
                "prompts/list" => client.list_prompts(&proof),
                "resources/templates/list" => client.list_resource_templates(&proof),
                _ => client.list_resources(&proof),
            })
            .await;
            let Ok(Ok(items)) = listed else {
                tracing::warn!(server = %server.name, method, "upstream list failed; server skipped");
                continue;
            };
            for mut item in items {
                if key == "prompts" {
                    if let Some(name) = item.get("name").and_then(Value::as_str) {
                        item["name"] = json!(self.fed.exposed_name(&server.name, name));
                    }
                } else if let Some(uri) = item.get("uri").and_then(Value::as_str) {
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

/// The 2026-07-28 cacheable-result fields: the list is filtered per caller, so it is private
/// and not to be reused (`ttlMs` 0) — a policy change applies at once.
pub(super) fn cacheable(r: &mut Value) {
    r["resultType"] = json!("complete");
    r["ttlMs"] = json!(0);
    r["cacheScope"] = json!("private");
}
