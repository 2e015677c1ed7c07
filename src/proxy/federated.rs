//! pingora glue for the federated `/mcp` endpoint: FastMCP answers the protocol itself
//! (initialize, server/discover, ping, the lists) and routes calls to the owning server.
//!
//! HTTP upstreams are reached by pingora's proxy path like `/mcp/{server}` (streaming, SSE,
//! timeouts, the completion audit), with the body renamed back and dressed for the
//! upstream's era. Stdio upstreams, and calls confirmed by a 2025-11-25 elicitation (whose
//! SSE response has already started), run through the upstream client instead.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::Result;
use serde_json::{json, Value};

use super::response::Rewriting;
use super::{client_ip, header_str, Ctx, GatewayProxy};
use crate::audit::AuditEvent;
use crate::auth::Principal;
use crate::catalog::McpServer;
use crate::error::GatewayError;
use crate::mcp::client::Era;
use crate::mcp::confirm;
use crate::mcp::federation::{discover_result, initialize_result};
use crate::mcp::jsonrpc::{self, Message};
use crate::mcp::session::{owner_key, GatewaySession};
use crate::mcp::upstream::{client_error, forward_headers, upstream_body};
use crate::pipeline::{ElicitHold, McpPost, Verdict};
use crate::policy::PolicySnapshot;

/// One parsed POST to `/mcp` and who sent it.
struct Call<'a> {
    principal: Arc<Principal>,
    gsession: Option<Arc<GatewaySession>>,
    id: Value,
    params: &'a Value,
    body: &'a Value,
}

impl Call<'_> {
    /// Upstream clients are per gateway session, or per principal for stateless clients.
    fn upstream_key(&self) -> String {
        match &self.gsession {
            Some(s) => format!("s:{}", s.id),
            None => format!("o:{}", owner_key(&self.principal.tenant, &self.principal.sub)),
        }
    }
}

impl GatewayProxy {
    pub(super) async fn federated_request(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.federated = true;
        let Some(principal) = self.admit(session, ctx, None).await? else {
            return Ok(true);
        };
        let owner = owner_key(&principal.tenant, &principal.sub);
        let now = chrono::Utc::now().timestamp();
        let gsession = match header_str(session, "mcp-session-id") {
            Some(id) => match self.gw.fed.sessions.get(id, &owner, now) {
                Ok(s) => Some(s),
                Err(_) => {
                    // The spec's answer to an unknown session: 404, and the client re-initializes.
                    let e = GatewayError::NotFound { message: "session not found; initialize again".into() };
                    return self.answer_error(session, ctx, &e).await;
                }
            },
            None => None,
        };
        match session.req_header().method.as_str() {
            "GET" => match gsession {
                Some(s) => self.listen(session, ctx, &s, &owner).await,
                None => {
                    // Stateless (2026-07-28) clients have no standalone stream (the spec allows 405).
                    let e = GatewayError::MethodNotAllowed { message: "GET needs an Mcp-Session-Id".into() };
                    self.answer_error(session, ctx, &e).await
                }
            },
            "DELETE" => {
                let Some(s) = gsession else {
                    let e = GatewayError::bad_request("DELETE needs an Mcp-Session-Id");
                    return self.answer_error(session, ctx, &e).await;
                };
                self.gw.fed.sessions.remove(&s.id, &owner);
                self.gw.fed.upstreams.end(&format!("s:{}", s.id));
                self.answer(session, ctx, 200, &json!({}), &[]).await
            }
            _ => self.federated_post(session, ctx, principal, gsession).await,
        }
    }

    async fn federated_post(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        principal: Arc<Principal>,
        gsession: Option<Arc<GatewaySession>>,
    ) -> Result<bool> {
        let Some(raw) = self.read_body(session, ctx, None, &principal).await? else {
            return Ok(true);
        };
        let parsed = jsonrpc::parse(&raw).and_then(|(msg, value)| {
            jsonrpc::check_headers(&msg, header_str(session, "mcp-method"), header_str(session, "mcp-name"))?;
            Ok((msg, value))
        });
        let (msg, value) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.gw.audit_early_refusal(&e, &ctx.corr_id, None, Some(&principal)).await;
                return self.answer_error(session, ctx, &e).await;
            }
        };
        let (id, method, params) = match &msg {
            Message::Request { id, method, params } => (id.clone(), method.clone(), params),
            Message::Notification { .. } => return self.accepted(session, ctx).await,
            Message::Response { id } => {
                if let Some(s) = &gsession {
                    self.gw.fed.pending.deliver(&s.id, id, value.clone());
                }
                return self.accepted(session, ctx).await;
            }
        };
        ctx.method = Some(method.clone());
        let call = Call { principal, gsession, id, params, body: &value };
        let modern = self.is_modern(session, &call);
        let result = |r: Value| json!({"jsonrpc": "2.0", "id": call.id, "result": r});
        match method.as_str() {
            "initialize" => {
                let requested = params.get("protocolVersion").and_then(Value::as_str);
                let init = initialize_result(requested);
                let version = init["protocolVersion"].as_str().unwrap_or_default().to_string();
                let elicitation = params.pointer("/capabilities/elicitation").is_some_and(|e| !e.is_null());
                let owner = owner_key(&call.principal.tenant, &call.principal.sub);
                let now = chrono::Utc::now().timestamp();
                match self.gw.fed.sessions.create(owner, version, elicitation, now) {
                    Ok(s) => self.answer(session, ctx, 200, &result(init), &[("mcp-session-id", s.id.clone())]).await,
                    Err(_) => {
                        let e = GatewayError::Unavailable { message: "too many sessions".into() };
                        self.answer_error(session, ctx, &e).await
                    }
                }
            }
            "server/discover" => self.answer(session, ctx, 200, &result(discover_result()), &[]).await,
            "ping" => {
                let empty = if modern { json!({"resultType": "complete"}) } else { json!({}) };
                self.answer(session, ctx, 200, &result(empty), &[]).await
            }
            "tools/list" => {
                let policy = self.gw.policy.snapshot();
                let tools = self.visible_tools(&policy, &call.principal, &ctx.corr_id);
                let mut r = json!({"tools": tools});
                if modern {
                    cacheable(&mut r);
                }
                self.answer(session, ctx, 200, &result(r), &[]).await
            }
            "resources/list" | "resources/templates/list" | "prompts/list" => {
                let r = self.aggregate(&call, &method, modern, &ctx.corr_id).await;
                self.answer(session, ctx, 200, &result(r), &[]).await
            }
            "tools/call" | "prompts/get" => self.routed_call(session, ctx, &call, &method).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.routed_call(session, ctx, &call, &method).await
            }
            _ => {
                let body = json!({"jsonrpc": "2.0", "id": call.id,
                    "error": {"code": -32601, "message": format!("method not found: {method}")}});
                self.answer(session, ctx, 200, &body, &[]).await
            }
        }
    }

    /// A session's standalone SSE stream: `notifications/tools/list_changed` whenever
    /// discovery changes a server's tools, a keep-alive comment every 30 s; it ends when the
    /// client goes away or the session ends.
    async fn listen(&self, session: &mut Session, ctx: &mut Ctx, gs: &GatewaySession, owner: &str) -> Result<bool> {
        let mut changes = self.gw.fed.subscribe();
        self.start_sse(session, ctx).await?;
        ctx.decision = "allow";
        let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        loop {
            match tokio::time::timeout(Duration::from_secs(30), changes.recv()).await {
                Ok(Ok(())) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    sse_event(session, &note).await?;
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                Err(_) => {
                    let alive = self.gw.fed.sessions.get(&gs.id, owner, chrono::Utc::now().timestamp()).is_ok();
                    if !alive {
                        break;
                    }
                    session.write_response_body(Some(Bytes::from_static(b": keep-alive\n\n")), false).await?;
                }
            }
        }
        self.finish_sse(session, ctx, None).await
    }

    /// A 2026-07-28 request (per-request `_meta`), as opposed to a session's.
    fn is_modern(&self, session: &Session, call: &Call<'_>) -> bool {
        if call.gsession.is_some() {
            return false;
        }
        let header = header_str(session, "mcp-protocol-version");
        confirm::ClientProfile::from_request(header, call.params).modern
    }

    /// Every tool the caller may call, across servers.
    fn visible_tools(&self, policy: &PolicySnapshot, principal: &Principal, corr_id: &str) -> Vec<Value> {
        let servers = self.gw.catalog.servers();
        self.gw.fed.visible_tools(|name, tool| {
            servers
                .iter()
                .find(|s| s.name == name)
                .is_some_and(|s| self.gw.tool_visible(policy, s, principal, tool, corr_id))
        })
    }

    /// `resources/list`, `resources/templates/list` or `prompts/list` over every server the
    /// caller may ask (`mcp.<method>`). Prompts are renamed like tools; resources keep their
    /// URIs and remember their owner for `resources/read`.
    async fn aggregate(&self, call: &Call<'_>, method: &str, modern: bool, corr_id: &str) -> Value {
        let key = match method {
            "prompts/list" => "prompts",
            "resources/templates/list" => "resourceTemplates",
            _ => "resources",
        };
        let policy = self.gw.policy.snapshot();
        let mut all = Vec::new();
        for server in self.gw.catalog.servers() {
            if !self.gw.server_allowed(&policy, &server, &call.principal, method, corr_id) {
                continue;
            }
            let Ok(client) = self.gw.fed.upstreams.client(&server, &call.upstream_key(), self.timeout(&server)).await
            else {
                continue;
            };
            let m = method.to_string();
            let listed = tokio::task::spawn_blocking(move || match m.as_str() {
                "prompts/list" => client.list_prompts(),
                "resources/templates/list" => client.list_resource_templates(),
                _ => client.list_resources(),
            })
            .await;
            let Ok(Ok(items)) = listed else {
                tracing::warn!(server = %server.name, method, "upstream list failed; server skipped");
                continue;
            };
            for mut item in items {
                if key == "prompts" {
                    if let Some(name) = item.get("name").and_then(Value::as_str) {
                        item["name"] = json!(self.gw.fed.exposed_name(&server.name, name));
                    }
                } else if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                    self.gw.fed.set_resource_owner(uri, &server.name);
                }
                all.push(item);
            }
        }
        let mut r = json!({ key: all });
        if modern {
            cacheable(&mut r);
        }
        r
    }

    /// A call that belongs to one server: resolved, decided by the pipeline, forwarded.
    async fn routed_call(&self, session: &mut Session, ctx: &mut Ctx, call: &Call<'_>, method: &str) -> Result<bool> {
        let names = self.gw.catalog.server_names();
        let target = call.params.get("name").or_else(|| call.params.get("uri")).and_then(Value::as_str).unwrap_or("");
        let resolved = if method.starts_with("resources/") {
            self.gw.fed.resource_owner(target).map(|s| (s, target.to_string()))
        } else {
            self.gw.fed.resolve(target, &names).map(|(s, t)| (s, t.to_string()))
        };
        let Some((server_name, upstream_name)) = resolved else {
            let e = GatewayError::NotFound { message: format!("unknown {}: {target:?}", target_kind(method)) };
            return self.answer_error(session, ctx, &e).await;
        };
        let Some(server) = self.gw.catalog.server(&server_name) else {
            let e = GatewayError::NotFound { message: "server not configured".into() };
            return self.answer_error(session, ctx, &e).await;
        };
        ctx.server = Some(server.clone());
        let mut renamed = call.body.clone();
        if !method.starts_with("resources/") {
            renamed["params"]["name"] = json!(upstream_name);
        }
        let bytes = Bytes::from(serde_json::to_vec(&renamed).unwrap_or_default());
        let policy = self.gw.policy.snapshot();
        let ip = client_ip(session);
        let session_version = call.gsession.as_ref().map(|s| s.protocol_version.clone());
        let action_token = header_str(session, "x-action-token").map(String::from);
        let version = header_str(session, "mcp-protocol-version").map(String::from).or(session_version);
        let corr_id = ctx.corr_id.clone();
        let post = McpPost {
            policy: &policy,
            server: &server,
            principal: &call.principal,
            body: &bytes,
            mcp_method_header: None,
            mcp_name_header: None,
            action_token_header: action_token.as_deref(),
            path: "/mcp",
            client_ip: &ip,
            corr_id: &corr_id,
            protocol_version: version.as_deref(),
            session_elicitation: call.gsession.as_ref().is_some_and(|s| s.elicitation),
        };
        let verdict = self.gw.mcp_post(&post).await;
        let mut forward = match verdict {
            Verdict::Forward(f) => f,
            Verdict::Elicit(hold) => return self.elicit(session, ctx, call, &post, hold, &upstream_name).await,
            answer => return self.apply(session, ctx, answer, bytes, &policy).await,
        };
        let timeout = self.timeout(&server);
        let client = match self.gw.fed.upstreams.client(&server, &call.upstream_key(), timeout).await {
            Ok(c) => c,
            Err(e) => return self.fail_completion(session, ctx, forward.completion.take(), &e).await,
        };
        let outgoing: Value = match &forward.body {
            Some(b) => serde_json::from_slice(b).unwrap_or(renamed),
            None => renamed,
        };
        let outgoing = upstream_body(outgoing, client.era());
        // A 2026-07-28 client behind a 2025-11-25 upstream needs `resultType` on results.
        ctx.mark_complete = self.is_modern(session, call) && client.era() == Era::Session20251125;
        if server.url.is_none() {
            ctx.decision = forward.decision;
            ctx.completion = forward.completion.take();
            ctx.durable = forward.durable.take();
            return self.execute(session, ctx, client, method, outgoing, &call.id, false).await;
        }
        ctx.upstream_headers = forward_headers(&client, method, Some(&upstream_name));
        if ctx.mark_complete {
            ctx.filter = Some(Rewriting::Wanted(call.id.clone()));
        }
        forward.body = Some(Bytes::from(serde_json::to_vec(&outgoing).unwrap_or_default()));
        self.apply(session, ctx, Verdict::Forward(forward), bytes, &policy).await
    }

    /// The 2025-11-25 confirmation: ask on the call's SSE stream, wait for the answer POST,
    /// then run (or cancel) the call and finish the stream with its response.
    async fn elicit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        call: &Call<'_>,
        post: &McpPost<'_>,
        hold: ElicitHold,
        upstream_name: &str,
    ) -> Result<bool> {
        let Some(gs) = call.gsession.clone() else {
            let e = GatewayError::Unavailable { message: "elicitation needs a session".into() };
            return self.answer_error(session, ctx, &e).await;
        };
        self.start_sse(session, ctx).await?;
        let (question_id, answer_rx) = self.gw.fed.pending.ask(&gs.id);
        let question = json!({"jsonrpc": "2.0", "id": question_id, "method": "elicitation/create",
            "params": confirm::elicitation_params(&hold.tool_id, &hold.reasons)});
        sse_event(session, &question).await?;
        let wait = Duration::from_secs(self.gw.cfg.mcp.elicitation_timeout_seconds);
        let answer = match tokio::time::timeout(wait, answer_rx).await {
            Ok(Ok(response)) => response.get("result").and_then(confirm::answer_of).unwrap_or(confirm::Answer::Decline),
            _ => {
                self.gw.fed.pending.forget(&gs.id, &question_id);
                confirm::Answer::Decline
            }
        };
        ctx.decision = if answer == confirm::Answer::Accept { "confirmed" } else { "declined" };
        match self.gw.elicited(post, &call.id, &hold, answer).await {
            Verdict::Forward(mut f) => {
                ctx.completion = f.completion.take();
                ctx.durable = f.durable.take();
                let server = ctx.server.clone();
                let Some(server) = server else {
                    return Ok(true);
                };
                let timeout = self.timeout(&server);
                let client = match self.gw.fed.upstreams.client(&server, &call.upstream_key(), timeout).await {
                    Ok(c) => c,
                    Err(e) => {
                        sse_event(session, &e.jsonrpc_body(&call.id, &ctx.corr_id)).await?;
                        return self.finish_sse(session, ctx, Some(e.status())).await;
                    }
                };
                let mut body = hold.body.clone();
                body["params"]["name"] = json!(upstream_name);
                let body = upstream_body(confirm::strip_retry_fields(jsonrpc::strip_action_token(body)), client.era());
                self.execute(session, ctx, client, "tools/call", body, &call.id, true).await
            }
            Verdict::Answer(a) => {
                sse_event(session, &a.body).await?;
                self.finish_sse(session, ctx, None).await
            }
            Verdict::Elicit(_) => self.finish_sse(session, ctx, None).await,
        }
    }

    /// Runs `body` on `client` and streams its notifications and response as SSE.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        client: Arc<crate::mcp::client::McpClient>,
        method: &str,
        body: Value,
        id: &Value,
        sse_started: bool,
    ) -> Result<bool> {
        if !sse_started {
            self.start_sse(session, ctx).await?;
        }
        let params = body.get("params").cloned().unwrap_or(json!({}));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let m = method.to_string();
        let server = ctx.server.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        let started = std::time::Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let mut forward = |n: &Value| {
                let _ = tx.send(n.clone());
            };
            client.request(&m, params, &mut forward)
        });
        while let Some(n) = rx.recv().await {
            sse_event(session, &n).await?;
        }
        let outcome = task.await.map_err(|_| crate::mcp::client::ClientError::Protocol("task failed".into()));
        let (response, status) = match outcome.and_then(|r| r) {
            Ok(mut r) => {
                r["id"] = id.clone();
                if ctx.mark_complete {
                    r = crate::mcp::tools_list::mark_complete(&r).unwrap_or(r);
                }
                (r, 200)
            }
            Err(e) => {
                let err = client_error(&server, &e);
                (err.jsonrpc_body(id, &ctx.corr_id), err.status())
            }
        };
        if let Some(c) = ctx.server.as_ref() {
            crate::metrics::METRICS
                .upstream_duration
                .with_label_values(&[&format!("mcp:{}", c.name)])
                .observe(started.elapsed().as_secs_f64());
        }
        super::wait_durable(ctx).await;
        sse_event(session, &response).await?;
        self.finish_sse(session, ctx, Some(status)).await
    }

    /// A forwardable call whose upstream could not be reached: answered and its completion
    /// record written with the failure.
    async fn fail_completion(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        completion: Option<Box<AuditEvent>>,
        err: &GatewayError,
    ) -> Result<bool> {
        if let Some(mut c) = completion.map(|b| *b) {
            c.outcome.status = Some(err.status());
            c.outcome.error_code = Some(err.code().into());
            if let Err(e) = self.gw.audit.append(&c, false).await {
                tracing::error!(corr_id = %ctx.corr_id, error = %e, "audit write failed");
            }
        }
        self.answer_error(session, ctx, err).await
    }

    fn timeout(&self, server: &McpServer) -> Duration {
        server.timeout(&self.gw.cfg.limits)
    }

    async fn start_sse(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        let mut resp = ResponseHeader::build(200, None)?;
        resp.insert_header("content-type", "text/event-stream")?;
        resp.insert_header("cache-control", "no-cache")?;
        resp.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        session.write_response_header(Box::new(resp), false).await
    }

    async fn finish_sse(&self, session: &mut Session, ctx: &mut Ctx, status: Option<u16>) -> Result<bool> {
        ctx.answered = Some((200, None));
        ctx.upstream_status = status;
        session.write_response_body(None, true).await?;
        Ok(true)
    }

    /// 202 for notifications and responses.
    async fn accepted(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.answered = Some((202, None));
        ctx.decision = "allow";
        let mut resp = ResponseHeader::build(202, None)?;
        resp.insert_header("content-length", "0")?;
        resp.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        session.write_response_header(Box::new(resp), true).await?;
        Ok(true)
    }
}

async fn sse_event(session: &mut Session, message: &Value) -> Result<()> {
    let frame = format!("event: message\ndata: {message}\n\n");
    session.write_response_body(Some(Bytes::from(frame)), false).await
}

/// The 2026-07-28 cacheable-result fields: the list is filtered per caller, so it is private
/// and not to be reused (`ttlMs` 0) — a policy change applies at once.
fn cacheable(r: &mut Value) {
    r["resultType"] = json!("complete");
    r["ttlMs"] = json!(0);
    r["cacheScope"] = json!("private");
}

fn target_kind(method: &str) -> &'static str {
    match method {
        "tools/call" => "tool",
        "prompts/get" => "prompt",
        _ => "resource",
    }
}
