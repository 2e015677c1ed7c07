//! Read-only status routes: `/metrics`, `/health`, `/ready`, `/admin/mcp/servers`.

use serde_json::json;

use super::reply::Reply;
use super::AdminApp;

impl AdminApp {
    /// `GET /metrics`: Prometheus text.
    pub(super) fn metrics(&self) -> Reply {
        Reply::text("text/plain; version=0.0.4; charset=utf-8", crate::metrics::render())
    }

    /// `GET /health`: the process answers.
    pub(super) fn health(&self) -> Reply {
        Reply::json(200, json!({"status": "ok"}))
    }

    /// `GET /ready`: 503 while no JWT verification key is loaded, or while the Redis state
    /// backend does not answer and some kind of state fails closed without it.
    pub(super) fn ready(&self) -> Reply {
        let keys = self.gw.auth.as_ref().map(|a| a.key_count()).unwrap_or(1);
        let state = self.gw.backend.readiness();
        let ready = keys > 0 && state.is_none_or(|s| s.up || !s.required);
        let mut body = json!({
            "ready": ready,
            "policy_revision": self.gw.policy.revision(),
            "jwt_keys": keys,
            "mcp_servers": self.gw.catalog.server_names(),
            "state": if state.is_some() { "redis" } else { "memory" },
        });
        if let Some(s) = state {
            body["redis_up"] = json!(s.up);
        }
        Reply::json(if ready { 200 } else { 503 }, body)
    }

    /// `GET /admin/mcp/servers`: discovery status per configured server.
    pub(super) fn servers(&self) -> Reply {
        Reply::json(200, self.gw.fed.status())
    }
}
