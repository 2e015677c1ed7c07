//! pingora glue for the federated `/mcp`: copy what the door needs out of the request, run
//! the core ([`crate::mcp::federation::door`]) and write its reply — JSON, 202, a forward
//! through pingora, or an SSE stream the core produces.

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::Result;
use serde_json::Value;

use super::admit::Heads;
use super::{respond, Ctx, GatewayProxy};
use crate::mcp::federation::door::{FedRequest, Reply};
use crate::mcp::federation::stream::EventSink;
use crate::mcp::inbound::{self, Verdict};

impl GatewayProxy {
    pub(super) async fn federated_request(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.federated = true;
        let Some(principal) = self.admit(session, ctx, &["POST", "GET", "DELETE"]).await? else {
            return Ok(true);
        };
        let heads = Heads::of(session);
        let Some(body) = self.door_body(session, ctx, &heads).await? else {
            return Ok(true);
        };
        let parsed = ctx.is_post.then(|| inbound::parse(&body, heads.mcp_method.as_deref(), heads.mcp_name.as_deref()));
        let policy = self.gw.policy.snapshot();
        let servers = self.gw.catalog.servers();
        let corr_id = ctx.corr_id.clone();
        let req = FedRequest {
            policy: &policy,
            principal: &principal,
            http_method: &heads.http_method,
            body: &body,
            message: parsed.as_ref(),
            has_body: heads.has_body,
            session_id: heads.session_id.as_deref(),
            action_token_header: heads.action_token.as_deref(),
            protocol_version: heads.protocol_version.as_deref(),
            path: &heads.path,
            client_ip: &heads.client_ip,
            corr_id: &corr_id,
        };
        let reply = self.gw.federated(&req, &servers).await;
        ctx.recorded = true;
        match reply {
            Reply::Json(a) => self.apply(session, ctx, Verdict::Answer(a), body, &policy).await,
            Reply::Accepted => {
                ctx.outcome = Some(crate::enforce::Outcome::Allowed);
                ctx.answered = Some((202, None));
                respond::empty(session, 202, &ctx.corr_id).await?;
                Ok(true)
            }
            Reply::Forward(routed) => {
                let routed = *routed;
                ctx.server = Some(routed.server);
                ctx.upstream_headers = routed.headers;
                ctx.mark_complete = routed.mark_complete;
                self.apply(session, ctx, Verdict::Forward(routed.forward), body, &policy).await
            }
            Reply::Stream(stream) => {
                start_sse(session, &ctx.corr_id).await?;
                let end = {
                    let mut sink = SessionSink { session };
                    self.gw.run_stream(*stream, &corr_id, &mut sink).await
                };
                ctx.outcome = Some(end.outcome);
                ctx.upstream_status = end.upstream_status;
                ctx.answered = Some((200, None));
                session.write_response_body(None, true).await?;
                Ok(true)
            }
        }
    }
}

/// The response body of an SSE reply, as the core's [`EventSink`].
struct SessionSink<'s> {
    session: &'s mut Session,
}

#[async_trait]
impl EventSink for SessionSink<'_> {
    async fn event(&mut self, message: &Value) -> std::result::Result<(), ()> {
        let frame = format!("event: message\ndata: {message}\n\n");
        self.session.write_response_body(Some(Bytes::from(frame)), false).await.map_err(|_| ())
    }

    async fn comment(&mut self, text: &str) -> std::result::Result<(), ()> {
        let frame = format!(": {text}\n\n");
        self.session.write_response_body(Some(Bytes::from(frame)), false).await.map_err(|_| ())
    }
}

async fn start_sse(session: &mut Session, corr_id: &str) -> Result<()> {
    let mut resp = ResponseHeader::build(200, None)?;
    resp.insert_header("content-type", "text/event-stream")?;
    resp.insert_header("cache-control", "no-cache")?;
    resp.insert_header("x-correlation-id", corr_id)?;
    session.write_response_header(Box::new(resp), false).await
}
