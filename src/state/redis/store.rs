//! [`StateStore`] on Redis: rate limits and confirmation holds shared by every instance.
//!
//! - A rate-limit check is one script ([`scripts::TAKE_TOKEN`]): one round trip.
//! - Every hold key lives under the hash tag `{fastmcp:holds}`, so one script updates the
//!   hold, its expiry index, its id index and the byte accounting (per caller and total)
//!   atomically, on one Cluster node. Redis keeps the TTL (`PX`).
//! - Consuming reads the hold, applies [`rules::redeem`] (the same function as the memory
//!   backend) and removes it with a compare-and-delete: of racing confirms, exactly one
//!   removes it; the others find it gone (`NotFound`).

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::client::Redis;
use super::scripts;
use crate::state::rules::{self, Redeem};
use crate::state::{Hold, HoldConsume, HoldPut, HoldQuota, RateOutcome, RateSpec, Redeemer, StateError, StateStore};

/// Every hold key starts with this (one hash slot).
pub const HOLD_PREFIX: &str = "{fastmcp:holds}:";

/// Rate-limit buckets and holds in Redis.
pub struct RedisState {
    redis: Redis,
}

impl RedisState {
    pub fn new(redis: Redis) -> RedisState {
        RedisState { redis }
    }
}

/// The Redis key of a bucket: a hash of the gateway's bucket key, so no caller-chosen
/// string (a `{` in a subject would be a hash tag) reaches the key space.
pub fn bucket_key(key: &str) -> String {
    format!("fastmcp:rl:{}", hex::encode(&Sha256::digest(key.as_bytes())[..16]))
}

fn hold_key(token_hash: &str) -> String {
    format!("{HOLD_PREFIX}h:{token_hash}")
}

/// The caller a hold is accounted to: a hash of tenant and subject (length-prefixed).
fn owner(h: &Hold) -> String {
    let mut d = Sha256::new();
    for f in [&h.tenant, &h.sub] {
        d.update((f.len() as u64).to_be_bytes());
        d.update(f.as_bytes());
    }
    hex::encode(&d.finalize()[..16])
}

fn encode(h: &Hold) -> Result<String, StateError> {
    serde_json::to_string(h).map_err(|e| StateError(format!("hold encoding: {e}")))
}

fn decode(raw: &str) -> Result<Hold, StateError> {
    serde_json::from_str(raw).map_err(|e| StateError(format!("stored hold unreadable: {e}")))
}

impl RedisState {
    async fn get_raw(&self, token_hash: &str) -> Result<Option<String>, StateError> {
        let key = hold_key(token_hash);
        self.redis.run(move |mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await }).await
    }

    /// Removes the hold if it is still `raw`; false when another call changed or took it.
    async fn take_if(&self, token_hash: &str, raw: String) -> Result<bool, StateError> {
        let (key, th) = (hold_key(token_hash), token_hash.to_string());
        let n: i64 = self
            .redis
            .run(move |mut c| async move {
                scripts::TAKE_HOLD.key(key).key(HOLD_PREFIX).arg(th).arg(raw).invoke_async(&mut c).await
            })
            .await?;
        Ok(n == 1)
    }

    async fn list_raw(&self) -> Result<Vec<String>, StateError> {
        self.redis
            .run(|mut c| async move {
                scripts::LIST_HOLDS.key(hold_key("-")).key(HOLD_PREFIX).arg("list").invoke_async(&mut c).await
            })
            .await
    }

    async fn token_of(&self, id: &str) -> Result<Option<String>, StateError> {
        let (ids, id) = (format!("{HOLD_PREFIX}ids"), id.to_string());
        self.redis.run(move |mut c| async move { redis::cmd("HGET").arg(ids).arg(id).query_async(&mut c).await }).await
    }
}

#[async_trait]
impl StateStore for RedisState {
    async fn take_token(&self, key: &str, spec: RateSpec) -> Result<RateOutcome, StateError> {
        let key = bucket_key(key);
        let burst = rules::burst(spec);
        let (allowed, left): (i64, String) = self
            .redis
            .run(move |mut c| async move {
                scripts::TAKE_TOKEN.key(key).arg(spec.rps).arg(burst).invoke_async(&mut c).await
            })
            .await?;
        let tokens: f64 = left.parse().map_err(|_| StateError("rate limiter: unreadable answer".into()))?;
        Ok(rules::outcome(spec, allowed == 1, tokens))
    }

    async fn put_hold(&self, token_hash: &str, hold: Hold, quota: HoldQuota) -> Result<HoldPut, StateError> {
        let ttl_ms = (hold.expires_at - chrono::Utc::now().timestamp()).max(1) * 1000;
        let (key, th, json, owner, cost, id) =
            (hold_key(token_hash), token_hash.to_string(), encode(&hold)?, owner(&hold), hold.cost(), hold.id.clone());
        let answer: i64 = self
            .redis
            .run(move |mut c| async move {
                scripts::PUT_HOLD
                    .key(key)
                    .key(HOLD_PREFIX)
                    .arg(th)
                    .arg(json)
                    .arg(ttl_ms)
                    .arg(owner)
                    .arg(cost)
                    .arg(id)
                    .arg(quota.per_subject_bytes.min(i64::MAX as usize))
                    .arg(quota.total_bytes.min(i64::MAX as usize))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(match answer {
            0 => HoldPut::Stored,
            1 => HoldPut::SubjectFull,
            _ => HoldPut::TotalFull,
        })
    }

    async fn consume_hold(&self, token_hash: &str, who: Redeemer<'_>) -> Result<HoldConsume, StateError> {
        let Some(raw) = self.get_raw(token_hash).await? else {
            return Ok(HoldConsume::NotFound);
        };
        let hold = decode(&raw)?;
        match rules::redeem(&hold, who, chrono::Utc::now().timestamp()) {
            Redeem::Keep(why) => Ok(why.outcome()),
            Redeem::Expired => {
                self.take_if(token_hash, raw).await?;
                Ok(HoldConsume::Expired)
            }
            Redeem::Consume => Ok(if self.take_if(token_hash, raw).await? {
                HoldConsume::Consumed(Box::new(hold))
            } else {
                // Another confirm (on any instance) took it first.
                HoldConsume::NotFound
            }),
        }
    }

    async fn peek_hold(&self, token_hash: &str) -> Result<Option<Hold>, StateError> {
        let now = chrono::Utc::now().timestamp();
        match self.get_raw(token_hash).await? {
            Some(raw) => Ok(Some(decode(&raw)?).filter(|h| h.expires_at > now)),
            None => Ok(None),
        }
    }

    async fn pending_holds(&self) -> Result<usize, StateError> {
        let n: Vec<i64> = self
            .redis
            .run(|mut c| async move {
                scripts::LIST_HOLDS.key(hold_key("-")).key(HOLD_PREFIX).arg("count").invoke_async(&mut c).await
            })
            .await?;
        Ok(n.first().copied().unwrap_or(0).max(0) as usize)
    }

    async fn list_holds(&self) -> Result<Vec<Hold>, StateError> {
        let now = chrono::Utc::now().timestamp();
        let mut list: Vec<Hold> =
            self.list_raw().await?.iter().filter_map(|r| decode(r).ok()).filter(|h| h.expires_at > now).collect();
        list.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then_with(|| a.id.cmp(&b.id)));
        Ok(list)
    }

    async fn decide_hold(&self, id: &str, approve: bool, by: &str) -> Result<bool, StateError> {
        // A concurrent approve, deny or confirm changes the hold under us: read again, a few
        // times at most.
        for _ in 0..4 {
            let Some(th) = self.token_of(id).await? else { return Ok(false) };
            let Some(raw) = self.get_raw(&th).await? else { return Ok(false) };
            let mut hold = decode(&raw)?;
            if hold.expires_at <= chrono::Utc::now().timestamp() {
                return Ok(false);
            }
            if !approve {
                if self.take_if(&th, raw).await? {
                    return Ok(true);
                }
                continue;
            }
            hold.approved_by = Some(by.to_string());
            let (key, new, cost) = (hold_key(&th), encode(&hold)?, hold.cost());
            let swapped: i64 = self
                .redis
                .run(move |mut c| async move {
                    scripts::SWAP_HOLD
                        .key(key)
                        .key(HOLD_PREFIX)
                        .arg(th)
                        .arg(raw)
                        .arg(new)
                        .arg(cost)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            if swapped == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
