//! `GET /admin/holds` and `POST /admin/holds/{id}/approve|deny` (optional JSON body
//! `{"reason": "…"}`, at most [`MAX_REASON_CHARS`] characters, kept in the decision's audit
//! record). Four eyes: no one approves a hold they asked for (403 `four_eyes`); a tenant
//! approver (`admin.approver_roles`) sees and decides only its own tenant's holds (403
//! `tenant_scope`). The record of a decision names the approver as `actor` and keeps the
//! requester as `sub`.

use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

use super::auth::Actor;
use super::error::AdminError;
use super::record::{self, End};
use super::reply::Reply;
use super::routes::Route;
use super::{AdminApp, Done};
use crate::enforce::Outcome;
use crate::state::Hold;

/// Longest reason an approver may give (characters).
pub const MAX_REASON_CHARS: usize = 500;
/// Largest decision body read (bytes).
const MAX_DECIDE_BODY: usize = 4096;

/// The JSON of one pending hold (never its action token nor its raw input).
pub(super) fn hold_json(h: &Hold) -> Value {
    json!({
        "id": h.id, "toolId": h.tool_id, "sub": h.sub, "tenant": h.tenant,
        "request_hash": h.args_hash, "expires_at": h.expires_at,
        "needs_approval": h.needs_approval, "approved_by": h.approved_by,
        "agent": h.view.agent, "server": h.view.server, "provider": h.view.provider,
        "rules": h.view.rules, "risk_tags": h.view.risk_tags, "arguments": h.view.arguments,
        "created_at": h.view.created_at,
    })
}

/// Pending holds `actor` may see: every tenant's, or its own tenant's.
pub(super) fn visible(actor: Option<&Actor>, list: Vec<Hold>) -> Vec<Hold> {
    match actor.and_then(Actor::tenant_scope) {
        Some(t) => list.into_iter().filter(|h| h.tenant == t).collect(),
        None => list,
    }
}

impl AdminApp {
    /// Pending holds `actor` may see (never their action tokens).
    pub(super) async fn holds(&self, actor: Option<&Actor>) -> Result<Reply, AdminError> {
        let list = self.gw.state.list_holds().await.map_err(|e| AdminError::Unavailable { message: e.to_string() })?;
        let holds: Vec<Value> = visible(actor, list).iter().map(hold_json).collect();
        Ok(Reply::json(200, json!({ "holds": holds, "now": chrono::Utc::now().timestamp() })))
    }

    /// Approves (marks) or denies (drops) hold `id` as `actor`, with the body's reason.
    pub(super) async fn decide(
        &self,
        id: &str,
        approve: bool,
        actor: &Actor,
        corr_id: &str,
        http: &mut ServerSession,
    ) -> Done {
        let route = Route::Decide { id: id.to_string(), approve };
        // A decision releases or drops a held write: like a write-class call, never while
        // the audit trail cannot record it (the refusal's own record probes the disk).
        if !self.gw.audit.healthy() {
            let e = AdminError::Unavailable { message: "audit trail unavailable".into() };
            return self.refused(&route, corr_id, Some(actor), e);
        }
        let reason = match read_reason(http).await {
            Ok(r) => r,
            Err(e) => return self.refused(&route, corr_id, Some(actor), e),
        };
        let reason = reason.as_deref();
        let held = match self.gw.state.list_holds().await {
            Ok(list) => list.into_iter().find(|h| h.id == id),
            Err(e) => {
                let e = AdminError::Unavailable { message: e.to_string() };
                return self.refused(&route, corr_id, Some(actor), e);
            }
        };
        let Some(held) = held else {
            let e = AdminError::NotFound { message: "no such pending hold".into() };
            return self.refused(&route, corr_id, Some(actor), e);
        };
        if actor.tenant_scope().is_some_and(|t| t != held.tenant) {
            let e = AdminError::Forbidden {
                message: "a tenant approver decides only holds of its own tenant".into(),
                reasons: vec!["tenant_scope".into()],
            };
            return self.decided(&held, actor, corr_id, reason, Err(e));
        }
        // A hold's requester never changes, so checking before the atomic decide is exact.
        if approve && actor.is_subject(&held.sub) {
            let e = AdminError::Forbidden {
                message: "a hold must be approved by someone other than its requester".into(),
                reasons: vec!["four_eyes".into()],
            };
            return self.decided(&held, actor, corr_id, reason, Err(e));
        }
        let result = match self.gw.state.decide_hold(id, approve, &actor.label()).await {
            Ok(true) => {
                tracing::info!(corr_id, hold = %id, actor = %actor.label(), approve, "hold decided by an operator");
                if approve {
                    self.gw.enforce.hold_events.bump();
                } else {
                    // The agent's later confirmation is told it was denied (this instance).
                    self.gw.enforce.hold_events.denied(id, held.expires_at);
                }
                Ok(approve)
            }
            // Expired or redeemed since it was listed.
            Ok(false) => Err(AdminError::NotFound { message: "no such pending hold".into() }),
            Err(e) => Err(AdminError::Unavailable { message: e.to_string() }),
        };
        self.decided(&held, actor, corr_id, reason, result)
    }

    /// The answer and the (durable) record of a decision on `held`.
    fn decided(
        &self,
        held: &Hold,
        actor: &Actor,
        corr_id: &str,
        reason: Option<&str>,
        result: Result<bool, AdminError>,
    ) -> Done {
        let (reply, end) = match &result {
            Ok(approve) => {
                let (word, outcome) =
                    if *approve { ("approved", Outcome::Approved) } else { ("denied", Outcome::Rejected) };
                let reply = Reply::json(200, json!({"id": held.id, "result": word}));
                (reply, End::Done { outcome, status: 200, reasons: vec!["admin".into()] })
            }
            Err(e) => (Reply::error(e, corr_id), End::Refused(e)),
        };
        let rec = record::event(record::Facts {
            action: "holds.decide",
            corr_id,
            actor: Some(actor),
            end,
            policy_revision: self.gw.policy.revision(),
            hold: Some(held),
            reason,
        });
        Done { reply, record: Some(rec), durable: true, stream: None }
    }
}

/// The decision body's reason: none for an empty body; else `{"reason": "<text>"}`.
async fn read_reason(http: &mut ServerSession) -> Result<Option<String>, AdminError> {
    let body = super::body::read_bounded(http, MAX_DECIDE_BODY).await?;
    parse_reason(&body)
}

fn parse_reason(body: &[u8]) -> Result<Option<String>, AdminError> {
    let bad = |m: &str| AdminError::BadRequest { message: m.to_string() };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("the body must be JSON: {\"reason\": \"…\"}"))?;
    let Some(obj) = v.as_object() else { return Err(bad("the body must be a JSON object: {\"reason\": \"…\"}")) };
    if obj.keys().any(|k| k != "reason") {
        return Err(bad("the only field of a decision is \"reason\""));
    }
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(bad("\"reason\" must be a string")),
    };
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(bad("the reason is longer than 500 characters"));
    }
    if reason.chars().any(char::is_control) {
        return Err(bad("the reason must not contain control characters"));
    }
    Ok((!reason.is_empty()).then(|| reason.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_short_line_of_text() {
        assert_eq!(parse_reason(b"").unwrap(), None);
        assert_eq!(parse_reason(br#"{"reason": "  ok by finance "}"#).unwrap().as_deref(), Some("ok by finance"));
        assert_eq!(parse_reason(br#"{"reason": null}"#).unwrap(), None);
        let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(501));
        for bad in
            [&b"nope"[..], br#"[]"#, br#"{"reason": 1}"#, br#"{"why": "x"}"#, br#"{"reason": "a\nb"}"#, long.as_bytes()]
        {
            let e = parse_reason(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{}", String::from_utf8_lossy(bad));
        }
    }
}
