//! `POST /tools/{toolId}/invoke`: parse → manifest → policy → rate limit → input schema →
//! idempotency → hold → broker → execute → output schema → audit.

use serde_json::{json, Value};

use super::execute;
use super::{event, object_body, resource_of, Reply, RestRequest};
use crate::auth::Principal;
use crate::canonical;
use crate::catalog::manifest::Manifest;
use crate::error::GatewayError;
use crate::holds;
use crate::idempotency::{parse_key, Begin, IdemKey};
use crate::pipeline::Gateway;
use crate::policy::{input, Decision};
use crate::ratelimit;

/// What a decision record is about.
pub(crate) struct Call<'a> {
    pub action: &'a str,
    pub manifest: &'a Manifest,
    pub args_hash: &'a str,
}

pub async fn invoke(gw: &Gateway, req: &RestRequest<'_>, tool_id: &str) -> Reply {
    let input = match object_body(req.body) {
        Ok(v) => v,
        Err(e) => return refuse(gw, req, "tools.invoke", tool_id, None, &Decision::default(), e).await,
    };
    let args_hash = canonical::hash(&input);
    let Some(manifest) = lookup(gw, tool_id) else {
        let e = GatewayError::NotFound { message: format!("unknown tool {tool_id:?}") };
        return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &Decision::default(), e).await;
    };
    let decision = match decide(req, req.principal, "tools.invoke", &manifest, &input) {
        Ok(d) if d.allow => d,
        Ok(d) => {
            let e = GatewayError::Forbidden { message: "forbidden by policy".into(), reasons: d.reasons.clone() };
            return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &d, e).await;
        }
        Err(e) => return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &Decision::default(), e).await,
    };
    let key = ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, tool_id);
    let rate = match ratelimit::check(&gw.cfg.rate_limit, gw.state.as_ref(), &key, decision.rate_limit).await {
        Ok(r) => r,
        Err(e) => return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &decision, e).await,
    };
    if let Err(e) = validate(gw, &manifest.tool_id, "in", &manifest.inputs, &input) {
        return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &decision, e).await;
    }
    let idem = match req.idempotency_key.map(parse_key) {
        None => None,
        Some(Err(m)) => {
            let e = GatewayError::Validation { message: format!("Idempotency-Key: {m}") };
            return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &decision, e).await;
        }
        Some(Ok(k)) => Some(IdemKey::new(&req.principal.tenant, &req.principal.sub, tool_id, k)),
    };
    if let Some(k) = &idem {
        let ttl = std::time::Duration::from_secs(gw.cfg.rest.idempotency_ttl_seconds);
        let begun = gw.rest.idempotency.begin(k, &args_hash, ttl).await;
        let conflict = match begun {
            Ok(Begin::Proceed) => None,
            Ok(Begin::Replay { status, body }) => {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut r = Reply::ok(status, body, "replay");
                r.headers.push(("x-idempotent-replay", "true".into()));
                return r;
            }
            Ok(Begin::InFlight) => {
                Some(GatewayError::Conflict { message: "a request with this Idempotency-Key is still running".into() })
            }
            Ok(Begin::PayloadMismatch) => {
                Some(GatewayError::Validation { message: "Idempotency-Key was used with another payload".into() })
            }
            Err(e) => Some(GatewayError::Unavailable { message: format!("idempotency store: {e}") }),
        };
        if let Some(e) = conflict {
            return refuse(gw, req, "tools.invoke", tool_id, Some(&args_hash), &decision, e).await;
        }
    }
    let call = Call { action: "tools.invoke", manifest: &manifest, args_hash: &args_hash };
    let mut reply = if decision.require_confirmation {
        hold(gw, req, &call, &input, &decision).await
    } else {
        run(gw, req, &call, req.principal, &input, "allow", &decision).await
    };
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
    if let Some(r) = rate {
        reply.headers.extend(ratelimit::headers(&r).into_iter().map(|(k, v)| (k, v.to_string())));
    }
    reply
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

/// The policy decision for `action` on `manifest` with `input`, for `who`.
pub(crate) fn decide(
    req: &RestRequest<'_>,
    who: &Principal,
    action: &str,
    manifest: &Manifest,
    input: &Value,
) -> Result<Decision, GatewayError> {
    let facts = input::RequestFacts {
        protocol: "rest",
        mcp_method: None,
        arguments: input,
        path: req.path,
        method: "POST",
        client_ip: req.client_ip,
        corr_id: req.corr_id,
    };
    let mut resource = resource_of(manifest);
    if action != "tools.invoke" {
        // A tool's required scopes gate calling it; confirming is re-checked as tools.invoke.
        resource["required_scopes"] = json!([]);
    }
    let doc = input::build(who, action, &resource, &facts);
    let started = std::time::Instant::now();
    let d = req.policy.decide(&doc);
    crate::metrics::METRICS.policy_eval.with_label_values(&[action]).observe(started.elapsed().as_secs_f64());
    d
}

/// Validates `value` against a manifest schema (`dir` is `in` or `out`).
fn validate(gw: &Gateway, tool_id: &str, dir: &str, schema: &Value, value: &Value) -> Result<(), GatewayError> {
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

/// Parks the call behind an action token: 202.
async fn hold(gw: &Gateway, req: &RestRequest<'_>, call: &Call<'_>, input: &Value, decision: &Decision) -> Reply {
    let m = call.manifest;
    let needs_approval =
        !gw.cfg.rest.approver_roles.is_empty() && m.safety_tags.iter().any(|t| gw.cfg.rest.approval_tags.contains(t));
    let stored = Some(input.to_string());
    let issued = holds::issue_with(
        &gw.cfg.holds,
        gw.state.as_ref(),
        req.principal,
        &m.tool_id,
        call.args_hash,
        stored,
        needs_approval,
    )
    .await;
    let issued = match issued {
        Ok(i) => i,
        Err(e) => return refuse(gw, req, call.action, &m.tool_id, Some(call.args_hash), decision, e).await,
    };
    let rec = event(
        req,
        call.action,
        Some(&m.tool_id),
        Some(&m.provider_id),
        Some(call.args_hash),
        "hold",
        decision,
        (Some(202), Some("CONFIRMATION_REQUIRED")),
    );
    if let Err(e) = gw.audit.append(&rec, gw.cfg.audit.durable).await {
        tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
        return Reply::error(&GatewayError::Unavailable { message: "audit trail unavailable".into() }, req.corr_id);
    }
    if let Ok(n) = gw.state.pending_holds().await {
        crate::metrics::METRICS.holds_pending.set(n as i64);
    }
    Reply::ok(
        202,
        json!({
            "requires_confirmation": true,
            "action_token": issued.action_token,
            "expires_at": issued.expires_at,
            "confirm_url": issued.confirm_url,
            "hold_id": issued.hold_id,
            "approval_required": needs_approval,
            "reasons": decision.reasons,
        }),
        "hold",
    )
}

/// Runs an allowed (or confirmed) call: the decision record is durable before the provider
/// is called; the completion record carries the outcome and the result's hash.
pub(crate) async fn run(
    gw: &Gateway,
    req: &RestRequest<'_>,
    call: &Call<'_>,
    who: &Principal,
    input: &Value,
    result_label: &'static str,
    decision: &Decision,
) -> Reply {
    let m = call.manifest;
    let rec = event(
        req,
        call.action,
        Some(&m.tool_id),
        Some(&m.provider_id),
        Some(call.args_hash),
        result_label,
        decision,
        (None, None),
    );
    let durable = match gw.audit.append_written(&rec).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed; refusing the call");
            return Reply::error(&GatewayError::Unavailable { message: "audit trail unavailable".into() }, req.corr_id);
        }
    };
    let started = std::time::Instant::now();
    let outcome = match execute::run(gw, req.policy, who, m, input).await {
        Ok(done) => validate(gw, &m.tool_id, "out", &m.outputs, &done.result).map(|_| done).map_err(|e| match e {
            GatewayError::SchemaInvalid { message, .. } => GatewayError::Provider { message },
            other => other,
        }),
        Err(e) => Err(e),
    };
    if gw.cfg.audit.durable {
        if let Err(e) = durable.wait().await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit record not durable");
        }
    }
    let mut completion = rec;
    completion.phase = "completion";
    completion.latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let reply = match outcome {
        Ok(done) => {
            completion.result_hash = Some(canonical::hash(&done.result));
            completion.outcome.status = Some(200);
            Reply::ok(
                200,
                json!({"toolId": m.tool_id, "result": done.result, "token_meta": done.token_meta}),
                result_label,
            )
        }
        Err(e) => {
            completion.outcome.status = Some(e.status());
            completion.outcome.error_code = Some(e.code().into());
            tracing::warn!(corr_id = req.corr_id, tool = %m.tool_id, error = %e, "tool call failed");
            Reply::error(&e, req.corr_id)
        }
    };
    if let Err(e) = gw.audit.append(&completion, false).await {
        tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
    }
    reply
}

/// Records and answers a refusal.
pub(crate) async fn refuse(
    gw: &Gateway,
    req: &RestRequest<'_>,
    action: &str,
    tool_id: &str,
    args_hash: Option<&str>,
    decision: &Decision,
    err: GatewayError,
) -> Reply {
    let mut d = decision.clone();
    d.allow = false;
    if let GatewayError::Forbidden { reasons, .. } = &err {
        d.reasons.clone_from(reasons);
    }
    let label = match &err {
        GatewayError::Forbidden { .. } => "deny",
        GatewayError::RateLimited { .. } => "rate_limited",
        GatewayError::Conflict { .. } => "conflict",
        GatewayError::NotFound { .. } => "not_found",
        GatewayError::Validation { .. } | GatewayError::SchemaInvalid { .. } => "invalid",
        _ => "error",
    };
    let provider = tool_id.split_once(':').map(|(p, _)| p);
    let rec = event(req, action, Some(tool_id), provider, args_hash, label, &d, (Some(err.status()), Some(err.code())));
    if let Err(e) = gw.audit.append(&rec, false).await {
        tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
    }
    tracing::info!(corr_id = req.corr_id, tool = tool_id, action, code = err.code(), "request refused");
    Reply::error(&err, req.corr_id)
}
