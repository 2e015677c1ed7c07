//! The enforcement core: the one chain every door calls.
//!
//! ```text
//! door: input → Call ──authorize──▶ Permit ──(door checks: schema, idempotency)──admit──▶ Admitted ─▶ send
//!                        │ decide            │                                     │ redeem or hold
//!                        │ rate limit        └─refuse_permit─▶ Refusal             │ durable decision record
//!                        └──────────────────────────────────▶ Refusal  ◀───────────┴─ Stop::Held / Stop::Refused
//! ```
//!
//! - [`Enforcer::authorize`] evaluates the policy (a presented action token also re-checks
//!   `tools.confirm`) and takes a rate-limit token: a [`Permit`] or a recorded [`Refusal`].
//! - [`Enforcer::admit`] redeems a presented token or parks the call behind a new hold
//!   (approver mode included), then writes the decision record — durably for write-class
//!   calls — and only then returns [`Admitted`], which every sender requires.
//! - Every other way out (refusals found by a door, gateway-answered calls, replays,
//!   declines, early refusals before a call existed) is recorded through this module too, so
//!   each request leaves exactly one decision record, plus one completion record for an
//!   admitted write-class call ([`Enforcer::complete`]).
//!
//! Doors only translate their input into a [`Call`] and the result into their wire format.

mod admitted;
mod call;
mod outcome;
mod record;

#[cfg(test)]
mod tests;

pub use admitted::{Admitted, Proof};
pub use call::{Call, MessageKind, Origin, Presented};
pub use outcome::Outcome;
pub use record::Early;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::audit::{AuditEvent, AuditLog};
use crate::auth::Principal;
use crate::config::PinMode;
use crate::config::{HoldsConfig, RateLimitConfig};
use crate::error::GatewayError;
use crate::holds::notify::Notifier;
use crate::holds::{self, HoldEvents, HoldSpec, HoldView, IssuedHold};
use crate::metrics::METRICS;
use crate::pinning::Pins;
use crate::policy::{input, Decision, Input, PolicySnapshot};
use crate::ratelimit;
use crate::state::{RateOutcome, Redeemer, StateStore};

/// Settings of the chain.
#[derive(Debug, Clone)]
pub struct EnforceConfig {
    pub rate_limit: RateLimitConfig,
    pub holds: HoldsConfig,
    /// Approver mode: roles that may release someone else's hold. Empty: off.
    pub approver_roles: Vec<String>,
    /// In approver mode, holds on tools with any of these tags need an approver.
    pub approval_tags: Vec<String>,
    /// fsync a write-class call's decision record before it is answered.
    pub durable: bool,
    /// The gateway's public origin (`public_url`, canonical): a hold's `confirm_url` is then
    /// absolute. Empty: `confirm_url` is a path on whatever origin the caller used.
    pub public_url: String,
}

/// The chain's state: policy is per call (its snapshot), the rest is shared.
pub struct Enforcer {
    cfg: EnforceConfig,
    pub state: Arc<dyn StateStore>,
    pub audit: AuditLog,
    /// Tool-definition pins: a `tools.invoke` of an MCP tool is judged by them.
    pub pins: Arc<Pins>,
    /// Bumped when a hold is made or redeemed here (the console's live stream re-lists).
    pub hold_events: HoldEvents,
    /// Webhooks told of new holds (`holds.notify`), when configured.
    notifier: Option<Arc<Notifier>>,
}

/// A decided, rate-limited call that may proceed to [`Enforcer::admit`].
#[must_use = "a permit must end in admit, answered, replayed or refuse_permit (each writes its record)"]
pub struct Permit<'a> {
    call: Call<'a>,
    decision: Decision,
    rate: Option<RateOutcome>,
    /// The principal holds an approver role (a presented token is redeemed as an approver).
    approver: bool,
}

impl<'a> Permit<'a> {
    pub fn call(&self) -> &Call<'a> {
        &self.call
    }

    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The rate-limit state after this call's token was taken (`RateLimit-*` headers).
    pub fn rate(&self) -> Option<&RateOutcome> {
        self.rate.as_ref()
    }

    /// The decision asks for confirmation and no token was presented: `admit` will hold.
    pub fn will_hold(&self) -> bool {
        self.decision.require_confirmation && self.call.presented.is_none()
    }

    /// A hold of this call needs an approver (approver mode and an approval tag).
    pub fn needs_approval(&self, e: &Enforcer) -> bool {
        e.needs_approval(&self.call)
    }
}

/// A recorded refusal: what to answer.
#[derive(Debug)]
pub struct Refusal {
    pub error: GatewayError,
    pub outcome: Outcome,
    /// The rules that decided (also for refusals after an allow, e.g. a rate limit).
    pub reasons: Vec<String>,
}

/// Why an admitted-looking call does not go upstream now.
#[derive(Debug)]
pub enum Stop<'a> {
    /// Parked behind a new hold (recorded); the door tells the caller how to confirm.
    Held(Box<HeldCall<'a>>),
    /// Refused (recorded): token rejected, hold store or audit down.
    Refused(Refusal),
}

/// A call parked behind a hold, still in hand for a confirmation within the same request
/// (a 2025-11-25 client's elicitation answer).
pub struct HeldCall<'a> {
    call: Call<'a>,
    pub decision: Decision,
    pub issued: IssuedHold,
    /// Approver mode: only an approver (or the admin API) can release it.
    pub needs_approval: bool,
}

impl std::fmt::Debug for HeldCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldCall").field("hold", &self.issued.hold_id).finish()
    }
}

impl<'a> HeldCall<'a> {
    pub fn call(&self) -> &Call<'a> {
        &self.call
    }
}

/// How an admitted write-class call ended, for its completion record.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub result_hash: Option<String>,
}

impl Enforcer {
    pub fn new(cfg: EnforceConfig, state: Arc<dyn StateStore>, audit: AuditLog, pins: Arc<Pins>) -> Enforcer {
        Enforcer { cfg, state, audit, pins, hold_events: HoldEvents::default(), notifier: None }
    }

    /// Tells `notifier` of every new hold.
    pub fn with_notifier(mut self, notifier: Option<Arc<Notifier>>) -> Enforcer {
        self.notifier = notifier;
        self
    }

    pub fn config(&self) -> &EnforceConfig {
        &self.cfg
    }

    /// Decide, then rate limit. A refusal is recorded before it is returned.
    pub async fn authorize<'a>(&self, mut call: Call<'a>) -> Result<Permit<'a>, Refusal> {
        self.judge_pin(&mut call);
        // Four eyes: an approver presenting a token of its own hold is only its caller.
        let approver = self.is_approver(call.principal) && !self.presents_own_hold(&call).await;
        if let (Some(trace), Some(tool)) = (crate::otel::current(), call.tool_id.as_deref()) {
            trace.set("fastmcp.tool", tool.to_string());
        }
        let decision = match self.decide_call(&call, approver) {
            Ok(d) => d,
            Err(e) => return Err(self.refuse(&call, e).await),
        };
        if !decision.allow {
            let err =
                GatewayError::Forbidden { message: "forbidden by policy".into(), reasons: decision.reasons.clone() };
            return Err(self.record_refusal(&call, &decision, err).await);
        }
        if let Some(pin) = call.pin.as_ref().filter(|p| !p.pinned) {
            if pin.mode == PinMode::Enforce {
                let err = GatewayError::Forbidden {
                    message: "this tool's definition changed or is new since it was pinned; an admin must approve it"
                        .into(),
                    reasons: vec![PIN_REASON.into()],
                };
                return Err(self.record_refusal(&call, &decision, err).await);
            }
            METRICS.tool_pin_mismatch.with_label_values(&[call.server.as_deref().unwrap_or_default()]).inc();
        }
        // A confirmation releases a call whose own request was limited when it was held.
        let key = call.rate_key.as_ref().filter(|_| call.presented.is_none());
        let rate = match key {
            Some(key) => {
                match ratelimit::check(
                    &self.cfg.rate_limit,
                    call.rate_class,
                    self.state.as_ref(),
                    key,
                    decision.rate_limit,
                )
                .await
                {
                    Ok(r) => r,
                    Err(e) => return Err(self.record_refusal(&call, &decision, e).await),
                }
            }
            None => None,
        };
        Ok(Permit { call, decision, rate, approver })
    }

    /// Like [`Enforcer::authorize`] over alternatives: the first call allowed wins (e.g. the
    /// federated `initialize`: may the caller use any configured server?). When none is, the
    /// refusal of the first is recorded with every alternative's reasons.
    pub async fn authorize_any<'a>(&self, calls: Vec<Call<'a>>) -> Result<Permit<'a>, Refusal> {
        let mut reasons = Vec::new();
        let mut first = None;
        for call in calls {
            match self.decide_call(&call, false) {
                Ok(d) if d.allow => return self.authorize(call).await,
                Ok(d) => reasons.extend(d.reasons),
                Err(_) => {}
            }
            first.get_or_insert(call);
        }
        reasons.sort();
        reasons.dedup();
        let err = GatewayError::Forbidden { message: "forbidden by policy".into(), reasons: reasons.clone() };
        match first {
            Some(call) => Err(self.record_refusal(&call, &Decision { reasons, ..Default::default() }, err).await),
            None => Err(Refusal { error: err, outcome: Outcome::Denied, reasons }),
        }
    }

    /// Redeem the presented token or hold as the decision asks, write the decision record,
    /// and admit. `keep_input` is the held input kept for a confirm that omits it.
    pub async fn admit<'a>(&self, permit: Permit<'a>, keep_input: Option<String>) -> Result<Admitted, Stop<'a>> {
        let Permit { call, mut decision, rate, approver } = permit;
        let outcome = if let Some(p) = &call.presented {
            if let Err(e) = self.redeem(&call, &p.token, approver).await {
                return Err(Stop::Refused(self.record_refusal(&call, &decision, e).await));
            }
            Outcome::Confirmed
        } else if decision.require_confirmation {
            return Err(self.hold(call, decision, keep_input).await);
        } else {
            Outcome::Allowed
        };
        decision.allow = true;
        self.admitted(call, &decision, outcome, rate).await.map_err(Stop::Refused)
    }

    /// A 2025-11-25 client answered the elicitation for `held` within the same request:
    /// accept redeems the hold and admits the call; decline spends it.
    pub async fn settle_held<'a>(&self, held: HeldCall<'a>, accept: bool) -> Result<Admitted, Refusal> {
        let HeldCall { call, decision, issued, .. } = held;
        if let Err(e) = self.redeem(&call, &issued.action_token, false).await {
            return Err(self.record_refusal(&call, &decision, e).await);
        }
        self.pending_gauge().await;
        if !accept {
            return Err(self.declined(&call, &decision).await);
        }
        self.admitted(call, &decision, Outcome::Confirmed, None).await
    }

    /// The user declined a held call (the presented token): its hold is spent, nothing runs.
    pub async fn decline(&self, permit: Permit<'_>) -> Refusal {
        let Permit { call, decision, .. } = permit;
        let token = call.presented.as_ref().map(|p| p.token.clone()).unwrap_or_default();
        if let Err(e) = self.redeem(&call, &token, false).await {
            return self.record_refusal(&call, &decision, e).await;
        }
        self.pending_gauge().await;
        self.declined(&call, &decision).await
    }

    /// The gateway answered an allowed call itself (federated `initialize`, lists, …).
    pub async fn answered(&self, permit: Permit<'_>) -> Option<RateOutcome> {
        let rec = record::decision(&permit.call, Outcome::Allowed, &permit.decision, Some(200), None);
        self.write(&rec, false).await;
        permit.rate
    }

    /// A 2026-07-28 retry that carried the gateway's state but no answer: asked again (the
    /// same hold stays pending).
    pub async fn asked_again(&self, permit: Permit<'_>) {
        let rec =
            record::decision(&permit.call, Outcome::Held, &permit.decision, Some(200), Some("CONFIRMATION_REQUIRED"));
        self.write(&rec, false).await;
    }

    /// An idempotent retry answered from the stored result (nothing ran again).
    pub async fn replayed(&self, permit: Permit<'_>, status: u16) {
        let rec = record::decision(&permit.call, Outcome::Replayed, &permit.decision, Some(status), None);
        self.write(&rec, false).await;
    }

    /// A call whose policy decision had to be taken inside a store transaction
    /// ([`decide_input`], manifest registration) and succeeded: its record.
    pub async fn record_decided(&self, call: &Call<'_>, d: &Decision, status: u16) {
        let rec = record::decision(call, Outcome::Allowed, d, Some(status), None);
        self.write(&rec, self.cfg.durable).await;
    }

    /// Like [`Enforcer::record_decided`] for a refusal (the decision's reasons kept).
    pub async fn refuse_decided(&self, call: &Call<'_>, d: &Decision, err: GatewayError) -> Refusal {
        self.record_refusal(call, d, err).await
    }

    /// A refusal found by the door after the decision (input schema, idempotency conflict).
    pub async fn refuse_permit(&self, permit: Permit<'_>, err: GatewayError) -> Refusal {
        self.record_refusal(&permit.call, &permit.decision, err).await
    }

    /// A refusal of a call the door could not decide (bad params, unknown tool, …).
    pub async fn refuse(&self, call: &Call<'_>, err: GatewayError) -> Refusal {
        self.record_refusal(call, &Decision::default(), err).await
    }

    /// A request refused before any call existed (route, method, Host, token, size).
    pub async fn record_early(&self, early: &Early<'_>) {
        let rec = record::early(early);
        self.write(&rec, false).await;
    }

    /// An operator's or approver's action outside a request's chain (holds approved or
    /// dropped): recorded durably.
    pub async fn record_action(&self, event: &AuditEvent) -> Result<(), String> {
        self.audit.append(event, true).await.map_err(|e| e.to_string())
    }

    /// The completion record of an admitted write-class call.
    pub async fn complete(&self, mut admitted: Admitted, end: Completion) {
        admitted.wait_durable().await;
        let Some(mut rec) = admitted.record.take().map(|b| *b) else {
            return;
        };
        rec.phase = "completion";
        rec.outcome.status = end.status;
        rec.outcome.error_code = end.error_code;
        rec.result_hash = end.result_hash;
        rec.latency_ms = (admitted.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        self.write(&rec, false).await;
    }

    /// May `principal` do `action` on `resource`? For entries of a list (no record: the list
    /// request has its own). An evaluation error says no. A list of many entries asks
    /// [`Enforcer::lister`] once instead.
    pub fn visible(
        &self,
        policy: &PolicySnapshot,
        principal: &Principal,
        action: &str,
        resource: &Value,
        origin: Origin<'_>,
        mcp_method: &str,
    ) -> bool {
        self.lister(policy, principal, origin, mcp_method).visible(action, resource)
    }

    /// Visibility checks for the entries of one list answer: the input's parts that do not
    /// depend on the entry are built once.
    pub fn lister<'p>(
        &self,
        policy: &'p PolicySnapshot,
        principal: &Principal,
        origin: Origin<'_>,
        mcp_method: &str,
    ) -> Lister<'p> {
        let prepared = (!policy.is_off()).then(|| {
            let empty = json!({});
            let facts = input::RequestFacts {
                protocol: origin.protocol,
                mcp_method: Some(mcp_method),
                arguments: &empty,
                path: origin.path,
                method: origin.http_method,
                client_ip: origin.client_ip,
                corr_id: origin.corr_id,
            };
            input::Prepared::new(principal, &facts)
        });
        Lister { policy, prepared }
    }

    /// Decides `call` and records the outcome at once, without awaiting: for a message met
    /// inside a response the gateway is streaming (an upstream's own request to the client,
    /// `mcp.client.<method>`, seen in a synchronous response hook). Like
    /// [`Enforcer::visible`] it takes no rate-limit token (the server sent the message, not the
    /// caller) and holds nothing; unlike it, the outcome is recorded. An allowed call whose
    /// record cannot be written is refused (fail closed).
    pub fn decide_now(&self, call: &Call<'_>) -> Result<(), Refusal> {
        let decision = match self.decide_call(call, false) {
            Ok(d) => d,
            Err(e) => return Err(self.record_refusal_now(call, &Decision::default(), e)),
        };
        if !decision.allow {
            let err =
                GatewayError::Forbidden { message: "forbidden by policy".into(), reasons: decision.reasons.clone() };
            return Err(self.record_refusal_now(call, &decision, err));
        }
        let rec = record::decision(call, Outcome::Allowed, &decision, None, None);
        if let Err(e) = self.audit.append_now(&rec) {
            tracing::error!(corr_id = call.origin.corr_id, error = %e, "audit write failed; refusing the message");
            return Err(unavailable());
        }
        Ok(())
    }

    /// [`Enforcer::refuse`] without awaiting (see [`Enforcer::decide_now`]).
    pub fn refuse_now(&self, call: &Call<'_>, err: GatewayError) -> Refusal {
        self.record_refusal_now(call, &Decision::default(), err)
    }

    /// Pinning's view of an MCP `tools.invoke`: into the call (its audit record) and the
    /// policy input (`resource.definition_hash`, `resource.pinned`). Servers with pinning off,
    /// and every other call, are left alone.
    fn judge_pin(&self, call: &mut Call<'_>) {
        if call.action != "tools.invoke" {
            return;
        }
        let Some((server, tool)) = call.tool_id.as_deref().and_then(|t| t.strip_prefix("mcp:")?.split_once(':')) else {
            return;
        };
        let Some(facts) = self.pins.of_call(server, tool) else { return };
        if let Some(r) = call.resource.as_object_mut() {
            r.insert("definition_hash".into(), json!(facts.definition_hash));
            r.insert("pinned".into(), json!(facts.pinned));
        }
        call.pin = Some(facts);
    }

    /// Approver mode applies to a hold of `call` (its safety tags include an approval tag).
    pub fn needs_approval(&self, call: &Call<'_>) -> bool {
        if self.cfg.approver_roles.is_empty() {
            return false;
        }
        let tags = call.resource.get("safety_tags").and_then(Value::as_array);
        tags.is_some_and(|t| t.iter().filter_map(Value::as_str).any(|t| self.cfg.approval_tags.iter().any(|a| a == t)))
    }

    fn is_approver(&self, p: &Principal) -> bool {
        p.roles.iter().any(|r| self.cfg.approver_roles.contains(r))
    }

    /// Is the presented token one of a hold of the caller's own? (Then the confirmation is
    /// re-checked as the call, as for any caller.) A store that cannot answer says yes: the
    /// stricter check, and redeeming fails on the same store anyway.
    async fn presents_own_hold(&self, call: &Call<'_>) -> bool {
        let Some(p) = &call.presented else { return false };
        match self.state.peek_hold(&crate::canonical::sha256_hex(p.token.as_bytes())).await {
            Ok(hold) => hold.is_some_and(|h| h.sub == call.principal.sub),
            Err(_) => true,
        }
    }

    /// The policy's answer for `call`. A presented token is a confirmation: `tools.confirm`
    /// must allow it, and (unless an approver releases someone else's hold) the call itself
    /// must still be allowed for the confirming principal.
    fn decide_call(&self, call: &Call<'_>, approver: bool) -> Result<Decision, GatewayError> {
        if call.policy.is_off() {
            // The answer does not depend on the input: skip building it.
            return Ok(PolicySnapshot::disabled_decision());
        }
        let facts = input::RequestFacts {
            protocol: call.origin.protocol,
            mcp_method: call.mcp_method.as_deref(),
            arguments: call.arguments,
            path: call.origin.path,
            method: call.origin.http_method,
            client_ip: call.origin.client_ip,
            corr_id: call.origin.corr_id,
        };
        let prepared = input::Prepared::new(call.principal, &facts);
        if call.presented.is_none() {
            return decide(call.policy, &call.action, prepared.input(&call.action, &call.resource));
        }
        // A tool's required scopes gate calling it; confirming is re-checked as the call.
        let mut confirm_resource = call.resource.clone();
        confirm_resource["required_scopes"] = json!([]);
        let mut d = decide(call.policy, "tools.confirm", prepared.input("tools.confirm", &confirm_resource))?;
        if !d.allow || approver {
            return Ok(d);
        }
        let invoke = decide(call.policy, &call.action, prepared.input(&call.action, &call.resource))?;
        d.allow = invoke.allow;
        d.reasons.extend(invoke.reasons);
        d.rate_limit = invoke.rate_limit.or(d.rate_limit);
        Ok(d)
    }

    /// Consumes the action token for `call`: as the caller it was issued to, or (approver
    /// role) for the same tenant, tool and arguments — never the approver's own hold, which
    /// it can only confirm as its caller (four eyes, checked in the same atomic step).
    async fn redeem(&self, call: &Call<'_>, token: &str, approver: bool) -> Result<(), GatewayError> {
        let p = call.principal;
        let tool_id = call.tool_id.as_deref().unwrap_or_default();
        let args_hash = call.args_hash.as_deref().unwrap_or_default();
        let binding = holds::binding(p, tool_id, args_hash);
        let who = if approver {
            Redeemer::Approver { sub: &p.sub, binding: &binding, tenant: &p.tenant, tool_id, args_hash }
        } else {
            Redeemer::Caller { binding: &binding }
        };
        match holds::redeem_as(self.state.as_ref(), token, who).await {
            Ok(_) => {
                self.hold_events.bump();
                Ok(())
            }
            // Gone because an operator denied it here: say so (still 409, nothing runs).
            Err(GatewayError::Conflict { .. }) if self.hold_events.was_denied(&holds::hold_id(token)) => {
                Err(GatewayError::Conflict { message: "an approver denied this call; it did not run".into() })
            }
            Err(e) => Err(e),
        }
    }

    async fn hold<'a>(&self, call: Call<'a>, decision: Decision, keep_input: Option<String>) -> Stop<'a> {
        let needs_approval = self.needs_approval(&call);
        let tool_id = call.tool_id.clone().unwrap_or_default();
        let args_hash = call.args_hash.clone().unwrap_or_default();
        let spec = HoldSpec {
            tool_id: &tool_id,
            args_hash: &args_hash,
            input: keep_input,
            needs_approval,
            view: view_of(&call, &decision),
        };
        let issued = holds::issue_with(&self.cfg.holds, self.state.as_ref(), call.principal, spec).await;
        let (mut issued, stored) = match issued {
            Ok(i) => i,
            Err(e) => return Stop::Refused(self.record_refusal(&call, &decision, e).await),
        };
        if !self.cfg.public_url.is_empty() {
            issued.confirm_url = format!("{}{}", self.cfg.public_url, issued.confirm_url);
        }
        let status = if call.message == MessageKind::Rest { 202 } else { 200 };
        let rec = record::decision(&call, Outcome::Held, &decision, Some(status), Some("CONFIRMATION_REQUIRED"));
        if let Err(e) = self.audit.append(&rec, self.cfg.durable).await {
            tracing::error!(corr_id = call.origin.corr_id, error = %e, "audit write failed; refusing the hold");
            return Stop::Refused(unavailable());
        }
        self.pending_gauge().await;
        self.hold_events.bump();
        if let Some(n) = &self.notifier {
            n.hold_created(&stored);
        }
        tracing::info!(corr_id = call.origin.corr_id, tool = %tool_id, hold = %issued.hold_id, "call held for confirmation");
        Stop::Held(Box::new(HeldCall { call, decision, issued, needs_approval }))
    }

    /// Writes the decision record of an allowed call (durably started for write-class calls)
    /// and builds its [`Admitted`]. A write failure refuses the call.
    async fn admitted(
        &self,
        call: Call<'_>,
        d: &Decision,
        outcome: Outcome,
        rate: Option<RateOutcome>,
    ) -> Result<Admitted, Refusal> {
        let rec = record::decision(&call, outcome, d, None, None);
        let durable = if call.write_class {
            match self.audit.append_written(&rec).await {
                Ok(d) => self.cfg.durable.then_some(d),
                Err(e) => {
                    tracing::error!(corr_id = call.origin.corr_id, error = %e, "audit write failed; refusing the call");
                    return Err(unavailable());
                }
            }
        } else {
            // `audit.on_error` decides whether a read-only call may go on unrecorded.
            if let Err(e) = self.audit.append_read_only(&rec).await {
                tracing::error!(corr_id = call.origin.corr_id, error = %e, "audit write failed; refusing the call");
                return Err(unavailable());
            }
            None
        };
        Ok(Admitted {
            record: call.write_class.then(|| Box::new(rec)),
            durable,
            rate,
            outcome,
            started: Instant::now(),
            own: None,
            trace: crate::otel::current(),
        })
    }

    async fn declined(&self, call: &Call<'_>, d: &Decision) -> Refusal {
        let rec = record::decision(call, Outcome::Declined, d, Some(200), Some("DECLINED"));
        self.write(&rec, false).await;
        let err = GatewayError::Conflict { message: "the user declined this call; it did not run".into() };
        Refusal { error: err, outcome: Outcome::Declined, reasons: d.reasons.clone() }
    }

    async fn record_refusal(&self, call: &Call<'_>, d: &Decision, err: GatewayError) -> Refusal {
        self.record_refusal_now(call, d, err)
    }

    /// A refusal's record is written, never fsynced: nothing to await.
    fn record_refusal_now(&self, call: &Call<'_>, d: &Decision, err: GatewayError) -> Refusal {
        let outcome = Outcome::of(&err);
        let mut reasons = d.reasons.clone();
        if let GatewayError::Forbidden { reasons: r, .. } = &err {
            for x in r {
                if !reasons.contains(x) {
                    reasons.push(x.clone());
                }
            }
        }
        let decision = Decision { allow: false, reasons: reasons.clone(), ..Default::default() };
        let rec = record::decision(call, outcome, &decision, Some(err.status()), Some(err.code()));
        if let Err(e) = self.audit.append_now(&rec) {
            tracing::error!(corr_id = %rec.corr_id, error = %e, "audit write failed");
        }
        tracing::info!(
            corr_id = call.origin.corr_id,
            action = %call.action,
            tool = call.tool_id.as_deref().unwrap_or(""),
            decision = outcome.label(),
            code = err.code(),
            "request refused"
        );
        Refusal { error: err, outcome, reasons }
    }

    /// A refusal or answer changes nothing upstream: written, not fsynced.
    async fn write(&self, rec: &AuditEvent, durable: bool) {
        if let Err(e) = self.audit.append(rec, durable).await {
            tracing::error!(corr_id = %rec.corr_id, error = %e, "audit write failed");
        }
    }

    async fn pending_gauge(&self) {
        if let Ok(n) = self.state.pending_holds().await {
            METRICS.holds_pending.set(n as i64);
        }
    }
}

/// What the approvals console shows of a hold of `call`.
fn view_of(call: &Call<'_>, d: &Decision) -> HoldView {
    let tags = call.resource.get("safety_tags").and_then(Value::as_array);
    HoldView {
        agent: holds::agent_of(call.principal),
        server: call.server.clone(),
        provider: call.provider.clone(),
        rules: call.policy.confirming_rules(&d.reasons),
        risk_tags: tags.map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default(),
        arguments: holds::shown_arguments(call.arguments),
        created_at: chrono::Utc::now().timestamp(),
    }
}

/// The reason a refusal of an unapproved tool definition names (pinning: enforce).
pub const PIN_REASON: &str = "tool_definition_unapproved";

fn unavailable() -> Refusal {
    let error = GatewayError::Unavailable { message: "audit trail unavailable".into() };
    Refusal { error, outcome: Outcome::Unavailable, reasons: vec![] }
}

/// Evaluates `policy` on a prepared input document. For a decision that must happen inside
/// a store transaction (manifest registration); everything else goes through
/// [`Enforcer::authorize`].
pub fn decide_input(policy: &PolicySnapshot, action: &str, input: &Input) -> Result<Decision, GatewayError> {
    let d = evaluate(policy, action, input);
    if let Some(shadow) = policy.shadow() {
        shadow.offer(action, input.clone(), &d);
    }
    d
}

/// Evaluates `policy` (timed) and, when a shadow candidate is loaded, hands the input and the
/// live answer to it — a queue push, never a wait. Without a shadow the only extra work is
/// the `Option` check.
fn decide(policy: &PolicySnapshot, action: &str, input: Input) -> Result<Decision, GatewayError> {
    let d = evaluate(policy, action, &input);
    if let Some(shadow) = policy.shadow() {
        shadow.offer(action, input, &d);
    }
    d
}

/// Evaluates `policy` and times it (the action label is bounded).
fn evaluate(policy: &PolicySnapshot, action: &str, input: &Input) -> Result<Decision, GatewayError> {
    let span = crate::otel::child("policy.evaluate", opentelemetry::trace::SpanKind::Internal);
    let t = Instant::now();
    let d = policy.decide(input);
    METRICS.policy_eval.with_label_values(&[metric_action(action)]).observe(t.elapsed().as_secs_f64());
    if let Some(span) = span.filter(|s| s.trace().is_recording()) {
        span.set("fastmcp.action", metric_action(action));
        span.set("fastmcp.policy.revision", policy.revision().to_string());
        match &d {
            Ok(d) => {
                span.set("fastmcp.policy.allow", d.allow);
                span.set("fastmcp.policy.require_confirmation", d.require_confirmation);
            }
            Err(_) => span.fail("policy evaluation error"),
        }
    }
    d
}

/// Decides the entries of one list answer (see [`Enforcer::lister`]).
pub struct Lister<'p> {
    policy: &'p PolicySnapshot,
    /// `None` when policy is off: every entry is visible and no input is built.
    prepared: Option<input::Prepared>,
}

impl Lister<'_> {
    /// May the caller do `action` on `resource` (an entry)? An evaluation error says no.
    /// Not recorded, not shadowed: a list entry's visibility is not a decision of its own.
    pub fn visible(&self, action: &str, resource: &Value) -> bool {
        match &self.prepared {
            None => true,
            Some(p) => evaluate(self.policy, action, &p.input(action, resource)).is_ok_and(|d| d.allow),
        }
    }
}

/// Actions come from caller-chosen method names: the metric label set stays bounded
/// (`mcp.<method>` is one label; `fastmcp_mcp_requests_total` has the method).
fn metric_action(action: &str) -> &'static str {
    match action {
        "tools.invoke" => "tools.invoke",
        "tools.confirm" => "tools.confirm",
        "catalog:list" => "catalog:list",
        "manifests.register" => "manifests.register",
        a if a.starts_with("mcp.") => "mcp.method",
        _ => "other",
    }
}
