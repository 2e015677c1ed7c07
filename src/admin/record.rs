//! Audit records of the admin API. Every admin request but a served open path leaves one
//! record naming its route's action, its outcome and the acting identity (`actor`) when the
//! credential was accepted; a hold's record keeps the hold's requester as `sub`.

use crate::audit::{AuditDecision, AuditEvent, AuditOutcome};
use crate::enforce::Outcome;
use crate::state::Hold;

use super::auth::Actor;
use super::error::AdminError;

/// How an admin request ended.
pub enum End<'a> {
    /// Served: the outcome, status and reasons.
    Done { outcome: Outcome, status: u16, reasons: Vec<String> },
    /// Refused.
    Refused(&'a AdminError),
}

/// What one admin request's record says.
pub struct Facts<'a> {
    pub action: &'static str,
    pub corr_id: &'a str,
    pub actor: Option<&'a Actor>,
    pub end: End<'a>,
    pub policy_revision: String,
    /// The hold acted on (its requester, tenant, tool and arguments hash).
    pub hold: Option<&'a Hold>,
    /// The reason an approver gave for a hold decision.
    pub reason: Option<&'a str>,
}

/// The record of `f`.
pub fn event(f: Facts<'_>) -> AuditEvent {
    let (outcome, status, error_code, reasons) = match f.end {
        End::Done { outcome, status, reasons } => (outcome, status, None, reasons),
        End::Refused(e) => (e.outcome(), e.status(), Some(e.code().to_string()), e.reasons()),
    };
    AuditEvent {
        action: f.action.into(),
        actor: f.actor.map(Actor::audit),
        corr_id: f.corr_id.into(),
        decision: AuditDecision {
            allow: outcome.allows(),
            policy_revision: f.policy_revision,
            reasons,
            result: outcome.label().into(),
        },
        outcome: AuditOutcome { error_code, status: Some(status) },
        phase: "decision",
        reason: f.reason.map(str::to_string),
        request_hash: f.hold.map(|h| h.args_hash.clone()),
        sub: f.hold.map(|h| h.sub.clone()).unwrap_or_default(),
        tenant: f.hold.map(|h| h.tenant.clone()).unwrap_or_default(),
        tool_id: f.hold.map(|h| h.tool_id.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_names_the_actor_and_keeps_the_requester() {
        let hold = Hold {
            id: "h".into(),
            sub: "alice".into(),
            tenant: "acme".into(),
            tool_id: "ads:createCampaign".into(),
            args_hash: "ab".into(),
            binding: String::new(),
            expires_at: 0,
            input: None,
            needs_approval: true,
            approved_by: None,
            view: Default::default(),
        };
        let end = End::Done { outcome: Outcome::Approved, status: 200, reasons: vec!["admin".into()] };
        let f = Facts {
            action: "holds.decide",
            corr_id: "c",
            actor: Some(&Actor::Token),
            end,
            policy_revision: "r".into(),
            hold: Some(&hold),
            reason: Some("checked with finance"),
        };
        let ev = event(f);
        assert_eq!((ev.sub.as_str(), ev.tenant.as_str()), ("alice", "acme"));
        assert_eq!(ev.actor.map(|a| a.kind), Some("admin_token"));
        assert_eq!(ev.reason.as_deref(), Some("checked with finance"));
        assert!(ev.decision.allow);
        let refused = AdminError::UnsupportedMediaType;
        let f = Facts {
            action: "policy.reload",
            corr_id: "c",
            actor: None,
            end: End::Refused(&refused),
            policy_revision: "r".into(),
            hold: None,
            reason: None,
        };
        let ev = event(f);
        assert_eq!((ev.outcome.status, ev.outcome.error_code.as_deref()), (Some(415), Some("UNSUPPORTED_MEDIA_TYPE")));
        assert!(!ev.decision.allow && ev.actor.is_none());
    }
}
