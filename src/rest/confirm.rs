//! `POST /tools/{toolId}/confirm`: release a held call.
//!
//! The confirming principal is re-checked (`tools.confirm`, and `tools.invoke` on the held
//! input, so a caller who lost the role since cannot run it), then the action token is
//! consumed atomically: of concurrent confirms exactly one runs the tool. A provider failure
//! after that leaves the token spent; it is reported and audited.
//!
//! Approver mode (`rest.approver_roles`): a principal with an approver role may confirm a
//! hold of its tenant for someone else; the caller's own confirm needs an approval first
//! (`POST /admin/holds/{id}/approve`) when the tool carries an approval tag.

use serde_json::Value;

use super::invoke::{decide, lookup, refuse, run, Call};
use super::{object_body, Reply, RestRequest};
use crate::canonical;
use crate::error::GatewayError;
use crate::holds;
use crate::pipeline::Gateway;
use crate::policy::Decision;
use crate::state::Redeemer;

pub async fn confirm(gw: &Gateway, req: &RestRequest<'_>, tool_id: &str) -> Reply {
    let none = Decision::default();
    let body = match object_body(req.body) {
        Ok(v) => v,
        Err(e) => return refuse(gw, req, "tools.confirm", tool_id, None, &none, e).await,
    };
    let token = body.get("action_token").and_then(Value::as_str).or(req.action_token_header);
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 512) else {
        let e = GatewayError::Validation { message: "action_token is required (body or X-Action-Token)".into() };
        return refuse(gw, req, "tools.confirm", tool_id, None, &none, e).await;
    };
    let Some(manifest) = lookup(gw, tool_id) else {
        let e = GatewayError::NotFound { message: format!("unknown tool {tool_id:?}") };
        return refuse(gw, req, "tools.confirm", tool_id, None, &none, e).await;
    };
    let held = match gw.state.peek_hold(&canonical::sha256_hex(token.as_bytes())).await {
        Ok(h) => h,
        Err(e) => {
            let e = GatewayError::Unavailable { message: format!("hold store unavailable: {}", e.0) };
            return refuse(gw, req, "tools.confirm", tool_id, None, &none, e).await;
        }
    };
    let input = match (body.get("input"), held.as_ref().and_then(|h| h.input.as_deref())) {
        (Some(i), _) if i.is_object() => i.clone(),
        (Some(_), _) => {
            let e = GatewayError::Validation { message: "input must be a JSON object".into() };
            return refuse(gw, req, "tools.confirm", tool_id, None, &none, e).await;
        }
        (None, Some(stored)) => serde_json::from_str(stored).unwrap_or(Value::Null),
        (None, None) => {
            let e = GatewayError::Conflict { message: "action token unknown, expired or already used".into() };
            return refuse(gw, req, "tools.confirm", tool_id, None, &none, e).await;
        }
    };
    let args_hash = canonical::hash(&input);
    let p = req.principal;
    let approver = p.roles.iter().any(|r| gw.cfg.rest.approver_roles.contains(r));
    let confirm = match decide(req, p, "tools.confirm", &manifest, &input) {
        Ok(d) if d.allow => d,
        Ok(d) => return denied(gw, req, tool_id, &args_hash, d).await,
        Err(e) => return refuse(gw, req, "tools.confirm", tool_id, Some(&args_hash), &none, e).await,
    };
    // The caller must still be allowed the call itself (an approver releases someone else's).
    let mut decision = confirm;
    if !approver {
        match decide(req, p, "tools.invoke", &manifest, &input) {
            Ok(d) if d.allow => decision.reasons.extend(d.reasons),
            Ok(d) => return denied(gw, req, tool_id, &args_hash, d).await,
            Err(e) => return refuse(gw, req, "tools.confirm", tool_id, Some(&args_hash), &none, e).await,
        }
    }
    let binding = holds::binding(p, &manifest.tool_id, &args_hash);
    let who = if approver {
        Redeemer::Approver { tenant: &p.tenant, tool_id: &manifest.tool_id, args_hash: &args_hash }
    } else {
        Redeemer::Caller { binding: &binding }
    };
    if let Err(e) = holds::redeem_as(gw.state.as_ref(), token, who).await {
        return refuse(gw, req, "tools.confirm", tool_id, Some(&args_hash), &decision, e).await;
    }
    if let Ok(n) = gw.state.pending_holds().await {
        crate::metrics::METRICS.holds_pending.set(n as i64);
    }
    let call = Call { action: "tools.confirm", manifest: &manifest, args_hash: &args_hash };
    run(gw, req, &call, p, &input, "confirmed", &decision).await
}

async fn denied(gw: &Gateway, req: &RestRequest<'_>, tool_id: &str, args_hash: &str, d: Decision) -> Reply {
    let e = GatewayError::Forbidden { message: "forbidden by policy".into(), reasons: d.reasons.clone() };
    refuse(gw, req, "tools.confirm", tool_id, Some(args_hash), &d, e).await
}
