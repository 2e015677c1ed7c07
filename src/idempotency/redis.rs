//! Idempotency records in Redis, shared by every instance, and the fail mode in front of them.
//!
//! One caller's records share a hash tag, `{fastmcp:idem:<caller hash>}`, so each step is one
//! script on one Cluster node and the caller's bytes are accounted in the same step:
//! `…:r:<key hash>` (a hash: payload hash, state, status, body, TTL), `…:exp` (expiry index)
//! `…:cost` and `…:bytes` (the caller's accounting). Redis keeps the TTL.
//!
//! - `begin` claims the key (an in-flight record with a lease, `idempotency_lease_seconds`:
//!   a claim whose instance died mid-call is released then), or reports the earlier call:
//!   another payload → 422, still in flight (on any instance) → 409, answered → replay,
//!   answered but not kept → 409.
//! - `complete` stores the answer for the TTL; an answer over `max_answer_bytes`, or one that
//!   would take the caller past `max_bytes_per_subject`, leaves a tombstone instead (a replay
//!   is refused, never re-run). The total is bounded by Redis's own `maxmemory`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;
use sha2::{Digest, Sha256};

use super::{Begin, Dropped, IdemKey, IdempotencyLimits, IdempotencyStore, StoreError, RECORD_OVERHEAD};
use crate::config::OnError;
use crate::state::redis::{scripts_idem as scripts, Redis};

/// Idempotency records in Redis.
pub struct RedisIdempotency {
    redis: Redis,
    limits: IdempotencyLimits,
    lease: Duration,
}

impl RedisIdempotency {
    pub fn new(redis: Redis, limits: IdempotencyLimits, lease: Duration) -> RedisIdempotency {
        RedisIdempotency { redis, limits, lease }
    }
}

/// The caller's key prefix and the record's key hash.
fn keys(key: &IdemKey) -> (String, String, String) {
    let mut d = Sha256::new();
    for f in [&key.tenant, &key.sub] {
        d.update((f.len() as u64).to_be_bytes());
        d.update(f.as_bytes());
    }
    let prefix = format!("{{fastmcp:idem:{}}}:", hex::encode(&d.finalize()[..16]));
    let storage = key.storage_key();
    let hash = storage.rsplit(':').next().unwrap_or(&storage).to_string();
    (format!("{prefix}r:{hash}"), prefix, hash)
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => String::new(),
    }
}

fn unavailable(e: crate::state::StateError) -> StoreError {
    StoreError::Unavailable(e.0)
}

#[async_trait]
impl IdempotencyStore for RedisIdempotency {
    async fn begin(&self, key: &IdemKey, payload_hash: &str, ttl: Duration) -> Result<Begin, StoreError> {
        let (rec, prefix, hash) = keys(key);
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let lease_ms = self.lease.as_millis().clamp(1, u128::from(ttl_ms)) as u64;
        let args =
            (hash, payload_hash.to_string(), ttl_ms, lease_ms, self.limits.max_bytes_per_subject, RECORD_OVERHEAD);
        let answer: Vec<Value> = self
            .redis
            .run(move |mut c| async move {
                scripts::BEGIN
                    .key(rec)
                    .key(prefix)
                    .arg(args.0)
                    .arg(args.1)
                    .arg(args.2)
                    .arg(args.3)
                    .arg(args.4)
                    .arg(args.5)
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .map_err(unavailable)?;
        let status = || text(answer.get(1)).parse::<u16>().unwrap_or(500);
        Ok(match text(answer.first()).as_str() {
            "proceed" => Begin::Proceed,
            "mismatch" => Begin::PayloadMismatch,
            "inflight" => Begin::InFlight,
            "replay" => Begin::Replay {
                status: status(),
                body: match answer.get(2) {
                    Some(Value::BulkString(b)) => b.clone(),
                    _ => Vec::new(),
                },
            },
            "dropped" => Begin::AnswerDropped {
                status: status(),
                why: if text(answer.get(2)) == "large" { Dropped::TooLarge } else { Dropped::Evicted },
            },
            "full" => return Err(StoreError::SubjectFull),
            other => return Err(StoreError::Unavailable(format!("idempotency script answered {other:?}"))),
        })
    }

    async fn complete(&self, key: &IdemKey, status: u16, body: Vec<u8>) -> Result<(), StoreError> {
        let (rec, prefix, hash) = keys(key);
        let (max_answer, per_subject) = (self.limits.max_answer_bytes, self.limits.max_bytes_per_subject);
        let _: i64 = self
            .redis
            .run(move |mut c| async move {
                scripts::COMPLETE
                    .key(rec)
                    .key(prefix)
                    .arg(hash)
                    .arg(status)
                    .arg(body)
                    .arg(max_answer)
                    .arg(per_subject)
                    .arg(RECORD_OVERHEAD)
                    .invoke_async(&mut c)
                    .await
            })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn abandon(&self, key: &IdemKey) -> Result<(), StoreError> {
        let (rec, prefix, hash) = keys(key);
        let _: i64 = self
            .redis
            .run(move |mut c| async move { scripts::ABANDON.key(rec).key(prefix).arg(hash).invoke_async(&mut c).await })
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Redis first; in `fail_open`, this instance's memory while Redis does not answer. A call
/// claimed in memory completes there (completing or abandoning a key a store does not hold
/// in flight does nothing, so both are told).
pub struct ResilientIdempotency {
    pub shared: Arc<dyn IdempotencyStore>,
    pub memory: Arc<dyn IdempotencyStore>,
    pub mode: OnError,
}

impl ResilientIdempotency {
    fn open(&self, e: StoreError) -> Result<(), StoreError> {
        match (self.mode, &e) {
            (OnError::FailOpen, StoreError::Unavailable(_)) => {
                crate::state::fallback::fell_back("idempotency");
                Ok(())
            }
            _ => Err(e),
        }
    }
}

#[async_trait]
impl IdempotencyStore for ResilientIdempotency {
    async fn begin(&self, key: &IdemKey, payload_hash: &str, ttl: Duration) -> Result<Begin, StoreError> {
        match self.shared.begin(key, payload_hash, ttl).await {
            Ok(b) => Ok(b),
            Err(e) => {
                self.open(e)?;
                self.memory.begin(key, payload_hash, ttl).await
            }
        }
    }

    async fn complete(&self, key: &IdemKey, status: u16, body: Vec<u8>) -> Result<(), StoreError> {
        let shared = self.shared.complete(key, status, body.clone()).await;
        self.memory.complete(key, status, body).await?;
        match shared {
            Ok(()) => Ok(()),
            Err(e) => self.open(e),
        }
    }

    async fn abandon(&self, key: &IdemKey) -> Result<(), StoreError> {
        let shared = self.shared.abandon(key).await;
        self.memory.abandon(key).await?;
        match shared {
            Ok(()) => Ok(()),
            Err(e) => self.open(e),
        }
    }
}
