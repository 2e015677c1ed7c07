//! `GET /admin/mcp/servers/{name}/pins` (pinned vs current tool definitions, with the
//! differing fields of every unapproved tool) and `POST
//! /admin/mcp/servers/{name}/pins/{tool}/approve` (the current definition becomes the pin;
//! recorded durably with the approving `actor`; federated sessions' streams get
//! `tools/list_changed`).

use serde_json::json;

use super::auth::Actor;
use super::error::AdminError;
use super::record::End;
use super::reply::Reply;
use super::routes::Route;
use super::{AdminApp, Done};
use crate::enforce::Outcome;
use crate::pinning::ApproveError;

impl AdminApp {
    pub(super) fn pins(&self, server: &str) -> Result<Reply, AdminError> {
        match self.gw.enforce.pins.report(server) {
            Some(report) => Ok(Reply::json(200, report)),
            None => Err(AdminError::NotFound { message: format!("no MCP server {server:?} is configured") }),
        }
    }

    pub(super) async fn approve_pin(&self, server: &str, tool: &str, actor: &Actor, corr_id: &str) -> Done {
        let route = Route::ApprovePin { server: server.to_string(), tool: tool.to_string() };
        // An approval lets a tool run again: never while the audit trail cannot record it.
        if !self.gw.audit.healthy() {
            let e = AdminError::Unavailable { message: "audit trail unavailable".into() };
            return self.refused(&route, corr_id, Some(actor), e);
        }
        let pins = self.gw.enforce.pins.clone();
        let (s, t, who) = (server.to_string(), tool.to_string(), actor.label());
        // The store may be Redis, reached synchronously: off the listener's thread.
        let result = tokio::task::spawn_blocking(move || pins.approve(&s, &t, &who)).await;
        let (reply, end) = match result {
            Ok(Ok(pin)) => {
                tracing::info!(corr_id, server, tool, actor = %actor.label(), hash = %pin.hash, "tool definition approved");
                // The federated list now offers the tool again: tell the sessions' streams.
                self.gw.fed.local_sessions.to_every_stream(crate::mcp::federation::LIST_CHANGED);
                let reply = Reply::json(200, json!({"server": server, "tool": tool, "result": "approved", "pin": pin}));
                (reply, Ok(()))
            }
            Ok(Err(e)) => {
                let e = match e {
                    ApproveError::Store(e) => AdminError::Unavailable { message: e.to_string() },
                    ApproveError::Off(_) => AdminError::BadRequest { message: e.to_string() },
                    other => AdminError::NotFound { message: other.to_string() },
                };
                (Reply::error(&e, corr_id), Err(e))
            }
            Err(_) => {
                let e = AdminError::Unavailable { message: "the approval did not complete".into() };
                (Reply::error(&e, corr_id), Err(e))
            }
        };
        let end = match &end {
            Ok(()) => End::Done { outcome: Outcome::Approved, status: 200, reasons: vec!["admin".into()] },
            Err(e) => End::Refused(e),
        };
        let mut rec = self.record(route.action(), corr_id, Some(actor), end, None);
        rec.tool_id = Some(format!("mcp:{server}:{tool}"));
        rec.server = Some(server.to_string());
        rec.provider = Some("mcp".into());
        Done { reply, record: Some(rec), durable: true, stream: None }
    }
}
