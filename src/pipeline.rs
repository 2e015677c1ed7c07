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
use crate::mcp::confirm::{self, ClientProfile};
use crate::mcp::federation::Federation;
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::request_state::{self, HoldState};
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
    /// The federated `/mcp` endpoint: discovered tools, sessions, the MRTR state sealer.
    pub fed: Federation,
    /// The REST tool API's stores, providers and broker.
    pub rest: crate::rest::RestState,
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
    /// The `MCP-Protocol-Version` header (with the body's `_meta`, tells what the client can
    /// do with a hold: MRTR, elicitation).
    pub protocol_version: Option<&'a str>,
    /// A 2025-11-25 federated session that declared elicitation: holds are asked on the
    /// call's SSE stream ([`Verdict::Elicit`]).
    pub session_elicitation: bool,
}

/// What to do with the request.
pub enum Verdict {
    Forward(Forward),
    /// Answer now: HTTP status, JSON body, extra headers.
    Answer(Answer),
    /// Ask the user on the call's SSE stream (`elicitation/create`), then
    /// [`Gateway::elicited`] with the answer.
    Elicit(ElicitHold),
}

/// A held call waiting for a 2025-11-25 client's elicitation answer.
pub struct ElicitHold {
    pub tool_id: String,
    pub args_hash: String,
    pub action_token: String,
    pub reasons: Vec<String>,
    /// The `tools/call` body to forward once confirmed.
    pub body: Value,
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

/// What a decision is about, for its audit record and answer.
#[derive(Clone, Copy)]
struct Subject<'a> {
    action: &'a str,
    method: &'a str,
    tool_id: Option<&'a str>,
    args_hash: Option<&'a str>,
}

impl<'a> Subject<'a> {
    fn call(tool_id: &'a str, args_hash: &'a str) -> Self {
        Subject { action: "tools.invoke", method: "tools/call", tool_id: Some(tool_id), args_hash: Some(args_hash) }
    }
}

/// A refusal with its audit label, before it is turned into an answer.
struct Refusal {
    error: GatewayError,
    decision: &'static str,
    reasons: Vec<String>,
}

impl Refusal {
    fn denied(reasons: Vec<String>) -> Refusal {
        let error = GatewayError::Forbidden { message: "forbidden by policy".into(), reasons: reasons.clone() };
        Refusal { error, decision: "deny", reasons }
    }

    /// Adds the policy's reasons to the record (a rate-limited or failed confirm still names
    /// the rules that allowed the call).
    fn with_reasons(mut self, reasons: Vec<String>) -> Refusal {
        self.reasons.extend(reasons);
        self
    }
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

    /// Takes a (re)discovered tool list of `server`: the federated endpoint lists it, and a
    /// trusted server's annotations become the tools' safety tags.
    pub fn discovered(&self, server: &str, tools: &[Value]) {
        if let Some(s) = self.catalog.server(server) {
            for t in tools {
                if let Some(name) = t.get("name").and_then(Value::as_str) {
                    self.catalog.remember(&s, name, t.get("annotations"));
                }
            }
        }
        tracing::info!(server, tools = tools.len(), "MCP tools discovered");
        self.fed.set_tools(server, tools.to_vec());
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
                let subject = Subject { action: "mcp.request", method: "", tool_id: None, args_hash: None };
                return self.refuse(req, &id, subject, Refusal::from(e)).await;
            }
        };
        let method = msg.method().map(String::from);
        match (&msg, method.as_deref()) {
            (Message::Request { id, params, .. }, Some("tools/call")) => self.tool_call(req, id, params, value).await,
            (_, Some("tools/list")) => Verdict::Forward(Forward::plain(method, true)),
            (Message::Request { id, params, method }, _) if needs_decision(method) => {
                self.method_call(req, id, method, params).await
            }
            _ => Verdict::Forward(Forward::plain(method, false)),
        }
    }

    /// Any MCP request other than the tool calls and protocol plumbing (`resources/read`,
    /// `prompts/get`, …): decided as action `mcp.<method>` on the server, then rate limited.
    async fn method_call(&self, req: &McpPost<'_>, id: &Value, method: &str, params: &Value) -> Verdict {
        let action = format!("mcp.{method}");
        let target = params.get("name").or_else(|| params.get("uri")).and_then(Value::as_str);
        let resource = self.catalog.server_resource(req.server, target);
        let resource_id = format!("mcp:{}", req.server.name);
        let args_hash = canonical::hash(params);
        let subject = Subject { action: &action, method, tool_id: Some(&resource_id), args_hash: Some(&args_hash) };
        let facts = input::RequestFacts {
            protocol: "mcp",
            mcp_method: Some(method),
            arguments: params,
            path: req.path,
            method: "POST",
            client_ip: req.client_ip,
            corr_id: req.corr_id,
        };
        let policy_input = input::build(req.principal, &action, &resource, &facts);
        let decision = match decide(req.policy, &action, &policy_input) {
            Ok(d) if d.allow => d,
            Ok(d) => return self.refuse(req, id, subject, Refusal::denied(d.reasons)).await,
            Err(e) => return self.refuse(req, id, subject, e.into()).await,
        };
        let key = ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, &format!("{resource_id}:{method}"));
        let rate = match ratelimit::check(&self.cfg.rate_limit, self.state.as_ref(), &key, decision.rate_limit).await {
            Ok(r) => r,
            Err(e) => return self.refuse(req, id, subject, Refusal::from(e).with_reasons(decision.reasons)).await,
        };
        let event = self.event(req, subject, "allow", &decision, None, None);
        if let Err(e) = self.audit.append(&event, false).await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed; refusing the request");
            let err = GatewayError::Unavailable { message: "audit trail unavailable".into() };
            return answer(&err, id, req.corr_id, "error", Some(method));
        }
        Verdict::Forward(Forward { rate, ..Forward::plain(Some(method.to_string()), false) })
    }

    async fn tool_call(&self, req: &McpPost<'_>, id: &Value, params: &Value, body: Value) -> Verdict {
        let call = match jsonrpc::tool_call(params) {
            Ok(c) => c,
            Err(e) => {
                let subject = Subject { action: "tools.invoke", method: "tools/call", tool_id: None, args_hash: None };
                return self.refuse(req, id, subject, e.into()).await;
            }
        };
        let tool_id = format!("mcp:{}:{}", req.server.name, call.name);
        let resource = self.catalog.tool_resource(req.server, &call.name, None);
        let args_hash = canonical::hash(&call.arguments);
        let subject = Subject::call(&tool_id, &args_hash);
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
            Err(e) => return self.refuse(req, id, subject, e.into()).await,
        };
        if !decision.allow {
            return self.refuse(req, id, subject, Refusal::denied(decision.reasons)).await;
        }
        let key = ratelimit::bucket_key(&req.principal.tenant, &req.principal.sub, &tool_id);
        let rate = match ratelimit::check(&self.cfg.rate_limit, self.state.as_ref(), &key, decision.rate_limit).await {
            Ok(r) => r,
            Err(e) => return self.refuse(req, id, subject, Refusal::from(e).with_reasons(decision.reasons)).await,
        };
        let mut token = call.action_token.clone().or(req.action_token_header.map(String::from));
        // Only the gateway's own state; an upstream server's MRTR state goes to that server.
        let ours = params.get("requestState").and_then(Value::as_str).filter(|s| request_state::is_ours(s));
        if let Some(sealed) = ours {
            let now = chrono::Utc::now().timestamp();
            let p = req.principal;
            let state = match self.fed.sealer.open(sealed, &p.sub, &p.tenant, &tool_id, &args_hash, now) {
                Ok(s) => s,
                Err(e) => {
                    let err = match e {
                        crate::mcp::request_state::StateError::Expired => {
                            GatewayError::Conflict { message: e.to_string() }
                        }
                        _ => GatewayError::Forbidden { message: e.to_string(), reasons: vec!["request_state".into()] },
                    };
                    return self.refuse(req, id, subject, Refusal::from(err).with_reasons(decision.reasons)).await;
                }
            };
            match confirm::retry_answer(params) {
                Some(confirm::Answer::Accept) => token = Some(state.action_token),
                Some(confirm::Answer::Decline) => return self.declined(req, id, subject, &state, &decision).await,
                None => return self.ask_again(req, id, subject, sealed, &decision),
            }
        }
        let mut result = "allow";
        if decision.require_confirmation {
            match token {
                None => {
                    let profile = ClientProfile::from_request(req.protocol_version, params);
                    return self.hold(req, id, subject, &decision, body, profile).await;
                }
                Some(t) => match holds::redeem(self.state.as_ref(), req.principal, &tool_id, &args_hash, &t).await {
                    Ok(_) => result = "confirmed",
                    Err(e) => {
                        return self.refuse(req, id, subject, Refusal::from(e).with_reasons(decision.reasons)).await
                    }
                },
            }
        }
        self.allowed_call(req, id, subject, result, &decision, rate, body).await
    }

    /// Writes the decision record of an allowed call and hands it to the forwarder.
    #[allow(clippy::too_many_arguments)]
    async fn allowed_call(
        &self,
        req: &McpPost<'_>,
        id: &Value,
        subject: Subject<'_>,
        result: &'static str,
        decision: &Decision,
        rate: Option<RateOutcome>,
        body: Value,
    ) -> Verdict {
        let rewritten = body.pointer("/params/_meta/fastmcp~1action_token").is_some()
            || body.pointer("/params/requestState").and_then(Value::as_str).is_some_and(request_state::is_ours);
        let new_body = if rewritten {
            let clean = confirm::strip_retry_fields(jsonrpc::strip_action_token(body));
            serde_json::to_vec(&clean).ok().map(Bytes::from)
        } else {
            None
        };
        let event = self.event(req, subject, result, decision, None, None);
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

    /// Parks the call behind a new hold and tells the client in the way it understands.
    async fn hold(
        &self,
        req: &McpPost<'_>,
        id: &Value,
        subject: Subject<'_>,
        decision: &Decision,
        body: Value,
        profile: ClientProfile,
    ) -> Verdict {
        let (tool_id, args_hash) = (subject.tool_id.unwrap_or_default(), subject.args_hash.unwrap_or_default());
        // The arguments are kept with the hold so `confirm_url` (the REST confirm) can run the
        // call without the caller re-sending them.
        let input = body.pointer("/params/arguments").map(Value::to_string);
        let issued =
            holds::issue_with(&self.cfg.holds, self.state.as_ref(), req.principal, tool_id, args_hash, input, false);
        let issued = match issued.await {
            Ok(h) => h,
            Err(e) => return self.refuse(req, id, subject, e.into()).await,
        };
        let event = self.event(req, subject, "hold", decision, Some(200), Some("CONFIRMATION_REQUIRED"));
        if let Err(e) = self.audit.append(&event, self.cfg.audit.durable).await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
            let err = GatewayError::Unavailable { message: "audit trail unavailable".into() };
            return answer(&err, id, req.corr_id, "error", Some("tools/call"));
        }
        if let Ok(n) = self.state.pending_holds().await {
            METRICS.holds_pending.set(n as i64);
        }
        tracing::info!(corr_id = req.corr_id, tool = tool_id, hold = %issued.hold_id, "call held for confirmation");
        if profile.modern && profile.elicitation {
            let state = HoldState {
                action_token: issued.action_token.clone(),
                sub: req.principal.sub.clone(),
                tenant: req.principal.tenant.clone(),
                tool_id: tool_id.to_string(),
                args_hash: args_hash.to_string(),
                exp: chrono::Utc::now().timestamp() + self.cfg.holds.ttl_seconds as i64,
            };
            if let Ok(sealed) = self.fed.sealer.seal(&state) {
                return mrtr_answer(confirm::input_required(id, tool_id, &decision.reasons, &sealed), "hold");
            }
        }
        if req.session_elicitation && !profile.modern {
            return Verdict::Elicit(ElicitHold {
                tool_id: tool_id.to_string(),
                args_hash: args_hash.to_string(),
                action_token: issued.action_token,
                reasons: decision.reasons.clone(),
                body,
            });
        }
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

    /// A retry that carries our state but no answer: ask again with the same state.
    fn ask_again(&self, req: &McpPost<'_>, id: &Value, subject: Subject<'_>, sealed: &str, d: &Decision) -> Verdict {
        tracing::info!(corr_id = req.corr_id, "retry without an answer to the confirmation; asking again");
        mrtr_answer(confirm::input_required(id, subject.tool_id.unwrap_or_default(), &d.reasons, sealed), "hold")
    }

    /// The user declined a held call: its hold is spent and the call never runs.
    async fn declined(
        &self,
        req: &McpPost<'_>,
        id: &Value,
        subject: Subject<'_>,
        state: &HoldState,
        decision: &Decision,
    ) -> Verdict {
        let (tool_id, args_hash) = (subject.tool_id.unwrap_or_default(), subject.args_hash.unwrap_or_default());
        if let Err(e) = holds::redeem(self.state.as_ref(), req.principal, tool_id, args_hash, &state.action_token).await
        {
            return self.refuse(req, id, subject, Refusal::from(e)).await;
        }
        let event = self.event(req, subject, "declined", decision, Some(200), Some("DECLINED"));
        if let Err(e) = self.audit.append(&event, false).await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
        }
        mrtr_answer(confirm::declined_result(id, tool_id), "declined")
    }

    /// After a 2025-11-25 client answered the elicitation for `hold`: a decline spends the
    /// hold; an accept redeems it and returns the call to forward.
    pub async fn elicited(&self, req: &McpPost<'_>, id: &Value, hold: &ElicitHold, ans: confirm::Answer) -> Verdict {
        let subject = Subject::call(&hold.tool_id, &hold.args_hash);
        let decision = Decision { allow: true, reasons: hold.reasons.clone(), ..Default::default() };
        let state = HoldState {
            action_token: hold.action_token.clone(),
            sub: String::new(),
            tenant: String::new(),
            tool_id: hold.tool_id.clone(),
            args_hash: hold.args_hash.clone(),
            exp: 0,
        };
        if ans == confirm::Answer::Decline {
            return self.declined(req, id, subject, &state, &decision).await;
        }
        let redeemed =
            holds::redeem(self.state.as_ref(), req.principal, &hold.tool_id, &hold.args_hash, &hold.action_token).await;
        match redeemed {
            Ok(_) => self.allowed_call(req, id, subject, "confirmed", &decision, None, hold.body.clone()).await,
            Err(e) => self.refuse(req, id, subject, Refusal::from(e).with_reasons(decision.reasons)).await,
        }
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
        listing_allowed(policy, principal, "tools.invoke", &resource, "tools/list", "", corr_id)
    }

    /// May `principal` send `method` (as `mcp.<method>`) to `server`? Errors say no.
    pub fn server_allowed(
        &self,
        policy: &PolicySnapshot,
        server: &McpServer,
        principal: &Principal,
        method: &str,
        corr_id: &str,
    ) -> bool {
        let resource = self.catalog.server_resource(server, None);
        listing_allowed(policy, principal, &format!("mcp.{method}"), &resource, method, "/mcp", corr_id)
    }

    async fn refuse(&self, req: &McpPost<'_>, id: &Value, subject: Subject<'_>, r: Refusal) -> Verdict {
        let decision = Decision { allow: false, reasons: r.reasons, ..Default::default() };
        let event = self.event(req, subject, r.decision, &decision, Some(r.error.status()), Some(r.error.code()));
        // A refusal changes nothing upstream: written before answering, not fsynced.
        if let Err(e) = self.audit.append(&event, false).await {
            tracing::error!(corr_id = req.corr_id, error = %e, "audit write failed");
        }
        tracing::info!(
            corr_id = req.corr_id,
            tool = subject.tool_id,
            method = subject.method,
            decision = r.decision,
            code = r.error.code(),
            "request refused"
        );
        let method = (!subject.method.is_empty()).then_some(subject.method);
        answer(&r.error, id, req.corr_id, r.decision, method)
    }

    fn event(
        &self,
        req: &McpPost<'_>,
        subject: Subject<'_>,
        result: &str,
        decision: &Decision,
        status: Option<u16>,
        code: Option<&str>,
    ) -> AuditEvent {
        AuditEvent {
            corr_id: req.corr_id.to_string(),
            tenant: req.principal.tenant.clone(),
            sub: req.principal.sub.clone(),
            action: subject.action.to_string(),
            tool_id: subject.tool_id.map(String::from),
            phase: "decision",
            decision: AuditDecision {
                result: result.to_string(),
                allow: decision.allow,
                reasons: decision.reasons.clone(),
                policy_revision: req.policy.revision().to_string(),
            },
            outcome: AuditOutcome { status, error_code: code.map(String::from) },
            request_hash: subject.args_hash.map(String::from),
            result_hash: None,
            latency_ms: 0.0,
            provider: Some("mcp".into()),
            server: Some(req.server.name.clone()),
            mcp_method: (!subject.method.is_empty()).then(|| subject.method.to_string()),
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

/// A decision for a listing (no arguments): may `principal` do `action` on `resource`? An
/// evaluation error says no (fail closed: the entry is hidden).
fn listing_allowed(
    policy: &PolicySnapshot,
    principal: &Principal,
    action: &str,
    resource: &Value,
    mcp_method: &str,
    path: &str,
    corr_id: &str,
) -> bool {
    let empty = json!({});
    let facts = input::RequestFacts {
        protocol: "mcp",
        mcp_method: Some(mcp_method),
        arguments: &empty,
        path,
        method: "POST",
        client_ip: "",
        corr_id,
    };
    let policy_input = input::build(principal, action, resource, &facts);
    decide(policy, action, &policy_input).map(|d| d.allow).unwrap_or(false)
}

/// Evaluates `policy` and times it.
fn decide(policy: &PolicySnapshot, action: &str, input: &Value) -> Result<Decision, GatewayError> {
    let t = Instant::now();
    let d = policy.decide(input);
    METRICS.policy_eval.with_label_values(&[action]).observe(t.elapsed().as_secs_f64());
    d
}

/// Requests the policy decides as `mcp.<method>`: everything but tool calls (decided as
/// `tools.invoke`), the filtered `tools/list` and protocol plumbing. Unknown methods are
/// decided too, so a new method is denied until a rule allows it (fail closed).
fn needs_decision(method: &str) -> bool {
    !matches!(method, "initialize" | "ping" | "server/discover" | "tools/list" | "tools/call")
}

/// A JSON-RPC result answered by the gateway (MRTR `input_required`, a declined call).
fn mrtr_answer(body: Value, decision: &'static str) -> Verdict {
    Verdict::Answer(Answer { status: 200, body, headers: vec![], decision, method: Some("tools/call".into()) })
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
pub(crate) mod tests;
