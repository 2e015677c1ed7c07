//! `GET /tool-catalog`: the tools the caller may invoke, decided by the same policy as invoke
//! (a tool that would be denied is not listed; one that would be held is).

use serde_json::{json, Value};

use super::invoke::{lookup, refused};
use super::{resource_of, Reply, RestRequest};
use crate::enforce::{Call, MessageKind, Outcome};
use crate::gateway::Gateway;

pub async fn catalog(gw: &Gateway, req: &RestRequest<'_>) -> Reply {
    let listing = json!({"toolId": "catalog", "provider_id": "catalog", "tenant": "public", "safety_tags": [], "required_scopes": []});
    let empty = json!({});
    let mut call =
        Call::new(req.policy, req.principal, "catalog:list", listing, &empty, MessageKind::Rest, req.origin());
    call.tool_id = Some("catalog".into());
    let permit = match gw.enforce.authorize(call).await {
        Ok(p) => p,
        Err(r) => return refused(r, req),
    };
    gw.enforce.answered(permit).await;
    let mut ids: Vec<String> = gw.rest.manifests.list().into_iter().map(|m| m.tool_id).collect();
    ids.extend(
        gw.fed
            .all_tools()
            .into_iter()
            .filter_map(|(server, t)| Some(format!("mcp:{server}:{}", t.get("name")?.as_str()?))),
    );
    let lister = gw.enforce.lister(req.policy, req.principal, req.origin(), "");
    let tools: Vec<Value> = ids
        .iter()
        .filter_map(|id| lookup(gw, id))
        .filter(|m| lister.visible("tools.invoke", &resource_of(m)))
        .map(|m| m.to_value())
        .collect();
    Reply::ok(200, json!({"tenant": req.principal.tenant, "tools": tools}), Outcome::Allowed)
}
