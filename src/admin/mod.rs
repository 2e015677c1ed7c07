//! The admin listener (`admin_listen`, loopback by default; it never serves gateway
//! traffic): `/metrics`, `/health`, `/ready`, `GET /admin/mcp/servers`, `GET /admin/holds`,
//! `GET /admin/holds/stream` (SSE, `holds_stream.rs`), `POST /admin/holds/{id}/approve|deny`,
//! the approvals console (`ui.rs`: `/admin/ui/` static files, `GET /admin/session`), `POST
//! /admin/policy/reload`, `GET /admin/audit/stream` (SSE, `stream.rs`), the shadow policy
//! (`shadow.rs`: `POST|DELETE /admin/policy/shadow`, `GET /admin/policy/shadow/diff`, `POST
//! /admin/policy/shadow/promote`), `GET /admin/mcp/servers/{name}/pins` and `POST
//! /admin/mcp/servers/{name}/pins/{tool}/approve` (`pins.rs`).
//!
//! Every request passes, in order: singleton headers, `Host` and `Origin` (`guard`), the
//! route and its method, a POST's JSON content type, then — except on `admin.open_paths` and
//! the console's static files — the credential (`auth`: the admin token or a JWT with an
//! admin role; a tenant approver's JWT only on the console's routes). Every request but a
//! served open path or console file leaves one audit record (`record`) naming the acting
//! identity.
//!
//! Files: `routes.rs` (the route table), `guard.rs` (header checks), `auth.rs` (credentials
//! and the [`Actor`]), `holds.rs` (listing, approving, denying; four eyes, tenant scope,
//! reasons), `holds_stream.rs` (the live hold stream), `ui.rs` (the console), `policy.rs`
//! (reload), `shadow.rs` (shadow rollout), `status.rs` (metrics, health, readiness, discovery
//! status), `stream.rs` (the live audit stream), `record.rs`, `error.rs`, `reply.rs`.

mod auth;
mod body;
mod error;
mod guard;
mod holds;
mod holds_stream;
mod pins;
mod policy;
mod record;
mod reply;
mod routes;
mod shadow;
mod status;
mod stream;
mod ui;

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

pub use auth::{Actor, AdminAuth};
pub use error::AdminError;

use crate::audit::AuditEvent;
use crate::enforce::Outcome;
use crate::gateway::Gateway;
use crate::proxy::origin::HostPolicy;
use guard::Head;
use record::End;
use reply::Reply;
use routes::Route;

/// The admin listener's pingora app.
pub struct AdminApp {
    gw: Arc<Gateway>,
    auth: AdminAuth,
    hosts: HostPolicy,
    /// Open hold streams (`admin.console.max_streams`).
    slots: holds_stream::StreamSlots,
}

/// An accepted stream, served after its record is written.
enum Streamed {
    Audit(stream::StreamRequest),
    Holds(holds_stream::HoldsStreamRequest),
}

/// How a request ended: the reply and the record still to write (`None`: written already,
/// or a served open path).
struct Done {
    reply: Reply,
    record: Option<AuditEvent>,
    /// fsync the record before answering (operator actions).
    durable: bool,
    /// An accepted stream: served after the record is written.
    stream: Option<Streamed>,
}

impl AdminApp {
    /// Builds the app from the gateway's config (reads `admin.token_file`).
    pub fn new(gw: Arc<Gateway>) -> Result<AdminApp, String> {
        let auth = AdminAuth::from_config(&gw.cfg)?;
        let hosts = HostPolicy::new(&gw.cfg.admin_listen, &gw.cfg.admin.allowed_hosts);
        let how = auth.describe(gw.auth.is_some());
        if gw.auth.is_none() {
            tracing::warn!(admin = %gw.cfg.admin_listen, "admin API: authentication is disabled; accepted: {how}");
        } else {
            tracing::info!(admin = %gw.cfg.admin_listen, "admin API accepts: {how}");
        }
        Ok(AdminApp { gw, auth, hosts, slots: Default::default() })
    }

    async fn handle(&self, head: &Head, corr_id: &str, http: &mut ServerSession) -> Done {
        let route = Route::of(&head.path).for_method(&head.method);
        if let Err(e) = guard::check_origin(&self.hosts, head) {
            return self.refused(&route, corr_id, None, e);
        }
        if route == Route::Unknown {
            let e = AdminError::NotFound { message: "no such admin route".into() };
            return self.refused(&route, corr_id, None, e);
        }
        if let Err(e) = guard::check_shape(&route, head) {
            return self.refused(&route, corr_id, None, e);
        }
        // The console's static files hold no data: served to anyone, like an open path.
        if let Route::Ui(name) = route {
            return Done { reply: ui::asset(name), record: None, durable: false, stream: None };
        }
        let open = self.auth.is_open(&head.path);
        let actor = if open {
            None
        } else {
            match self.auth.check(self.gw.auth.as_ref(), head.authorization()).await {
                Ok(a) => Some(a),
                Err(e) => return self.refused(&route, corr_id, None, e),
            }
        };
        if actor.as_ref().is_some_and(|a| a.tenant_scope().is_some()) && !route.for_approvers() {
            let e = AdminError::Forbidden {
                message: "a tenant approver may only use the approvals console's routes".into(),
                reasons: vec!["approver_scope".into()],
            };
            return self.refused(&route, corr_id, actor.as_ref(), e);
        }
        let done = match &route {
            Route::Metrics => Ok(self.metrics()),
            Route::Health => Ok(self.health()),
            Route::Ready => Ok(self.ready()),
            Route::Servers => Ok(self.servers()),
            Route::Holds => self.holds(actor.as_ref()).await,
            Route::Session => Ok(self.session(actor.as_ref())),
            Route::Ui(name) => Ok(ui::asset(name)),
            Route::HoldsStream => match actor.clone() {
                Some(actor) => match self.slots.take(self.gw.cfg.admin.console.max_streams) {
                    Ok(slot) => {
                        let end = End::Done { outcome: Outcome::Allowed, status: 200, reasons: vec![] };
                        let record = self.record(route.action(), corr_id, Some(&actor), end, None);
                        let req = holds_stream::HoldsStreamRequest { actor, slot };
                        let reply = Reply::json(200, serde_json::json!({}));
                        return Done {
                            reply,
                            record: Some(record),
                            durable: false,
                            stream: Some(Streamed::Holds(req)),
                        };
                    }
                    Err(e) => Err(e),
                },
                None => Err(AdminError::Unauthenticated { presented: false, reason: "missing" }),
            },
            Route::Pins { server } => self.pins(server),
            Route::ApprovePin { server, tool } => match &actor {
                Some(actor) => return self.approve_pin(server, tool, actor, corr_id).await,
                None => Err(AdminError::Unauthenticated { presented: false, reason: "missing" }),
            },
            // Acting routes are never open (config validation): an actor is always there.
            Route::Decide { id, approve } => match &actor {
                Some(actor) => return self.decide(id, *approve, actor, corr_id, http).await,
                None => Err(AdminError::Unauthenticated { presented: false, reason: "missing" }),
            },
            Route::Reload => match &actor {
                Some(actor) => return self.reload(actor, corr_id).await,
                None => Err(AdminError::Unauthenticated { presented: false, reason: "missing" }),
            },
            Route::ShadowLoad => self.shadow_load(http).await,
            Route::ShadowDrop => self.shadow_drop(),
            Route::ShadowDiff => self.shadow_diff(),
            Route::ShadowPromote => match &actor {
                Some(actor) => self.shadow_promote(actor),
                None => Err(AdminError::Unauthenticated { presented: false, reason: "missing" }),
            },
            Route::AuditStream => {
                let last = head.headers.get("last-event-id").map(|v| v.as_bytes());
                let parsed = stream::StreamRequest::parse(head.query.as_deref(), last)
                    .and_then(|r| r.confined_to(actor.as_ref().and_then(Actor::tenant_scope)));
                match parsed {
                    Ok(req) => {
                        let end = End::Done { outcome: Outcome::Allowed, status: 200, reasons: vec![] };
                        let record = self.record(route.action(), corr_id, actor.as_ref(), end, None);
                        let reply = Reply::json(200, serde_json::json!({}));
                        return Done {
                            reply,
                            record: Some(record),
                            durable: false,
                            stream: Some(Streamed::Audit(req)),
                        };
                    }
                    Err(e) => Err(e),
                }
            }
            Route::Unknown => Err(AdminError::NotFound { message: "no such admin route".into() }),
        };
        match (done, open) {
            (Ok(reply), true) => Done { reply, record: None, durable: false, stream: None },
            (Ok(reply), false) => {
                let end = End::Done { outcome: Outcome::Allowed, status: reply.status, reasons: vec![] };
                let record = self.record(route.action(), corr_id, actor.as_ref(), end, None);
                Done { reply, record: Some(record), durable: false, stream: None }
            }
            (Err(e), _) => self.refused(&route, corr_id, actor.as_ref(), e),
        }
    }

    /// A refusal: its error reply and its record.
    fn refused(&self, route: &Route, corr_id: &str, actor: Option<&Actor>, e: AdminError) -> Done {
        tracing::info!(
            corr_id,
            action = route.action(),
            decision = e.outcome().label(),
            code = e.code(),
            "admin request refused"
        );
        let record = self.record(route.action(), corr_id, actor, End::Refused(&e), None);
        Done { reply: Reply::error(&e, corr_id), record: Some(record), durable: false, stream: None }
    }

    /// The record of one admin request (on the policy revision now serving).
    fn record(
        &self,
        action: &'static str,
        corr_id: &str,
        actor: Option<&Actor>,
        end: End<'_>,
        hold: Option<&crate::state::Hold>,
    ) -> AuditEvent {
        let policy_revision = self.gw.policy.revision();
        record::event(record::Facts { action, corr_id, actor, end, policy_revision, hold, reason: None })
    }
}

/// The listener's HTTP app: pingora's `ServeHttp` loop (read the head, answer, keep the
/// connection), written out so one route can stream its answer.
#[async_trait]
impl HttpServerApp for AdminApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "admin listener: unreadable request");
                return None;
            }
        }
        http.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        let req = http.req_header();
        let head = Head {
            method: req.method.clone(),
            path: req.uri.path().to_string(),
            query: req.uri.query().map(String::from),
            headers: req.headers.clone(),
        };
        let corr_id = crate::proxy::correlation_id(head.headers.get("x-correlation-id"));
        if crate::proxy::headers::announces_body(&head.headers) {
            // Only the shadow load reads a body (bounded), and maybe not all of it: never
            // drain one sent to us, close the connection instead.
            http.set_keepalive(None);
        }
        let Done { reply, record, durable, stream } = self.handle(&head, &corr_id, &mut http).await;
        if let Some(rec) = record {
            if let Err(e) = self.gw.audit.append(&rec, durable).await {
                tracing::error!(corr_id = %corr_id, error = %e, "audit write failed for an admin request");
            }
        }
        if let Some(req) = stream {
            match req {
                Streamed::Audit(req) => stream::serve(&mut http, &self.gw.audit, req, &corr_id, shutdown).await,
                Streamed::Holds(req) => {
                    let relist = std::time::Duration::from_millis(self.gw.cfg.admin.console.relist_ms);
                    let src = holds_stream::Source {
                        state: self.gw.state.as_ref(),
                        events: &self.gw.enforce.hold_events,
                        relist,
                    };
                    holds_stream::serve(&mut http, src, req, &corr_id, shutdown).await
                }
            }
            let _ = http.finish().await;
            return None;
        }
        let (parts, body) = reply.into_response(&corr_id).into_parts();
        let head: pingora_http::ResponseHeader = parts.into();
        if let Err(e) = http.write_response_header(Box::new(head)).await {
            tracing::debug!(error = %e, "admin listener: response not written");
        }
        if !body.is_empty() {
            if let Err(e) = http.write_response_body(body.into(), true).await {
                tracing::debug!(error = %e, "admin listener: response body not written");
            }
        }
        let settings = HttpPersistentSettings::for_session(&http);
        match http.finish().await {
            Ok(c) => c.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(_) => None,
        }
    }
}
