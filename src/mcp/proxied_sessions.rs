//! Sessions opened through `/mcp/{server}` (2025-11-25 upstreams), and who opened them.
//!
//! The upstream assigns the session id in its `initialize` response; the gateway records it
//! under the principal whose `initialize` it forwarded, with the client capabilities that
//! `initialize` declared. Any later request naming that `Mcp-Session-Id` must come from the
//! same principal, so a leaked or guessed session id is useless with another token, and a
//! client response (an elicitation or sampling answer) is only forwarded on its own session.
//! A session the gateway never saw opened is "not found": the client initializes again.
//!
//! Bounded: per principal (the oldest of that principal's sessions is forgotten first) and in
//! total (idle ones are swept, then the least recently used go).

use std::collections::HashMap;

use parking_lot::Mutex;

/// Sessions one principal keeps at most; opening more forgets its oldest.
pub const MAX_PER_OWNER: usize = 64;
/// Sessions kept at most.
pub const MAX_TOTAL: usize = 100_000;

/// What the gateway knows of one proxied session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedSession {
    /// `tenant` + NUL + `sub` of the principal that opened it.
    pub owner: String,
    /// The client declared `elicitation` in its `initialize`.
    pub elicitation: bool,
    /// Unix seconds of the last request on it.
    pub last_used: i64,
}

/// Why a session id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Never seen, expired, forgotten, or owned by someone else (indistinguishable on purpose).
    NotFound,
}

/// Where proxied sessions live: this process ([`ProxiedSessions`]) or a store shared by
/// every instance (chosen in `state/`). A store that cannot answer refuses (`Err`): the door
/// answers 503, or `state/`'s fail_open falls back to memory.
#[async_trait::async_trait]
pub trait ProxiedStore: Send + Sync {
    /// See [`ProxiedSessions::opened`].
    async fn opened(&self, server: &str, id: &str, owner: &str, elicitation: bool, now: i64)
        -> Result<(), Unavailable>;
    /// See [`ProxiedSessions::owned`]; `Ok(None)` when not found.
    async fn owned(&self, server: &str, id: &str, owner: &str, now: i64)
        -> Result<Option<ProxiedSession>, Unavailable>;
    /// See [`ProxiedSessions::closed`].
    async fn closed(&self, server: &str, id: &str, owner: &str) -> Result<(), Unavailable>;
}

/// The shared store did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

#[async_trait::async_trait]
impl ProxiedStore for ProxiedSessions {
    async fn opened(
        &self,
        server: &str,
        id: &str,
        owner: &str,
        elicitation: bool,
        now: i64,
    ) -> Result<(), Unavailable> {
        ProxiedSessions::opened(self, server, id, owner, elicitation, now);
        Ok(())
    }

    async fn owned(
        &self,
        server: &str,
        id: &str,
        owner: &str,
        now: i64,
    ) -> Result<Option<ProxiedSession>, Unavailable> {
        Ok(ProxiedSessions::owned(self, server, id, owner, now).ok())
    }

    async fn closed(&self, server: &str, id: &str, owner: &str) -> Result<(), Unavailable> {
        ProxiedSessions::closed(self, server, id, owner);
        Ok(())
    }
}

/// All proxied sessions, by (server, session id).
pub struct ProxiedSessions {
    map: Mutex<HashMap<(String, String), ProxiedSession>>,
    ttl_secs: i64,
}

impl ProxiedSessions {
    /// The idle lifetime, seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn new(ttl_secs: u64) -> ProxiedSessions {
        ProxiedSessions { map: Mutex::new(HashMap::new()), ttl_secs: ttl_secs.max(1) as i64 }
    }

    /// Records that `owner` opened session `id` on `server`.
    pub fn opened(&self, server: &str, id: &str, owner: &str, elicitation: bool, now: i64) {
        let mut map = self.map.lock();
        let mine: Vec<((String, String), i64)> =
            map.iter().filter(|(_, s)| s.owner == owner).map(|(k, s)| (k.clone(), s.last_used)).collect();
        if mine.len() >= MAX_PER_OWNER {
            if let Some((oldest, _)) = mine.into_iter().min_by_key(|(_, t)| *t) {
                map.remove(&oldest);
            }
        }
        if map.len() >= MAX_TOTAL {
            let ttl = self.ttl_secs;
            map.retain(|_, s| now - s.last_used <= ttl);
            if map.len() >= MAX_TOTAL {
                let mut by_use: Vec<((String, String), i64)> =
                    map.iter().map(|(k, s)| (k.clone(), s.last_used)).collect();
                by_use.sort_by_key(|(_, t)| *t);
                for (k, _) in by_use.into_iter().take(MAX_TOTAL / 8) {
                    map.remove(&k);
                }
            }
        }
        let session = ProxiedSession { owner: owner.to_string(), elicitation, last_used: now };
        map.insert((server.to_string(), id.to_string()), session);
    }

    /// The session `id` on `server` if `owner` opened it (and it is not idle past the TTL);
    /// touches it.
    pub fn owned(&self, server: &str, id: &str, owner: &str, now: i64) -> Result<ProxiedSession, Unknown> {
        let mut map = self.map.lock();
        let key = (server.to_string(), id.to_string());
        match map.get_mut(&key) {
            Some(s) if now - s.last_used > self.ttl_secs => {
                map.remove(&key);
                Err(Unknown::NotFound)
            }
            Some(s) if s.owner == owner => {
                s.last_used = now;
                Ok(s.clone())
            }
            _ => Err(Unknown::NotFound),
        }
    }

    /// Forgets session `id` on `server` (its owner ended it).
    pub fn closed(&self, server: &str, id: &str, owner: &str) {
        let mut map = self.map.lock();
        let key = (server.to_string(), id.to_string());
        if map.get(&key).is_some_and(|s| s.owner == owner) {
            map.remove(&key);
        }
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

    #[test]
    fn sessions_belong_to_their_opener_and_expire() {
        let s = ProxiedSessions::new(10);
        s.opened("demo", "sid", "acme\0alice", true, 100);
        assert!(s.owned("demo", "sid", "acme\0alice", 105).unwrap().elicitation);
        assert_eq!(s.owned("demo", "sid", "acme\0mallory", 105), Err(Unknown::NotFound));
        assert_eq!(s.owned("other", "sid", "acme\0alice", 105), Err(Unknown::NotFound), "per server");
        s.closed("demo", "sid", "acme\0mallory");
        assert!(s.owned("demo", "sid", "acme\0alice", 106).is_ok(), "only the owner ends it");
        assert_eq!(s.owned("demo", "sid", "acme\0alice", 200), Err(Unknown::NotFound), "idle past ttl");
        assert!(s.is_empty());
    }

    #[test]
    fn one_principal_cannot_hold_more_than_its_share() {
        let s = ProxiedSessions::new(1000);
        for i in 0..(MAX_PER_OWNER + 5) {
            s.opened("demo", &format!("s{i}"), "t\0greedy", false, i as i64);
        }
        s.opened("demo", "mine", "t\0other", false, 0);
        assert_eq!(s.len(), MAX_PER_OWNER + 1);
        assert!(s.owned("demo", "s0", "t\0greedy", 70).is_err(), "oldest forgotten");
        assert!(s.owned("demo", "mine", "t\0other", 70).is_ok(), "another principal keeps its session");
    }
}
