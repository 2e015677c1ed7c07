//! Which backend runs: chosen once from `state.redis_url`, known only here. Every shared
//! kind of state is handed its memory implementation and gets back what to use — the memory
//! one itself, or Redis with that memory as its `fail_open` fallback.

use std::sync::Arc;
use std::time::Duration;

use super::fallback::Resilient;
use super::memory::MemoryState;
use super::redis::store::RedisState;
use super::redis::{Redis, Settings};
use super::StateStore;
use crate::config::{OnError, RedisConfig, StateConfig};
use crate::idempotency::{IdempotencyLimits, IdempotencyStore};

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
