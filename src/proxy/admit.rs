//! The headers-only checks every door shares, before any body is read: HTTP method,
//! duplicated singleton headers, Host and Origin (DNS rebinding), the JWT (joined by the
//! connection's verified client certificate, mTLS). Then the bounded
//! body read. A refusal here is answered by the glue and recorded by `logging` (the request
//! never reached a door).

use std::sync::Arc;

use bytes::Bytes;
use pingora::prelude::*;
use pingora::Result;

use super::{body, header_str, headers, Ctx, GatewayProxy};
use crate::auth::Principal;
use crate::enforce::Outcome;
use crate::error::GatewayError;
use crate::metrics::METRICS;

/// Header values a door needs, copied out of the request: the session is written to while
/// the door's verdict (which borrows them) is alive.
pub struct Heads {
    pub http_method: String,
    pub path: String,
    pub client_ip: String,
    pub has_body: bool,
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
    pub session_id: Option<String>,
    pub action_token: Option<String>,
    pub protocol_version: Option<String>,
    pub idempotency_key: Option<String>,
    /// The `Mcp-Param-*` headers (names lowercased, values as sent).
    pub mcp_params: Vec<(String, Vec<u8>)>,
    pub last_event_id: Option<String>,
}

impl Heads {
    pub fn of(session: &Session) -> Heads {
        let h = |name: &str| header_str(session, name).map(String::from);
        let req = session.req_header();
        Heads {
            http_method: req.method.as_str().to_string(),
            path: req.uri.path().to_string(),
            client_ip: super::client_ip(session),
            has_body: headers::announces_body(&req.headers),
            mcp_method: h("mcp-method"),
            mcp_name: h("mcp-name"),
            session_id: h("mcp-session-id"),
            action_token: h("x-action-token"),
            protocol_version: h("mcp-protocol-version"),
            idempotency_key: h("idempotency-key"),
            mcp_params: crate::mcp::param_headers::presented(
                req.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
            ),
            last_event_id: h("last-event-id"),
        }
    }
}

impl GatewayProxy {
    /// Method, duplicate headers, Host/Origin and token checks for a route taking `methods`.
    /// `None`: refused and answered.
    pub(super) async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        methods: &[&str],
    ) -> Result<Option<Arc<Principal>>> {
        let method = session.req_header().method.clone();
        if !methods.contains(&method.as_str()) {
            let e = GatewayError::MethodNotAllowed { message: format!("use {}", methods.join(" or ")) };
            self.answer_error(session, ctx, &e, Outcome::MethodNotAllowed).await?;
            return Ok(None);
        }
        ctx.is_post = method == http::Method::POST;
        let hdrs = &session.req_header().headers;
        let hosts = &self.hosts;
        let host_count = hdrs.get_all("host").iter().count();
        if host_count > 1 || !hosts.host_allowed(header_str(session, "host")) {
            let e = GatewayError::Forbidden { message: "Host not allowed".into(), reasons: vec!["host".into()] };
            self.answer_error(session, ctx, &e, Outcome::HostRefused).await?;
            return Ok(None);
        }
        if let Some(origin) = header_str(session, "origin") {
            if !hosts.origin_allowed(origin, header_str(session, "host")) {
                let e =
                    GatewayError::Forbidden { message: "Origin not allowed".into(), reasons: vec!["origin".into()] };
                self.answer_error(session, ctx, &e, Outcome::HostRefused).await?;
                return Ok(None);
            }
        }
        if let Some(name) = headers::duplicated(&session.req_header().headers) {
            let e = GatewayError::bad_request(format!("more than one {name} header"));
            self.answer_error(session, ctx, &e, Outcome::Invalid).await?;
            return Ok(None);
        }
        let auth_header = session.req_header().headers.get("authorization").map(|v| v.as_bytes().to_vec());
        match self.gw.authenticate(auth_header.as_deref()).await {
            Ok(p) => {
                // The connection's verified client certificate, if any, joins the principal.
                let peer = crate::tls_listener::peer_of(session.digest());
                if self.gw.cfg.require_mtls && peer.is_none() {
                    // The handshake requires a certificate; one that verified but could not
                    // be read leaves no identity, and mTLS must not quietly become TLS.
                    ctx.principal = Some(p);
                    let e = GatewayError::Forbidden {
                        message: "a readable client certificate is required".into(),
                        reasons: vec!["client_certificate".into()],
                    };
                    self.answer_error(session, ctx, &e, Outcome::Denied).await?;
                    return Ok(None);
                }
                let p = p.with_peer(peer);
                ctx.principal = Some(p.clone());
                Ok(Some(p))
            }
            Err(e) => {
                if let GatewayError::Unauthorized { reason, .. } = &e {
                    METRICS.jwt_failures.with_label_values(&[reason]).inc();
                    ctx.early_reasons = vec![format!("jwt:{reason}")];
                }
                self.answer_error(session, ctx, &e, Outcome::Unauthenticated).await?;
                Ok(None)
            }
        }
    }

    /// An MCP door's body: the whole POST body (bounded), or nothing for GET and DELETE (a
    /// body there is refused by the door unread). `None`: refused and answered.
    pub(super) async fn door_body(&self, session: &mut Session, ctx: &mut Ctx, heads: &Heads) -> Result<Option<Bytes>> {
        if ctx.is_post {
            return self.read_body(session, ctx).await;
        }
        if heads.has_body {
            // Never read: the connection cannot be reused after an unread body.
            session.set_keepalive(None);
        }
        Ok(Some(Bytes::new()))
    }

    /// Reads the whole request body (bounded). `None`: refused and answered.
    pub(super) async fn read_body(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Option<Bytes>> {
        match body::read_all(session, self.gw.cfg.limits.max_body_bytes).await {
            Ok(b) => Ok(Some(b)),
            Err(e) => {
                session.set_keepalive(None);
                let outcome = Outcome::of(&e);
                self.answer_error(session, ctx, &e, outcome).await?;
                Ok(None)
            }
        }
    }
}
