//! SSE responses the federated core produces itself: a call run through the upstream client
//! (its notifications streamed as they come, the server's own requests relayed to the client
//! and their answers awaited, see [`super::relay`]), a 2025-11-25 confirmation asked on the
//! call's stream, and a session's standalone stream of `tools/list_changed`. The glue opens
//! the stream and hands over an [`EventSink`]; the core writes every event.
//!
//! On a session every event carries an SSE id and is kept in the session's replay window
//! ([`super::replay`]): a POST's reply through [`RecordingSink`] (its opener may vanish; the
//! call goes on and the client resumes it by GET with `Last-Event-ID`), the standalone stream
//! as recorded by the federation. A GET resumes the stream its `Last-Event-ID` names; an id
//! that cannot be honoured gets a fresh standalone stream that starts with one
//! `tools/list_changed` (the only message that stream carries), so a client that may have
//! missed changes re-lists.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::door::Reply;
use super::relay::{RelayRoute, RelayStep};
use super::replay::{Outbox, Resume, StreamId};
use crate::catalog::McpServer;
use crate::enforce::{Admitted, Completion, HeldCall, Outcome, Proof};
use crate::gateway::Gateway;
use crate::mcp::client::{post_on_session, wire, ClientError, McpClient};
use crate::mcp::confirm;
use crate::mcp::relay::ReplyTo;
use crate::mcp::session::GatewaySession;
use crate::mcp::upstream::{client_error, upstream_body};

/// Where the core writes SSE (the glue's response body).
#[async_trait]
pub trait EventSink: Send {
    /// One `event: message` with `message` as its data. `Err`: the client went away.
    async fn event(&mut self, message: &Value) -> Result<(), ()>;
    /// A comment line (keep-alive).
    async fn comment(&mut self, text: &str) -> Result<(), ()>;
    /// One event with SSE id `id`: `data` is a serialized message, or empty for a priming
    /// event (an id to resume from, no message). A sink that cannot carry ids writes the
    /// message without one.
    async fn frame(&mut self, id: &str, data: &str) -> Result<(), ()> {
        let _ = id;
        if data.is_empty() {
            return Ok(());
        }
        let message: Value = serde_json::from_str(data).map_err(|_| ())?;
        self.event(&message).await
    }
}

/// What to stream.
pub enum Stream<'a> {
    /// Run an admitted call on `client` (stdio servers).
    Execute {
        admitted: Admitted,
        client: Arc<McpClient>,
        server: Arc<McpServer>,
        method: String,
        body: Value,
        id: Value,
        mark_complete: bool,
        /// Where the server's own requests meanwhile are relayed.
        relay: RelayRoute,
    },
    /// Ask the user to confirm `held` on this stream (answers arrive on the session `ask_on`
    /// names in [`crate::mcp::elicitation::Pending`]), then run `body` as `then` says, or
    /// decline it.
    Elicit { held: Box<HeldCall<'a>>, ask_on: String, then: AfterConfirm, body: Value, id: Value },
    /// A session's standalone stream, or the stream `last_event_id` names, resumed.
    Listen { session: Arc<GatewaySession>, owner: String, last_event_id: Option<String> },
    /// `inner`, a POST's reply on `session`: its events get ids and are kept for resumption.
    Recorded { session: Arc<GatewaySession>, inner: Box<Stream<'a>> },
}

/// A federated POST's SSE reply on a session becomes resumable; anything else is unchanged.
pub fn resumable(reply: Reply<'_>, session: Option<Arc<GatewaySession>>) -> Reply<'_> {
    match (reply, session) {
        (Reply::Stream(inner), Some(session)) => Reply::Stream(Box::new(Stream::Recorded { session, inner })),
        (reply, _) => reply,
    }
}

/// Where a call confirmed on its stream runs.
pub enum AfterConfirm {
    /// Federated: through the gateway's own upstream client for this caller (`key`,
    /// declaring `declare`), the server's own requests relayed on `relay`.
    Client { server: Arc<McpServer>, key: String, declare: Value, relay: RelayRoute },
    /// `/mcp/{server}`: on the client's own upstream session (`session` = its
    /// `Mcp-Session-Id` and `MCP-Protocol-Version` headers).
    Session { server: Arc<McpServer>, session: Vec<(&'static str, String)> },
}

/// How a stream ended: the upstream status for the metrics (`None` when nothing ran).
pub struct StreamEnd {
    pub outcome: Outcome,
    pub upstream_status: Option<u16>,
}

impl Gateway {
    /// Writes `stream` to `sink` until it is done or the client goes away.
    pub async fn run_stream(&self, stream: Stream<'_>, corr_id: &str, sink: &mut dyn EventSink) -> StreamEnd {
        match stream {
            Stream::Execute { admitted, client, server, method, body, id, mark_complete, relay } => {
                let run = on_client(client, method, body, admitted.proof());
                let how = Voice { mark_complete, as_gateway: true, relay: Some(&relay) };
                let status = Box::pin(self.execute(admitted, run, &server, &id, how, corr_id, sink)).await;
                StreamEnd { outcome: Outcome::Allowed, upstream_status: status }
            }
            Stream::Elicit { held, ask_on, then, body, id } => {
                Box::pin(self.elicit(*held, &ask_on, then, body, &id, corr_id, sink)).await
            }
            Stream::Listen { session, owner, last_event_id } => {
                // Inline; the other branches are boxed, so an idle stream holds the listener's
                // state only.
                self.listen(&session, &owner, last_event_id.as_deref(), sink).await;
                StreamEnd { outcome: Outcome::Allowed, upstream_status: None }
            }
            Stream::Recorded { session, inner } => {
                let stream = session.outbox.open_stream();
                let mut recording = RecordingSink { inner: sink, outbox: &session.outbox, stream, opener: true };
                if let Some(id) = session.outbox.prime(stream) {
                    recording.opener = recording.inner.frame(&id, "").await.is_ok();
                }
                let end = Box::pin(self.run_stream(*inner, corr_id, &mut recording)).await;
                session.outbox.finish(stream);
                end
            }
        }
    }

    /// The 2025-11-25 confirmation: ask on the call's stream, wait for the answer POST, then
    /// run (or decline) the call.
    #[allow(clippy::too_many_arguments)]
    async fn elicit(
        &self,
        held: HeldCall<'_>,
        ask_on: &str,
        then: AfterConfirm,
        body: Value,
        id: &Value,
        corr_id: &str,
        sink: &mut dyn EventSink,
    ) -> StreamEnd {
        let tool_id = held.call().tool_id.clone().unwrap_or_default();
        let wait = Duration::from_secs(self.cfg.mcp.elicitation_timeout_seconds);
        let Some((question_id, answer_rx)) = self.fed.pending.ask(ask_on, wait).await else {
            // The question cannot be registered (shared store down): the hold stays pending.
            let e = crate::error::GatewayError::Unavailable { message: "session store unavailable".into() };
            let _ = sink.event(&e.jsonrpc_body(id, corr_id)).await;
            return StreamEnd { outcome: Outcome::Held, upstream_status: None };
        };
        let question = json!({"jsonrpc": "2.0", "id": question_id, "method": "elicitation/create",
            "params": confirm::elicitation_params(&tool_id, &held.decision.reasons)});
        if sink.event(&question).await.is_err() {
            self.fed.pending.forget(ask_on, &question_id).await;
            // The client is gone; the hold stays pending until its TTL (its token still works).
            return StreamEnd { outcome: Outcome::Held, upstream_status: None };
        }
        let answer = match tokio::time::timeout(wait + Duration::from_secs(1), answer_rx).await {
            Ok(Some(response)) => {
                response.get("result").and_then(confirm::answer_of).unwrap_or(confirm::Answer::Decline)
            }
            _ => {
                self.fed.pending.forget(ask_on, &question_id).await;
                confirm::Answer::Decline
            }
        };
        let admitted = match self.enforce.settle_held(held, answer == confirm::Answer::Accept).await {
            Ok(a) => a,
            Err(r) => {
                let msg = if r.outcome == Outcome::Declined {
                    confirm::declined_result(id, &tool_id)
                } else {
                    r.error.jsonrpc_body(id, corr_id)
                };
                let _ = sink.event(&msg).await;
                return StreamEnd { outcome: r.outcome, upstream_status: None };
            }
        };
        // Federated answers speak as the gateway; a proxied session's are its server's own.
        let (server, run, relay) = match then {
            AfterConfirm::Client { server, key, declare, relay } => {
                let timeout = server.timeout(&self.cfg.limits);
                let client = match self.fed.upstreams.client(&server, &key, timeout, declare, &admitted).await {
                    Ok(c) => c,
                    Err(e) => {
                        let end = Completion {
                            status: Some(e.status()),
                            error_code: Some(e.code().into()),
                            result_hash: None,
                        };
                        self.enforce.complete(admitted, end).await;
                        let _ = sink.event(&e.jsonrpc_body(id, corr_id)).await;
                        return StreamEnd { outcome: Outcome::Failed, upstream_status: Some(e.status()) };
                    }
                };
                let body = upstream_body(body, client.era(), client.declared_capabilities());
                let run = on_client(client, "tools/call".into(), body, admitted.proof());
                (server, run, Some(relay))
            }
            AfterConfirm::Session { server, session } => {
                let timeout = server.timeout(&self.cfg.limits);
                let run = on_session(&server, session, body, timeout, admitted.proof());
                (server, run, None)
            }
        };
        let how = Voice { mark_complete: false, as_gateway: relay.is_some(), relay: relay.as_ref() };
        let status = self.execute(admitted, run, &server, id, how, corr_id, sink).await;
        StreamEnd { outcome: Outcome::Confirmed, upstream_status: status }
    }

    /// Runs the admitted call (`run`, on a blocking thread), streams its notifications, relays
    /// the server's own requests (decided, then asked on this stream; the blocking call waits
    /// for the answer, bounded by `mcp.relay_timeout_seconds`), streams its response as `how`
    /// says, and writes its completion record. Returns the upstream status (200, or the error's).
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        mut admitted: Admitted,
        run: Run,
        server: &McpServer,
        id: &Value,
        how: Voice<'_>,
        corr_id: &str,
        sink: &mut dyn EventSink,
    ) -> Option<u16> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Side>();
        let started = std::time::Instant::now();
        let wait = self.fed.relays.ttl();
        // The client is synchronous: it runs on a blocking thread and hands messages over.
        // Its request names the call's span in `traceparent` (it finds the span on its thread).
        let span = crate::otel::child("upstream", opentelemetry::trace::SpanKind::Client);
        if let Some(s) = span.as_ref().filter(|s| s.trace().is_recording()) {
            s.set("fastmcp.server", server.name.clone());
        }
        let task = crate::otel::spawn_blocking(span.as_ref().map(|s| s.trace().clone()), move || {
            let notes = tx.clone();
            let mut forward = |n: &Value| {
                let _ = notes.send(Side::Note(n.clone()));
            };
            let mut ask = |r: &Value| {
                let (reply, answer) = std::sync::mpsc::channel();
                if tx.send(Side::Ask(r.clone(), reply)).is_err() {
                    return wire::refusal(r, "the client cannot be asked");
                }
                answer.recv_timeout(wait).unwrap_or_else(|_| wire::refusal(r, "the client did not answer in time"))
            };
            run(&mut forward, &mut ask)
        });
        let mut gone = false;
        while let Some(side) = rx.recv().await {
            match side {
                Side::Note(n) => {
                    if !gone && sink.event(&n).await.is_err() {
                        gone = true;
                    }
                }
                Side::Ask(r, reply) => {
                    let step = match how.relay {
                        Some(route) if !gone => self.relay_request(route, &r, ReplyTo::Waiter(reply.clone()), corr_id),
                        _ => RelayStep::Answered(wire::refusal(&r, "the client cannot be asked")),
                    };
                    match step {
                        RelayStep::ToClient(question) => {
                            if sink.event(&question).await.is_err() {
                                gone = true;
                                let session = how.relay.and_then(|route| route.session.as_deref()).unwrap_or("");
                                if let Some(e) = self.fed.relays.take(session, &question["id"]) {
                                    e.fail("the client went away");
                                }
                            }
                        }
                        RelayStep::Answered(refusal) => {
                            let _ = reply.send(refusal);
                        }
                    }
                }
            }
        }
        let outcome = task.await.map_err(|_| ClientError::Protocol("task failed".into()));
        let (response, status, code) = match outcome.and_then(|r| r) {
            Ok(mut r) => {
                r["id"] = id.clone();
                if how.mark_complete {
                    r = crate::mcp::tools_list::mark_complete(&r).unwrap_or(r);
                }
                if how.as_gateway {
                    r = crate::mcp::server_info::as_gateway(&r).unwrap_or(r);
                }
                (r, 200, None)
            }
            Err(e) => {
                let err = client_error(&server.name, &e);
                if let Some(s) = span.as_ref() {
                    s.set("error.type", err.code());
                    s.fail("upstream MCP call failed");
                }
                (err.jsonrpc_body(id, corr_id), err.status(), Some(err.code().to_string()))
            }
        };
        drop(span);
        crate::metrics::METRICS
            .upstream_duration
            .with_label_values(&[&format!("mcp:{}", server.name)])
            .observe(started.elapsed().as_secs_f64());
        admitted.wait_durable().await;
        let result_hash = response.get("result").map(crate::canonical::hash);
        self.enforce.complete(admitted, Completion { status: Some(status), error_code: code, result_hash }).await;
        if !gone {
            let _ = sink.event(&response).await;
        }
        Some(status)
    }

    /// The standalone stream (`notifications/tools/list_changed` whenever discovery changes
    /// a server's tools), or the stream `last_event_id` names from after that id; a
    /// keep-alive comment every 30 s. Ends when the client goes away, the session ends, the
    /// resumed reply has ended, or a newer connection takes the stream over.
    async fn listen(&self, gs: &GatewaySession, owner: &str, last_event_id: Option<&str>, sink: &mut dyn EventSink) {
        let attached = gs.outbox.attach(last_event_id);
        if let Some(p) = &attached.prime {
            if sink.frame(&p.id, "").await.is_err() {
                return;
            }
        }
        for f in &attached.replay {
            if sink.frame(&f.id, &f.data).await.is_err() {
                return;
            }
        }
        if attached.resume == Resume::Lost {
            // Events may have been missed; the standalone stream only says "re-list".
            tracing::debug!(session_stream = true, "Last-Event-ID cannot be honoured; fresh stream");
            gs.outbox.record_standalone(super::LIST_CHANGED);
        }
        let Some(mut live) = attached.live else { return };
        loop {
            match tokio::time::timeout(Duration::from_secs(30), live.recv()).await {
                Ok(Some(f)) => {
                    if sink.frame(&f.id, &f.data).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(_) => {
                    let alive = self.fed.sessions.get(&gs.id, owner, chrono::Utc::now().timestamp()).await.is_ok();
                    if !alive || sink.comment("keep-alive").await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// How [`Gateway::execute`] answers: `resultType` marked, in the gateway's voice, and where
/// the server's own requests are relayed (`None`: they get the standard refusal).
struct Voice<'r> {
    mark_complete: bool,
    as_gateway: bool,
    relay: Option<&'r RelayRoute>,
}

/// What the blocking call hands the stream: a notification, or a server request and where
/// its answer goes.
enum Side {
    Note(Value),
    Ask(Value, std::sync::mpsc::Sender<Value>),
}

/// A blocking upstream call: notifications to the first callback, the server's own requests
/// to the second (which returns their answer), the JSON-RPC response back.
type Run =
    Box<dyn FnOnce(&mut dyn FnMut(&Value), &mut dyn FnMut(&Value) -> Value) -> Result<Value, ClientError> + Send>;

/// `method` with `body`'s params through the gateway's own client.
fn on_client(client: Arc<McpClient>, method: String, body: Value, proof: Proof) -> Run {
    let params = body.get("params").cloned().unwrap_or(json!({}));
    Box::new(move |on_note, on_request| client.request_relaying(&proof, &method, params, on_note, Some(on_request)))
}

/// `body` as it is, on the client's own upstream session.
fn on_session(
    server: &McpServer,
    session: Vec<(&'static str, String)>,
    body: Value,
    timeout: Duration,
    proof: Proof,
) -> Run {
    let url = server.cfg.url.clone();
    let headers: Vec<(String, String)> = crate::broker::credential(server)
        .and_then(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .into_iter()
        .collect();
    // The client's own session: its server's requests there are not the gateway's to relay.
    Box::new(move |on_note, _| post_on_session(&proof, &url, headers, timeout, &session, &body, on_note))
}

/// A POST's reply on a session: each event is recorded (id, replay window) and written to
/// the opener's connection while it is there and owns the stream. The call goes on when the
/// opener vanishes — its events wait for a resumption — unless the session has ended.
struct RecordingSink<'s> {
    inner: &'s mut dyn EventSink,
    outbox: &'s Outbox,
    stream: StreamId,
    /// The opener's connection still takes writes.
    opener: bool,
}

#[async_trait]
impl EventSink for RecordingSink<'_> {
    async fn event(&mut self, message: &Value) -> Result<(), ()> {
        let data = message.to_string();
        let recorded = self.outbox.record(self.stream, &data);
        if self.opener && recorded.to_opener {
            self.opener = self.inner.frame(&recorded.id, &data).await.is_ok();
        }
        if !self.opener && self.outbox.is_closed() {
            return Err(());
        }
        Ok(())
    }

    async fn comment(&mut self, text: &str) -> Result<(), ()> {
        if self.opener {
            self.opener = self.inner.comment(text).await.is_ok();
        }
        Ok(())
    }
}
