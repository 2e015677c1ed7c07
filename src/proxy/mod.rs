//! pingora glue: the gateway listener's [`ProxyHttp`] implementation. Each hook is thin and
//! calls the plain-Rust cores (the doors in [`crate::mcp`] and [`crate::rest`], which call
//! [`crate::enforce`]):
//!
//! - `request_filter`: route, the shared headers-only checks, the body, the door; answer
//!   what is not forwarded.
//! - `upstream_peer`: connects only for an admitted call (the choke point: no
//!   [`crate::enforce::Admitted`], no connection).
//! - `upstream_request_filter`: the header allow-list, the server's brokered credential.
//! - `response_filter` / `response_body_filter`: no 101, sessions opened and ended,
//!   correlation and rate headers, `tools/list` filtering.
//! - `fail_to_proxy`: upstream failures in the error shape; `logging`: metrics, the
//!   completion record, and the record of a request refused before it reached a door.

mod admit;
pub mod body;
mod ctx;
pub mod federated;
pub mod forwarded;
pub mod headers;
mod mcp_server;
mod metadata;
pub mod origin;
pub mod respond;
mod response;
pub mod rest;
pub mod route;
mod sse;
mod trace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::upstreams::peer::HttpPeer;
use pingora::{ErrorType, Result};
use serde_json::{json, Value};

use crate::broker;
use crate::enforce::{Completion, Early, MessageKind, Outcome};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::mcp::session::owner_key;
use crate::metrics::METRICS;
pub use ctx::Ctx;
use route::Route;

/// The gateway's HTTP proxy.
pub struct GatewayProxy {
    pub gw: Arc<Gateway>,
    /// Host/Origin checks (DNS-rebinding protection).
    pub hosts: origin::HostPolicy,
    /// How the gateway names itself to clients (`public_url`, trusted proxies).
    pub public: forwarded::PublicOrigin,
}

impl GatewayProxy {
    pub fn new(gw: Arc<Gateway>) -> GatewayProxy {
        let public = forwarded::PublicOrigin::new(&gw.cfg);
        // The public origin's host is ours too: a TLS terminator in front passes it as `Host`.
        let mut allowed = gw.cfg.allowed_hosts.clone();
        allowed.extend(public.configured_host());
        let hosts = origin::HostPolicy::new(&gw.cfg.listen, &allowed);
        GatewayProxy { gw, hosts, public }
    }
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.corr_id = correlation_id(session.req_header().headers.get("x-correlation-id"));
        ctx.route = route::route(session.req_header().uri.path());
        // No protocol switch crosses the gateway: without the header pingora never enters
        // tunnel mode, and the upstream never hears of it (it is not on the allow-list).
        session.req_header_mut().remove_header("upgrade");
        let trace = trace::start(session, ctx);
        crate::otel::scope(Some(trace), self.route_request(session, ctx)).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        if ctx.admitted.is_none() {
            // Deny by default: nothing the enforcement core did not admit leaves.
            return Error::e_explain(ErrorType::InternalError, "refusing to forward a request that was not admitted");
        }
        let Some(server) = ctx.server.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no upstream selected");
        };
        let Some(url) = server.url.clone() else {
            return Error::e_explain(ErrorType::InternalError, "stdio servers are not proxied");
        };
        let addr = crate::upstream::resolve(&url.host, url.port)
            .await
            .map_err(|e| Error::explain(ErrorType::ConnectNoRoute, e.to_string()))?;
        let mut peer = HttpPeer::new(addr, url.tls, url.host.clone());
        let limits = &self.gw.cfg.limits;
        let timeout = server.timeout(limits);
        peer.options.connection_timeout = Some(Duration::from_secs(limits.connect_timeout_seconds));
        peer.options.write_timeout = Some(timeout);
        // A POST's response must start (and keep flowing) within the timeout; a GET is the
        // long-lived SSE listening stream and may be idle for as long as the server likes.
        if ctx.is_post {
            // A call whose server may ask the client something waits on the client's answer
            // too: its stream may stay quiet for as long as a relayed request may wait.
            let relays = ctx.relay.as_ref().is_some_and(|r| {
                r.route.session.is_some() && r.client.declared_capabilities().as_object().is_some_and(|c| !c.is_empty())
            });
            let quiet = if relays { timeout.max(self.gw.fed.relays.ttl()) } else { timeout };
            peer.options.read_timeout = Some(quiet);
        }
        ctx.upstream_start = Some(Instant::now());
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let (Some(server), Some(_)) = (ctx.server.as_ref(), ctx.admitted.as_ref()) else {
            return Error::e_explain(ErrorType::InternalError, "not admitted");
        };
        let Some(url) = server.url.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "stdio servers are not proxied");
        };
        let uri: http::Uri = url.path.parse().map_err(|_| Error::new(ErrorType::InternalError))?;
        req.set_uri(uri);
        for name in headers::to_remove(&req.headers, &server.cfg.forward_headers, ctx.federated) {
            req.remove_header(&name);
        }
        req.insert_header("host", url.authority())?;
        if let Some((name, value)) = broker::credential(server) {
            req.insert_header(name, value)?;
        }
        for (name, value) in &ctx.upstream_headers {
            req.insert_header(*name, value.as_str())?;
        }
        for (name, value) in &ctx.upstream_params {
            req.insert_header(name.clone(), value.as_str())?;
        }
        if server.cfg.forwarded {
            let ip = client_ip(session);
            let proto = self.public.scheme(&metadata::addressed(session));
            req.insert_header("forwarded", format!("for=\"{ip}\";proto={proto}"))?;
            req.insert_header("x-forwarded-for", ip)?;
            req.insert_header("x-forwarded-proto", proto)?;
        }
        req.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        trace::upstream(req, ctx)?;
        match ctx.forward_len {
            Some(len) => req.insert_header("content-length", len.to_string())?,
            // GET and DELETE go without a body.
            None => req.remove_header("content-length").map(|_| ()).unwrap_or(()),
        }
        Ok(())
    }

    async fn response_filter(&self, _session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        let status = resp.status.as_u16();
        if status == 101 {
            // The gateway never switches protocols on an upstream's say-so.
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "upstream answered 101 Switching Protocols");
        }
        if let Some(a) = ctx.admitted.as_mut() {
            a.wait_durable().await;
        }
        ctx.upstream_status = Some(status);
        trace::upstream_status(ctx, status);
        if let (Some(t), Some(server)) = (ctx.upstream_start, ctx.server.as_ref()) {
            METRICS
                .upstream_duration
                .with_label_values(&[&format!("mcp:{}", server.name)])
                .observe(t.elapsed().as_secs_f64());
        }
        self.track_session(resp, ctx).await;
        resp.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        if ctx.federated {
            resp.remove_header("mcp-session-id");
        }
        if let Some(rate) = ctx.admitted.as_ref().and_then(|a| a.rate()) {
            for (k, v) in crate::ratelimit::headers(rate) {
                resp.insert_header(k, v)?;
            }
        }
        response::on_headers(ctx, resp)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        response::on_body(&self.gw, ctx, body, end);
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if let Some(a) = ctx.admitted.as_mut() {
            a.wait_durable().await;
        }
        let err = match e.etype() {
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
                GatewayError::ProviderTimeout { message: "upstream MCP server timed out".into() }
            }
            _ if matches!(e.esource(), pingora::ErrorSource::Downstream) => {
                return FailToProxy { error_code: 0, can_reuse_downstream: false };
            }
            _ => GatewayError::Provider { message: "upstream MCP server failed".into() },
        };
        tracing::warn!(corr_id = %ctx.corr_id, error = %e, "upstream failure");
        trace::upstream_failed(ctx, err.code());
        let body = if ctx.is_post && ctx.route.is_mcp() {
            err.jsonrpc_body(&Value::Null, &ctx.corr_id)
        } else {
            err.body(&ctx.corr_id)
        };
        ctx.answered = Some((err.status(), Some(err.code())));
        ctx.upstream_error = Some(err.code());
        if !ctx.recorded {
            ctx.outcome = Some(Outcome::Failed);
        }
        let _ = respond::json(session, err.status(), &body, &ctx.corr_id, &[]).await;
        FailToProxy { error_code: err.status(), can_reuse_downstream: false }
    }

    /// A client that goes away mid-request is routine for a proxy, not an error worth a log
    /// line per occurrence (load tools and agents cancel requests all the time).
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, error: &Error) -> bool {
        matches!(error.esource(), pingora::ErrorSource::Downstream)
            && matches!(error.etype(), ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status =
            ctx.answered.map(|(s, _)| s).or_else(|| session.response_written().map(|r| r.status.as_u16())).unwrap_or(0);
        let elapsed = ctx.start.elapsed();
        METRICS.requests.with_label_values(&[ctx.route.label(), ctx.outcome_label(), &status.to_string()]).inc();
        METRICS.request_duration.with_label_values(&[ctx.route.label()]).observe(elapsed.as_secs_f64());
        if let (Some(server), Some(method)) = (ctx.server.as_ref(), ctx.method.as_deref()) {
            METRICS.mcp_requests.with_label_values(&[&server.name, metric_method(method), ctx.outcome_label()]).inc();
        }
        if let Some(admitted) = ctx.admitted.take() {
            let error_code = ctx.upstream_error.map(String::from).or_else(|| e.map(|_| "PROVIDER_ERROR".to_string()));
            let end = Completion { status: Some(ctx.upstream_status.unwrap_or(status)), error_code, result_hash: None };
            self.gw.enforce.complete(admitted, end).await;
        }
        if !ctx.recorded && ctx.route.audited() {
            self.record_early(session, ctx, status, e.is_some()).await;
        }
        trace::finish(&self.gw, ctx, status);
        if ctx.outcome == Some(Outcome::Allowed) && status < 400 {
            tracing::debug!(corr_id = %ctx.corr_id, route = ctx.route.label(), status, "request");
        } else {
            tracing::info!(corr_id = %ctx.corr_id, route = ctx.route.label(), status, decision = ctx.outcome_label(),
                method = ctx.method.as_deref().unwrap_or(""), latency_ms = elapsed.as_secs_f64() * 1e3, "request");
        }
    }
}

impl GatewayProxy {
    /// Dispatches by route (under the request's trace, see `request_filter`).
    async fn route_request(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        match ctx.route.clone() {
            Route::Health => self.answer(session, ctx, 200, &json!({"status": "ok"}), &[]).await,
            Route::ProtectedResource(suffix) => {
                let body = self.resource_metadata(session, &suffix);
                self.answer(session, ctx, 200, &body, &[]).await
            }
            // Each door's future is boxed: this future (alive for a whole SSE stream) is then
            // the size of the door that runs, not of the largest door.
            Route::McpFederated => Box::pin(self.federated_request(session, ctx)).await,
            Route::ToolCatalog | Route::ToolInvoke(_) | Route::ToolConfirm(_) | Route::ManifestRegister => {
                Box::pin(self.rest_request(session, ctx)).await
            }
            Route::NotFound => {
                let e = GatewayError::NotFound { message: "no such route".into() };
                self.answer_error(session, ctx, &e, Outcome::NotFound).await
            }
            Route::McpServer(name) => Box::pin(self.mcp_request(session, ctx, &name)).await,
        }
    }

    /// The one record of a request that no door decided (refused by the glue, or broken off).
    async fn record_early(&self, session: &Session, ctx: &Ctx, status: u16, failed: bool) {
        let outcome = ctx.outcome.unwrap_or(if failed { Outcome::Invalid } else { Outcome::Failed });
        let message = ctx.route.is_mcp().then(|| match session.req_header().method.as_str() {
            "GET" => MessageKind::Stream,
            "DELETE" => MessageKind::EndSession,
            _ => MessageKind::Request,
        });
        let early = Early {
            corr_id: &ctx.corr_id,
            principal: ctx.principal.as_deref(),
            action: if ctx.route.is_mcp() { "mcp.request" } else { "rest.request" },
            server: ctx.server.as_ref().map(|s| s.name.as_str()),
            tool_id: None,
            message: message.or(Some(MessageKind::Rest)).filter(|_| ctx.route.is_mcp() || ctx.route.is_rest()),
            outcome,
            status,
            error_code: ctx.answered.and_then(|(_, c)| c),
            reasons: ctx.early_reasons.clone(),
            policy_revision: self.gw.policy.revision(),
        };
        self.gw.enforce.record_early(&early).await;
    }

    /// A forwarded `initialize` opened a session upstream: it belongs to this principal. A
    /// forwarded DELETE ended one.
    async fn track_session(&self, resp: &ResponseHeader, ctx: &Ctx) {
        let (Some(server), Some(p)) = (ctx.server.as_ref(), ctx.principal.as_ref()) else { return };
        if ctx.federated || !resp.status.is_success() {
            return;
        }
        let owner = owner_key(&p.tenant, &p.sub);
        if let Some(elicitation) = ctx.opens_session {
            if let Some(sid) = resp.headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                let now = chrono::Utc::now().timestamp();
                if self.gw.proxied.opened(&server.name, sid, &owner, elicitation, now).await.is_err() {
                    // The client's next request on it is "not found" and it initializes again.
                    tracing::error!(corr_id = %ctx.corr_id, "session store unavailable: upstream session not recorded");
                }
            }
        }
        if let Some(sid) = &ctx.ends_session {
            let _ = self.gw.proxied.closed(&server.name, sid, &owner).await;
        }
    }

    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        status: u16,
        body: &Value,
        extra: &[(&'static str, String)],
    ) -> Result<bool> {
        ctx.answered = Some((status, None));
        ctx.outcome = Some(Outcome::Allowed);
        respond::json(session, status, body, &ctx.corr_id, extra).await?;
        Ok(true)
    }

    /// Answers with the error shape (JSON-RPC on MCP POSTs) and its headers.
    async fn answer_error(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        err: &GatewayError,
        outcome: Outcome,
    ) -> Result<bool> {
        let mut headers = err.headers();
        if let GatewayError::Unauthorized { reason, .. } = err {
            headers.push(("www-authenticate", self.www_authenticate(session, reason)));
        }
        let body = if ctx.is_post && ctx.route.is_mcp() {
            err.jsonrpc_body(&Value::Null, &ctx.corr_id)
        } else {
            err.body(&ctx.corr_id)
        };
        ctx.answered = Some((err.status(), Some(err.code())));
        ctx.outcome = Some(outcome);
        if let GatewayError::Forbidden { reasons, .. } = err {
            ctx.early_reasons.clone_from(reasons);
        }
        respond::json(session, err.status(), &body, &ctx.corr_id, &headers).await?;
        Ok(true)
    }
}

/// The peer's IP address (no port).
fn client_ip(session: &Session) -> String {
    let addr = session.client_addr().map(|a| a.to_string()).unwrap_or_default();
    addr.rsplit_once(':').map(|(ip, _)| ip.trim_matches(['[', ']']).to_string()).unwrap_or(addr)
}

fn header_str<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session.req_header().headers.get(name).and_then(|v| v.to_str().ok())
}

/// The caller's correlation id if it is a sane token, else a fresh one.
pub(crate) fn correlation_id(given: Option<&http::HeaderValue>) -> String {
    if let Some(v) = given.and_then(|v| v.to_str().ok()) {
        if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
            return v.to_string();
        }
    }
    let mut raw = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
    hex::encode(raw)
}

fn metric_method(m: &str) -> &'static str {
    match m {
        "tools/call" => "tools/call",
        "tools/list" => "tools/list",
        "initialize" => "initialize",
        "server/discover" => "server/discover",
        "ping" => "ping",
        m if m.starts_with("notifications/") => "notifications",
        m if m.starts_with("resources/") => "resources",
        m if m.starts_with("prompts/") => "prompts",
        _ => "other",
    }
}

fn static_code(code: &str) -> &'static str {
    match code {
        "FORBIDDEN" => "FORBIDDEN",
        "RATE_LIMITED" => "RATE_LIMITED",
        "CONFIRMATION_REQUIRED" => "CONFIRMATION_REQUIRED",
        "CONFLICT" => "CONFLICT",
        "BAD_REQUEST" => "BAD_REQUEST",
        "UNAVAILABLE" => "UNAVAILABLE",
        "NOT_FOUND" => "NOT_FOUND",
        "VALIDATION_ERROR" => "VALIDATION_ERROR",
        "PROVIDER_ERROR" => "PROVIDER_ERROR",
        "PROVIDER_TIMEOUT" => "PROVIDER_TIMEOUT",
        "UNAUTHORIZED" => "UNAUTHORIZED",
        "PAYLOAD_TOO_LARGE" => "PAYLOAD_TOO_LARGE",
        _ => "ERROR",
    }
}
