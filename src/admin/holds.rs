//! `GET /admin/holds` and `POST /admin/holds/{id}/approve|deny`. Four eyes: no one approves
//! a hold they asked for (403 `four_eyes`); the record of a decision names the approver as
//! `actor` and keeps the requester as `sub`.

use serde_json::json;

use super::auth::Actor;
use super::error::AdminError;
use super::record::End;
use super::reply::Reply;
use super::routes::Route;
use super::{AdminApp, Done};
use crate::enforce::Outcome;
use crate::state::Hold;

impl AdminApp {
    /// Pending holds of every tenant (never their action tokens).
    pub(super) async fn holds(&self) -> Result<Reply, AdminError> {
        let list = self.gw.state.list_holds().await.map_err(|e| AdminError::Unavailable { message: e.to_string() })?;
        let holds: Vec<serde_json::Value> = list
            .iter()
            .map(|h| {
                json!({
                    "id": h.id, "toolId": h.tool_id, "sub": h.sub, "tenant": h.tenant,
                    "request_hash": h.args_hash, "expires_at": h.expires_at,
                    "needs_approval": h.needs_approval, "approved_by": h.approved_by,
                })
            })
            .collect();
        Ok(Reply::json(200, json!({ "holds": holds })))
    }

    /// Approves (marks) or denies (drops) hold `id` as `actor`.
    pub(super) async fn decide(&self, id: &str, approve: bool, actor: &Actor, corr_id: &str) -> Done {
        let route = Route::Decide { id: id.to_string(), approve };
        // A decision releases or drops a held write: like a write-class call, never while
        // the audit trail cannot record it (the refusal's own record probes the disk).
        if !self.gw.audit.healthy() {
            let e = AdminError::Unavailable { message: "audit trail unavailable".into() };
            return self.refused(&route, corr_id, Some(actor), e);
        }
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
        // A hold's requester never changes, so checking before the atomic decide is exact.
        if approve && actor.is_subject(&held.sub) {
            let e = AdminError::Forbidden {
                message: "a hold must be approved by someone other than its requester".into(),
                reasons: vec!["four_eyes".into()],
            };
            return self.decided(&held, actor, corr_id, Err(e));
        }
        let result = match self.gw.state.decide_hold(id, approve, &actor.label()).await {
            Ok(true) => {
                tracing::info!(corr_id, hold = %id, actor = %actor.label(), approve, "hold decided by an operator");
                Ok(approve)
            }
            // Expired or redeemed since it was listed.
            Ok(false) => Err(AdminError::NotFound { message: "no such pending hold".into() }),
            Err(e) => Err(AdminError::Unavailable { message: e.to_string() }),
        };
        self.decided(&held, actor, corr_id, result)
    }

    /// The answer and the (durable) record of a decision on `held`.
    fn decided(&self, held: &Hold, actor: &Actor, corr_id: &str, result: Result<bool, AdminError>) -> Done {
        let (reply, end) = match &result {
            Ok(approve) => {
                let (word, outcome) =
                    if *approve { ("approved", Outcome::Approved) } else { ("denied", Outcome::Rejected) };
                let reply = Reply::json(200, json!({"id": held.id, "result": word}));
                (reply, End::Done { outcome, status: 200, reasons: vec!["admin".into()] })
            }
            Err(e) => (Reply::error(e, corr_id), End::Refused(e)),
        };
        let rec = self.record("holds.decide", corr_id, Some(actor), end, Some(held));
        Done { reply, record: Some(rec), durable: true, stream: None }
    }
}
