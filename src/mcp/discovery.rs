//! Background discovery of upstream MCP servers and their tools.
//!
//! One worker thread per server connects and lists tools, retrying with exponential
//! backoff (capped at 30 s, jittered so a fleet of gateways does not retry in lockstep).
//! A server that stays down is logged once and then retried at the cap forever, without
//! ever blocking the other servers or the caller. Once up, the tool list is refreshed
//! periodically and — for session-era HTTP servers offering the GET listening stream, and
//! for stdio servers — whenever the server sends `notifications/tools/list_changed`.
//!
//! All waiting is done on one condvar with timeouts, so [`Discovery::stop`] is prompt and
//! [`Discovery::wait_until_discovered`] needs no polling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use rand::Rng;
use serde_json::Value;

use super::client::{ClientError, Era, ListenOutcome, McpClient, Transport};

/// Backoff never grows beyond this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long [`Discovery::stop`] waits for threads stuck in a network call before detaching them.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Upper bound for one GET listening stream before it is reopened (bounds stop latency).
const LISTEN_CAP: Duration = Duration::from_secs(60);

/// Tuning for discovery.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Retries after the first failed attempt before a server is reported as down
    /// (`MCP_DISCOVERY_RETRIES`, default 5).
    pub retries: u32,
    /// Initial backoff in milliseconds, doubled per failure (`MCP_DISCOVERY_BACKOFF_MS`, default 500).
    pub backoff_ms: u64,
    /// Periodic re-list interval once a server is up (default 300 s).
    pub refresh_interval: Duration,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self { retries: 5, backoff_ms: 500, refresh_interval: Duration::from_secs(300) }
    }
}

impl DiscoveryOptions {
    /// Defaults overridden by `MCP_DISCOVERY_RETRIES` / `MCP_DISCOVERY_BACKOFF_MS` when they parse.
    pub fn from_env() -> Self {
        let mut o = Self::default();
        if let Some(v) = std::env::var("MCP_DISCOVERY_RETRIES").ok().and_then(|v| v.trim().parse().ok()) {
            o.retries = v;
        }
        if let Some(v) = std::env::var("MCP_DISCOVERY_BACKOFF_MS").ok().and_then(|v| v.trim().parse().ok()) {
            o.backoff_ms = v;
        }
        o
    }

    /// Delay after the `failures`-th consecutive failure: `backoff_ms * 2^(failures-1)`
    /// while within the retry budget, [`MAX_BACKOFF`] afterwards, always capped and
    /// jittered to 50–100 % of the nominal value.
    pub fn backoff(&self, failures: u32) -> Duration {
        let nominal = if failures > self.retries {
            MAX_BACKOFF
        } else {
            let factor = 1u64.checked_shl(failures.saturating_sub(1)).unwrap_or(u64::MAX);
            Duration::from_millis(self.backoff_ms.saturating_mul(factor)).min(MAX_BACKOFF)
        };
        nominal.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// Health of one server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum ServerStatus {
    /// No attempt has finished yet.
    Pending,
    /// Connected and listed.
    Up,
    /// The last attempt failed (credentials are never part of `error`).
    Down {
        /// Why the last attempt failed.
        error: String,
    },
}

/// What is known about one server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerState {
    /// The last successfully listed tools (kept while the server is down).
    pub tools: Vec<Value>,
    /// The negotiated era of the last successful connection.
    pub era: Option<Era>,
    /// Current health.
    pub status: ServerStatus,
    /// When tools were last listed successfully.
    pub last_ok: Option<SystemTime>,
    /// The server's capabilities from the last successful connection (`{}` before one).
    pub capabilities: Value,
}

impl ServerState {
    fn pending() -> Self {
        Self {
            tools: Vec::new(),
            era: None,
            status: ServerStatus::Pending,
            last_ok: None,
            capabilities: Value::Object(Default::default()),
        }
    }

    /// The server offered `capability` (`logging`, `completions`, …) when last connected.
    pub fn offers(&self, capability: &str) -> bool {
        self.capabilities.get(capability).is_some_and(|c| !c.is_null())
    }
}

/// Called with `(server, tools)` whenever a server's tool list is (re)discovered.
pub type OnChange = Arc<dyn Fn(&str, &[Value]) + Send + Sync>;

struct Entry {
    state: ServerState,
    client: Option<Arc<McpClient>>,
    /// A `list_changed` notification asked for an early re-list.
    relist: bool,
}

struct State {
    stop: bool,
    /// Threads (workers and listeners) still running.
    running: usize,
    servers: BTreeMap<String, Entry>,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    opts: DiscoveryOptions,
    on_change: OnChange,
}

/// Why a wait ended.
#[derive(PartialEq)]
enum Wake {
    Stop,
    Go,
}

/// Background discovery of a set of servers; stops (promptly) on [`Discovery::stop`] or drop.
pub struct Discovery {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
}

impl Discovery {
    /// Starts one worker thread per server and returns immediately.
    pub fn start(servers: Vec<(String, Transport)>, opts: DiscoveryOptions, on_change: OnChange) -> Discovery {
        let servers_map = servers
            .iter()
            .map(|(name, _)| (name.clone(), Entry { state: ServerState::pending(), client: None, relist: false }))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State { stop: false, running: 0, servers: servers_map }),
            cond: Condvar::new(),
            opts,
            on_change,
        });
        let mut workers = Vec::new();
        for (name, transport) in servers {
            if let Some(h) = spawn_tracked(&shared, format!("mcp-discover-{name}"), {
                let shared = Arc::clone(&shared);
                move || run_server(&shared, &name, &transport)
            }) {
                workers.push(h);
            }
        }
        Discovery { shared, workers: Mutex::new(workers), stopped: AtomicBool::new(false) }
    }

    /// A copy of every server's state.
    pub fn snapshot(&self) -> BTreeMap<String, ServerState> {
        self.shared.state.lock().servers.iter().map(|(k, e)| (k.clone(), e.state.clone())).collect()
    }

    /// The connected client for `name`, if it is currently up.
    pub fn client(&self, name: &str) -> Option<Arc<McpClient>> {
        self.shared.state.lock().servers.get(name).and_then(|e| e.client.clone())
    }

    /// Blocks until `name` is up (true) or `timeout` passes / discovery stops / the name is
    /// unknown (false).
    pub fn wait_until_discovered(&self, name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state.lock();
        loop {
            match st.servers.get(name) {
                None => return false,
                Some(e) if e.state.status == ServerStatus::Up => return true,
                Some(_) if st.stop => return false,
                Some(_) => {}
            }
            if self.shared.cond.wait_until(&mut st, deadline).timed_out() {
                return st.servers.get(name).is_some_and(|e| e.state.status == ServerStatus::Up);
            }
        }
    }

    /// Asks for an immediate re-list of `name` (e.g. after a gateway-side hint).
    pub fn refresh(&self, name: &str) {
        self.shared.request_relist(name);
    }

    /// Blocking one-shot for `fastmcp discover`: connects to and lists every server in
    /// parallel, with the configured retries and backoff, closes the connections and
    /// returns each server's outcome.
    pub fn discover_once(servers: Vec<(String, Transport)>, opts: &DiscoveryOptions) -> BTreeMap<String, ServerState> {
        std::thread::scope(|s| {
            let handles: Vec<_> = servers
                .iter()
                .map(|(name, transport)| (name.clone(), s.spawn(move || discover_with_retries(transport, opts))))
                .collect();
            handles
                .into_iter()
                .map(|(name, h)| {
                    let state = h.join().unwrap_or_else(|_| ServerState {
                        status: ServerStatus::Down { error: "discovery thread panicked".into() },
                        ..ServerState::pending()
                    });
                    (name, state)
                })
                .collect()
        })
    }

    /// Stops all threads and closes connections. Waits at most a couple of seconds for a
    /// thread stuck in a network call (bounded by the transport timeout); such a thread is
    /// detached and exits on its own when the call returns.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let deadline = Instant::now() + STOP_GRACE;
        {
            let mut st = self.shared.state.lock();
            st.stop = true;
            self.shared.cond.notify_all();
            while st.running > 0 {
                if self.shared.cond.wait_until(&mut st, deadline).timed_out() {
                    tracing::debug!(running = st.running, "discovery threads still busy; detaching them");
                    break;
                }
            }
        }
        for h in self.workers.lock().drain(..) {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn stopped(&self) -> bool {
        self.state.lock().stop
    }

    /// Waits up to `d`; returns early with `Stop`, or with `Go` on a relist request when
    /// `relist_for` names the server.
    fn wait(&self, d: Duration, relist_for: Option<&str>) -> Wake {
        let deadline = Instant::now() + d;
        let mut st = self.state.lock();
        loop {
            if st.stop {
                return Wake::Stop;
            }
            if let Some(e) = relist_for.and_then(|n| st.servers.get_mut(n)) {
                if std::mem::take(&mut e.relist) {
                    return Wake::Go;
                }
            }
            if self.cond.wait_until(&mut st, deadline).timed_out() {
                return if st.stop { Wake::Stop } else { Wake::Go };
            }
        }
    }

    fn request_relist(&self, name: &str) {
        let mut st = self.state.lock();
        if let Some(e) = st.servers.get_mut(name) {
            e.relist = true;
            self.cond.notify_all();
        }
    }

    fn record_up(&self, name: &str, client: &Arc<McpClient>, tools: Vec<Value>) {
        // Callback first and outside the lock: it may take its time or call back into us,
        // and whoever wakes from `wait_until_discovered` should find its effects in place.
        (self.on_change)(name, &tools);
        let mut st = self.state.lock();
        if let Some(e) = st.servers.get_mut(name) {
            e.state = ServerState {
                tools,
                era: Some(client.era()),
                status: ServerStatus::Up,
                last_ok: Some(SystemTime::now()),
                capabilities: client.capabilities(),
            };
            e.client = Some(Arc::clone(client));
        }
        self.cond.notify_all();
    }

    fn record_down(&self, name: &str, error: &ClientError) {
        let mut st = self.state.lock();
        if let Some(e) = st.servers.get_mut(name) {
            e.state.status = ServerStatus::Down { error: error.to_string() };
            e.client = None;
        }
        self.cond.notify_all();
    }

    fn is_current(&self, name: &str, client: &Arc<McpClient>) -> bool {
        let st = self.state.lock();
        !st.stop && st.servers.get(name).and_then(|e| e.client.as_ref()).is_some_and(|c| Arc::ptr_eq(c, client))
    }
}

/// Spawns a thread counted in `running`, so `stop` can tell when all have exited.
fn spawn_tracked(shared: &Arc<Shared>, name: String, f: impl FnOnce() + Send + 'static) -> Option<JoinHandle<()>> {
    shared.state.lock().running += 1;
    let done = Arc::clone(shared);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        // Decrement even if `f` panics.
        struct Exit(Arc<Shared>);
        impl Drop for Exit {
            fn drop(&mut self) {
                let mut st = self.0.state.lock();
                st.running -= 1;
                self.0.cond.notify_all();
            }
        }
        let _exit = Exit(done);
        f();
    });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            shared.state.lock().running -= 1;
            tracing::error!(error = %e, "cannot spawn discovery thread");
            None
        }
    }
}

fn connect_and_list(transport: &Transport) -> Result<(McpClient, Vec<Value>), ClientError> {
    let client = McpClient::connect(transport.clone())?;
    match client.list_tools(&crate::enforce::Proof::gateway_own("discovery")) {
        Ok(tools) => Ok((client, tools)),
        Err(e) => {
            client.close();
            Err(e)
        }
    }
}

fn discover_with_retries(transport: &Transport, opts: &DiscoveryOptions) -> ServerState {
    let mut failures = 0;
    loop {
        match connect_and_list(transport) {
            Ok((client, tools)) => {
                let (era, capabilities) = (Some(client.era()), client.capabilities());
                client.close();
                return ServerState {
                    tools,
                    era,
                    status: ServerStatus::Up,
                    last_ok: Some(SystemTime::now()),
                    capabilities,
                };
            }
            Err(e) => {
                failures += 1;
                if failures > opts.retries {
                    return ServerState {
                        status: ServerStatus::Down { error: e.to_string() },
                        ..ServerState::pending()
                    };
                }
                // A one-shot CLI has nothing to stop it early, so a plain sleep is the backoff.
                std::thread::sleep(opts.backoff(failures));
            }
        }
    }
}

/// Worker: connect with backoff, then keep the tool list fresh until stopped.
fn run_server(shared: &Arc<Shared>, name: &str, transport: &Transport) {
    let upstream = transport.describe();
    let mut failures: u32 = 0;
    'connect: while !shared.stopped() {
        let (client, tools) = match connect_and_list(transport) {
            Ok(ok) => ok,
            Err(e) => {
                failures = failures.saturating_add(1);
                shared.record_down(name, &e);
                if failures == shared.opts.retries.saturating_add(1) {
                    tracing::warn!(server = name, %upstream, error = %e, failures,
                        "MCP server still down after retries; retrying in the background");
                } else {
                    tracing::debug!(server = name, %upstream, error = %e, failures, "MCP discovery attempt failed");
                }
                if shared.wait(shared.opts.backoff(failures), None) == Wake::Stop {
                    break;
                }
                continue;
            }
        };
        if failures > shared.opts.retries {
            tracing::info!(server = name, %upstream, "MCP server is up again");
        }
        failures = 0;
        let client = Arc::new(client);
        // Record first: the listener thread only runs while this client is the current one.
        shared.record_up(name, &client, tools);
        watch_list_changed(shared, name, &client);
        loop {
            if shared.wait(shared.opts.refresh_interval, Some(name)) == Wake::Stop {
                client.close();
                break 'connect;
            }
            match client.list_tools(&crate::enforce::Proof::gateway_own("discovery")) {
                Ok(tools) => shared.record_up(name, &client, tools),
                Err(e) => {
                    tracing::warn!(server = name, %upstream, error = %e, "MCP tool refresh failed; reconnecting");
                    shared.record_down(name, &e);
                    client.close();
                    continue 'connect;
                }
            }
        }
    }
    let mut st = shared.state.lock();
    if let Some(e) = st.servers.get_mut(name) {
        e.client = None;
    }
}

/// Hooks `notifications/tools/list_changed` to an early re-list: via the notification
/// handler for stdio, via the GET listening stream for session-era HTTP servers.
fn watch_list_changed(shared: &Arc<Shared>, name: &str, client: &Arc<McpClient>) {
    // Weak: the handler lives inside the client, which the shared state owns.
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let owned = name.to_string();
    let on_note = move |note: &Value| {
        if note.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed") {
            if let Some(s) = weak.upgrade() {
                s.request_relist(&owned);
            }
        }
    };
    if !client.is_http() {
        client.set_notification_handler(Some(Arc::new(on_note)));
        return;
    }
    if client.era() != Era::Session20251125 {
        return; // stateless servers have no GET stream; the periodic refresh covers them
    }
    let (s, n, c) = (Arc::clone(shared), name.to_string(), Arc::clone(client));
    spawn_tracked(shared, format!("mcp-listen-{name}"), move || {
        let mut on_note = on_note;
        while s.is_current(&n, &c) {
            let started = Instant::now();
            let mut should_stop = || !s.is_current(&n, &c);
            match c.listen(
                LISTEN_CAP.min(s.opts.refresh_interval.max(Duration::from_secs(1))),
                &mut should_stop,
                &mut on_note,
            ) {
                Ok(ListenOutcome::NotOffered) => {
                    tracing::debug!(server = %n, "no GET listening stream offered");
                    return;
                }
                Ok(ListenOutcome::Ended) => {}
                Err(e) => tracing::debug!(server = %n, error = %e, "listening stream failed"),
            }
            // Avoid a hot loop against a server that closes the stream immediately.
            if started.elapsed() < Duration::from_secs(1) && s.wait(Duration::from_secs(1), None) == Wake::Stop {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let o = DiscoveryOptions { retries: 5, backoff_ms: 500, refresh_interval: Duration::from_secs(1) };
        for _ in 0..50 {
            let b1 = o.backoff(1);
            assert!(b1 >= Duration::from_millis(250) && b1 <= Duration::from_millis(500));
            let b4 = o.backoff(4);
            assert!(b4 >= Duration::from_millis(2000) && b4 <= Duration::from_millis(4000));
            assert!(o.backoff(5) <= MAX_BACKOFF && o.backoff(40) >= MAX_BACKOFF / 2);
            assert!(o.backoff(6) >= MAX_BACKOFF / 2);
        }
    }

    #[test]
    fn unknown_server_is_not_discovered_and_stop_is_prompt() {
        let d = Discovery::start(
            vec![("dead".into(), Transport::http("http://127.0.0.1:9/mcp"))],
            DiscoveryOptions { retries: 1, backoff_ms: 10, refresh_interval: Duration::from_secs(300) },
            Arc::new(|_: &str, _: &[Value]| {}),
        );
        assert!(!d.wait_until_discovered("nope", Duration::from_secs(1)));
        assert!(!d.wait_until_discovered("dead", Duration::from_millis(300)));
        assert!(matches!(d.snapshot()["dead"].status, ServerStatus::Down { .. }));
        let t = Instant::now();
        d.stop();
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
