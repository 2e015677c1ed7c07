//! The connection to Redis: a small tokio runtime of its own, one multiplexed connection
//! (a `ConnectionManager` for one node, a cluster connection for Redis Cluster), health
//! tracking, and every call bounded by `state.redis.timeout_ms`.
//!
//! Why a runtime of its own: pingora's `run_forever` owns the request runtimes (one per
//! service thread) and the gateway is built before they exist, so there is no runtime the
//! connection could live on. Requests hand their command to this runtime and await the
//! answer (a `JoinHandle` awaits fine across runtimes); the timeout runs on the caller's side,
//! so a Redis that stops answering never holds a request past it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};
use tokio::runtime::{Handle, Runtime};

use crate::state::StateError;

/// One connection, either topology; cloning is cheap (both multiplex one socket per node).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where Redis is and how to reach it (from `state.redis_url` and `state.redis`).
#[derive(Clone)]
pub struct Settings {
    /// `redis://` or `rediss://` URL (may hold credentials: never logged).
    pub url: String,
    pub cluster: bool,
    /// More cluster seeds (`host:port`).
    pub nodes: Vec<String>,
    pub timeout: Duration,
    pub health_interval: Duration,
}

// One per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Topology {
    Single(redis::Client),
    /// The client for ordinary commands, and one whose responses may take as long as a
    /// blocking pop (it is only used for those, one connection per wait).
    Cluster {
        client: ClusterClient,
        blocking: ClusterClient,
    },
}

/// A cluster connection is made on first use and again after a failed attempt, at most this
/// often.
const CONNECT_EVERY_MS: i64 = 200;

struct Inner {
    topology: Topology,
    single: Option<ConnectionManager>,
    cluster: Mutex<Option<ClusterConnection>>,
    last_connect_ms: AtomicI64,
    timeout: Duration,
    up: AtomicBool,
    /// Set once the first health check (or call) has answered, either way.
    known: AtomicBool,
}

/// The Redis backend's connection; clones share it.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
    handle: Handle,
    _rt: Arc<RuntimeOwner>,
}

/// Owns the runtime; shuts it down without blocking when the last handle goes (dropping a
/// runtime inside another runtime's task would panic).
struct RuntimeOwner(Option<Runtime>);

impl Drop for RuntimeOwner {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn certificates() -> TlsCertificates {
    // The same roots as every other TLS client of the gateway (`upstream::tls`); an empty
    // store (load failure) makes every TLS handshake fail: closed, not open.
    TlsCertificates { client_tls: None, root_cert: Some(crate::upstream::tls::roots().pem()) }
}

impl Redis {
    /// Builds the client and starts its runtime and health checks. Connecting happens on
    /// first use (and again after outages): a Redis that is down at start does not stop the
    /// gateway from starting — the fail mode applies until it is reachable.
    pub fn start(s: &Settings) -> Result<Redis, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fastmcp-redis")
            .enable_all()
            .build()
            .map_err(|e| format!("redis runtime: {e}"))?;
        let tls = s.url.starts_with("rediss://");
        let topology = if s.cluster || !s.nodes.is_empty() {
            let mut seeds = vec![s.url.clone()];
            let (scheme, auth) = scheme_and_auth(&s.url);
            seeds.extend(s.nodes.iter().map(|n| format!("{scheme}{auth}{n}")));
            let build = |response: Duration| {
                let mut b = ClusterClient::builder(seeds.clone())
                    .connection_timeout(s.timeout)
                    .response_timeout(response)
                    .retries(1)
                    .min_retry_wait(10)
                    .max_retry_wait(s.timeout.as_millis() as u64);
                if tls {
                    b = b.certs(certificates());
                }
                b.build().map_err(|e| format!("state.redis_url: {}", redact(&e.to_string())))
            };
            Topology::Cluster { client: build(s.timeout)?, blocking: build(Duration::from_secs(3600))? }
        } else {
            let client = if tls {
                redis::Client::build_with_tls(s.url.as_str(), certificates())
            } else {
                redis::Client::open(s.url.as_str())
            };
            Topology::Single(client.map_err(|e| format!("state.redis_url: {}", redact(&e.to_string())))?)
        };
        let single = match &topology {
            Topology::Single(client) => {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(s.timeout))
                    .set_response_timeout(Some(s.timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(20))
                    .set_max_delay(s.health_interval);
                let _guard = rt.enter();
                Some(
                    ConnectionManager::new_lazy_with_config(client.clone(), cfg)
                        .map_err(|e| format!("state.redis_url: {}", redact(&e.to_string())))?,
                )
            }
            Topology::Cluster { .. } => None,
        };
        let inner = Arc::new(Inner {
            topology,
            single,
            cluster: Mutex::new(None),
            last_connect_ms: AtomicI64::new(i64::MIN / 2),
            timeout: s.timeout,
            up: AtomicBool::new(false),
            known: AtomicBool::new(false),
        });
        let redis = Redis { inner, handle: rt.handle().clone(), _rt: Arc::new(RuntimeOwner(Some(rt))) };
        redis.spawn_health(s.health_interval);
        Ok(redis)
    }

    /// Is Redis answering (as of the last call or health check)?
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// The call timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Runs `f` on a connection, on the backend's runtime, within the timeout.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, StateError>
    where
        F: FnOnce(Conn) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        let task = self.handle.spawn(async move {
            let conn = inner.conn().await?;
            f(conn).await
        });
        let abort = task.abort_handle();
        let result = match tokio::time::timeout(self.inner.timeout, task).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(StateError(format!("redis: {}", redact(&e.to_string())))),
            Ok(Err(_)) => Err(StateError("redis: task failed".into())),
            Err(_) => {
                abort.abort();
                Err(StateError(format!("redis: no answer within {} ms", self.inner.timeout.as_millis())))
            }
        };
        self.inner.mark(result.is_ok());
        result
    }

    /// Like [`Redis::run`] but with its own deadline (not the call timeout) and a fresh
    /// connection of its own, for a blocking command (`BLPOP`) that would otherwise hold the
    /// shared connection. `None` when Redis is unreachable.
    pub async fn run_blocking<T, F, Fut>(&self, deadline: Duration, f: F) -> Result<T, StateError>
    where
        F: FnOnce(BlockingConn) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        let task = self.handle.spawn(async move {
            let conn = match &inner.topology {
                Topology::Single(client) => {
                    let cfg = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(inner.timeout))
                        .set_response_timeout(Some(deadline + Duration::from_secs(5)));
                    BlockingConn::Single(client.get_multiplexed_async_connection_with_config(&cfg).await?)
                }
                Topology::Cluster { blocking, .. } => BlockingConn::Cluster(blocking.get_async_connection().await?),
            };
            f(conn).await
        });
        let abort = task.abort_handle();
        match tokio::time::timeout(deadline + self.inner.timeout, task).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(StateError(format!("redis: {}", redact(&e.to_string())))),
            Ok(Err(_)) => Err(StateError("redis: task failed".into())),
            Err(_) => {
                abort.abort();
                Err(StateError("redis: blocking call overran its deadline".into()))
            }
        }
    }

    /// Runs `f` to completion on the backend's runtime from code that is not async (startup).
    pub fn block_on<T, F, Fut>(&self, f: F) -> Result<T, StateError>
    where
        F: FnOnce(Conn) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        let timeout = self.inner.timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let r = tokio::time::timeout(timeout, async {
                let conn = inner.conn().await?;
                f(conn).await
            })
            .await;
            let _ = tx.send(r);
        });
        let result = match rx.recv() {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(StateError(format!("redis: {}", redact(&e.to_string())))),
            Ok(Err(_)) => Err(StateError(format!("redis: no answer within {} ms", timeout.as_millis()))),
            Err(_) => Err(StateError("redis: task failed".into())),
        };
        self.inner.mark(result.is_ok());
        result
    }

    /// Spawns `fut` on the backend's runtime without waiting for it (best-effort writes such
    /// as refreshing a session's idle timer).
    pub fn detach<F, Fut>(&self, f: F)
    where
        F: FnOnce(Conn) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<()>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let timeout = self.inner.timeout;
        self.handle.spawn(async move {
            let _ = tokio::time::timeout(timeout, async {
                let conn = inner.conn().await?;
                f(conn).await
            })
            .await;
        });
    }

    fn spawn_health(&self, every: Duration) {
        let weak = Arc::downgrade(&self.inner);
        self.handle.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let timeout = inner.timeout;
                let ping = tokio::time::timeout(timeout, async {
                    let mut conn = inner.conn().await?;
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                })
                .await;
                inner.mark(matches!(ping, Ok(Ok(_))));
                drop(inner);
                tokio::time::sleep(every).await;
            }
        });
    }
}

impl Inner {
    async fn conn(&self) -> RedisResult<Conn> {
        if let Some(m) = &self.single {
            return Ok(Conn::Single(m.clone()));
        }
        if let Some(c) = self.cluster.lock().clone() {
            return Ok(Conn::Cluster(c));
        }
        let Topology::Cluster { client, .. } = &self.topology else {
            return Err((redis::ErrorKind::Client, "no connection").into());
        };
        let now = chrono::Utc::now().timestamp_millis();
        let last = self.last_connect_ms.load(Ordering::Relaxed);
        if now - last < CONNECT_EVERY_MS
            || self.last_connect_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err()
        {
            return Err((redis::ErrorKind::Io, "redis cluster not connected yet").into());
        }
        let c = client.get_async_connection().await?;
        *self.cluster.lock() = Some(c.clone());
        Ok(Conn::Cluster(c))
    }

    /// Records whether Redis answered; logs once per transition.
    fn mark(&self, ok: bool) {
        let first = !self.known.swap(true, Ordering::Relaxed);
        let was = self.up.swap(ok, Ordering::Relaxed);
        crate::metrics::METRICS.state_backend_up.set(i64::from(ok));
        if first && ok {
            tracing::info!("redis reachable: shared state is in use");
        } else if (first || was) && !ok {
            tracing::error!("redis unreachable: each kind of state applies its fail mode (state.redis.on_error)");
        } else if !was && ok {
            tracing::warn!("redis reachable again: shared state is in use");
        }
    }
}

/// A connection of its own for one blocking command.
pub enum BlockingConn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for BlockingConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            BlockingConn::Single(c) => c.req_packed_command(cmd),
            BlockingConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            BlockingConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            BlockingConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            BlockingConn::Single(c) => c.get_db(),
            BlockingConn::Cluster(c) => c.get_db(),
        }
    }
}

/// `redis://` or `rediss://`, and `user:password@` when the URL has credentials (cluster
/// seeds share them).
fn scheme_and_auth(url: &str) -> (&str, &str) {
    let scheme = if url.starts_with("rediss://") { "rediss://" } else { "redis://" };
    let rest = &url[scheme.len()..];
    let auth = match rest.find('@') {
        Some(at) if !rest[..at].contains('/') => &rest[..=at],
        _ => "",
    };
    (scheme, auth)
}

/// An error text with anything that looks like URL credentials removed (the client's errors
/// may quote the URL).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***@");
                rest = &tail[at + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_in_error_text() {
        assert_eq!(redact("bad url redis://u:p@h:1/0 here"), "bad url redis://***@h:1/0 here");
        assert_eq!(redact("no url"), "no url");
        assert_eq!(scheme_and_auth("rediss://u:p@h:1"), ("rediss://", "u:p@"));
        assert_eq!(scheme_and_auth("redis://h:1/0"), ("redis://", ""));
    }
}
