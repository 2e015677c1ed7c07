//! `POST /manifests/register`: register or replace a tool manifest.
//!
//! The policy decides (`manifests.register`) with what the write would change in the input:
//! the tenant of the manifest being replaced (`resource.previous_tenant`) and the safety
//! tags and scopes it would drop (`resource.removed_tags`, `removed_scopes`). The check and
//! the write run in one store transaction, so a concurrent registration cannot slip between
//! them. Every attempt is audited.
//!
//! Before the policy, two fixed rules of the gateway: reserved provider ids stay the
//! operator's ([`super::reserved`]), and the manifest's `http.base_url` must respect the
//! outbound rules ([`super::outbound::Outbound::check_manifest`]: a brokered credential only
//! where it is bound, no IP literal the egress policy refuses).

use serde_json::{json, Value};

use super::invoke::{refused, stub};
use super::{object_body, resource_of, Reply, RestRequest};
use crate::canonical;
use crate::catalog::manifest::{removed_scopes, removed_tags, Manifest};
use crate::catalog::manifests::UpsertError;
use crate::enforce::{decide_input, Outcome};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::policy::{input, Decision};

pub async fn register(gw: &Gateway, req: &RestRequest<'_>) -> Reply {
    let empty = json!({});
    let mut body = match object_body(req.body) {
        Ok(v) => v,
        Err(e) => return refused(gw.enforce.refuse(&stub(req, "manifests.register", "", &empty), e).await, req),
    };
    if body.get("tenant").is_none_or(Value::is_null) {
        body["tenant"] = json!(req.principal.tenant);
    }
    let tool_id = body.get("toolId").and_then(Value::as_str).unwrap_or_default().to_string();
    let hash = canonical::hash(&body);
    let mut call = stub(req, "manifests.register", &tool_id, &empty);
    call.args_hash = Some(hash.clone());
    call.write_class = true;
    let manifest = match Manifest::from_value(body).and_then(|m| m.validate().map(|_| m)) {
        Ok(m) => m,
        Err(e) => {
            let e = GatewayError::Validation { message: format!("manifest {e}") };
            return refused(gw.enforce.refuse(&call, e).await, req);
        }
    };
    call.provider = Some(manifest.provider_id.clone());
    let servers = gw.cfg.mcp.servers.keys().map(String::as_str);
    if let Err(e) = super::reserved::check(&manifest, req.principal, servers, &gw.rest.outbound) {
        return refused(gw.enforce.refuse(&call, e).await, req);
    }
    if manifest.provider_id == "mcp" {
        let e = GatewayError::Validation { message: "mcp tools are discovered, not registered".into() };
        return refused(gw.enforce.refuse(&call, e).await, req);
    }
    let has_credential = gw.rest.broker.providers().any(|p| p == manifest.provider_id);
    if let Err(e) = gw.rest.outbound.check_manifest(&manifest, has_credential) {
        return refused(gw.enforce.refuse(&call, e).await, req);
    }
    let store = gw.rest.manifests.clone();
    let policy = req.policy.clone();
    let principal = req.principal.clone();
    let facts = (req.path.to_string(), req.client_ip.to_string(), req.corr_id.to_string());
    let actor = req.principal.sub.clone();
    let new = manifest.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut seen = Decision::default();
        let outcome = store.upsert_if(new.clone(), &actor, |previous| {
            let mut resource = resource_of(&new);
            // The tool's scopes are for calling it, not for registering it.
            resource["tool_required_scopes"] = resource["required_scopes"].take();
            resource["required_scopes"] = json!([]);
            resource["previous_tenant"] = json!(previous.map(|p| p.tenant.clone()));
            resource["removed_tags"] = json!(removed_tags(previous, &new));
            resource["removed_scopes"] = json!(removed_scopes(previous, &new));
            let empty = json!({});
            let f = input::RequestFacts {
                protocol: "rest",
                mcp_method: None,
                arguments: &empty,
                path: &facts.0,
                method: "POST",
                client_ip: &facts.1,
                corr_id: &facts.2,
            };
            let doc = input::build(&principal, "manifests.register", &resource, &f);
            let d = decide_input(&policy, "manifests.register", &doc)?;
            seen = d.clone();
            if d.allow {
                Ok(())
            } else {
                Err(GatewayError::Forbidden { message: "registration forbidden by policy".into(), reasons: d.reasons })
            }
        });
        (outcome, seen)
    })
    .await;
    let (outcome, decision) = match written {
        Ok(pair) => pair,
        Err(_) => {
            let e = GatewayError::Unavailable { message: "manifest store task failed".into() };
            return refused(gw.enforce.refuse(&call, e).await, req);
        }
    };
    match outcome {
        Ok(done) => {
            let mut d = decision.clone();
            d.reasons.push(if done.created { "registered".into() } else { "replaced".into() });
            gw.enforce.record_decided(&call, &d, 200).await;
            gw.rest.schemas.invalidate(&format!("{tool_id}#in"));
            gw.rest.schemas.invalidate(&format!("{tool_id}#out"));
            Reply::ok(
                200,
                json!({"toolId": tool_id, "created": done.created, "version": done.version, "tenant": manifest.tenant}),
                Outcome::Allowed,
            )
        }
        Err(UpsertError::Rejected(e)) => refused(gw.enforce.refuse_decided(&call, &decision, e).await, req),
        Err(UpsertError::Store(e)) => {
            let e = GatewayError::Unavailable { message: format!("manifest store: {e}") };
            refused(gw.enforce.refuse_decided(&call, &decision, e).await, req)
        }
    }
}
