//! The current key set and the verified-token cache, kept in agreement: a cached token is
//! served only while the key that verified it is in the current set.
//!
//! Key sets come from several fetchers (startup, the periodic refresh, an unknown kid); each
//! fetch takes a sequence number before it starts and its result is installed only if no
//! later fetch was installed first, so a slow old answer never replaces a newer one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::cache::TokenCache;
use super::keys::{KeySet, VerifyKey};
use super::Principal;

struct Current {
    set: Arc<KeySet>,
    generation: u64,
}

/// What [`KeyStore::install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// The new set differs; the cache lost the tokens of `removed` keys.
    Changed { added: usize, removed: usize },
    /// The fetched set holds exactly the current keys.
    Unchanged,
    /// A fetch that started later was installed first; this result was dropped.
    Stale,
}

pub struct KeyStore {
    current: RwLock<Current>,
    /// Mirror of `current.generation`, stored after each swap: the cache-hit path reads only
    /// this integer.
    generation: AtomicU64,
    /// Sequence number of the newest installed fetch; also serializes installs.
    installed: Mutex<u64>,
    next_fetch: AtomicU64,
    cache: TokenCache,
}

impl KeyStore {
    pub fn new(set: KeySet, cache: TokenCache) -> KeyStore {
        KeyStore {
            current: RwLock::new(Current { set: Arc::new(set), generation: 0 }),
            generation: AtomicU64::new(0),
            installed: Mutex::new(0),
            next_fetch: AtomicU64::new(0),
            cache,
        }
    }

    /// The key for `kid` and the generation of the set it came from.
    pub fn key_for(&self, kid: Option<&str>) -> Option<(Arc<VerifyKey>, u64)> {
        let c = self.current.read();
        c.set.get(kid).map(|k| (k, c.generation))
    }

    /// A cached principal for the token with SHA-256 `digest`, if its key is still current.
    pub fn cached(&self, digest: &[u8; 32], now: i64) -> Option<Arc<Principal>> {
        let generation = self.generation.load(Ordering::Acquire);
        self.cache.get(digest, now, generation, |fp| self.current.read().set.contains(fp))
    }

    /// Caches a token verified by `key`, taken from the set of generation `generation`.
    pub fn remember(&self, digest: [u8; 32], principal: Arc<Principal>, key: &VerifyKey, generation: u64, now: i64) {
        self.cache.insert(digest, principal, key.fingerprint, generation, now);
    }

    /// The sequence number a fetch takes before it starts.
    pub fn begin_fetch(&self) -> u64 {
        self.next_fetch.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Installs the set fetched by fetch `seq` (see the module doc).
    pub fn install(&self, seq: u64, set: KeySet) -> Install {
        let mut installed = self.installed.lock();
        if seq <= *installed {
            return Install::Stale;
        }
        *installed = seq;
        let old = self.current.read().set.clone();
        let (added, removed) = (set.missing_from(&old), old.missing_from(&set));
        if added == 0 && removed == 0 {
            return Install::Unchanged;
        }
        let set = Arc::new(set);
        let generation = {
            let mut c = self.current.write();
            c.generation += 1;
            c.set = set.clone();
            c.generation
        };
        self.generation.store(generation, Ordering::Release);
        self.cache.retain_keys(&set, generation);
        Install::Changed { added, removed }
    }

    pub fn key_count(&self) -> usize {
        self.current.read().set.len()
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(kids: &[(&str, &str)]) -> KeySet {
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let keys: Vec<_> =
            kids.iter().map(|(kid, x)| json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": x, "y": y})).collect();
        KeySet::from_jwks_json(&json!({ "keys": keys }).to_string(), jsonwebtoken::Algorithm::ES256).unwrap().0
    }

    const XA: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const XB: &str = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
    const NOW: i64 = 1_000_000;

    fn principal() -> Arc<Principal> {
        Arc::new(Principal { exp: NOW + 600, ..Principal::anonymous() })
    }

    #[test]
    fn removing_a_key_invalidates_its_cached_tokens() {
        let store = KeyStore::new(set(&[("a", XA), ("b", XB)]), TokenCache::new(100, 60));
        let (ka, ga) = store.key_for(Some("a")).unwrap();
        let (kb, gb) = store.key_for(Some("b")).unwrap();
        store.remember([1; 32], principal(), &ka, ga, NOW);
        store.remember([2; 32], principal(), &kb, gb, NOW);
        assert!(store.cached(&[1; 32], NOW).is_some());

        let seq = store.begin_fetch();
        assert_eq!(store.install(seq, set(&[("b", XB)])), Install::Changed { added: 0, removed: 1 });
        assert!(store.cached(&[1; 32], NOW).is_none(), "token of the removed key a");
        assert!(store.cached(&[2; 32], NOW).is_some(), "token of the kept key b");
        assert!(store.key_for(Some("a")).is_none());
    }

    #[test]
    fn a_token_cached_after_the_swap_under_the_old_key_is_refused_on_hit() {
        // Verification raced with an install: the key came from the old set, the entry is
        // written after the sweep. The generation check catches it on the next hit.
        let store = KeyStore::new(set(&[("a", XA)]), TokenCache::new(100, 60));
        let (ka, old_generation) = store.key_for(Some("a")).unwrap();
        let seq = store.begin_fetch();
        store.install(seq, set(&[("b", XB)]));
        store.remember([1; 32], principal(), &ka, old_generation, NOW);
        assert!(store.cached(&[1; 32], NOW).is_none());
    }

    #[test]
    fn same_keys_again_keep_the_cache_and_stale_fetches_are_dropped() {
        let store = KeyStore::new(set(&[("a", XA)]), TokenCache::new(100, 60));
        let (ka, g) = store.key_for(Some("a")).unwrap();
        store.remember([1; 32], principal(), &ka, g, NOW);
        let first = store.begin_fetch();
        let second = store.begin_fetch();
        assert_eq!(store.install(second, set(&[("a", XA)])), Install::Unchanged);
        assert_eq!(store.install(first, set(&[("b", XB)])), Install::Stale, "an older fetch finishing late");
        assert!(store.cached(&[1; 32], NOW).is_some());
        assert_eq!(store.key_count(), 1);
        assert!(store.key_for(Some("a")).is_some());
    }
}
