//! In-process state backend: token buckets in sharded maps, holds in one map.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Instant;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::rules::{self, Redeem};
use super::{Hold, HoldConsume, HoldPut, HoldQuota, RateOutcome, RateSpec, Redeemer, StateError, StateStore};

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
        let (left, outcome) = rules::take(spec, b.tokens + elapsed * spec.rps);
        b.tokens = left;
        b.last = now;
        outcome
    }
}

#[async_trait]
impl StateStore for MemoryState {
    async fn take_token(&self, key: &str, spec: RateSpec) -> Result<RateOutcome, StateError> {
        Ok(self.take_at(key, spec, Instant::now()))
    }

    async fn put_hold(&self, token_hash: &str, hold: Hold, quota: HoldQuota) -> Result<HoldPut, StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut holds = self.holds.lock();
        // One pass drops expired holds and sums what the live ones take.
        let (mut total, mut mine) = (0usize, 0usize);
        holds.retain(|_, h| {
            let live = h.expires_at > now;
            if live {
                total += h.cost();
                if h.sub == hold.sub && h.tenant == hold.tenant {
                    mine += h.cost();
                }
            }
            live
        });
        let cost = hold.cost();
        if mine + cost > quota.per_subject_bytes {
            return Ok(HoldPut::SubjectFull);
        }
        if total + cost > quota.total_bytes {
            return Ok(HoldPut::TotalFull);
        }
        holds.insert(token_hash.to_string(), hold);
        Ok(HoldPut::Stored)
    }

    async fn consume_hold(&self, token_hash: &str, who: Redeemer<'_>) -> Result<HoldConsume, StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut holds = self.holds.lock();
        let Some(h) = holds.get(token_hash) else {
            return Ok(HoldConsume::NotFound);
        };
        match rules::redeem(h, who, now) {
            Redeem::Keep(why) => Ok(why.outcome()),
            Redeem::Expired => {
                holds.remove(token_hash);
                Ok(HoldConsume::Expired)
            }
            Redeem::Consume => Ok(holds
                .remove(token_hash)
                .map(|h| HoldConsume::Consumed(Box::new(h)))
                .unwrap_or(HoldConsume::NotFound)),
        }
    }

    async fn peek_hold(&self, token_hash: &str) -> Result<Option<Hold>, StateError> {
        let now = chrono::Utc::now().timestamp();
        Ok(self.holds.lock().get(token_hash).filter(|h| h.expires_at > now).cloned())
    }

    async fn pending_holds(&self) -> Result<usize, StateError> {
        let now = chrono::Utc::now().timestamp();
        Ok(self.holds.lock().values().filter(|h| h.expires_at > now).count())
    }

    async fn list_holds(&self) -> Result<Vec<Hold>, StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut list: Vec<Hold> = self.holds.lock().values().filter(|h| h.expires_at > now).cloned().collect();
        list.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then_with(|| a.id.cmp(&b.id)));
        Ok(list)
    }

    async fn decide_hold(&self, id: &str, approve: bool, by: &str) -> Result<bool, StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut holds = self.holds.lock();
        let Some(key) = holds.iter().find(|(_, h)| h.id == id && h.expires_at > now).map(|(k, _)| k.clone()) else {
            return Ok(false);
        };
        if approve {
            if let Some(h) = holds.get_mut(&key) {
                h.approved_by = Some(by.to_string());
            }
        } else {
            holds.remove(&key);
        }
        Ok(true)
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

    fn caller(binding: &str) -> Redeemer<'_> {
        Redeemer::Caller { binding }
    }

    #[tokio::test]
    async fn holds_are_single_use_and_bound() {
        let s = MemoryState::default();
        let hold = Hold { binding: "b1".into(), expires_at: chrono::Utc::now().timestamp() + 60, ..s_hold() };
        s.put_hold("th", hold.clone(), ROOMY).await.unwrap();
        assert_eq!(s.consume_hold("th", caller("b2")).await.unwrap(), HoldConsume::Mismatch);
        assert_eq!(s.consume_hold("th", caller("b1")).await.unwrap(), HoldConsume::Consumed(Box::new(hold)));
        assert_eq!(s.consume_hold("th", caller("b1")).await.unwrap(), HoldConsume::NotFound);
        let expired = Hold { expires_at: 0, binding: "b".into(), ..s_hold() };
        s.put_hold("old", expired, ROOMY).await.unwrap();
        assert_eq!(s.consume_hold("old", caller("b")).await.unwrap(), HoldConsume::Expired);
    }

    #[tokio::test]
    async fn approver_mode_needs_an_approval_or_an_approver() {
        let s = MemoryState::default();
        let exp = chrono::Utc::now().timestamp() + 60;
        let hold = Hold { binding: "b".into(), expires_at: exp, needs_approval: true, ..s_hold() };
        s.put_hold("th", hold.clone(), ROOMY).await.unwrap();
        assert_eq!(s.consume_hold("th", caller("b")).await.unwrap(), HoldConsume::AwaitingApproval);
        assert_eq!(s.list_holds().await.unwrap().len(), 1);
        assert!(s.decide_hold("h", true, "boss").await.unwrap());
        assert!(
            matches!(s.consume_hold("th", caller("b")).await.unwrap(), HoldConsume::Consumed(h) if h.approved_by.as_deref() == Some("boss"))
        );

        s.put_hold("t2", hold.clone(), ROOMY).await.unwrap();
        let approver = |tenant| Redeemer::Approver { sub: "boss", binding: "nb", tenant, tool_id: "x", args_hash: "0" };
        assert_eq!(s.consume_hold("t2", approver("other")).await.unwrap(), HoldConsume::Mismatch);
        assert!(matches!(s.consume_hold("t2", approver("t")).await.unwrap(), HoldConsume::Consumed(_)));

        s.put_hold("t3", hold, ROOMY).await.unwrap();
        assert!(s.decide_hold("h", false, "boss").await.unwrap(), "denied");
        assert_eq!(s.consume_hold("t3", caller("b")).await.unwrap(), HoldConsume::NotFound);
        assert!(!s.decide_hold("h", true, "boss").await.unwrap());
    }

    #[tokio::test]
    async fn an_approver_cannot_release_its_own_hold() {
        let s = MemoryState::default();
        let exp = chrono::Utc::now().timestamp() + 60;
        // Hold of subject "a" (binding "b"), awaiting approval.
        let hold = Hold { binding: "b".into(), expires_at: exp, needs_approval: true, ..s_hold() };
        s.put_hold("th", hold.clone(), ROOMY).await.unwrap();
        let own = Redeemer::Approver { sub: "a", binding: "b", tenant: "t", tool_id: "x", args_hash: "0" };
        assert_eq!(s.consume_hold("th", own).await.unwrap(), HoldConsume::AwaitingApproval, "four eyes");
        let own_elsewhere = Redeemer::Approver { sub: "a", binding: "b2", tenant: "t", tool_id: "x", args_hash: "0" };
        assert_eq!(s.consume_hold("th", own_elsewhere).await.unwrap(), HoldConsume::Mismatch);
        assert_eq!(s.list_holds().await.unwrap().len(), 1, "still pending");
        // Approved by someone else, its owner (an approver or not) confirms it as its caller.
        assert!(s.decide_hold("h", true, "boss").await.unwrap());
        assert!(matches!(s.consume_hold("th", own).await.unwrap(), HoldConsume::Consumed(_)));
        // A hold that needs no approval: an approver confirms its own like any caller.
        s.put_hold("t2", Hold { needs_approval: false, ..hold }, ROOMY).await.unwrap();
        assert!(matches!(s.consume_hold("t2", own).await.unwrap(), HoldConsume::Consumed(_)));
    }

    const ROOMY: HoldQuota = HoldQuota { per_subject_bytes: usize::MAX, total_bytes: usize::MAX };

    #[tokio::test]
    async fn holds_are_bounded_per_subject_and_in_total() {
        let s = MemoryState::default();
        let exp = chrono::Utc::now().timestamp() + 60;
        let hold = |sub: &str, input: usize| Hold {
            sub: sub.into(),
            expires_at: exp,
            input: Some("x".repeat(input)),
            ..s_hold()
        };
        let one = hold("a", 1000).cost();
        let quota = HoldQuota { per_subject_bytes: 2 * one, total_bytes: 3 * one };
        assert_eq!(s.put_hold("a1", hold("a", 1000), quota).await.unwrap(), HoldPut::Stored);
        assert_eq!(s.put_hold("a2", hold("a", 1000), quota).await.unwrap(), HoldPut::Stored);
        assert_eq!(s.put_hold("a3", hold("a", 1000), quota).await.unwrap(), HoldPut::SubjectFull);
        assert_eq!(s.put_hold("a4", hold("a", 10), quota).await.unwrap(), HoldPut::SubjectFull);
        assert_eq!(s.put_hold("b1", hold("b", 1000), quota).await.unwrap(), HoldPut::Stored, "others may hold");
        assert_eq!(s.put_hold("c1", hold("c", 1000), quota).await.unwrap(), HoldPut::TotalFull);
        assert_eq!(s.pending_holds().await.unwrap(), 3, "nothing stored past a bound");
        // A consumed hold frees its share.
        assert!(matches!(s.consume_hold("a1", caller("")).await.unwrap(), HoldConsume::Consumed(_)));
        assert_eq!(s.put_hold("a3", hold("a", 1000), quota).await.unwrap(), HoldPut::Stored, "room again");
    }

    fn s_hold() -> Hold {
        Hold {
            id: "h".into(),
            sub: "a".into(),
            tenant: "t".into(),
            tool_id: "x".into(),
            args_hash: "0".into(),
            binding: String::new(),
            expires_at: 0,
            input: None,
            needs_approval: false,
            approved_by: None,
            view: Default::default(),
        }
    }
}
