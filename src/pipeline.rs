//! The enforcement pipeline for one MCP POST, as plain Rust (no sockets):
//!
//! authenticate (done by the caller, headers only) → parse → decide → limit → hold → broker
//! (upstream headers, in the proxy glue) → forward → audit.
//!
//! [`Gateway::mcp_post`] returns a [`Verdict`]: forward (possibly with a rewritten body and a
//! `tools/list` filter) or answer now. Every refusal and every allowed `tools/call` is audited
//! here; the allowed call's decision record is durable before the verdict is returned, so
//! nothing runs upstream unaudited.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::audit::{AuditDecision, AuditEvent, AuditLog, AuditOutcome, Durable};
use crate::auth::{Authenticator, Principal};
use crate::canonical;
use crate::catalog::{Catalog, McpServer};
use crate::config::Config;
use crate::error::GatewayError;
use crate::holds;
use crate::mcp::jsonrpc::{self, Message};
use crate::metrics::METRICS;
use crate::policy::reload::Reloader;
use crate::policy::{input, Decision, PolicyEngine, PolicySnapshot};
use crate::ratelimit;
use crate::state::{RateOutcome, StateStore};

/// Shared, immutable-after-start gateway state.
pub struct Gateway {
    pub cfg: Config,
    /// `None` when authentication is disabled (benchmarks).
    pub auth: Option<Authenticator>,
    pub policy: Arc<PolicyEngine>,
    /// Hot reload of the policy (`None` when policy is disabled).
    pub reloader: Option<Arc<Reloader>>,
    pub state: Arc<dyn StateStore>,
    pub audit: AuditLog,
    pub catalog: Catalog,
}

/// One POST to `/mcp/{server}` after authentication.
pub struct McpPost<'a> {
    /// The policy this request is decided by (taken when it arrived).
    pub policy: &'a PolicySnapshot,
    pub server: &'a McpServer,
    pub principal: &'a Principal,
    pub body: &'a [u8],
    pub mcp_method_header: Option<&'a str>,
    pub mcp_name_header: Option<&'a str>,
    pub action_token_header: Option<&'a str>,
    pub path: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
}

/// What to do with the request.
pub enum Verdict {
    Forward(Forward),
    /// Answer now: HTTP status, JSON body, extra headers.
    Answer(Answer),
}

pub struct Forward {
    /// Replacement body when the gateway rewrote it (action token removed).
    pub body: Option<Bytes>,
    /// Filter the response to the tools the caller may call.
    pub filter_tools_list: bool,
    pub rate: Option<RateOutcome>,
    /// The JSON-RPC method (metrics, logs).
    pub method: Option<String>,
    /// Audit record to complete with the upstream outcome (allowed `tools/call`s).
    pub completion: Option<Box<AuditEvent>>,
    /// The decision record's fsync: awaited before the response is answered.
    pub durable: Option<Durable>,
    pub decision: &'static str,
}

impl Forward {
    /// A pass-through with no rewriting, limits or completion record.
    fn plain(method: Option<String>, filter_tools_list: bool) -> Forward {
        Forward {
            body: None,
            filter_tools_list,
            rate: None,
            method,
            completion: None,
            durable: None,
            decision: "allow",
        }
    }
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
    pub decision: &'static str,
    pub method: Option<String>,
}

/// A refusal with its audit label, before it is turned into an answer.
struct Refusal {
    error: GatewayError,
    decision: &'static str,
    reasons: Vec<String>,
}

impl From<GatewayError> for Refusal {
    fn from(error: GatewayError) -> Self {
        let decision = match &error {
            GatewayError::Forbidden { .. } => "deny",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::Conflict { .. } => "confirm_failed",
            GatewayError::BadRequest { .. } | GatewayError::Validation { .. } => "bad_request",
            _ => "error",
        };
        let reasons = match &error {
            GatewayError::Forbidden { reasons, .. } => reasons.clone(),
            _ => vec![],
        };
        Refusal { error, decision, reasons }
    }
}

impl Gateway {
    /// Authenticates the `Authorization` header (anonymous when auth is disabled).
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Arc<Principal>, GatewayError> {
        match &self.auth {
            Some(a) => a.authenticate(header).await,
            None => Ok(Arc::new(Principal::anonymous())),
        }
    }

    /// Runs parse → decide → limit → hold for one MCP POST.
    pub async fn mcp_post(&self, req: &McpPost<'_>) -> Verdict {
        let parsed = jsonrpc::parse(req.body).and_then(|(msg, value)| {
            jsonrpc::check_headers(&msg, req.mcp_method_header, req.mcp_name_header)?;
            Ok((msg, value))
        });
        let (msg, value) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let id = serde_json::from_slice::<Value>(req.body)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null);
                return self.refuse(req, &id, None, None, Refusal::from(e)).await;
            }
        };
        let method = msg.method().map(String::from);
        match (&msg, method.as_deref()) {
            (Message::Request { id, params, .. }, Some("tools/call")) => self.tool_call(req, id, params, value).await,
            (_, Some("tools/list")) => Verdict::Forward(Forward::plain(method, true)),
            _ => Verdict::Forward(Forward::plain(method, false)),
        }
    }

    async fn tool_call(&self, req: &McpPost<'_>, id: &Value, params: &Value, body: Value) -> Verdict {
        let call = match jsonrpc::tool_call(params) {
            Ok(c) => c,
            Err(e) => return self.refuse(req, id, None, None, e.into()).await,
        };
        let tool_id = format!("mcp:{}:{}", req.server.name, call.name);
        let resource = self.catalog.tool_resource(req.server, &call.name, None);
        let args_hash = canonical::hash(&call.arguments);
        let facts = input::RequestFacts {
            protocol: "mcp",
            mcp_method: Some("tools/call"),
            arguments: &call.arguments,
            path: req.path,
            method: "POST",
            client_ip: req.client_ip,
            corr_id: req.corr_id,
        };
        let policy_input = input::build(req.principal, "tools.invoke", &resource, &facts);
        let decision = match decide(req.policy, "tools.invoke", &policy_input) {
            Ok(d) => d,
            Err(e) => return self.refuse(req, id, Some(&tool_id), Some(&args_hash), e.into()).await,
        };
        if !decision.allow {
            let refusal = Refusal {
                error: GatewayError::Forbidden {
                    message: "forbidden by policy".into(),
                    reasons: decision.reasons.clone(),
                },
                decision: "deny",
                reasons: decision.reasons,
            };
            return self.refuse(req, id, Some(&tool_id), Some(&args_hash), refusal).await;
        }
        let key = ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, &tool_id);
        let rate = match ratelimit::check(&self.cfg.rate_limit, self.state.as_ref(), &key, decision.rate_limit).await {
            Ok(r) => r,
            Err(e) => {
                let mut refusal = Refusal::from(e);
                refusal.reasons = decision.reasons;
                return self.refuse(req, id, Some(&tool_id), Some(&args_hash), refusal).await;
            }
        };
        let token = call.action_token.as_deref().or(req.action_token_header);
        let mut result = "allow";
        if decision.require_confirmation {
            match token {
                None => return self.hold(req, id, &tool_id, &args_hash, &decision).await,
                Some(t) => match holds::redeem(self.state.as_ref(), req.principal, &tool_id, &args_hash, t).await {
                    Ok(_) => result = "confirmed",
                    Err(e) => {
                        let mut refusal = Refusal::from(e);
                        refusal.reasons.extend(decision.reasons);
                        return self.refuse(req, id, Some(&tool_id), Some(&args_hash), refusal).await;
                    }
                },
            }
        }
        let new_body = if call.action_token.is_some() {
            serde_json::to_vec(&jsonrpc::strip_action_token(body)).ok().map(Bytes::from)
        } else {
            None
        };
        let event = self.event(req, "tools.invoke", Some(&tool_id), Some(&args_hash), result, &decision, None, None);
        // The record is written before the call goes upstream (a write failure refuses it);
        // the proxy waits for its fsync before answering (`Forward::durable`).
        let durable = match self.audit.append_written(&event).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed; refusing the call");
                let err = GatewayError::Unavailable { message: "audit trail unavailable".into() };
                return answer(&err, id, req.corr_id, "error", Some("tools/call"));
            }
        };
        let mut completion = event;
        completion.phase = "completion";
        Verdict::Forward(Forward {
            body: new_body,
            filter_tools_list: false,
            rate,
            method: Some("tools/call".into()),
            completion: Some(Box::new(completion)),
            durable: self.cfg.audit.durable.then_some(durable),
            decision: result,
        })
    }

    async fn hold(
        &self,
        req: &McpPost<'_>,
        id: &Value,
        tool_id: &str,
        args_hash: &str,
        decision: &Decision,
    ) -> Verdict {
        let issued = match holds::issue(&self.cfg.holds, self.state.as_ref(), req.principal, tool_id, args_hash).await {
            Ok(h) => h,
            Err(e) => return self.refuse(req, id, Some(tool_id), Some(args_hash), e.into()).await,
        };
        let event = self.event(
            req,
            "tools.invoke",
            Some(tool_id),
            Some(args_hash),
            "hold",
            decision,
            Some(200),
            Some("CONFIRMATION_REQUIRED"),
        );
        if let Err(e) = self.audit.append(&event, self.cfg.audit.durable).await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
            let err = GatewayError::Unavailable { message: "audit trail unavailable".into() };
            return answer(&err, id, req.corr_id, "error", Some("tools/call"));
        }
        if let Ok(n) = self.state.pending_holds().await {
            METRICS.holds_pending.set(n as i64);
        }
        tracing::info!(corr_id = req.corr_id, tool = tool_id, hold = %issued.hold_id, "call held for confirmation");
        Verdict::Answer(Answer {
            status: 200,
            body: json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": -32010, "message": "confirmation required", "data": issued.data(req.corr_id)},
            }),
            headers: vec![],
            decision: "hold",
            method: Some("tools/call".into()),
        })
    }

    /// May `principal` call `tool` (a `tools/list` entry) on `server`? Errors hide the tool.
    pub fn tool_visible(
        &self,
        policy: &PolicySnapshot,
        server: &McpServer,
        principal: &Principal,
        tool: &Value,
        corr_id: &str,
    ) -> bool {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return false;
        };
        let annotations = tool.get("annotations");
        self.catalog.remember(server, name, annotations);
        let resource = self.catalog.tool_resource(server, name, annotations);
        let empty = json!({});
        let facts = input::RequestFacts {
            protocol: "mcp",
            mcp_method: Some("tools/list"),
            arguments: &empty,
            path: "",
            method: "POST",
            client_ip: "",
            corr_id,
        };
        let policy_input = input::build(principal, "tools.invoke", &resource, &facts);
        decide(policy, "tools.invoke", &policy_input).map(|d| d.allow).unwrap_or(false)
    }

    async fn refuse(
        &self,
        req: &McpPost<'_>,
        id: &Value,
        tool_id: Option<&str>,
        args_hash: Option<&str>,
        r: Refusal,
    ) -> Verdict {
        let decision = Decision { allow: false, reasons: r.reasons, ..Default::default() };
        let event = self.event(
            req,
            "tools.invoke",
            tool_id,
            args_hash,
            r.decision,
            &decision,
            Some(r.error.status()),
            Some(r.error.code()),
        );
        // A refusal changes nothing upstream: written before answering, not fsynced.
        if let Err(e) = self.audit.append(&event, false).await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
        }
        tracing::info!(
            corr_id = req.corr_id,
            tool = tool_id,
            decision = r.decision,
            code = r.error.code(),
            "call refused"
        );
        answer(&r.error, id, req.corr_id, r.decision, Some("tools/call"))
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        req: &McpPost<'_>,
        action: &str,
        tool_id: Option<&str>,
        args_hash: Option<&str>,
        result: &str,
        decision: &Decision,
        status: Option<u16>,
        code: Option<&str>,
    ) -> AuditEvent {
        AuditEvent {
            corr_id: req.corr_id.to_string(),
            tenant: req.principal.tenant.clone(),
            sub: req.principal.sub.clone(),
            action: action.to_string(),
            tool_id: tool_id.map(String::from),
            phase: "decision",
            decision: AuditDecision {
                result: result.to_string(),
                allow: decision.allow,
                reasons: decision.reasons.clone(),
                policy_revision: req.policy.revision().to_string(),
            },
            outcome: AuditOutcome { status, error_code: code.map(String::from) },
            request_hash: args_hash.map(String::from),
            result_hash: None,
            latency_ms: 0.0,
            provider: Some("mcp".into()),
            server: Some(req.server.name.clone()),
            mcp_method: Some("tools/call".into()),
            ..Default::default()
        }
    }

    /// Audits a refusal that happened before the pipeline (authentication, size, routing).
    pub async fn audit_early_refusal(
        &self,
        err: &GatewayError,
        corr_id: &str,
        server: Option<&str>,
        principal: Option<&Principal>,
    ) {
        let decision = match err {
            GatewayError::Unauthorized { .. } => "unauthenticated",
            _ => "refused",
        };
        let event = AuditEvent {
            corr_id: corr_id.to_string(),
            tenant: principal.map(|p| p.tenant.clone()).unwrap_or_default(),
            sub: principal.map(|p| p.sub.clone()).unwrap_or_default(),
            action: "mcp.request".into(),
            phase: "decision",
            decision: AuditDecision {
                result: decision.into(),
                allow: false,
                reasons: match err {
                    GatewayError::Unauthorized { reason, .. } => vec![format!("jwt:{reason}")],
                    _ => vec![],
                },
                policy_revision: self.policy.revision(),
            },
            outcome: AuditOutcome { status: Some(err.status()), error_code: Some(err.code().into()) },
            server: server.map(String::from),
            provider: Some("mcp".into()),
            ..Default::default()
        };
        if let Err(e) = self.audit.append(&event, false).await {
            tracing::error!(corr_id, error = %e, "audit write failed");
        }
    }
}

/// Evaluates `policy` and times it.
fn decide(policy: &PolicySnapshot, action: &str, input: &Value) -> Result<Decision, GatewayError> {
    let t = Instant::now();
    let d = policy.decide(input);
    METRICS.policy_eval.with_label_values(&[action]).observe(t.elapsed().as_secs_f64());
    d
}

/// A JSON-RPC error answer carrying the DESIGN error shape in `error.data`.
pub fn answer(err: &GatewayError, id: &Value, corr_id: &str, decision: &'static str, method: Option<&str>) -> Verdict {
    Verdict::Answer(Answer {
        status: err.status(),
        body: err.jsonrpc_body(id, corr_id),
        headers: err.headers(),
        decision,
        method: method.map(String::from),
    })
}

#[cfg(test)]
mod tests;
