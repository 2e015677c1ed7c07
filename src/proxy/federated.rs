//! pingora glue for the federated `/mcp`: copy what the door needs out of the request, run
//! the core ([`crate::mcp::federation::door`]) and write its reply — JSON, 202, a forward
//! through pingora, or an SSE stream the core produces.

use pingora::prelude::*;
use pingora::Result;

use super::admit::Heads;
use super::{respond, Ctx, GatewayProxy};
use crate::mcp::federation::door::{FedRequest, Reply};
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
        let servers = self.gw.catalog.servers();
        let parsed = ctx.is_post.then(|| {
            let parsed = inbound::parse(&body, heads.mcp_method.as_deref(), heads.mcp_name.as_deref());
            let names: Vec<String> = servers.iter().map(|s| s.name.clone()).collect();
            let marks = |tool: &str| self.gw.fed.params_of_exposed(tool, &names);
            inbound::check_params(parsed, &heads.mcp_params, heads.protocol_version.as_deref(), marks)
        });
        let policy = self.gw.policy.snapshot();
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
            last_event_id: heads.last_event_id.as_deref(),
            path: &heads.path,
            client_ip: &heads.client_ip,
            corr_id: &corr_id,
        };
        // The door's work and the replies' other writers are boxed: a standalone SSE stream
        // lives for hours and should hold only what writing it needs, not the largest step's
        // state.
        let reply = Box::pin(self.gw.federated(&req, &servers)).await;
        ctx.recorded = true;
        match reply {
            Reply::Json(a) => Box::pin(self.apply(session, ctx, Verdict::Answer(a), body, &policy)).await,
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
                ctx.relay = routed.relay;
                Box::pin(self.apply(session, ctx, Verdict::Forward(routed.forward), body, &policy)).await
            }
            Reply::Stream(stream) => self.stream(session, ctx, *stream).await,
        }
    }
}
