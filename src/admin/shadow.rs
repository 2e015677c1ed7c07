//! The shadow policy routes: `POST /admin/policy/shadow` (a JSON bundle `{file name:
//! content}`, bounded by `policy.shadow_max_bundle_bytes`; compiled and tested like a reload:
//! 422 with the error when broken, live untouched), `DELETE /admin/policy/shadow`,
//! `GET /admin/policy/shadow/diff` and `POST /admin/policy/shadow/promote` (the reload's
//! swap, metric and audit record). 404 when policy is disabled or no shadow is loaded.

use pingora::protocols::http::ServerSession;
use serde_json::json;

use super::error::AdminError;
use super::reply::Reply;
use super::AdminApp;
use crate::policy::bundle::Bundle;
use crate::policy::reload::{Reload, Reloader};
use crate::policy::shadow::Shadow;

fn no_shadow() -> AdminError {
    AdminError::NotFound { message: "no shadow policy is loaded".into() }
}

impl AdminApp {
    fn reloader(&self) -> Result<std::sync::Arc<Reloader>, AdminError> {
        self.gw.reloader.clone().ok_or_else(|| AdminError::NotFound { message: "policy is disabled".into() })
    }

    /// Reads, compiles, tests and loads the candidate in the request's body.
    pub(super) async fn shadow_load(&self, http: &mut ServerSession) -> Result<Reply, AdminError> {
        let reloader = self.reloader()?;
        let body = super::body::read_bounded(http, self.gw.cfg.policy.shadow_max_bundle_bytes).await?;
        let bundle = Bundle::from_json(&body).map_err(|e| AdminError::BadRequest { message: e.0 })?;
        // Compiling and testing a policy takes a while: off the listener's thread.
        let loaded = tokio::task::spawn_blocking(move || reloader.load_shadow(&bundle))
            .await
            .map_err(|_| AdminError::Unavailable { message: "the shadow load did not finish".into() })?;
        match loaded {
            Ok(revision) => Ok(Reply::json(
                200,
                json!({"result": "loaded", "candidate_revision": revision, "live_revision": self.gw.policy.revision()}),
            )),
            Err(error) => {
                tracing::warn!(error = %error, "shadow policy refused");
                Err(AdminError::Invalid {
                    message: error,
                    details: json!({"result": "refused", "live_revision": self.gw.policy.revision()}),
                })
            }
        }
    }

    pub(super) fn shadow_drop(&self) -> Result<Reply, AdminError> {
        if !self.reloader()?.drop_shadow() {
            return Err(no_shadow());
        }
        Ok(Reply::json(200, json!({"result": "dropped", "live_revision": self.gw.policy.revision()})))
    }

    pub(super) fn shadow_diff(&self) -> Result<Reply, AdminError> {
        let shadow: std::sync::Arc<Shadow> = self.gw.policy.shadow().ok_or_else(no_shadow)?;
        Ok(Reply::json(200, shadow.diff(&self.gw.policy.revision())))
    }

    pub(super) fn shadow_promote(&self, actor: &super::Actor) -> Result<Reply, AdminError> {
        let who = actor.audit();
        match self.reloader()?.promote(Some(&who)) {
            Some(Reload::Applied { revision }) => {
                Ok(Reply::json(200, json!({"result": "promoted", "revision": revision})))
            }
            _ => Err(no_shadow()),
        }
    }
}
