//! Synchronous MCP client for one upstream server (HTTP or stdio).
//!
//! Blocking by design: the gateway calls it from `spawn_blocking` or background threads,
//! which keeps tokio out of the upstream path. Connecting negotiates the protocol era:
//! `server/discover` at 2026-07-28 first (stateless, every request self-describing), then
//! the 2025-11-25 `initialize` handshake with an `Mcp-Session-Id` as fallback.
//!
//! A client declares the capabilities it is connected with ([`McpClient::connect_with`]:
//! in `initialize`, or in every 2026-07-28 request's `_meta`). Server-to-client requests
//! (`elicitation/create`, `roots/list`, `sampling/createMessage`, …) arriving while a request
//! is in flight go to that request's caller when it relays them
//! ([`McpClient::request_relaying`]: the federated endpoint hands them to its own client);
//! otherwise they are answered with a JSON-RPC "method not found" error (`ping` with an
//! empty result): the gateway has no user, roots or model of its own, and an unanswered
//! request would leave the upstream waiting.

mod http;
mod stdio;
pub mod wire;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::enforce::Proof;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};

pub use http::ListenOutcome;

use crate::mcp::param_headers::{self, Registry};
use crate::upstream::headers::{self, Dialect};
use http::HttpConn;
use stdio::StdioConn;

/// Default per-request timeout used by the convenience constructors.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on pages followed by the `list_*` helpers (guards against endless paging).
pub const MAX_PAGES: usize = 100;
/// The discover probe gets at most this long: a legacy server may never answer it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handler for notifications that are not tied to an in-flight request (stdio only; HTTP
/// servers deliver those on the GET stream, see [`McpClient::listen`]).
pub type NotificationHandler = Arc<dyn Fn(&Value) + Send + Sync>;

/// How to reach an upstream MCP server.
#[derive(Clone)]
pub enum Transport {
    /// Streamable HTTP endpoint.
    Http {
        /// The MCP endpoint URL, e.g. `http://127.0.0.1:8000/mcp`.
        url: String,
        /// Extra headers sent on every request — typically the brokered credential, e.g.
        /// `("authorization", "Bearer …")`. Secret: never logged or put in errors.
        headers: Vec<(String, String)>,
        /// Whole-call timeout for each request (including reading an SSE answer).
        timeout: Duration,
    },
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Shell command line, run via `sh -c "exec …"`.
        command: String,
        /// The child's environment besides `PATH`, which it inherits unless listed here: the
        /// gateway's own environment is cleared (may carry credentials; never logged).
        env: Vec<(String, String)>,
        /// Per-request timeout.
        timeout: Duration,
    },
}

impl Transport {
    /// HTTP transport without extra headers and with [`DEFAULT_TIMEOUT`].
    pub fn http(url: impl Into<String>) -> Self {
        Transport::Http { url: url.into(), headers: Vec::new(), timeout: DEFAULT_TIMEOUT }
    }

    /// Stdio transport with only `PATH` in its environment and [`DEFAULT_TIMEOUT`].
    pub fn stdio(command: impl Into<String>) -> Self {
        Transport::Stdio { command: command.into(), env: Vec::new(), timeout: DEFAULT_TIMEOUT }
    }

    /// A log-safe description (URL or command, never headers or env values).
    pub fn describe(&self) -> String {
        match self {
            // The query string is dropped in case someone put a token there.
            Transport::Http { url, .. } => url.split('?').next().unwrap_or_default().to_string(),
            // Only the program: arguments might carry a token.
            Transport::Stdio { command, .. } => {
                format!("stdio:{}", command.split_whitespace().next().unwrap_or_default())
            }
        }
    }
}

// Hand-written so `{:?}` can never leak a credential header or env value.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Http { url, headers, timeout } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
                .field("timeout", timeout)
                .finish(),
            Transport::Stdio { command, env, timeout } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("env", &env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
                .field("timeout", timeout)
                .finish(),
        }
    }
}

/// The negotiated protocol era.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Era {
    /// 2026-07-28: `server/discover`, no session, per-request `_meta` and routing headers.
    Stateless20260728,
    /// 2025-11-25: `initialize` handshake and `Mcp-Session-Id`.
    Session20251125,
}

/// Errors from talking to an upstream. Messages never contain brokered credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, DNS failure, process could not start or exited.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// No answer within the configured timeout.
    #[error("upstream timed out")]
    Timeout,
    /// Non-success HTTP status; `body` is truncated to 512 characters.
    #[error("upstream answered HTTP {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The upstream sent something that is not valid MCP, or no response at all.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    /// A JSON-RPC error response where the helper needed a result (e.g. `tools/list`).
    #[error("upstream JSON-RPC error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// JSON-RPC error message.
        message: String,
    },
    /// Local I/O failure.
    #[error("I/O error: {0}")]
    Io(String),
}

/// Everything learned during negotiation; replaced wholesale on re-initialisation.
#[derive(Debug, Clone)]
struct Negotiated {
    era: Era,
    version: String,
    session_id: Option<String>,
    server_info: Option<Value>,
    capabilities: Value,
}

impl Negotiated {
    fn dialect(&self) -> Dialect<'_> {
        Dialect { era: self.era, version: &self.version, session_id: self.session_id.as_deref() }
    }
}

enum Conn {
    Http(HttpConn),
    Stdio(StdioConn),
}

/// A connected upstream MCP server (stdio children are killed when it is dropped).
/// `Send + Sync`: share it behind an `Arc` and call
/// [`McpClient::request`] from several threads at once.
pub struct McpClient {
    conn: Conn,
    describe: String,
    next_id: AtomicU64,
    neg: RwLock<Negotiated>,
    /// Serialises re-initialisation after a session expiry so it happens once.
    reinit: Mutex<()>,
    closed: AtomicBool,
    /// Where this server's tools' `x-mcp-header` marks are known (set by
    /// [`McpClient::mirror_params`]), and the server's name there.
    marks: OnceLock<(Arc<Registry>, String)>,
    /// The client capabilities declared upstream (`{}`: none).
    declared: Value,
}

impl fmt::Debug for McpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpClient").field("upstream", &self.describe).field("era", &self.era()).finish()
    }
}

impl McpClient {
    /// Connects and negotiates the era (see the module docs).
    pub fn connect(transport: Transport) -> Result<McpClient, ClientError> {
        Self::connect_with_era(transport, None)
    }

    /// Like [`McpClient::connect`], but `Some(era)` pins the era instead of negotiating —
    /// an escape hatch for servers that mishandle the `server/discover` probe. Pinning
    /// [`Era::Stateless20260728`] fails with [`ClientError::Protocol`] if the server does
    /// not speak it.
    pub fn connect_with_era(transport: Transport, era: Option<Era>) -> Result<McpClient, ClientError> {
        Self::connect_with(transport, era, json!({}))
    }

    /// Like [`McpClient::connect_with_era`], declaring `capabilities` (a `ClientCapabilities`
    /// object, e.g. `{"sampling": {}}`) to the server: in `initialize`, and in every
    /// 2026-07-28 request's `_meta`. Whoever declares a capability must answer the server's
    /// requests for it ([`McpClient::request_relaying`]).
    pub fn connect_with(transport: Transport, era: Option<Era>, capabilities: Value) -> Result<McpClient, ClientError> {
        let describe = transport.describe();
        let conn = match transport {
            Transport::Http { url, headers, timeout } => Conn::Http(HttpConn::new(url, headers, timeout)),
            Transport::Stdio { command, env, timeout } => Conn::Stdio(StdioConn::spawn(&command, &env, timeout)?),
        };
        let placeholder = Negotiated {
            era: Era::Session20251125,
            version: wire::SESSION_VERSION.into(),
            session_id: None,
            server_info: None,
            capabilities: json!({}),
        };
        let client = McpClient {
            conn,
            describe,
            next_id: AtomicU64::new(1),
            neg: RwLock::new(placeholder),
            reinit: Mutex::new(()),
            closed: AtomicBool::new(false),
            marks: OnceLock::new(),
            declared: capabilities,
        };
        let neg = match era {
            Some(Era::Session20251125) => client.handshake()?,
            Some(Era::Stateless20260728) => client
                .probe_discover()?
                .ok_or_else(|| ClientError::Protocol("server does not support protocol 2026-07-28".into()))?,
            None => match client.probe_discover()? {
                Some(neg) => neg,
                None => client.handshake()?,
            },
        };
        tracing::debug!(upstream = %client.describe, era = ?neg.era, version = %neg.version, "connected");
        *client.neg.write() = neg;
        Ok(client)
    }

    /// The negotiated protocol era.
    pub fn era(&self) -> Era {
        self.neg.read().era
    }

    /// The negotiated protocol version string.
    pub fn protocol_version(&self) -> String {
        self.neg.read().version.clone()
    }

    /// The server's `Implementation` info (`serverInfo` / discover `_meta` stamp), if sent.
    pub fn server_info(&self) -> Option<Value> {
        self.neg.read().server_info.clone()
    }

    /// The server's capabilities object (`{}` when it sent none).
    pub fn capabilities(&self) -> Value {
        self.neg.read().capabilities.clone()
    }

    /// The client capabilities this connection declared upstream (`{}`: none).
    pub fn declared_capabilities(&self) -> &Value {
        &self.declared
    }

    /// The current `Mcp-Session-Id` (session-era HTTP only); changes after re-initialisation.
    pub fn session_id(&self) -> Option<String> {
        self.neg.read().session_id.clone()
    }

    /// The era's headers for a request on this connection ([`headers::request_headers`] over
    /// one consistent snapshot of the negotiated era, version and session): what the
    /// gateway sends when it forwards a request to this upstream itself (through pingora).
    pub fn request_headers(&self, method: Option<&str>, name: Option<&str>) -> Vec<(&'static str, String)> {
        headers::request_headers(self.neg.read().dialect(), method, name)
    }

    /// From now on, `tools/call` requests of this client carry the `Mcp-Param-*` headers of
    /// the tool's `x-mcp-header` marks as `registry` knows them for `server` (the first call
    /// wins; later ones are ignored).
    pub fn mirror_params(&self, registry: Arc<Registry>, server: &str) {
        let _ = self.marks.set((registry, server.to_string()));
    }

    /// The `Mcp-Param-*` headers a request `method` with `params` needs on this connection:
    /// for a `tools/call` of a tool with `x-mcp-header` marks, on a 2026-07-28 HTTP
    /// connection (the stdio transport may ignore them, 2025-11-25 does not know them);
    /// otherwise none. What the gateway sends when it forwards a call itself, and what the
    /// client adds to its own.
    pub fn param_headers(&self, method: &str, params: &Value) -> Vec<(String, String)> {
        self.params_for(self.era(), method, params)
    }

    fn params_for(&self, era: Era, method: &str, params: &Value) -> Vec<(String, String)> {
        if era != Era::Stateless20260728 || method != "tools/call" || !self.is_http() {
            return Vec::new();
        }
        let (Some((registry, server)), Some(name)) = (self.marks.get(), params.get("name").and_then(Value::as_str))
        else {
            return Vec::new();
        };
        match registry.get(server, name) {
            Some(Ok(marks)) => {
                let arguments = params.get("arguments").unwrap_or(&Value::Null);
                param_headers::headers_for(&marks, arguments)
            }
            // Not offered; the doors refuse a call to it before anything is sent.
            Some(Err(_)) | None => Vec::new(),
        }
    }

    /// Whether this client talks HTTP (as opposed to stdio).
    pub fn is_http(&self) -> bool {
        matches!(self.conn, Conn::Http(_))
    }

    /// For stdio servers, receives notifications that arrive while no request is in flight
    /// (e.g. `notifications/tools/list_changed`). No effect for HTTP.
    pub fn set_notification_handler(&self, handler: Option<NotificationHandler>) {
        if let Conn::Stdio(s) = &self.conn {
            s.set_handler(handler);
        }
    }

    /// Sends a request and returns the full JSON-RPC response object (`result` or `error`).
    /// Notifications that arrive while waiting go to `on_notification`. For session-era
    /// HTTP servers a 404 (or a 400 complaining about the session) means the session
    /// expired: the client re-initialises once and retries.
    pub fn request(
        &self,
        admitted: &Proof,
        method: &str,
        params: Value,
        on_notification: &mut dyn FnMut(&Value),
    ) -> Result<Value, ClientError> {
        self.request_relaying(admitted, method, params, on_notification, None)
    }

    /// Like [`McpClient::request`]; the server's own requests that arrive while waiting
    /// (sampling, elicitation, roots, ping) are answered with what `on_request` returns — it
    /// may block until the caller has an answer (bounded by the caller) — instead of the
    /// standard "method not found" (`None`).
    pub fn request_relaying(
        &self,
        _admitted: &Proof,
        method: &str,
        params: Value,
        on_notification: &mut dyn FnMut(&Value),
        mut on_request: Option<&mut dyn FnMut(&Value) -> Value>,
    ) -> Result<Value, ClientError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Unreachable("client is closed".into()));
        }
        let neg = self.neg.read().clone();
        // A reborrow for the first attempt (the trait object's lifetime shortened explicitly).
        let first = on_request.as_mut().map(|f| &mut **f as &mut dyn FnMut(&Value) -> Value);
        match self.send_request(&neg, method, params.clone(), None, on_notification, first) {
            Err(ClientError::Http { status, body })
                if neg.era == Era::Session20251125 && neg.session_id.is_some() && session_lost(status, &body) =>
            {
                tracing::info!(upstream = %self.describe, "session expired; re-initialising");
                let neg = self.reinitialize(neg.session_id.as_deref())?;
                self.send_request(&neg, method, params, None, on_notification, on_request)
            }
            other => other,
        }
    }

    /// Sends a notification (no response expected).
    pub fn notify(&self, method: &str, params: Value) -> Result<(), ClientError> {
        let neg = self.neg.read().clone();
        let mut msg = wire::notification_message(method, params);
        let headers = self.headers_for(&neg, &mut msg);
        match &self.conn {
            Conn::Http(h) => h.post(&msg, &headers, None, &mut |_| {}, &mut wire::reply_to_server_request).map(|_| ()),
            Conn::Stdio(s) => s.send(&msg),
        }
    }

    /// Answers a request the server sent this client earlier: `response` (a JSON-RPC result
    /// or error with the server's own id) is POSTed on the current session (HTTP; the server
    /// acknowledges with 202) or written to the child (stdio). The caller's answer relayed by
    /// the gateway, or the gateway's refusal of the request.
    pub fn respond(&self, _admitted: &Proof, response: &Value) -> Result<(), ClientError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Unreachable("client is closed".into()));
        }
        let neg = self.neg.read().clone();
        // A response carries no method: only the version and session headers (no `_meta`).
        let headers = headers::message_headers(neg.dialect(), response);
        match &self.conn {
            Conn::Http(h) => {
                h.post(response, &headers, None, &mut |_| {}, &mut wire::reply_to_server_request).map(|_| ())
            }
            Conn::Stdio(s) => s.send(response),
        }
    }

    /// All tools, following `nextCursor` (empty when the server has no tools capability).
    pub fn list_tools(&self, admitted: &Proof) -> Result<Vec<Value>, ClientError> {
        self.list_all(admitted, "tools/list", "tools", "tools")
    }

    /// All resources (empty when the server has no resources capability).
    pub fn list_resources(&self, admitted: &Proof) -> Result<Vec<Value>, ClientError> {
        self.list_all(admitted, "resources/list", "resources", "resources")
    }

    /// All resource templates (empty when the server has no resources capability).
    pub fn list_resource_templates(&self, admitted: &Proof) -> Result<Vec<Value>, ClientError> {
        self.list_all(admitted, "resources/templates/list", "resourceTemplates", "resources")
    }

    /// All prompts (empty when the server has no prompts capability).
    pub fn list_prompts(&self, admitted: &Proof) -> Result<Vec<Value>, ClientError> {
        self.list_all(admitted, "prompts/list", "prompts", "prompts")
    }

    /// Opens the session-era GET listening stream and feeds server notifications to
    /// `on_notification` until the server closes it, `max` elapses or `should_stop` is
    /// true (checked after every chunk). Returns [`ListenOutcome::NotOffered`] on 405 and
    /// for stdio or stateless servers, which have no such stream.
    pub fn listen(
        &self,
        max: Duration,
        should_stop: &mut dyn FnMut() -> bool,
        on_notification: &mut dyn FnMut(&Value),
    ) -> Result<ListenOutcome, ClientError> {
        let neg = self.neg.read().clone();
        let Conn::Http(h) = &self.conn else { return Ok(ListenOutcome::NotOffered) };
        if neg.era != Era::Session20251125 {
            return Ok(ListenOutcome::NotOffered);
        }
        h.listen(&session_headers(&neg), max, should_stop, on_notification)
    }

    /// Ends the connection: DELETE for session-era HTTP, kill for stdio. Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        match &self.conn {
            Conn::Http(h) => {
                let neg = self.neg.read().clone();
                if neg.session_id.is_some() {
                    match h.delete(&session_headers(&neg)) {
                        Ok(status) => tracing::debug!(upstream = %self.describe, status, "session deleted"),
                        Err(e) => tracing::debug!(upstream = %self.describe, error = %e, "session delete failed"),
                    }
                }
            }
            Conn::Stdio(s) => s.close(),
        }
    }

    fn list_all(&self, admitted: &Proof, method: &str, key: &str, capability: &str) -> Result<Vec<Value>, ClientError> {
        if self.capabilities().get(capability).is_none_or(Value::is_null) {
            return Ok(Vec::new());
        }
        let fetch = |cursor: Option<&str>| {
            let params = match cursor {
                Some(c) => json!({ "cursor": c }),
                None => Value::Null,
            };
            let resp = self.request(admitted, method, params, &mut |_| {})?;
            into_result(resp)
        };
        match collect_pages(key, MAX_PAGES, fetch) {
            Err(ClientError::Rpc { code: wire::METHOD_NOT_FOUND, .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Probes `server/discover`; `Ok(None)` means "not a 2026 server, fall back".
    fn probe_discover(&self) -> Result<Option<Negotiated>, ClientError> {
        let probe = Negotiated {
            era: Era::Stateless20260728,
            version: wire::MODERN_VERSION.into(),
            session_id: None,
            server_info: None,
            capabilities: json!({}),
        };
        let timeout = Some(PROBE_TIMEOUT);
        let resp = match self.send_request(&probe, "server/discover", Value::Null, timeout, &mut |_| {}, None) {
            Ok(r) => r,
            // HTTP-level rejection (400 "not initialized", 404, 405, …) or garbage: legacy.
            Err(ClientError::Http { status, .. }) => {
                tracing::debug!(upstream = %self.describe, status, "server/discover rejected; falling back");
                return Ok(None);
            }
            Err(ClientError::Protocol(_)) => return Ok(None),
            // A legacy stdio server may silently drop pre-initialize requests.
            Err(ClientError::Timeout) if !self.is_http() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(result) = resp.get("result") else {
            // Any JSON-RPC error (method not found, -32022 unsupported version, not
            // initialised) means this server wants the handshake.
            return Ok(None);
        };
        let speaks_modern = result
            .get("supportedVersions")
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(wire::MODERN_VERSION)));
        if !speaks_modern {
            return Ok(None);
        }
        Ok(Some(Negotiated {
            server_info: result.pointer("/_meta").and_then(|m| m.get(wire::META_SERVER_INFO)).cloned(),
            capabilities: result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            ..probe
        }))
    }

    /// The 2025-11-25 handshake: `initialize`, session id, `notifications/initialized`.
    fn handshake(&self) -> Result<Negotiated, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let params = json!({
            "protocolVersion": wire::SESSION_VERSION,
            "capabilities": self.declared.clone(),
            "clientInfo": wire::client_info(),
        });
        let msg = wire::request_message(id, "initialize", params);
        let (resp, session_id) = match &self.conn {
            Conn::Http(h) => {
                let posted = h.post(&msg, &[], Some(&json!(id)), &mut |_| {}, &mut wire::reply_to_server_request)?;
                (posted.response, posted.session_id)
            }
            Conn::Stdio(s) => (Some(s.request(&msg, &json!(id), None, &mut |_| {}, None)?), None),
        };
        let resp = resp.ok_or_else(|| ClientError::Protocol("no initialize response".into()))?;
        let result = into_result(resp)?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| ClientError::Protocol("initialize result lacks protocolVersion".into()))?
            .to_string();
        let neg = Negotiated {
            era: Era::Session20251125,
            version,
            session_id,
            server_info: result.get("serverInfo").cloned(),
            capabilities: result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        };
        let mut note = wire::notification_message("notifications/initialized", Value::Null);
        let headers = self.headers_for(&neg, &mut note);
        match &self.conn {
            Conn::Http(h) => {
                h.post(&note, &headers, None, &mut |_| {}, &mut wire::reply_to_server_request).map(|_| ())?
            }
            Conn::Stdio(s) => s.send(&note)?,
        }
        Ok(neg)
    }

    /// Re-runs the handshake unless another thread already replaced the expired session.
    fn reinitialize(&self, expired: Option<&str>) -> Result<Negotiated, ClientError> {
        let _once = self.reinit.lock();
        {
            let current = self.neg.read();
            if current.session_id.as_deref() != expired {
                return Ok(current.clone());
            }
        }
        let neg = self.handshake()?;
        *self.neg.write() = neg.clone();
        Ok(neg)
    }

    fn send_request(
        &self,
        neg: &Negotiated,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
        on_note: &mut dyn FnMut(&Value),
        on_request: Option<&mut dyn FnMut(&Value) -> Value>,
    ) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mirrored = self.params_for(neg.era, method, &params);
        let mut msg = wire::request_message(id, method, params);
        let headers = self.headers_for(neg, &mut msg);
        let id = json!(id);
        match &self.conn {
            Conn::Http(h) => {
                let mut standard = wire::reply_to_server_request;
                let answer: &mut dyn FnMut(&Value) -> Value = match on_request {
                    Some(f) => f,
                    None => &mut standard,
                };
                let posted = h.post_with(&msg, &headers, &mirrored, Some(&id), on_note, answer)?;
                posted.response.ok_or_else(|| ClientError::Protocol("no response".into()))
            }
            Conn::Stdio(s) => s.request(&msg, &id, timeout, on_note, on_request),
        }
    }

    /// Era-specific stamping: `_meta` (2026) and the era's headers
    /// ([`headers::message_headers`], the same function federated forwarding uses).
    fn headers_for(&self, neg: &Negotiated, msg: &mut Value) -> Vec<(&'static str, String)> {
        if neg.era == Era::Stateless20260728 {
            wire::stamp_meta(msg, &neg.version, &self.declared);
        }
        headers::message_headers(neg.dialect(), msg)
    }
}

/// Whether an HTTP error means the server no longer knows our session. The spec says 404;
/// the TypeScript SDK (e.g. server-everything) answers an unknown session id with
/// 400 "No valid session ID provided", so that is accepted too.
fn session_lost(status: u16, body: &str) -> bool {
    status == 404 || (status == 400 && body.to_ascii_lowercase().contains("session"))
}

/// Headers of a request that carries no message (the GET stream, DELETE).
fn session_headers(neg: &Negotiated) -> Vec<(&'static str, String)> {
    headers::request_headers(neg.dialect(), None, None)
}

/// Sends one request on a session the gateway does not own — a client's own upstream session
/// behind `/mcp/{server}`, after the gateway confirmed a held call on that client's stream —
/// and returns its JSON-RPC response. `headers` are the server's brokered credential;
/// `session` the client's `Mcp-Session-Id` and `MCP-Protocol-Version`. Notifications on the
/// way go to `on_note`; the server's own requests get the gateway's standard refusal.
pub fn post_on_session(
    _admitted: &Proof,
    url: &str,
    headers: Vec<(String, String)>,
    timeout: Duration,
    session: &[(&'static str, String)],
    msg: &Value,
    on_note: &mut dyn FnMut(&Value),
) -> Result<Value, ClientError> {
    let conn = HttpConn::new(url.to_string(), headers, timeout);
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    conn.post(msg, session, Some(&id), on_note, &mut wire::reply_to_server_request)?
        .response
        .ok_or_else(|| ClientError::Protocol("the server answered without a response".into()))
}

/// Splits a JSON-RPC response into its `result`, turning `error` into [`ClientError::Rpc`].
pub fn into_result(mut resp: Value) -> Result<Value, ClientError> {
    if let Some(err) = resp.get("error") {
        return Err(ClientError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
        });
    }
    resp.get_mut("result").map(Value::take).ok_or_else(|| ClientError::Protocol("response has no result".into()))
}

/// Follows `nextCursor` paging: `fetch(cursor)` returns one page's `result`; items under
/// `key` are concatenated. Stops at an absent/empty cursor, a repeated cursor (a buggy
/// server looping) or after `max_pages` pages.
pub fn collect_pages(
    key: &str,
    max_pages: usize,
    mut fetch: impl FnMut(Option<&str>) -> Result<Value, ClientError>,
) -> Result<Vec<Value>, ClientError> {
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages {
        let page = fetch(cursor.as_deref())?;
        match page.get(key) {
            Some(Value::Array(list)) => items.extend(list.iter().cloned()),
            None | Some(Value::Null) => {}
            Some(_) => return Err(ClientError::Protocol(format!("`{key}` is not an array"))),
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => {
                if !seen.insert(next.to_string()) {
                    tracing::warn!(key, "upstream repeated a pagination cursor; stopping");
                    return Ok(items);
                }
                cursor = Some(next.to_string());
            }
            _ => return Ok(items),
        }
    }
    tracing::warn!(key, max_pages, "upstream paging exceeded the page cap; list truncated");
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pager(pages: usize, loop_at: Option<usize>) -> impl FnMut(Option<&str>) -> Result<Value, ClientError> {
        move |cursor: Option<&str>| {
            let n: usize = cursor.map_or(0, |c| c.trim_start_matches('c').parse().unwrap_or(0));
            let next = if n + 1 < pages {
                Some(format!("c{}", loop_at.filter(|&l| n + 1 > l).unwrap_or(n + 1)))
            } else {
                None
            };
            Ok(json!({ "tools": [{ "name": format!("t{n}") }], "nextCursor": next }))
        }
    }

    #[test]
    fn paging_follows_cursors_to_the_end() {
        let tools = collect_pages("tools", MAX_PAGES, pager(3, None)).unwrap();
        let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["t0", "t1", "t2"]);
    }

    #[test]
    fn paging_stops_on_cursor_loop() {
        // Page 2 points back to c1 forever.
        let tools = collect_pages("tools", MAX_PAGES, pager(1000, Some(1))).unwrap();
        assert_eq!(tools.len(), 2);
    }

    #[test]
    fn paging_is_capped() {
        let tools = collect_pages("tools", 5, pager(1000, None)).unwrap();
        assert_eq!(tools.len(), 5);
    }

    #[test]
    fn paging_propagates_errors() {
        let err = collect_pages("tools", 5, |_| Err(ClientError::Timeout)).unwrap_err();
        assert!(matches!(err, ClientError::Timeout));
    }

    #[test]
    fn debug_redacts_credentials() {
        let t = Transport::Http {
            url: "http://x/mcp".into(),
            headers: vec![("authorization".into(), "Bearer sekrit".into())],
            timeout: DEFAULT_TIMEOUT,
        };
        let s = format!("{t:?}");
        assert!(s.contains("authorization") && !s.contains("sekrit"));
    }

    #[test]
    fn rpc_error_becomes_client_error() {
        let err = into_result(json!({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}})).unwrap_err();
        assert!(matches!(err, ClientError::Rpc { code: -32601, .. }));
    }
}
