//! The credential cache with single-flight refresh.
//!
//! One [`Slot`] per key (provider + tenant + sorted scopes, plus subject for per-principal
//! kinds). A fresh entry is read under a short synchronous lock. Otherwise the caller takes
//! the slot's async mutex, re-checks, and only then fetches, so N concurrent callers with a
//! cold or expiring entry cause one token request and the rest wait for its result.
//!
//! Failures are not cached: callers that were already waiting while a fetch failed get that
//! same error (no thundering herd against a failing endpoint), and the next caller to arrive
//! afterwards tries again.
//!
//! An entry is refreshed at `expires_at - margin`, but never before half its lifetime has
//! passed, so a provider issuing tokens shorter than the margin does not get one request per
//! call. Tokens without `expires_in` are kept for [`DEFAULT_TTL`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::error::BrokerError;
use super::Credential;

/// How long a token whose response had no `expires_in` is reused: 5 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Sweep expired, idle slots once the map holds this many keys.
const SWEEP_AT: usize = 10_000;

/// What a credential is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub provider: String,
    pub tenant: String,
    /// Set only for credentials issued per principal (token exchange, gateway JWT).
    pub sub: Option<String>,
    /// Sorted, deduplicated.
    pub scopes: Vec<String>,
}

#[derive(Clone)]
struct Entry {
    credential: Credential,
    refresh_at: SystemTime,
    /// After this the entry is not usable at all (sweeping).
    dead_at: SystemTime,
}

#[derive(Default)]
struct Slot {
    fresh: parking_lot::Mutex<Option<Entry>>,
    /// Held while fetching; holds the error of the last fetch if it failed.
    flight: tokio::sync::Mutex<Option<BrokerError>>,
    /// Completed fetches (success or failure).
    fetches: AtomicU64,
}

impl Slot {
    fn fresh(&self, now: SystemTime) -> Option<Credential> {
        self.fresh.lock().as_ref().filter(|e| now < e.refresh_at).map(|e| e.credential.clone())
    }
}

/// The cache: key → slot.
#[derive(Default)]
pub(crate) struct Cache {
    slots: parking_lot::Mutex<HashMap<CacheKey, Arc<Slot>>>,
}

/// When a fetched credential should be refreshed and when it is dead.
fn schedule(credential: &Credential, fetched_at: SystemTime, margin: Duration) -> (SystemTime, SystemTime) {
    match credential.expires_at {
        Some(exp) => {
            let lifetime = exp.duration_since(fetched_at).unwrap_or_default();
            let refresh_at = (exp.checked_sub(margin).unwrap_or(fetched_at)).max(fetched_at + lifetime / 2);
            (refresh_at, exp)
        }
        None => (fetched_at + DEFAULT_TTL, fetched_at + DEFAULT_TTL),
    }
}

impl Cache {
    /// The cached credential for `key`, or the result of `fetch` (run by one caller at a time
    /// per key). `now` is the clock; `fetch` gets the time it started at.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: &CacheKey,
        now: &(dyn Fn() -> SystemTime + Send + Sync),
        margin: Duration,
        fetch: F,
    ) -> Result<Credential, BrokerError>
    where
        F: FnOnce(SystemTime) -> Fut,
        Fut: Future<Output = Result<Credential, BrokerError>>,
    {
        let slot = self.slot(key, now());
        if let Some(c) = slot.fresh(now()) {
            return Ok(c);
        }
        let seen = slot.fetches.load(Ordering::Acquire);
        let mut flight = slot.flight.lock().await;
        if let Some(c) = slot.fresh(now()) {
            return Ok(c);
        }
        if slot.fetches.load(Ordering::Acquire) != seen {
            // A fetch finished while we waited. If it failed, share its error.
            if let Some(err) = flight.as_ref() {
                return Err(err.clone());
            }
        }
        let started = now();
        let result = fetch(started).await;
        match &result {
            Ok(credential) => {
                let (refresh_at, dead_at) = schedule(credential, started, margin);
                *slot.fresh.lock() = Some(Entry { credential: credential.clone(), refresh_at, dead_at });
                *flight = None;
            }
            Err(e) => *flight = Some(e.clone()),
        }
        slot.fetches.fetch_add(1, Ordering::AcqRel);
        result
    }

    fn slot(&self, key: &CacheKey, now: SystemTime) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        if slots.len() >= SWEEP_AT {
            // Drop slots nobody is using whose entry is dead or absent.
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.fresh.lock().as_ref().is_some_and(|e| now < e.dead_at)
            });
        }
        slots.entry(key.clone()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Secret;

    fn key(i: usize) -> CacheKey {
        CacheKey { provider: "p".into(), tenant: format!("t{i}"), sub: None, scopes: vec![] }
    }

    #[tokio::test]
    async fn idle_expired_slots_are_swept() {
        let cache = Cache::default();
        let t0 = SystemTime::now();
        let at_t0 = move || t0;
        let cred = Credential::new(Secret::new("s"), "Bearer", Some(t0 + Duration::from_secs(10)));
        for i in 0..SWEEP_AT {
            let c = cred.clone();
            cache.get_or_fetch(&key(i), &at_t0, Duration::ZERO, |_| async move { Ok(c) }).await.expect("fetch");
        }
        assert_eq!(cache.slots.lock().len(), SWEEP_AT);
        let later = move || t0 + Duration::from_secs(11);
        let c = cred.clone();
        cache.get_or_fetch(&key(SWEEP_AT), &later, Duration::ZERO, |_| async move { Ok(c) }).await.expect("fetch");
        assert_eq!(cache.slots.lock().len(), 1, "dead entries dropped");
    }

    #[test]
    fn schedule_uses_margin_or_half_life() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let long = Credential::new(Secret::new("s"), "Bearer", Some(t0 + Duration::from_secs(3600)));
        assert_eq!(schedule(&long, t0, Duration::from_secs(60)).0, t0 + Duration::from_secs(3540));
        let short = Credential::new(Secret::new("s"), "Bearer", Some(t0 + Duration::from_secs(60)));
        assert_eq!(schedule(&short, t0, Duration::from_secs(60)).0, t0 + Duration::from_secs(30));
        let none = Credential::new(Secret::new("s"), "Bearer", None);
        assert_eq!(schedule(&none, t0, Duration::from_secs(60)), (t0 + DEFAULT_TTL, t0 + DEFAULT_TTL));
    }
}
