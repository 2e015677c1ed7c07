//! pingora glue for the REST tool API: authenticate, read the body, hand over to
//! [`crate::rest`], write its reply.

use pingora::prelude::*;
use pingora::Result;
use serde_json::Value;

use super::admit::Heads;
use super::route::Route;
use super::{respond, Ctx, GatewayProxy};
use crate::rest::{self, RestRequest};

impl GatewayProxy {
    pub(super) async fn rest_request(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let methods: &[&str] = if ctx.route == Route::ToolCatalog { &["GET"] } else { &["POST"] };
        let Some(principal) = self.admit(session, ctx, methods).await? else {
            return Ok(true);
        };
        let heads = Heads::of(session);
        let body = if ctx.route == Route::ToolCatalog {
            bytes::Bytes::new()
        } else {
            match self.read_body(session, ctx).await? {
                Some(b) => b,
                None => return Ok(true),
            }
        };
        let policy = self.gw.policy.snapshot();
        let req = RestRequest {
            policy: &policy,
            principal: &principal,
            body: &body,
            path: &heads.path,
            client_ip: &heads.client_ip,
            corr_id: &ctx.corr_id,
            idempotency_key: heads.idempotency_key.as_deref(),
            action_token_header: heads.action_token.as_deref(),
            http_method: &heads.http_method,
        };
        let reply = match &ctx.route {
            Route::ToolCatalog => rest::catalog::catalog(&self.gw, &req).await,
            Route::ToolInvoke(id) => rest::invoke::invoke(&self.gw, &req, id).await,
            Route::ToolConfirm(id) => rest::confirm::confirm(&self.gw, &req, id).await,
            _ => rest::register::register(&self.gw, &req).await,
        };
        ctx.recorded = true;
        ctx.outcome = Some(reply.outcome);
        let code = reply.body.pointer("/error/code").and_then(Value::as_str).map(super::static_code);
        ctx.answered = Some((reply.status, code));
        respond::json(session, reply.status, &reply.body, &ctx.corr_id, &reply.headers).await?;
        Ok(true)
    }
}
