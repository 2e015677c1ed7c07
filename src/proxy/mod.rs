//! pingora glue: the gateway listener's [`ProxyHttp`] implementation. Each hook is thin and
//! calls the plain-Rust core ([`crate::pipeline`]):
//!
//! - `request_filter`: route, authenticate, read the body, run the pipeline; answer refusals.
//! - `upstream_peer` / `upstream_request_filter`: pick the server, broker credentials.
//! - `response_filter` / `response_body_filter`: correlation and rate headers, `tools/list`
//!   filtering (JSON or SSE).
//! - `fail_to_proxy`: upstream failures in the error shape; `logging`: metrics and the
//!   completion audit record.

pub mod body;
pub mod federated;
pub mod origin;
pub mod respond;
pub mod response;
pub mod rest;
pub mod route;

use std::net::{IpAddr, SocketAddr};
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

use crate::audit::{AuditEvent, Durable};
use crate::auth::Principal;
use crate::broker;
use crate::catalog::McpServer;
use crate::error::GatewayError;
use crate::metrics::METRICS;
use crate::pipeline::{Gateway, McpPost, Verdict};
use crate::policy::PolicySnapshot;
use crate::state::RateOutcome;
use route::Route;

/// The gateway's HTTP proxy.
pub struct GatewayProxy {
    pub gw: Arc<Gateway>,
    /// Host/Origin checks (DNS-rebinding protection).
    pub hosts: origin::HostPolicy,
}

impl GatewayProxy {
    pub fn new(gw: Arc<Gateway>) -> GatewayProxy {
        let hosts = origin::HostPolicy::new(&gw.cfg.listen, &gw.cfg.allowed_hosts);
        GatewayProxy { gw, hosts }
    }
}

/// Per-request state carried between hooks.
pub struct Ctx {
    corr_id: String,
    start: Instant,
    route: Route,
    server: Option<Arc<McpServer>>,
    principal: Option<Arc<Principal>>,
    /// The policy this request is decided by (also for its `tools/list` filtering).
    policy: Option<PolicySnapshot>,
    method: Option<String>,
    decision: &'static str,
    rate: Option<RateOutcome>,
    filter: Option<response::Rewriting>,
    completion: Option<Box<AuditEvent>>,
    /// fsync of the decision record, awaited before the response goes out.
    durable: Option<Durable>,
    /// Length of a body the gateway rewrote (for the upstream Content-Length).
    rewritten_len: Option<usize>,
    upstream_start: Option<Instant>,
    upstream_status: Option<u16>,
    /// Status of a response the gateway wrote itself.
    answered: Option<(u16, Option<&'static str>)>,
    is_post: bool,
    /// Headers set on the upstream request (federated: the upstream's era and session).
    upstream_headers: Vec<(&'static str, String)>,
    /// A federated request: the upstream's session header is not the client's.
    federated: bool,
    /// A 2026-07-28 client behind a 2025-11-25 upstream: results get `resultType`.
    mark_complete: bool,
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            corr_id: String::new(),
            start: Instant::now(),
            route: Route::NotFound,
            server: None,
            principal: None,
            policy: None,
            method: None,
            decision: "none",
            rate: None,
            filter: None,
            completion: None,
            durable: None,
            rewritten_len: None,
            upstream_start: None,
            upstream_status: None,
            answered: None,
            is_post: false,
            upstream_headers: Vec::new(),
            federated: false,
            mark_complete: false,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.corr_id = correlation_id(session.req_header().headers.get("x-correlation-id"));
        ctx.route = route::route(session.req_header().uri.path());
        match ctx.route.clone() {
            Route::Health => self.answer(session, ctx, 200, &json!({"status": "ok"}), &[]).await,
            Route::ProtectedResource(suffix) => {
                let body = self.resource_metadata(session, &suffix);
                self.answer(session, ctx, 200, &body, &[]).await
            }
            Route::McpFederated => self.federated_request(session, ctx).await,
            Route::ToolCatalog | Route::ToolInvoke(_) | Route::ToolConfirm(_) | Route::ManifestRegister => {
                self.rest_request(session, ctx).await
            }
            Route::NotFound => {
                let e = GatewayError::NotFound { message: "no such route".into() };
                self.answer_error(session, ctx, &e).await
            }
            Route::McpServer(name) => self.mcp_request(session, ctx, &name).await,
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(server) = ctx.server.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no upstream selected");
        };
        let Some(url) = server.url.clone() else {
            return Error::e_explain(ErrorType::InternalError, "stdio servers are not proxied");
        };
        let addr = resolve(&url.host, url.port).await?;
        let mut peer = HttpPeer::new(addr, url.tls, url.host.clone());
        let limits = &self.gw.cfg.limits;
        let timeout = server.timeout(limits);
        peer.options.connection_timeout = Some(Duration::from_secs(limits.connect_timeout_seconds));
        peer.options.write_timeout = Some(timeout);
        // A POST's response must start (and keep flowing) within the timeout; a GET is the
        // long-lived SSE listening stream and may be idle for as long as the server likes.
        if ctx.is_post {
            peer.options.read_timeout = Some(timeout);
        }
        ctx.upstream_start = Some(Instant::now());
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(server) = ctx.server.as_ref() else {
            return Ok(());
        };
        let Some(url) = server.url.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "stdio servers are not proxied");
        };
        let uri: http::Uri = url.path.parse().map_err(|_| Error::new(ErrorType::InternalError))?;
        req.set_uri(uri);
        req.insert_header("host", url.authority())?;
        for h in broker::STRIPPED_REQUEST_HEADERS {
            req.remove_header(*h);
        }
        // Responses the gateway reads must arrive as plain bytes it can check.
        req.remove_header("accept-encoding");
        if let Some((name, value)) = broker::credential(server) {
            req.insert_header(name, value)?;
        }
        if ctx.federated {
            for h in ["mcp-session-id", "mcp-method", "mcp-name", "mcp-protocol-version"] {
                req.remove_header(h);
            }
        }
        for (name, value) in &ctx.upstream_headers {
            req.insert_header(*name, value.as_str())?;
        }
        req.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        if let Some(len) = ctx.rewritten_len {
            req.remove_header("transfer-encoding");
            req.insert_header("content-length", len.to_string())?;
        }
        Ok(())
    }

    async fn response_filter(&self, _session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        wait_durable(ctx).await;
        let status = resp.status.as_u16();
        ctx.upstream_status = Some(status);
        if let (Some(t), Some(server)) = (ctx.upstream_start, ctx.server.as_ref()) {
            METRICS
                .upstream_duration
                .with_label_values(&[&format!("mcp:{}", server.name)])
                .observe(t.elapsed().as_secs_f64());
        }
        resp.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        if ctx.federated {
            resp.remove_header("mcp-session-id");
        }
        if let Some(rate) = &ctx.rate {
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
        wait_durable(ctx).await;
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
        let body = if ctx.is_post && ctx.route.is_mcp() {
            err.jsonrpc_body(&Value::Null, &ctx.corr_id)
        } else {
            err.body(&ctx.corr_id)
        };
        ctx.answered = Some((err.status(), Some(err.code())));
        if let Some(c) = ctx.completion.as_mut() {
            c.outcome.error_code = Some(err.code().into());
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
        METRICS.requests.with_label_values(&[ctx.route.label(), ctx.decision, &status.to_string()]).inc();
        METRICS.request_duration.with_label_values(&[ctx.route.label()]).observe(elapsed.as_secs_f64());
        if let (Some(server), Some(method)) = (ctx.server.as_ref(), ctx.method.as_deref()) {
            METRICS.mcp_requests.with_label_values(&[&server.name, metric_method(method), ctx.decision]).inc();
        }
        if let Some(mut event) = ctx.completion.take().map(|b| *b) {
            event.outcome.status = Some(ctx.upstream_status.unwrap_or(status));
            if event.outcome.error_code.is_none() && e.is_some() {
                event.outcome.error_code = Some("PROVIDER_ERROR".into());
            }
            event.latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
            if let Err(err) = self.gw.audit.append(&event, false).await {
                tracing::error!(corr_id = %ctx.corr_id, error = %err, "audit write failed");
            }
        }
        if ctx.decision == "allow" && status < 400 {
            tracing::debug!(corr_id = %ctx.corr_id, route = ctx.route.label(), status, "request");
        } else {
            tracing::info!(corr_id = %ctx.corr_id, route = ctx.route.label(), status, decision = ctx.decision,
                method = ctx.method.as_deref().unwrap_or(""), latency_ms = elapsed.as_secs_f64() * 1e3, "request");
        }
    }
}

impl GatewayProxy {
    async fn mcp_request(&self, session: &mut Session, ctx: &mut Ctx, name: &str) -> Result<bool> {
        let Some(server) = self.gw.catalog.server(name) else {
            let e = GatewayError::NotFound { message: format!("no MCP server named {name:?}") };
            return self.answer_error(session, ctx, &e).await;
        };
        ctx.server = Some(server.clone());
        let Some(principal) = self.admit(session, ctx, Some(name)).await? else {
            return Ok(true);
        };
        if server.url.is_none() {
            // A stdio server has no HTTP endpoint to proxy to: the federated endpoint serves it.
            let e = GatewayError::NotFound { message: format!("{name} is a stdio server: use the federated /mcp") };
            return self.answer_error(session, ctx, &e).await;
        }
        if !ctx.is_post {
            ctx.decision = "allow";
            return Ok(false);
        }
        let Some(body) = self.read_body(session, ctx, Some(name), &principal).await? else {
            return Ok(true);
        };
        let client_ip = client_ip(session);
        let policy = self.gw.policy.snapshot();
        let post = McpPost {
            policy: &policy,
            server: &server,
            principal: &principal,
            body: &body,
            mcp_method_header: header_str(session, "mcp-method"),
            mcp_name_header: header_str(session, "mcp-name"),
            action_token_header: header_str(session, "x-action-token"),
            path: session.req_header().uri.path(),
            client_ip: &client_ip,
            corr_id: &ctx.corr_id,
            protocol_version: header_str(session, "mcp-protocol-version"),
            session_elicitation: false,
        };
        let verdict = self.gw.mcp_post(&post).await;
        self.apply(session, ctx, verdict, body, &policy).await
    }

    /// Method, Origin and token checks shared by every MCP route. `None`: already answered.
    async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        server: Option<&str>,
    ) -> Result<Option<Arc<Principal>>> {
        self.admit_for(session, ctx, server, &["POST", "GET", "DELETE"]).await
    }

    /// [`Self::admit`] for a route that takes `methods`.
    async fn admit_for(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        server: Option<&str>,
        methods: &[&str],
    ) -> Result<Option<Arc<Principal>>> {
        let method = session.req_header().method.clone();
        if !methods.contains(&method.as_str()) {
            let e = GatewayError::MethodNotAllowed { message: format!("use {}", methods.join(" or ")) };
            self.answer_error(session, ctx, &e).await?;
            return Ok(None);
        }
        ctx.is_post = method == http::Method::POST;
        let hosts = &self.hosts;
        if !hosts.host_allowed(header_str(session, "host")) {
            let e = GatewayError::Forbidden { message: "Host not allowed".into(), reasons: vec!["host".into()] };
            self.answer_error(session, ctx, &e).await?;
            return Ok(None);
        }
        if let Some(origin) = header_str(session, "origin") {
            if !hosts.origin_allowed(origin, header_str(session, "host")) {
                let e =
                    GatewayError::Forbidden { message: "Origin not allowed".into(), reasons: vec!["origin".into()] };
                self.answer_error(session, ctx, &e).await?;
                return Ok(None);
            }
        }
        let auth_header = session.req_header().headers.get("authorization").map(|v| v.as_bytes().to_vec());
        match self.gw.authenticate(auth_header.as_deref()).await {
            Ok(p) => {
                ctx.principal = Some(p.clone());
                Ok(Some(p))
            }
            Err(e) => {
                if let GatewayError::Unauthorized { reason, .. } = &e {
                    METRICS.jwt_failures.with_label_values(&[reason]).inc();
                }
                self.gw.audit_early_refusal(&e, &ctx.corr_id, server, None).await;
                self.answer_error(session, ctx, &e).await?;
                Ok(None)
            }
        }
    }

    /// Reads the whole request body (bounded). `None`: refused and answered.
    async fn read_body(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        server: Option<&str>,
        principal: &Principal,
    ) -> Result<Option<Bytes>> {
        match body::read_all(session, self.gw.cfg.limits.max_body_bytes).await {
            Ok(b) => Ok(Some(b)),
            Err(e) => {
                session.set_keepalive(None);
                self.gw.audit_early_refusal(&e, &ctx.corr_id, server, Some(principal)).await;
                self.answer_error(session, ctx, &e).await?;
                Ok(None)
            }
        }
    }

    /// Answers or sets up forwarding per the pipeline's verdict.
    async fn apply(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        verdict: Verdict,
        body: Bytes,
        policy: &PolicySnapshot,
    ) -> Result<bool> {
        match verdict {
            Verdict::Answer(a) => {
                ctx.decision = a.decision;
                ctx.method = a.method;
                let code = a.body.pointer("/error/data/code").and_then(Value::as_str).map(static_code);
                ctx.answered = Some((a.status, code));
                respond::json(session, a.status, &a.body, &ctx.corr_id, &a.headers).await?;
                Ok(true)
            }
            Verdict::Forward(f) => {
                ctx.decision = f.decision;
                ctx.method = f.method;
                ctx.rate = f.rate;
                ctx.completion = f.completion;
                ctx.durable = f.durable;
                if f.filter_tools_list {
                    ctx.filter = Some(response::Rewriting::for_body(&body));
                    ctx.policy = Some(policy.clone());
                }
                let forwarded = match f.body {
                    Some(b) => {
                        ctx.rewritten_len = Some(b.len());
                        b
                    }
                    None => body,
                };
                session.set_early_request_body(forwarded);
                Ok(false)
            }
            Verdict::Elicit(_) => {
                let e = GatewayError::Unavailable { message: "elicitation needs a federated session".into() };
                self.answer_error(session, ctx, &e).await
            }
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
        ctx.decision = if status < 400 { "allow" } else { "refused" };
        respond::json(session, status, body, &ctx.corr_id, extra).await?;
        Ok(true)
    }

    /// Answers with the error shape (JSON-RPC on MCP POSTs) and its headers.
    async fn answer_error(&self, session: &mut Session, ctx: &mut Ctx, err: &GatewayError) -> Result<bool> {
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
        ctx.decision = match err {
            GatewayError::Unauthorized { .. } => "unauthenticated",
            GatewayError::Forbidden { .. } => "deny",
            _ => "refused",
        };
        respond::json(session, err.status(), &body, &ctx.corr_id, &headers).await?;
        Ok(true)
    }

    fn base_url(&self, session: &Session) -> String {
        let host =
            header_str(session, "host").filter(|h| h.bytes().all(|b| b.is_ascii_graphic())).unwrap_or("localhost");
        format!("http://{host}")
    }

    fn www_authenticate(&self, session: &Session, reason: &str) -> String {
        let resource = session.req_header().uri.path().trim_end_matches('/');
        let mut v = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource{}\"",
            self.base_url(session),
            resource
        );
        if reason != "missing" {
            v.push_str(", error=\"invalid_token\"");
        }
        v
    }

    /// RFC 9728 protected resource metadata for `/mcp{...}`.
    fn resource_metadata(&self, session: &Session, suffix: &str) -> Value {
        let auth = &self.gw.cfg.auth;
        let servers = if auth.authorization_servers.is_empty() {
            vec![auth.issuer.clone()]
        } else {
            auth.authorization_servers.clone()
        };
        let resource = if suffix.is_empty() { "/mcp" } else { suffix };
        json!({
            "resource": format!("{}{}", self.base_url(session), resource),
            "authorization_servers": servers,
            "scopes_supported": auth.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "FastMCP gateway",
        })
    }
}

/// Waits for the decision record's fsync. A failed fsync cannot undo a call that already ran
/// upstream: it is logged and counted, and the answer goes out.
async fn wait_durable(ctx: &mut Ctx) {
    if let Some(d) = ctx.durable.take() {
        if let Err(e) = d.wait().await {
            METRICS.audit_records.with_label_values(&["fsync_error"]).inc();
            tracing::error!(corr_id = %ctx.corr_id, error = %e, "audit record not durable");
        }
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
fn correlation_id(given: Option<&http::HeaderValue>) -> String {
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
        _ => "ERROR",
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::because(ErrorType::ConnectNoRoute, format!("resolving {host}"), e))?;
    match addrs.next() {
        Some(a) => Ok(a),
        None => Error::e_explain(ErrorType::ConnectNoRoute, "upstream host did not resolve"),
    }
}
