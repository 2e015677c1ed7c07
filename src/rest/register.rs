//! `POST /manifests/register`: register or replace a tool manifest.
//!
//! The policy decides (`manifests.register`) with what the write would change in the input:
//! the tenant of the manifest being replaced (`resource.previous_tenant`) and the safety
//! tags and scopes it would drop (`resource.removed_tags`, `removed_scopes`). The check and
//! the write run in one store transaction, so a concurrent registration cannot slip between
//! them. Every attempt is audited.

use serde_json::{json, Value};

use super::invoke::refuse;
use super::{event, object_body, resource_of, Reply, RestRequest};
use crate::canonical;
use crate::catalog::manifest::{removed_scopes, removed_tags, Manifest};
use crate::catalog::manifests::UpsertError;
use crate::error::GatewayError;
use crate::pipeline::Gateway;
use crate::policy::{input, Decision};

pub async fn register(gw: &Gateway, req: &RestRequest<'_>) -> Reply {
    let none = Decision::default();
    let mut body = match object_body(req.body) {
        Ok(v) => v,
        Err(e) => return refuse(gw, req, "manifests.register", "", None, &none, e).await,
    };
    if body.get("tenant").is_none_or(Value::is_null) {
        body["tenant"] = json!(req.principal.tenant);
    }
    let tool_id = body.get("toolId").and_then(Value::as_str).unwrap_or_default().to_string();
    let hash = canonical::hash(&body);
    let manifest = match Manifest::from_value(body).and_then(|m| m.validate().map(|_| m)) {
        Ok(m) => m,
        Err(e) => {
            let e = GatewayError::Validation { message: format!("manifest {e}") };
            return refuse(gw, req, "manifests.register", &tool_id, Some(&hash), &none, e).await;
        }
    };
    if manifest.provider_id == "mcp" {
        let e = GatewayError::Validation { message: "mcp tools are discovered, not registered".into() };
        return refuse(gw, req, "manifests.register", &tool_id, Some(&hash), &none, e).await;
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
            let d = policy.decide(&doc)?;
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
            return refuse(gw, req, "manifests.register", &tool_id, Some(&hash), &none, e).await;
        }
    };
    match outcome {
        Ok(done) => {
            let rec = event(
                req,
                "manifests.register",
                Some(&tool_id),
                Some(&manifest.provider_id),
                Some(&hash),
                if done.created { "registered" } else { "replaced" },
                &decision,
                (Some(200), None),
            );
            if let Err(e) = gw.audit.append(&rec, gw.cfg.audit.durable).await {
                tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
            }
            gw.rest.schemas.invalidate(&format!("{tool_id}#in"));
            gw.rest.schemas.invalidate(&format!("{tool_id}#out"));
            Reply::ok(
                200,
                json!({"toolId": tool_id, "created": done.created, "version": done.version, "tenant": manifest.tenant}),
                "allow",
            )
        }
        Err(UpsertError::Rejected(e)) => {
            refuse(gw, req, "manifests.register", &tool_id, Some(&hash), &decision, e).await
        }
        Err(UpsertError::Store(e)) => {
            let e = GatewayError::Unavailable { message: format!("manifest store: {e}") };
            refuse(gw, req, "manifests.register", &tool_id, Some(&hash), &decision, e).await
        }
    }
}
