//! `POST /admin/policy/reload`: 200 when applied or unchanged, 422 when refused (the previous
//! policy keeps serving), 404 when policy is disabled. The reload's record names the operator.

use serde_json::json;

use super::auth::Actor;
use super::error::AdminError;
use super::record::End;
use super::reply::Reply;
use super::routes::Route;
use super::{AdminApp, Done};
use crate::enforce::Outcome;
use crate::policy::reload::Reload;

impl AdminApp {
    pub(super) async fn reload(&self, actor: &Actor, corr_id: &str) -> Done {
        let Some(reloader) = self.gw.reloader.clone() else {
            let e = AdminError::NotFound { message: "policy is disabled".into() };
            return self.refused(&Route::Reload, corr_id, Some(actor), e);
        };
        let who = actor.audit();
        // Compiling and testing a policy takes a while: off the listener's thread.
        let result = tokio::task::spawn_blocking(move || reloader.reload_by(Some(&who))).await;
        let result = match result {
            Ok(r) => r,
            Err(_) => {
                let e = AdminError::Unavailable { message: "the policy reload did not finish".into() };
                return self.refused(&Route::Reload, corr_id, Some(actor), e);
            }
        };
        tracing::info!(corr_id, actor = %actor.label(), result = ?result, "policy reload requested");
        match result {
            // Applied and refused reloads are recorded by the reloader, naming `actor`.
            Reload::Applied { revision } => Done {
                reply: Reply::json(200, json!({"result": "applied", "revision": revision})),
                record: None,
                durable: false,
                stream: None,
            },
            Reload::Refused { revision, error } => Done {
                reply: Reply::json(
                    422,
                    json!({"error": {"code": "VALIDATION_ERROR", "message": error, "corr_id": corr_id,
                                     "details": {"result": "refused", "revision": revision}}}),
                ),
                record: None,
                durable: false,
                stream: None,
            },
            Reload::Unchanged { revision } => {
                let end = End::Done { outcome: Outcome::Allowed, status: 200, reasons: vec!["unchanged".into()] };
                let rec = self.record(Route::Reload.action(), corr_id, Some(actor), end, None);
                Done {
                    reply: Reply::json(200, json!({"result": "unchanged", "revision": revision})),
                    record: Some(rec),
                    durable: true,
                    stream: None,
                }
            }
        }
    }
}
