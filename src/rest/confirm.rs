//! `POST /tools/{toolId}/confirm`: release a held call.
//!
//! The door reads the action token and the input (the held one when the body omits it) and
//! hands the call to the enforcement core with the token presented. The core re-checks the
//! policy for the confirming principal (`tools.confirm`, and `tools.invoke` on the held input
//! unless an approver releases someone else's hold), consumes the token atomically (of
//! concurrent confirms exactly one runs the tool), and records the decision before the tool
//! runs. A provider failure after that leaves the token spent; it is reported and audited.

use serde_json::Value;

use super::invoke::{admit_and_run, call_of, lookup, refused, stub};
use super::{object_body, Reply, RestRequest};
use crate::canonical;
use crate::enforce::Presented;
use crate::error::GatewayError;
use crate::gateway::Gateway;

pub async fn confirm(gw: &Gateway, req: &RestRequest<'_>, tool_id: &str) -> Reply {
    let empty = serde_json::json!({});
    let body = match object_body(req.body) {
        Ok(v) => v,
        Err(e) => return refused(gw.enforce.refuse(&stub(req, "tools.confirm", tool_id, &empty), e).await, req),
    };
    let token = body.get("action_token").and_then(Value::as_str).or(req.action_token_header);
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 512) else {
        let e = GatewayError::Validation { message: "action_token is required (body or X-Action-Token)".into() };
        return refused(gw.enforce.refuse(&stub(req, "tools.confirm", tool_id, &empty), e).await, req);
    };
    let Some(manifest) = lookup(gw, tool_id) else {
        let e = GatewayError::NotFound { message: format!("unknown tool {tool_id:?}") };
        return refused(gw.enforce.refuse(&stub(req, "tools.confirm", tool_id, &empty), e).await, req);
    };
    let held = match gw.state.peek_hold(&canonical::sha256_hex(token.as_bytes())).await {
        Ok(h) => h,
        Err(e) => {
            let e = GatewayError::Unavailable { message: format!("hold store unavailable: {}", e.0) };
            return refused(gw.enforce.refuse(&stub(req, "tools.confirm", tool_id, &empty), e).await, req);
        }
    };
    let input = match (body.get("input"), held.as_ref().and_then(|h| h.input.as_deref())) {
        (Some(i), _) if i.is_object() => i.clone(),
        (Some(_), _) => {
            let e = GatewayError::Validation { message: "input must be a JSON object".into() };
            return refused(gw.enforce.refuse(&stub(req, "tools.confirm", tool_id, &empty), e).await, req);
        }
        (None, Some(stored)) => serde_json::from_str(stored).unwrap_or(Value::Null),
        (None, None) => {
            let e = GatewayError::Conflict { message: "action token unknown, expired or already used".into() };
            return refused(gw.enforce.refuse(&stub(req, "tools.confirm", tool_id, &empty), e).await, req);
        }
    };
    let mut call = call_of(req, "tools.invoke", &manifest, &input);
    call.presented = Some(Presented { token: token.to_string() });
    let permit = match gw.enforce.authorize(call).await {
        Ok(p) => p,
        Err(r) => return refused(r, req),
    };
    admit_and_run(gw, req, permit, &manifest, &input).await
}
