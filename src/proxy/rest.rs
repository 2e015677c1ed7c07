//! pingora glue for the REST tool API: authenticate, read the body, hand over to
//! [`crate::rest`], write its reply.

use pingora::prelude::*;
use pingora::Result;
use serde_json::Value;

use super::route::Route;
use super::{client_ip, header_str, respond, Ctx, GatewayProxy};
use crate::rest::{self, RestRequest};

impl GatewayProxy {
    pub(super) async fn rest_request(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let methods: &[&str] = if ctx.route == Route::ToolCatalog { &["GET"] } else { &["POST"] };
        let Some(principal) = self.admit_for(session, ctx, None, methods).await? else {
            return Ok(true);
        };
        let body = if ctx.route == Route::ToolCatalog {
            bytes::Bytes::new()
        } else {
            match self.read_body(session, ctx, None, &principal).await? {
                Some(b) => b,
                None => return Ok(true),
            }
        };
        let policy = self.gw.policy.snapshot();
        let ip = client_ip(session);
        let idempotency_key = header_str(session, "idempotency-key").map(String::from);
        let action_token = header_str(session, "x-action-token").map(String::from);
        let path = session.req_header().uri.path().to_string();
        let req = RestRequest {
            policy: &policy,
            principal: &principal,
            body: &body,
            path: &path,
            client_ip: &ip,
            corr_id: &ctx.corr_id,
            idempotency_key: idempotency_key.as_deref(),
            action_token_header: action_token.as_deref(),
        };
        let reply = match &ctx.route {
            Route::ToolCatalog => rest::catalog::catalog(&self.gw, &req).await,
            Route::ToolInvoke(id) => rest::invoke::invoke(&self.gw, &req, id).await,
            Route::ToolConfirm(id) => rest::confirm::confirm(&self.gw, &req, id).await,
            _ => rest::register::register(&self.gw, &req).await,
        };
        ctx.decision = reply.decision;
        let code = reply.body.pointer("/error/code").and_then(Value::as_str).map(super::static_code);
        ctx.answered = Some((reply.status, code));
        respond::json(session, reply.status, &reply.body, &ctx.corr_id, &reply.headers).await?;
        Ok(true)
    }
}
