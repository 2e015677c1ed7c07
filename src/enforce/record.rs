//! Audit records of the enforcement core: every way a request ends is written from here.

use crate::audit::{AuditDecision, AuditEvent, AuditOutcome, AuditPin};
use crate::auth::Principal;
use crate::policy::Decision;

use super::call::{Call, MessageKind};
use super::outcome::Outcome;

/// The decision record of `call`.
pub(super) fn decision(
    call: &Call<'_>,
    outcome: Outcome,
    d: &Decision,
    status: Option<u16>,
    code: Option<&str>,
) -> AuditEvent {
    AuditEvent {
        corr_id: call.origin.corr_id.to_string(),
        tenant: call.principal.tenant.clone(),
        sub: call.principal.sub.clone(),
        action: call.audit_action().to_string(),
        tool_id: call.tool_id.clone(),
        phase: "decision",
        decision: AuditDecision {
            result: outcome.label().to_string(),
            allow: outcome.allows(),
            reasons: d.reasons.clone(),
            policy_revision: call.policy.revision().to_string(),
        },
        outcome: AuditOutcome { status, error_code: code.map(String::from) },
        request_hash: call.args_hash.clone(),
        provider: call.provider.clone(),
        server: call.server.clone(),
        mcp_method: call.mcp_method.clone(),
        message: Some(call.message.label()),
        pin: call.pin.as_ref().map(|p| AuditPin {
            definition_hash: p.definition_hash.clone(),
            mode: p.mode.label(),
            pinned: p.pinned,
        }),
        ..Default::default()
    }
}

/// A request refused before any call could be built from it (routing, method, Host/Origin,
/// authentication, size): the facts the gateway had at that point.
#[derive(Debug, Clone)]
pub struct Early<'a> {
    pub corr_id: &'a str,
    /// The authenticated caller, when authentication already happened.
    pub principal: Option<&'a Principal>,
    /// `mcp.request` or `rest.request`: what kind of request it was meant to be.
    pub action: &'static str,
    pub server: Option<&'a str>,
    pub tool_id: Option<&'a str>,
    pub message: Option<MessageKind>,
    pub outcome: Outcome,
    pub status: u16,
    pub error_code: Option<&'static str>,
    pub reasons: Vec<String>,
    /// The policy revision in force (no policy was evaluated).
    pub policy_revision: String,
}

pub(super) fn early(e: &Early<'_>) -> AuditEvent {
    AuditEvent {
        corr_id: e.corr_id.to_string(),
        tenant: e.principal.map(|p| p.tenant.clone()).unwrap_or_default(),
        sub: e.principal.map(|p| p.sub.clone()).unwrap_or_default(),
        action: e.action.to_string(),
        tool_id: e.tool_id.map(String::from),
        phase: "decision",
        decision: AuditDecision {
            result: e.outcome.label().to_string(),
            allow: false,
            reasons: e.reasons.clone(),
            policy_revision: e.policy_revision.clone(),
        },
        outcome: AuditOutcome { status: Some(e.status), error_code: e.error_code.map(String::from) },
        server: e.server.map(String::from),
        provider: e.server.map(|_| "mcp".to_string()),
        message: e.message.map(MessageKind::label),
        ..Default::default()
    }
}
