//! The admin listener: `/metrics` (Prometheus text), `/health`, `/ready`. Loopback by
//! default; it never serves gateway traffic.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::enforce::Outcome;
use crate::gateway::Gateway;
use crate::policy::reload::Reload;

pub struct AdminApp {
    pub gw: Arc<Gateway>,
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json_reply(status: u16, v: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", v.to_string().into_bytes())
}

fn method_not_allowed() -> Response<Vec<u8>> {
    json_reply(405, json!({"error": {"code": "METHOD_NOT_ALLOWED", "message": "use POST", "corr_id": ""}}))
}

impl AdminApp {
    /// `POST /admin/policy/reload`: 200 when applied or unchanged, 422 when refused (the
    /// previous policy keeps serving), 404 when policy is disabled.
    fn reload(&self) -> Response<Vec<u8>> {
        let Some(reloader) = &self.gw.reloader else {
            return json_reply(
                404,
                json!({"error": {"code": "NOT_FOUND", "message": "policy is disabled", "corr_id": ""}}),
            );
        };
        match reloader.reload() {
            Reload::Applied { revision } => json_reply(200, json!({"result": "applied", "revision": revision})),
            Reload::Unchanged { revision } => json_reply(200, json!({"result": "unchanged", "revision": revision})),
            Reload::Refused { revision, error } => json_reply(
                422,
                json!({"error": {"code": "VALIDATION_ERROR", "message": error, "corr_id": "",
                                 "details": {"result": "refused", "revision": revision}}}),
            ),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let method = session.req_header().method.clone();
        if path == "/admin/policy/reload" {
            return if method == http::Method::POST { self.reload() } else { method_not_allowed() };
        }
        if path == "/admin/holds" {
            return self.holds().await;
        }
        if let Some(rest) = path.strip_prefix("/admin/holds/") {
            if method != http::Method::POST {
                return method_not_allowed();
            }
            return match rest.rsplit_once('/') {
                Some((id, "approve")) => self.decide_hold(id, true).await,
                Some((id, "deny")) => self.decide_hold(id, false).await,
                _ => not_found(),
            };
        }
        match path.as_str() {
            "/metrics" => reply(200, "text/plain; version=0.0.4; charset=utf-8", crate::metrics::render()),
            "/health" => json_reply(200, json!({"status": "ok"})),
            "/admin/mcp/servers" => json_reply(200, self.gw.fed.status()),
            "/ready" => {
                let keys = self.gw.auth.as_ref().map(|a| a.key_count()).unwrap_or(1);
                let ready = keys > 0;
                json_reply(
                    if ready { 200 } else { 503 },
                    json!({
                        "ready": ready,
                        "policy_revision": self.gw.policy.revision(),
                        "jwt_keys": keys,
                        "mcp_servers": self.gw.catalog.server_names(),
                    }),
                )
            }
            _ => not_found(),
        }
    }
}

fn not_found() -> Response<Vec<u8>> {
    json_reply(404, json!({"error": {"code": "NOT_FOUND", "message": "no such admin route", "corr_id": ""}}))
}

impl AdminApp {
    /// `GET /admin/holds`: pending confirmations (never their action tokens).
    async fn holds(&self) -> Response<Vec<u8>> {
        match self.gw.state.list_holds().await {
            Ok(list) => {
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
                json_reply(200, json!({ "holds": holds }))
            }
            Err(e) => {
                json_reply(503, json!({"error": {"code": "UNAVAILABLE", "message": e.to_string(), "corr_id": ""}}))
            }
        }
    }

    /// `POST /admin/holds/{id}/approve|deny`: an operator releases or drops a hold (audited).
    async fn decide_hold(&self, id: &str, approve: bool) -> Response<Vec<u8>> {
        let held = self.gw.state.list_holds().await.unwrap_or_default().into_iter().find(|h| h.id == id);
        match self.gw.state.decide_hold(id, approve, "admin").await {
            Ok(true) => {
                let result = if approve { "approved" } else { "denied" };
                let event = crate::audit::AuditEvent {
                    action: "holds.decide".into(),
                    tool_id: held.as_ref().map(|h| h.tool_id.clone()),
                    sub: held.as_ref().map(|h| h.sub.clone()).unwrap_or_default(),
                    tenant: held.as_ref().map(|h| h.tenant.clone()).unwrap_or_default(),
                    request_hash: held.map(|h| h.args_hash),
                    phase: "decision",
                    decision: crate::audit::AuditDecision {
                        result: if approve { Outcome::Approved } else { Outcome::Rejected }.label().into(),
                        allow: approve,
                        reasons: vec!["admin".into()],
                        policy_revision: self.gw.policy.revision(),
                    },
                    ..Default::default()
                };
                if let Err(e) = self.gw.enforce.record_action(&event).await {
                    tracing::error!(error = %e, "audit write failed");
                }
                json_reply(200, json!({"id": id, "result": result}))
            }
            Ok(false) => not_found(),
            Err(e) => {
                json_reply(503, json!({"error": {"code": "UNAVAILABLE", "message": e.to_string(), "corr_id": ""}}))
            }
        }
    }
}
