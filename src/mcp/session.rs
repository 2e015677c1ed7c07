//! Gateway sessions of the federated `/mcp` endpoint (2025-11-25 clients).
//!
//! A session is created by `initialize` and names its owner (tenant and subject of the token
//! that created it): a request presenting someone else's session id is refused as if the
//! session did not exist, so a leaked id is useless without the owner's token. Idle sessions
//! expire. 2026-07-28 clients are stateless and never get one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rand::RngCore;

/// Sessions above this count are refused (memory bound); expired ones are swept first.
const MAX_SESSIONS: usize = 100_000;

/// One client session.
#[derive(Debug)]
pub struct GatewaySession {
    pub id: String,
    /// `tenant` + NUL + `sub` of the creating principal.
    pub owner: String,
    /// The protocol version agreed in `initialize`.
    pub protocol_version: String,
    /// The client declared the elicitation capability.
    pub elicitation: bool,
    /// Upstream session ids by server name (for 2025-11-25 upstreams).
    pub upstream: Mutex<HashMap<String, String>>,
    last_used: AtomicI64,
}

impl GatewaySession {
    /// Unix seconds of the last request on this session.
    pub fn last_used(&self) -> i64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// Why a session id was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Unknown, expired, or owned by someone else (indistinguishable on purpose).
    NotFound,
    /// Too many live sessions.
    Full,
}

/// The owner key of a principal.
pub fn owner_key(tenant: &str, sub: &str) -> String {
    format!("{tenant}\0{sub}")
}

/// All live sessions.
pub struct Sessions {
    map: RwLock<HashMap<String, Arc<GatewaySession>>>,
    ttl_secs: i64,
}

impl Sessions {
    pub fn new(ttl_secs: u64) -> Sessions {
        Sessions { map: RwLock::new(HashMap::new()), ttl_secs: ttl_secs.max(1) as i64 }
    }

    /// Creates a session for `owner`.
    pub fn create(
        &self,
        owner: String,
        protocol_version: String,
        elicitation: bool,
        now: i64,
    ) -> Result<Arc<GatewaySession>, SessionError> {
        let mut raw = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut raw);
        let session = Arc::new(GatewaySession {
            id: hex::encode(raw),
            owner,
            protocol_version,
            elicitation,
            upstream: Mutex::new(HashMap::new()),
            last_used: AtomicI64::new(now),
        });
        let mut map = self.map.write();
        if map.len() >= MAX_SESSIONS {
            let ttl = self.ttl_secs;
            map.retain(|_, s| now - s.last_used() <= ttl);
            if map.len() >= MAX_SESSIONS {
                return Err(SessionError::Full);
            }
        }
        map.insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// The live session `id` if `owner` owns it; touches it.
    pub fn get(&self, id: &str, owner: &str, now: i64) -> Result<Arc<GatewaySession>, SessionError> {
        let found = self.map.read().get(id).cloned();
        match found {
            Some(s) if s.owner == owner && now - s.last_used() <= self.ttl_secs => {
                s.last_used.store(now, Ordering::Relaxed);
                Ok(s)
            }
            Some(s) if now - s.last_used() > self.ttl_secs => {
                self.map.write().remove(id);
                Err(SessionError::NotFound)
            }
            _ => Err(SessionError::NotFound),
        }
    }

    /// Ends session `id` if `owner` owns it.
    pub fn remove(&self, id: &str, owner: &str) -> Option<Arc<GatewaySession>> {
        let mut map = self.map.write();
        if map.get(id).is_some_and(|s| s.owner == owner) {
            map.remove(id)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_their_owner_and_expire() {
        let s = Sessions::new(10);
        let a = owner_key("acme", "alice");
        let session = s.create(a.clone(), "2025-11-25".into(), true, 100).unwrap();
        assert_eq!(session.id.len(), 48);
        assert!(s.get(&session.id, &a, 105).is_ok());
        let mallory = owner_key("acme", "mallory");
        assert_eq!(s.get(&session.id, &mallory, 105).unwrap_err(), SessionError::NotFound);
        assert!(s.remove(&session.id, &mallory).is_none(), "only the owner ends a session");
        assert_eq!(s.get(&session.id, &a, 200).unwrap_err(), SessionError::NotFound, "idle past ttl");
        assert!(s.is_empty());
        let again = s.create(a.clone(), "2025-11-25".into(), false, 300).unwrap();
        assert!(s.remove(&again.id, &a).is_some());
        assert_eq!(s.get("nope", &a, 300).unwrap_err(), SessionError::NotFound);
    }
}
