//! pingora glue for `/mcp/{server}`: copy what the door needs out of the request, run the
//! door ([`crate::mcp::proxied`]), carry out its verdict.

use bytes::Bytes;
use pingora::prelude::*;
use pingora::Result;
use serde_json::Value;

use super::admit::Heads;
use super::response::Rewriting;
use super::{respond, static_code, Ctx, GatewayProxy};
use crate::enforce::Outcome;
use crate::error::GatewayError;
use crate::mcp::federation::stream::{AfterConfirm, Stream};
use crate::mcp::inbound::{self, Inbound, ReadResponse, Verdict};
use crate::mcp::proxied::pending_key;
use crate::mcp::{confirm, jsonrpc};
use crate::policy::PolicySnapshot;

impl GatewayProxy {
    pub(super) async fn mcp_request(&self, session: &mut Session, ctx: &mut Ctx, name: &str) -> Result<bool> {
        let Some(server) = self.gw.catalog.server(name) else {
            let e = GatewayError::NotFound { message: format!("no MCP server named {name:?}") };
            return self.answer_error(session, ctx, &e, Outcome::NotFound).await;
        };
        ctx.server = Some(server.clone());
        let Some(principal) = self.admit(session, ctx, &["POST", "GET", "DELETE"]).await? else {
            return Ok(true);
        };
        if server.url.is_none() {
            // A stdio server has no HTTP endpoint to proxy to: the federated endpoint serves it.
            let e = GatewayError::NotFound { message: format!("{name} is a stdio server: use the federated /mcp") };
            return self.answer_error(session, ctx, &e, Outcome::NotFound).await;
        }
        let heads = Heads::of(session);
        let Some(body) = self.door_body(session, ctx, &heads).await? else {
            return Ok(true);
        };
        let parsed = ctx.is_post.then(|| {
            let parsed = inbound::parse(&body, heads.mcp_method.as_deref(), heads.mcp_name.as_deref());
            let marks = |tool: &str| self.gw.fed.params(&server.name, tool);
            inbound::check_params(parsed, &heads.mcp_params, heads.protocol_version.as_deref(), marks)
        });
        let policy = self.gw.policy.snapshot();
        let corr_id = ctx.corr_id.clone();
        let req = Inbound {
            policy: &policy,
            server: &server,
            principal: &principal,
            http_method: &heads.http_method,
            body: &body,
            message: parsed.as_ref(),
            target_name: None,
            has_body: heads.has_body,
            mcp_method_header: heads.mcp_method.as_deref(),
            mcp_name_header: heads.mcp_name.as_deref(),
            session_id: heads.session_id.as_deref(),
            action_token_header: heads.action_token.as_deref(),
            protocol_version: heads.protocol_version.as_deref(),
            path: &heads.path,
            client_ip: &heads.client_ip,
            corr_id: &corr_id,
            session_elicitation: false,
        };
        let verdict = self.gw.mcp_server_request(&req).await;
        ctx.recorded = true;
        if heads.http_method == "DELETE" {
            ctx.ends_session = heads.session_id.clone();
        }
        if let Verdict::Elicit(held) = verdict {
            // A 2025-11-25 session that declared elicitation: the hold is asked on this
            // call's stream, and the confirmed call then runs on the client's own session.
            let (Some(sid), Some(Ok((_, value)))) = (heads.session_id.as_deref(), parsed.as_ref()) else {
                return Ok(true);
            };
            let mut dressed = vec![(crate::upstream::headers::SESSION_ID, sid.to_string())];
            if let Some(v) = &heads.protocol_version {
                dressed.push((crate::upstream::headers::PROTOCOL_VERSION, v.clone()));
            }
            let then = AfterConfirm::Session { server: server.clone(), session: dressed };
            let body = confirm::strip_retry_fields(jsonrpc::strip_action_token(value.clone()));
            let id = value.get("id").cloned().unwrap_or_default();
            let ask_on = pending_key(&server.name, sid);
            ctx.method = Some("tools/call".into());
            return self.stream(session, ctx, Stream::Elicit { held, ask_on, then, body, id }).await;
        }
        self.apply(session, ctx, verdict, body.clone(), &policy).await
    }

    /// Answers, or sets up forwarding, per the door's verdict.
    pub(super) async fn apply(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        verdict: Verdict<'_>,
        body: Bytes,
        policy: &PolicySnapshot,
    ) -> Result<bool> {
        match verdict {
            Verdict::Answer(a) => {
                ctx.outcome = Some(a.outcome);
                ctx.method = a.method;
                let code = a.body.pointer("/error/data/code").and_then(Value::as_str).map(static_code);
                ctx.answered = Some((a.status, code));
                respond::json(session, a.status, &a.body, &ctx.corr_id, &a.headers).await?;
                Ok(true)
            }
            Verdict::Forward(f) => {
                let f = *f;
                ctx.outcome = Some(f.admitted.outcome());
                ctx.method = f.method;
                ctx.read = f.read;
                if f.read == ReadResponse::ToolsList {
                    ctx.policy = Some(policy.clone());
                }
                if f.read == ReadResponse::ToolsList || ctx.mark_complete || ctx.federated {
                    ctx.filter = Some(Rewriting::for_body(&body));
                }
                if ctx.method.as_deref() == Some("initialize") {
                    ctx.opens_session = Some(f.elicitation);
                }
                ctx.upstream_params = f.params;
                ctx.admitted = Some(f.admitted);
                if ctx.is_post {
                    let forwarded = f.body.unwrap_or(body);
                    ctx.forward_len = Some(forwarded.len());
                    session.set_early_request_body(forwarded);
                }
                Ok(false)
            }
            Verdict::Accepted(outcome) => {
                ctx.outcome = Some(outcome);
                ctx.answered = Some((202, None));
                respond::empty(session, 202, &ctx.corr_id).await?;
                Ok(true)
            }
            Verdict::Elicit(_) => {
                // Only a session that declared elicitation gets here, and `/mcp/{server}`
                // does not ask yet: the hold is recorded, the caller gets the error form.
                let e = GatewayError::Unavailable { message: "elicitation needs a federated session".into() };
                ctx.recorded = true;
                self.answer_error(session, ctx, &e, Outcome::Held).await
            }
        }
    }
}
