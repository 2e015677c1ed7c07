//! `POST /tools/{toolId}/invoke`: parse → manifest → (core: policy → rate limit) → input
//! schema → (a call to be held: can it run?) → idempotency → outbound preflight → (core: hold
//! → durable decision record) → execute → output schema → (core: completion record).

use serde_json::{json, Value};

use super::execute;
use super::{object_body, resource_of, Reply, RestRequest};
use crate::canonical;
use crate::catalog::manifest::Manifest;
use crate::enforce::{Call, Completion, MessageKind, Permit, Refusal, Stop};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::idempotency::{parse_key, Begin, Dropped, IdemKey};
use crate::ratelimit;

pub async fn invoke(gw: &Gateway, req: &RestRequest<'_>, tool_id: &str) -> Reply {
    let input = match object_body(req.body) {
        Ok(v) => v,
        Err(e) => return refused(gw.enforce.refuse(&stub(req, "tools.invoke", tool_id, &EMPTY), e).await, req),
    };
    let Some(manifest) = lookup(gw, tool_id) else {
        let e = GatewayError::NotFound { message: format!("unknown tool {tool_id:?}") };
        return refused(gw.enforce.refuse(&stub(req, "tools.invoke", tool_id, &input), e).await, req);
    };
    let call = call_of(req, "tools.invoke", &manifest, &input);
    let permit = match gw.enforce.authorize(call).await {
        Ok(p) => p,
        Err(r) => return refused(r, req),
    };
    if let Err(e) = validate(gw, &manifest.tool_id, "in", &manifest.inputs, &input) {
        return refused(gw.enforce.refuse_permit(permit, e).await, req);
    }
    // A hold nobody could ever run (its provider is not configured) is refused now, not after
    // someone confirmed or approved it.
    if permit.will_hold() {
        if let Err(e) = execute::preflight(gw, &manifest, &input, true) {
            return refused(gw.enforce.refuse_permit(permit, e).await, req);
        }
    }
    let idem = match req.idempotency_key.map(parse_key) {
        None => None,
        Some(Err(m)) => {
            let e = GatewayError::Validation { message: format!("Idempotency-Key: {m}") };
            return refused(gw.enforce.refuse_permit(permit, e).await, req);
        }
        Some(Ok(k)) => Some(IdemKey::new(&req.principal.tenant, &req.principal.sub, tool_id, k)),
    };
    let args_hash = permit.call().args_hash.clone().unwrap_or_default();
    if let Some(k) = &idem {
        let ttl = std::time::Duration::from_secs(gw.cfg.rest.idempotency_ttl_seconds);
        let conflict = match gw.rest.idempotency.begin(k, &args_hash, ttl).await {
            Ok(Begin::Proceed) => None,
            Ok(Begin::Replay { status, body }) => {
                gw.enforce.replayed(permit, status).await;
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut r = Reply::ok(status, body, crate::enforce::Outcome::Replayed);
                r.headers.push(("x-idempotent-replay", "true".into()));
                return r;
            }
            Ok(Begin::InFlight) => {
                Some(GatewayError::Conflict { message: "a request with this Idempotency-Key is still running".into() })
            }
            Ok(Begin::PayloadMismatch) => {
                Some(GatewayError::Validation { message: "Idempotency-Key was used with another payload".into() })
            }
            // The call ran; its answer is gone. Running it again could repeat a write.
            Ok(Begin::AnswerDropped { status, why }) => Some(GatewayError::Conflict {
                message: format!(
                    "this Idempotency-Key's call already ran (status {status}) but its answer is not kept ({}); \
                     it is not run again: use a new Idempotency-Key to run it again",
                    match why {
                        Dropped::TooLarge => "larger than rest.idempotency_max_answer_bytes",
                        Dropped::Evicted => "dropped to keep the idempotency store within its memory bounds",
                    }
                ),
            }),
            Err(e) => Some(GatewayError::Unavailable { message: format!("idempotency store: {e}") }),
        };
        if let Some(e) = conflict {
            return refused(gw.enforce.refuse_permit(permit, e).await, req);
        }
    }
    let reply = admit_and_run(gw, req, permit, &manifest, &input).await;
    if let Some(k) = &idem {
        // A hold's answer carries its action token, which is only ever stored as a hash: the
        // key is released instead, and a retry gets a fresh hold (nothing ran).
        let done = if reply.status == 202 {
            gw.rest.idempotency.abandon(k).await
        } else {
            gw.rest.idempotency.complete(k, reply.status, serde_json::to_vec(&reply.body).unwrap_or_default()).await
        };
        if let Err(e) = done {
            tracing::error!(corr_id = req.corr_id, error = %e, "idempotency record not stored");
        }
    }
    reply
}

/// Admit (redeem or hold) and, once admitted, run the tool: shared by invoke and confirm.
pub(crate) async fn admit_and_run(
    gw: &Gateway,
    req: &RestRequest<'_>,
    permit: Permit<'_>,
    manifest: &Manifest,
    input: &Value,
) -> Reply {
    let rate: Vec<(&'static str, String)> = permit.rate().map(|r| ratelimit::headers(r).to_vec()).unwrap_or_default();
    // A call the outbound rules refuse is refused now, recorded as such, and never held.
    if let Err(e) = execute::preflight(gw, manifest, input, permit.will_hold()) {
        return refused(gw.enforce.refuse_permit(permit, e).await, req);
    }
    let mut reply = match gw.enforce.admit(permit, Some(input.to_string())).await {
        Err(Stop::Refused(r)) => return refused(r, req),
        Err(Stop::Held(h)) => Reply::ok(
            202,
            json!({
                "requires_confirmation": true,
                "action_token": h.issued.action_token,
                "expires_at": h.issued.expires_at,
                "confirm_url": h.issued.confirm_url,
                "hold_id": h.issued.hold_id,
                "approval_required": h.needs_approval,
                "reasons": h.decision.reasons,
            }),
            crate::enforce::Outcome::Held,
        ),
        Ok(admitted) => {
            let outcome = admitted.outcome();
            let ran = execute::run(gw, req.policy, req.principal, manifest, input, &admitted).await;
            let ran = ran.and_then(|done| {
                validate(gw, &manifest.tool_id, "out", &manifest.outputs, &done.result).map(|_| done).map_err(|e| {
                    match e {
                        GatewayError::SchemaInvalid { message, .. } => GatewayError::Provider { message },
                        other => other,
                    }
                })
            });
            let (reply, end) = match ran {
                Ok(done) => {
                    let end = Completion {
                        status: Some(200),
                        error_code: None,
                        result_hash: Some(canonical::hash(&done.result)),
                    };
                    let body =
                        json!({"toolId": manifest.tool_id, "result": done.result, "token_meta": done.token_meta});
                    (Reply::ok(200, body, outcome), end)
                }
                Err(e) => {
                    tracing::warn!(corr_id = req.corr_id, tool = %manifest.tool_id, error = %e, "tool call failed");
                    let end =
                        Completion { status: Some(e.status()), error_code: Some(e.code().into()), result_hash: None };
                    (Reply::error(&e, crate::enforce::Outcome::Failed, req.corr_id), end)
                }
            };
            gw.enforce.complete(admitted, end).await;
            reply
        }
    };
    reply.headers.extend(rate);
    reply
}

/// The [`Call`] for `action` on `manifest` with `input`.
pub(crate) fn call_of<'a>(req: &RestRequest<'a>, action: &str, manifest: &Manifest, input: &'a Value) -> Call<'a> {
    let mut call =
        Call::new(req.policy, req.principal, action, resource_of(manifest), input, MessageKind::Rest, req.origin());
    call.args_hash = Some(canonical::hash(input));
    call.tool_id = Some(manifest.tool_id.clone());
    call.provider = Some(manifest.provider_id.clone());
    call.rate_key = Some(ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, &manifest.tool_id));
    call.write_class = true;
    if let Some(server) = manifest.tool_id.strip_prefix("mcp:").and_then(|r| r.split_once(':')).map(|(s, _)| s) {
        call.server = Some(server.to_string());
        call.mcp_method = Some("tools/call".into());
    }
    call
}

/// A call for the record of a request that names no known tool, or whose body is unusable.
pub(crate) fn stub<'a>(req: &RestRequest<'a>, action: &str, tool_id: &str, input: &'a Value) -> Call<'a> {
    let resource = json!({"toolId": tool_id, "required_scopes": []});
    let mut call = Call::new(req.policy, req.principal, action, resource, input, MessageKind::Rest, req.origin());
    call.tool_id = Some(tool_id.to_string());
    call.provider = tool_id.split_once(':').map(|(p, _)| p.to_string());
    call
}

/// The answer to a recorded refusal.
pub(crate) fn refused(r: Refusal, req: &RestRequest<'_>) -> Reply {
    Reply::error(&r.error, r.outcome, req.corr_id)
}

/// The manifest of `tool_id`: registered, or discovered on an MCP server.
pub(crate) fn lookup(gw: &Gateway, tool_id: &str) -> Option<Manifest> {
    if let Some(m) = gw.rest.manifests.get(tool_id) {
        return Some(m);
    }
    let rest = tool_id.strip_prefix("mcp:")?;
    let (server_name, tool) = rest.split_once(':')?;
    let server = gw.catalog.server(server_name)?;
    let listed = gw.fed.tool(server_name, tool)?;
    if matches!(gw.fed.params(server_name, tool), Some(Err(_))) {
        // Invalid `x-mcp-header` marks: the gateway's client must not offer the tool.
        return None;
    }
    let r = gw.catalog.tool_resource(&server, tool, listed.get("annotations"));
    let mut m = Manifest::new(
        tool_id.to_string(),
        tool.to_string(),
        listed.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
        "mcp".into(),
        server.cfg.tenant.clone(),
        listed.get("inputSchema").cloned().unwrap_or_else(|| json!({"type": "object"})),
        // The result is a CallToolResult; the tool's outputSchema describes its
        // structuredContent (checked by the MCP executor).
        json!({"type": "object"}),
        serde_json::from_value(r["required_scopes"].clone()).unwrap_or_default(),
        serde_json::from_value(r["safety_tags"].clone()).unwrap_or_default(),
    );
    m.annotations = listed.get("annotations").cloned();
    Some(m)
}

/// Validates `value` against a manifest schema (`dir` is `in` or `out`).
pub(crate) fn validate(
    gw: &Gateway,
    tool_id: &str,
    dir: &str,
    schema: &Value,
    value: &Value,
) -> Result<(), GatewayError> {
    gw.rest.schemas.validate(&format!("{tool_id}#{dir}"), schema, value).map_err(|violations| {
        GatewayError::SchemaInvalid {
            message: if dir == "in" {
                "input does not match the tool's schema".into()
            } else {
                "result does not match the tool's output schema".into()
            },
            violations: violations.into_iter().map(|v| json!({"path": v.path, "message": v.message})).collect(),
        }
    })
}

static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
