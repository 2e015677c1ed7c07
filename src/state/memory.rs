//! In-process state backend: token buckets in sharded maps, holds in one map.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Hold, HoldConsume, RateOutcome, RateSpec, StateError, StateStore};

const SHARDS: usize = 16;
/// A shard holding more buckets than this drops the ones that have refilled completely.
const SHARD_SWEEP_AT: usize = 8192;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Memory state for a single instance.
pub struct MemoryState {
    hasher: RandomState,
    buckets: Vec<Mutex<HashMap<String, Bucket>>>,
    holds: Mutex<HashMap<String, Hold>>,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            buckets: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            holds: Mutex::new(HashMap::new()),
        }
    }
}

impl MemoryState {
    /// The token-bucket step at time `now` (exposed for tests without sleeping).
    pub fn take_at(&self, key: &str, spec: RateSpec, now: Instant) -> RateOutcome {
        let shard = &self.buckets[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = shard.lock();
        let burst = spec.burst.max(1) as f64;
        if map.len() > SHARD_SWEEP_AT {
            map.retain(|_, b| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * spec.rps < burst);
        }
        let b = map.entry(key.to_string()).or_insert(Bucket { tokens: burst, last: now });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * spec.rps).min(burst);
        b.last = now;
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        }
        let secs = |x: f64| (x / spec.rps).ceil().max(0.0) as u64;
        RateOutcome {
            allowed,
            limit: spec.burst,
            remaining: b.tokens.floor().max(0.0) as u64,
            reset_secs: secs(burst - b.tokens),
            retry_after_secs: if allowed { 0 } else { secs(1.0 - b.tokens).max(1) },
        }
    }
}

#[async_trait]
impl StateStore for MemoryState {
    async fn take_token(&self, key: &str, spec: RateSpec) -> Result<RateOutcome, StateError> {
        Ok(self.take_at(key, spec, Instant::now()))
    }

    async fn put_hold(&self, token_hash: &str, hold: Hold) -> Result<(), StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut holds = self.holds.lock();
        holds.retain(|_, h| h.expires_at > now);
        holds.insert(token_hash.to_string(), hold);
        Ok(())
    }

    async fn consume_hold(&self, token_hash: &str, binding: &str) -> Result<HoldConsume, StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut holds = self.holds.lock();
        let Some(h) = holds.get(token_hash) else {
            return Ok(HoldConsume::NotFound);
        };
        if h.expires_at <= now {
            holds.remove(token_hash);
            return Ok(HoldConsume::Expired);
        }
        if h.binding != binding {
            return Ok(HoldConsume::Mismatch);
        }
        Ok(holds.remove(token_hash).map(HoldConsume::Consumed).unwrap_or(HoldConsume::NotFound))
    }

    async fn pending_holds(&self) -> Result<usize, StateError> {
        let now = chrono::Utc::now().timestamp();
        Ok(self.holds.lock().values().filter(|h| h.expires_at > now).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let s = MemoryState::default();
        let spec = RateSpec { rps: 2.0, burst: 3 };
        let t0 = Instant::now();
        for i in 0..3 {
            let o = s.take_at("k", spec, t0);
            assert!(o.allowed, "call {i}");
            assert_eq!(o.remaining, 2 - i);
        }
        let o = s.take_at("k", spec, t0);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_secs, 1);
        assert!(s.take_at("other", spec, t0).allowed, "keys are independent");
        assert!(s.take_at("k", spec, t0 + Duration::from_millis(500)).allowed, "refilled one token");
    }

    #[tokio::test]
    async fn holds_are_single_use_and_bound() {
        let s = MemoryState::default();
        let hold = Hold {
            id: "h".into(),
            sub: "a".into(),
            tenant: "t".into(),
            tool_id: "x".into(),
            args_hash: "0".into(),
            binding: "b1".into(),
            expires_at: chrono::Utc::now().timestamp() + 60,
        };
        s.put_hold("th", hold.clone()).await.unwrap();
        assert_eq!(s.consume_hold("th", "b2").await.unwrap(), HoldConsume::Mismatch);
        assert_eq!(s.consume_hold("th", "b1").await.unwrap(), HoldConsume::Consumed(hold));
        assert_eq!(s.consume_hold("th", "b1").await.unwrap(), HoldConsume::NotFound);
        let expired = Hold { expires_at: 0, binding: "b".into(), ..s_hold() };
        s.put_hold("old", expired).await.unwrap();
        assert_ne!(s.consume_hold("old", "b").await.unwrap(), HoldConsume::Consumed(s_hold()));
    }

    fn s_hold() -> Hold {
        Hold {
            id: String::new(),
            sub: String::new(),
            tenant: String::new(),
            tool_id: String::new(),
            args_hash: String::new(),
            binding: String::new(),
            expires_at: 0,
        }
    }
}
