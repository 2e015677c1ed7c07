//! The verified-token cache: SHA-256 of a token → its principal, until `exp` (+ leeway).
//!
//! Each entry remembers the fingerprint of the key that verified it and the generation of the
//! key set it was last checked against. A hit is O(1) and allocation-free: a map lookup, an
//! integer compare against the current generation and an `Arc` clone. Only when the key set
//! changed since the entry was checked is the key looked up in the current set; a token whose
//! key is gone is dropped and must be verified again (which then fails). Installing a new key
//! set also sweeps the cache ([`TokenCache::retain_keys`]), so entries of removed keys do not
//! linger.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::keys::{Fingerprint, KeySet};
use super::Principal;

struct Entry {
    principal: Arc<Principal>,
    key: Fingerprint,
    /// The key-set generation this entry's key was last known to be in.
    generation: u64,
}

/// Bounded cache of verified tokens.
pub struct TokenCache {
    capacity: usize,
    leeway: i64,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

impl TokenCache {
    /// `capacity` 0 disables caching; `leeway` is the allowed clock skew on `exp`, seconds.
    pub fn new(capacity: usize, leeway: i64) -> TokenCache {
        TokenCache { capacity, leeway, map: Mutex::new(HashMap::new()) }
    }

    /// The principal for `digest` if it has not expired at `now` and its key is still in the
    /// current set: `generation` is the current set's generation, `key_present` answers for
    /// the current set (called only when the entry was last checked against an older one).
    pub fn get(
        &self,
        digest: &[u8; 32],
        now: i64,
        generation: u64,
        key_present: impl FnOnce(&Fingerprint) -> bool,
    ) -> Option<Arc<Principal>> {
        let mut map = self.map.lock();
        let entry = map.get_mut(digest)?;
        if now > entry.principal.exp.saturating_add(self.leeway) {
            map.remove(digest);
            return None;
        }
        if entry.generation != generation {
            if !key_present(&entry.key) {
                map.remove(digest);
                return None;
            }
            entry.generation = generation;
        }
        Some(entry.principal.clone())
    }

    /// Remembers a token verified by the key `key` of the set of generation `generation`.
    pub fn insert(&self, digest: [u8; 32], principal: Arc<Principal>, key: Fingerprint, generation: u64, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock();
        if map.len() >= self.capacity {
            let leeway = self.leeway;
            map.retain(|_, e| now <= e.principal.exp.saturating_add(leeway));
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(digest, Entry { principal, key, generation });
    }

    /// Drops every entry whose key is not in `set` and marks the rest as checked against
    /// `generation` (called when `set` is installed).
    pub fn retain_keys(&self, set: &KeySet, generation: u64) {
        self.map.lock().retain(|_, e| {
            let keep = set.contains(&e.key);
            if keep {
                e.generation = generation;
            }
            keep
        });
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(exp: i64) -> Arc<Principal> {
        Arc::new(Principal { exp, ..Principal::anonymous() })
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn hit_in_the_same_generation_does_not_look_at_the_key_set() {
        let c = TokenCache::new(10, 60);
        let p = principal(NOW + 600);
        c.insert([1; 32], p.clone(), [7; 32], 3, NOW);
        let hit = c.get(&[1; 32], NOW, 3, |_| panic!("no key lookup on a same-generation hit"));
        assert!(Arc::ptr_eq(&hit.unwrap(), &p));
        assert!(c.get(&[2; 32], NOW, 3, |_| true).is_none(), "another token misses");
    }

    #[test]
    fn entry_whose_key_left_the_set_is_dropped() {
        let c = TokenCache::new(10, 60);
        c.insert([1; 32], principal(NOW + 600), [7; 32], 1, NOW);
        // The set changed and the key is still in it: hit, and re-stamped with the new generation.
        assert!(c.get(&[1; 32], NOW, 2, |fp| *fp == [7; 32]).is_some());
        assert!(c.get(&[1; 32], NOW, 2, |_| panic!("already checked against generation 2")).is_some());
        // The set changed again and the key is gone: miss, and the entry is removed.
        assert!(c.get(&[1; 32], NOW, 3, |_| false).is_none());
        assert!(c.is_empty(), "a key returning later does not revive the entry");
    }

    #[test]
    fn installing_a_set_sweeps_entries_of_removed_keys() {
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "kept", "x": x, "y": y}]});
        let (set, _) = KeySet::from_jwks_json(&jwks.to_string(), jsonwebtoken::Algorithm::ES256).unwrap();
        let kept = set.get(Some("kept")).unwrap().fingerprint;
        let c = TokenCache::new(10, 60);
        c.insert([1; 32], principal(NOW + 600), kept, 1, NOW);
        c.insert([2; 32], principal(NOW + 600), [9; 32], 1, NOW);
        c.retain_keys(&set, 2);
        assert_eq!(c.len(), 1);
        assert!(c.get(&[1; 32], NOW, 2, |_| panic!("stamped by the sweep")).is_some());
        assert!(c.get(&[2; 32], NOW, 2, |_| true).is_none(), "the removed key's token was swept");
    }

    #[test]
    fn expiry_and_capacity() {
        let c = TokenCache::new(2, 60);
        c.insert([1; 32], principal(NOW - 61), [7; 32], 1, NOW);
        assert!(c.get(&[1; 32], NOW, 1, |_| true).is_none(), "expired beyond the leeway");
        c.insert([1; 32], principal(NOW - 30), [7; 32], 1, NOW);
        assert!(c.get(&[1; 32], NOW, 1, |_| true).is_some(), "expired within the leeway");
        c.insert([2; 32], principal(NOW + 600), [7; 32], 1, NOW);
        c.insert([3; 32], principal(NOW + 600), [7; 32], 1, NOW);
        assert!(c.len() <= 2);
        let off = TokenCache::new(0, 60);
        off.insert([1; 32], principal(NOW + 600), [7; 32], 1, NOW);
        assert!(off.is_empty(), "capacity 0 disables the cache");
    }
}
