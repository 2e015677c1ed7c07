//! Which backend runs: chosen once from `state.redis_url`, known only here. Every shared
//! kind of state is handed its memory implementation and gets back what to use — the memory
//! one itself, or Redis with that memory as its `fail_open` fallback.

use std::sync::Arc;
use std::time::Duration;

use super::fallback::Resilient;
use super::memory::MemoryState;
use super::redis::store::RedisState;
use super::redis::{Redis, Settings};
use super::shared_sessions::{SharedProxied, SharedQuestions, SharedSessions};
use super::StateStore;
use crate::config::{OnError, RedisConfig, StateConfig};
use crate::idempotency::{IdempotencyLimits, IdempotencyStore};
use crate::mcp::federation::Federation;
use crate::mcp::proxied_sessions::{ProxiedSessions, ProxiedStore};
use crate::mcp::request_state::StateSealer;

/// Where the deployment's MRTR sealing key lives when `mcp.request_state_key` is empty.
const SEALING_KEY: &str = "fastmcp:mrtr-key";

/// The state backend of this process.
#[derive(Clone)]
pub struct Backend {
    redis: Option<Redis>,
    cfg: RedisConfig,
}

/// What `/ready` reports about the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Redis answers.
    pub up: bool,
    /// Some kind of state fails closed, so the instance cannot serve without Redis.
    pub required: bool,
}

impl Backend {
    /// Memory only (one instance).
    pub fn memory() -> Backend {
        Backend { redis: None, cfg: RedisConfig::default() }
    }

    /// The backend `cfg` names. A Redis that is down now does not fail this: it is reached
    /// on first use and again after outages.
    pub fn open(cfg: &StateConfig) -> Result<Backend, String> {
        if cfg.redis_url.0.is_empty() {
            return Ok(Backend::memory());
        }
        let r = &cfg.redis;
        let redis = Redis::start(&Settings {
            url: cfg.redis_url.0.clone(),
            cluster: r.cluster,
            nodes: r.nodes.clone(),
            timeout: Duration::from_millis(r.timeout_ms),
            health_interval: Duration::from_millis(r.health_interval_ms),
        })?;
        tracing::info!(
            cluster = r.cluster || !r.nodes.is_empty(),
            limits = ?r.limits_on_error.unwrap_or(r.on_error),
            holds = ?r.holds_on_error.unwrap_or(r.on_error),
            idempotency = ?r.idempotency_on_error.unwrap_or(r.on_error),
            sessions = ?r.sessions_on_error.unwrap_or(r.on_error),
            "state is shared through Redis"
        );
        Ok(Backend { redis: Some(redis), cfg: r.clone() })
    }

    fn mode(&self, kind: Option<OnError>) -> OnError {
        kind.unwrap_or(self.cfg.on_error)
    }

    /// The fail mode of MCP sessions and elicitations.
    pub fn sessions_mode(&self) -> OnError {
        self.mode(self.cfg.sessions_on_error)
    }

    /// Rate limits and holds.
    pub fn state(&self, memory: MemoryState) -> Arc<dyn StateStore> {
        match &self.redis {
            None => Arc::new(memory),
            Some(r) => Arc::new(Resilient {
                shared: Arc::new(RedisState::new(r.clone())),
                memory,
                limits: self.mode(self.cfg.limits_on_error),
                holds: self.mode(self.cfg.holds_on_error),
            }),
        }
    }

    /// Idempotency records (`memory` bounded by `limits`, which bound Redis's per caller too).
    pub fn idempotency(
        &self,
        memory: Arc<dyn IdempotencyStore>,
        limits: IdempotencyLimits,
    ) -> Arc<dyn IdempotencyStore> {
        match &self.redis {
            None => memory,
            Some(r) => {
                let lease = Duration::from_secs(self.cfg.idempotency_lease_seconds.max(1));
                Arc::new(crate::idempotency::ResilientIdempotency {
                    shared: Arc::new(crate::idempotency::RedisIdempotency::new(r.clone(), limits, lease)),
                    memory,
                    mode: self.mode(self.cfg.idempotency_on_error),
                })
            }
        }
    }

    /// Sessions opened through `/mcp/{server}`.
    pub fn proxied(&self, memory: ProxiedSessions) -> Arc<dyn ProxiedStore> {
        match &self.redis {
            None => Arc::new(memory),
            Some(r) => Arc::new(SharedProxied::new(r.clone(), memory, self.sessions_mode())),
        }
    }

    /// Shares the federated endpoint's sessions and pending elicitations, and — unless the
    /// operator set `mcp.request_state_key` — its MRTR sealing key: the first instance to
    /// start stores a random one (`SET NX`), every instance uses it. A Redis that is down
    /// now leaves this instance's own key in use until a background retry fetches the shared
    /// one.
    pub fn share_federation(&self, fed: &mut Federation, key_configured: bool) {
        let Some(r) = &self.redis else { return };
        let mode = self.sessions_mode();
        fed.sessions = Arc::new(SharedSessions::new(r.clone(), fed.local_sessions.clone(), mode));
        fed.pending = Arc::new(SharedQuestions::new(r.clone(), mode));
        if key_configured {
            return;
        }
        if let Err(e) = fetch_sealing_key(r, &fed.sealer) {
            tracing::warn!(error = %e, "shared MRTR sealing key not reachable yet; using this instance's own until it is");
            let (r, sealer, every) =
                (r.clone(), fed.sealer.clone(), Duration::from_millis(self.cfg.health_interval_ms.max(50)));
            let spawned = std::thread::Builder::new().name("fastmcp-mrtr-key".into()).spawn(move || loop {
                std::thread::sleep(every);
                if fetch_sealing_key(&r, &sealer).is_ok() {
                    tracing::info!("shared MRTR sealing key in use");
                    return;
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the sealing key retry");
            }
        }
    }

    /// Tool-definition pins in Redis (`fastmcp:pins:<server>`) when configured (`None`: the
    /// caller keeps them in SQLite or memory).
    pub fn pins(&self) -> Option<Arc<dyn crate::pinning::PinStore>> {
        let r = self.redis.as_ref()?;
        Some(Arc::new(crate::pinning::redis::RedisPins::new(r.clone())))
    }

    /// `None` for memory; else whether Redis answers and whether this instance needs it.
    pub fn readiness(&self) -> Option<Readiness> {
        let r = self.redis.as_ref()?;
        let c = &self.cfg;
        let required = [c.limits_on_error, c.holds_on_error, c.idempotency_on_error, c.sessions_on_error]
            .into_iter()
            .any(|k| self.mode(k) == OnError::FailClosed);
        Some(Readiness { up: r.is_up(), required })
    }
}

/// Gets (or, first, creates) the deployment's sealing key and installs it.
fn fetch_sealing_key(r: &Redis, sealer: &StateSealer) -> Result<(), String> {
    use base64::Engine as _;
    let mut fresh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut fresh);
    let fresh = base64::engine::general_purpose::STANDARD.encode(fresh);
    let stored: String = r
        .block_on(move |mut c| async move {
            let _: Option<String> =
                redis::cmd("SET").arg(SEALING_KEY).arg(&fresh).arg("NX").query_async(&mut c).await?;
            redis::cmd("GET").arg(SEALING_KEY).query_async(&mut c).await
        })
        .map_err(|e| e.0)?;
    let raw =
        base64::engine::general_purpose::STANDARD.decode(stored.trim()).map_err(|_| "stored key is not base64")?;
    sealer.rekey(&raw)
}
