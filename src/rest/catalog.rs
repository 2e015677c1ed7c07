//! `GET /tool-catalog`: the tools the caller may invoke, decided by the same policy as invoke
//! (a tool that would be denied is not listed; one that would be held is).

use serde_json::{json, Value};

use super::invoke::{decide, lookup};
use super::{Reply, RestRequest};
use crate::error::GatewayError;
use crate::pipeline::Gateway;

pub async fn catalog(gw: &Gateway, req: &RestRequest<'_>) -> Reply {
    let listing = json!({"toolId": "catalog", "provider_id": "catalog", "tenant": "public", "safety_tags": [], "required_scopes": []});
    let doc = crate::policy::input::build(
        req.principal,
        "catalog:list",
        &listing,
        &crate::policy::input::RequestFacts {
            protocol: "rest",
            mcp_method: None,
            arguments: &json!({}),
            path: req.path,
            method: "GET",
            client_ip: req.client_ip,
            corr_id: req.corr_id,
        },
    );
    match req.policy.decide(&doc) {
        Ok(d) if d.allow => {}
        Ok(d) => {
            let e = GatewayError::Forbidden { message: "catalog forbidden by policy".into(), reasons: d.reasons };
            return Reply::error(&e, req.corr_id);
        }
        Err(e) => return Reply::error(&e, req.corr_id),
    }
    let mut ids: Vec<String> = gw.rest.manifests.list().into_iter().map(|m| m.tool_id).collect();
    ids.extend(
        gw.fed
            .all_tools()
            .into_iter()
            .filter_map(|(server, t)| Some(format!("mcp:{server}:{}", t.get("name")?.as_str()?))),
    );
    let empty = json!({});
    let tools: Vec<Value> = ids
        .iter()
        .filter_map(|id| lookup(gw, id))
        .filter(|m| decide(req, req.principal, "tools.invoke", m, &empty).is_ok_and(|d| d.allow))
        .map(|m| m.to_value())
        .collect();
    Reply::ok(200, json!({"tenant": req.principal.tenant, "tools": tools}), "allow")
}
