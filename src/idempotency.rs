//! Idempotency for tool calls (`Idempotency-Key` header).
//!
//! A record is scoped to (tenant, subject, tool, key): one subject never sees another's
//! result (the seed's keys were global). A key reused with another payload is refused
//! ([`Begin::PayloadMismatch`], 422) instead of silently re-running or replaying; a duplicate
//! that arrives while the first call runs gets [`Begin::InFlight`] (409).
//!
//! Flow: [`IdempotencyStore::begin`]; on [`Begin::Proceed`] run the call, then
//! [`IdempotencyStore::complete`] with the answer to replay (any answer given after the side
//! effect may have happened, errors included), or [`IdempotencyStore::abandon`] when the call
//! provably did nothing (refused before reaching the provider) so a retry may run.
//!
//! Memory is bounded in bytes per caller (tenant + subject) and in total: stored answers are
//! dropped oldest first (the caller's own first), an answer over the per-answer bound is never
//! stored, and in both cases the key keeps a tombstone, so a replay is told the answer is gone
//! ([`Begin::AnswerDropped`]) — a write never silently runs twice.
//!
//! Each method is one atomic step, so a Redis backend can implement each as one Lua script
//! over the key from [`IdemKey::storage_key`] (`SET NX PX` for begin, a compare-and-set on the
//! in-flight state for complete and abandon), with the TTL on the Redis key.

mod budget;
mod key;
mod memory;
mod redis;

pub use budget::{IdempotencyLimits, RECORD_OVERHEAD};
pub use key::{parse_key, IdemKey, MAX_KEY_LEN};
pub use memory::{Clock, ManualClock, MemoryIdempotencyStore, SystemClock, DEFAULT_MAX_RECORDS};
pub use redis::{RedisIdempotency, ResilientIdempotency};

use std::time::Duration;

use async_trait::async_trait;

/// What to do with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use of the key (or the last one expired or was abandoned): run the call.
    Proceed,
    /// Already answered: send this status and body again (with `X-Idempotent-Replay: true`).
    Replay {
        /// HTTP status of the first answer.
        status: u16,
        /// Body of the first answer.
        body: Vec<u8>,
    },
    /// The first call with this key has not finished yet (409 CONFLICT).
    InFlight,
    /// The key was used with a different payload (422 VALIDATION_ERROR).
    PayloadMismatch,
    /// Already answered (with `status`) but the answer is not kept: the call is not run
    /// again (409 CONFLICT saying so; a new key runs it again).
    AnswerDropped {
        /// HTTP status of the first answer.
        status: u16,
        /// Why the answer is gone.
        why: Dropped,
    },
}

/// Why an answered key has no stored answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Larger than the per-answer bound: never stored.
    TooLarge,
    /// Dropped (oldest first) to keep the store within its byte bounds.
    Evicted,
}

/// A failure of the idempotency backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached (Redis down): the gateway applies its fail mode.
    #[error("idempotency store unavailable: {0}")]
    Unavailable(String),
    /// The in-memory store holds its maximum of records or bytes.
    #[error("idempotency store is full")]
    Full,
    /// The caller's records (claims in flight and answered keys) fill its share of the store.
    #[error("this caller's idempotency records are at their limit until some expire")]
    SubjectFull,
}

/// Where idempotency records live: memory ([`MemoryIdempotencyStore`]) or Redis.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a call whose canonical input hashes to `payload_hash`, or reports
    /// what became of an earlier call. A claim and its answer live for `ttl`.
    async fn begin(&self, key: &IdemKey, payload_hash: &str, ttl: Duration) -> Result<Begin, StoreError>;

    /// Stores the answer of the call that claimed `key`, to be replayed until the TTL ends.
    /// A key that is not in flight (expired, abandoned, already completed) is left as it is.
    async fn complete(&self, key: &IdemKey, status: u16, body: Vec<u8>) -> Result<(), StoreError>;

    /// Releases the claim on `key` (the call did nothing), so the next `begin` proceeds. A
    /// completed record is kept.
    async fn abandon(&self, key: &IdemKey) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests;
