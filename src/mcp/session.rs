//! Gateway sessions of the federated `/mcp` endpoint (2025-11-25 clients).
//!
//! A session is created by `initialize` and names its owner (tenant and subject of the token
//! that created it): a request presenting someone else's session id is refused as if the
//! session did not exist, so a leaked id is useless without the owner's token. Idle sessions
//! expire (swept on `initialize` at least once a minute, and whenever the table is full).
//! Bounded per principal (its least recently used session ends first, never another
//! principal's) and in total (a full table of live sessions refuses a new one). 2026-07-28
//! clients are stateless and never get one. Each session holds its SSE streams' replay
//! window ([`Outbox`]); ending a session ends its streams and releases the window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use serde_json::Value;

use crate::mcp::federation::replay::{Outbox, ReplayBudget, ReplayLimits};

/// Idle sessions are swept at most this often (seconds), besides when the table is full.
const SWEEP_EVERY_SECS: i64 = 60;

/// One client session.
#[derive(Debug)]
pub struct GatewaySession {
    pub id: String,
    /// `tenant` + NUL + `sub` of the creating principal.
    pub owner: String,
    /// The protocol version agreed in `initialize`.
    pub protocol_version: String,
    /// The capabilities the client declared at `initialize` (its `ClientCapabilities`
    /// object): what the gateway may declare upstream on its behalf (sampling, elicitation,
    /// roots) and relay to it.
    pub client_capabilities: Value,
    /// Upstream session ids by server name (for 2025-11-25 upstreams).
    pub upstream: Mutex<HashMap<String, String>>,
    /// Its SSE streams and their replay window (`Last-Event-ID`).
    pub outbox: Outbox,
    /// Kept by a shared store (Redis is the truth; this instance holds its streams).
    pub shared: bool,
    last_used: AtomicI64,
}

impl GatewaySession {
    /// The client declared the elicitation capability.
    pub fn elicitation(&self) -> bool {
        self.client_capabilities.get("elicitation").is_some_and(|e| !e.is_null())
    }

    /// Unix seconds of the last request on this session.
    pub fn last_used(&self) -> i64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// Why a session id was not usable, or a session not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Unknown, expired, or owned by someone else (indistinguishable on purpose).
    NotFound,
    /// Too many live sessions in total.
    Full,
    /// The shared session store does not answer (fail closed: 503).
    Unavailable,
}

/// Where federated sessions live: this process ([`Sessions`]) or a store shared by every
/// instance (chosen in `state/`).
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// See [`Sessions::create`].
    async fn create(
        &self,
        owner: String,
        protocol_version: String,
        client_capabilities: Value,
        now: i64,
    ) -> Result<Created, SessionError>;
    /// See [`Sessions::get`].
    async fn get(&self, id: &str, owner: &str, now: i64) -> Result<Arc<GatewaySession>, SessionError>;
    /// Ends session `id` if `owner` owns it; true when it did.
    async fn remove(&self, id: &str, owner: &str) -> Result<bool, SessionError>;
}

#[async_trait::async_trait]
impl SessionStore for Sessions {
    async fn create(
        &self,
        owner: String,
        protocol_version: String,
        client_capabilities: Value,
        now: i64,
    ) -> Result<Created, SessionError> {
        Sessions::create(self, owner, protocol_version, client_capabilities, now)
    }

    async fn get(&self, id: &str, owner: &str, now: i64) -> Result<Arc<GatewaySession>, SessionError> {
        Sessions::get(self, id, owner, now)
    }

    async fn remove(&self, id: &str, owner: &str) -> Result<bool, SessionError> {
        Ok(Sessions::remove(self, id, owner).is_some())
    }
}

/// The owner key of a principal.
pub fn owner_key(tenant: &str, sub: &str) -> String {
    format!("{tenant}\0{sub}")
}

/// How many sessions are kept (`mcp.max_sessions_per_principal`, `mcp.max_sessions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Per principal: a new session past it ends that principal's least recently used one.
    pub per_principal: usize,
    /// In total: past it (after idle ones are swept) a new session is refused.
    pub total: usize,
}

/// A new session, and the sessions that were ended to make room for it or because they were
/// idle past the TTL (their upstream clients should be closed).
#[derive(Debug)]
pub struct Created {
    pub session: Arc<GatewaySession>,
    pub ended: Vec<String>,
}

#[derive(Default)]
struct Table {
    map: HashMap<String, Arc<GatewaySession>>,
    /// Session ids by owner.
    owners: HashMap<String, Vec<String>>,
    last_sweep: i64,
}

impl Table {
    fn remove(&mut self, id: &str) -> Option<Arc<GatewaySession>> {
        let s = self.map.remove(id)?;
        // Its streams end now, and nobody can resume them.
        s.outbox.close();
        if let Some(ids) = self.owners.get_mut(&s.owner) {
            ids.retain(|x| x != id);
            if ids.is_empty() {
                self.owners.remove(&s.owner);
            }
        }
        Some(s)
    }

    /// Ends every session idle past `ttl`; returns their ids.
    fn sweep(&mut self, now: i64, ttl: i64) -> Vec<String> {
        self.last_sweep = now;
        let idle: Vec<String> = self.map.values().filter(|s| now - s.last_used() > ttl).map(|s| s.id.clone()).collect();
        for id in &idle {
            self.remove(id);
        }
        idle
    }
}

/// All live sessions, bounded per principal and in total.
pub struct Sessions {
    table: RwLock<Table>,
    ttl_secs: i64,
    limits: SessionLimits,
    replay: ReplayLimits,
    /// Bytes of replay windows across all sessions.
    replay_budget: Arc<ReplayBudget>,
}

impl Sessions {
    /// The idle lifetime and bounds (for a shared store built beside this one).
    pub fn settings(&self) -> (i64, SessionLimits) {
        (self.ttl_secs, self.limits)
    }

    /// `replay` bounds each session's window, `replay_total` all of them together.
    pub fn new(ttl_secs: u64, limits: SessionLimits, replay: ReplayLimits, replay_total: usize) -> Sessions {
        let limits = SessionLimits { per_principal: limits.per_principal.max(1), total: limits.total.max(1) };
        Sessions {
            table: RwLock::new(Table::default()),
            ttl_secs: ttl_secs.max(1) as i64,
            limits,
            replay,
            replay_budget: Arc::new(ReplayBudget::new(replay_total)),
        }
    }

    /// Records `data` on the standalone stream of every session that has opened one.
    pub fn to_every_stream(&self, data: &str) {
        for s in self.table.read().map.values() {
            s.outbox.record_standalone(data);
        }
    }

    /// Bytes of replay windows kept now, across sessions.
    pub fn replay_bytes(&self) -> usize {
        self.replay_budget.used()
    }

    /// Creates a session for `owner` whose client declared `client_capabilities`: idle
    /// sessions are swept now and then; `owner`'s least recently used session ends when it
    /// has its maximum; [`SessionError::Full`] when the table is full of other live sessions.
    pub fn create(
        &self,
        owner: String,
        protocol_version: String,
        client_capabilities: Value,
        now: i64,
    ) -> Result<Created, SessionError> {
        let mut raw = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut raw);
        let session = self.build(hex::encode(raw), owner, protocol_version, client_capabilities, false, now);
        self.insert(session, now)
    }

    /// This instance's copy of a session a shared store keeps (created here or on another
    /// instance): the one already in the table, else a new one holding its streams here. The
    /// store has checked the owner. Never refused: when the table is full of other sessions,
    /// the copy serves this request without a replay window kept past it.
    pub fn adopt(
        &self,
        id: &str,
        owner: &str,
        protocol_version: String,
        client_capabilities: Value,
        now: i64,
    ) -> Arc<GatewaySession> {
        if let Some(s) = self.table.read().map.get(id).filter(|s| s.owner == owner && s.shared).cloned() {
            s.last_used.store(now, Ordering::Relaxed);
            return s;
        }
        let session = self.build(id.to_string(), owner.to_string(), protocol_version, client_capabilities, true, now);
        match self.insert(session.clone(), now) {
            Ok(created) => created.session,
            Err(_) => session,
        }
    }

    fn build(
        &self,
        id: String,
        owner: String,
        protocol_version: String,
        client_capabilities: Value,
        shared: bool,
        now: i64,
    ) -> Arc<GatewaySession> {
        let client_capabilities = if client_capabilities.is_object() { client_capabilities } else { Value::Null };
        // Priming events (an id, empty data) came with 2025-11-25; dates compare as strings.
        let priming = protocol_version.as_str() >= "2025-11-25";
        Arc::new(GatewaySession {
            id,
            owner,
            protocol_version,
            client_capabilities,
            upstream: Mutex::new(HashMap::new()),
            outbox: Outbox::new(self.replay, self.replay_budget.clone(), priming),
            shared,
            last_used: AtomicI64::new(now),
        })
    }

    fn insert(&self, session: Arc<GatewaySession>, now: i64) -> Result<Created, SessionError> {
        let mut t = self.table.write();
        let mut ended = Vec::new();
        if now - t.last_sweep >= SWEEP_EVERY_SECS.min(self.ttl_secs) || t.map.len() >= self.limits.total {
            ended = t.sweep(now, self.ttl_secs);
        }
        let mine: Vec<String> = t.owners.get(&session.owner).cloned().unwrap_or_default();
        if mine.len() >= self.limits.per_principal {
            // The owner's own least recently used session makes room; nobody else's.
            let lru = mine.iter().filter_map(|id| t.map.get(id)).min_by_key(|s| s.last_used()).map(|s| s.id.clone());
            if let Some(id) = lru {
                t.remove(&id);
                ended.push(id);
            }
        }
        if t.map.len() >= self.limits.total {
            return Err(SessionError::Full);
        }
        t.owners.entry(session.owner.clone()).or_default().push(session.id.clone());
        t.map.insert(session.id.clone(), session.clone());
        Ok(Created { session, ended })
    }

    /// The live session `id` if `owner` owns it; touches it.
    pub fn get(&self, id: &str, owner: &str, now: i64) -> Result<Arc<GatewaySession>, SessionError> {
        let found = self.table.read().map.get(id).cloned();
        match found {
            Some(s) if s.owner == owner && now - s.last_used() <= self.ttl_secs => {
                s.last_used.store(now, Ordering::Relaxed);
                Ok(s)
            }
            Some(s) if now - s.last_used() > self.ttl_secs => {
                self.table.write().remove(id);
                Err(SessionError::NotFound)
            }
            _ => Err(SessionError::NotFound),
        }
    }

    /// Ends session `id` if `owner` owns it.
    pub fn remove(&self, id: &str, owner: &str) -> Option<Arc<GatewaySession>> {
        let mut t = self.table.write();
        if t.map.get(id).is_some_and(|s| s.owner == owner) {
            t.remove(id)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.table.read().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live sessions of `owner`.
    pub fn owned_by(&self, owner: &str) -> usize {
        self.table.read().owners.get(owner).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sessions_belong_to_their_owner_and_expire() {
        let s = Sessions::new(10, LIMITS, REPLAY, 1 << 20);
        let a = owner_key("acme", "alice");
        let session = s.create(a.clone(), "2025-11-25".into(), json!({"elicitation": {}}), 100).unwrap().session;
        assert_eq!(session.id.len(), 48);
        assert!(session.elicitation(), "derived from the declared capabilities");
        assert!(s.get(&session.id, &a, 105).is_ok());
        let mallory = owner_key("acme", "mallory");
        assert_eq!(s.get(&session.id, &mallory, 105).unwrap_err(), SessionError::NotFound);
        assert!(s.remove(&session.id, &mallory).is_none(), "only the owner ends a session");
        assert_eq!(s.get(&session.id, &a, 200).unwrap_err(), SessionError::NotFound, "idle past ttl");
        assert!(s.is_empty());
        let again = s.create(a.clone(), "2025-11-25".into(), json!({}), 300).unwrap().session;
        assert!(s.remove(&again.id, &a).is_some());
        assert_eq!(s.get("nope", &a, 300).unwrap_err(), SessionError::NotFound);
    }

    const LIMITS: SessionLimits = SessionLimits { per_principal: 64, total: 1000 };
    const REPLAY: ReplayLimits = ReplayLimits { max_events: 8, max_bytes: 4096 };

    #[test]
    fn an_ended_session_releases_its_replay_window_and_ends_its_streams() {
        let s = Sessions::new(1000, LIMITS, REPLAY, 1 << 20);
        let a = owner_key("t", "a");
        let session = s.create(a.clone(), "2025-11-25".into(), serde_json::json!({}), 1).unwrap().session;
        let mut stream = session.outbox.attach(None);
        assert!(stream.prime.is_some(), "2025-11-25 sessions get a priming event");
        s.to_every_stream(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
        assert!(s.replay_bytes() > 0);
        let rx = stream.live.as_mut().unwrap();
        assert!(rx.try_recv().is_ok());
        s.remove(&session.id, &a);
        assert_eq!(s.replay_bytes(), 0);
        assert!(rx.try_recv().is_err(), "the stream ends with the session");
        let old = s.create(a, "2025-06-18".into(), json!({}), 2).unwrap().session;
        assert!(old.outbox.attach(None).prime.is_none(), "older clients get no priming event");
    }

    #[test]
    fn a_principal_at_its_quota_ends_its_own_oldest_session_and_others_still_get_one() {
        let s = Sessions::new(1000, SessionLimits { per_principal: 2, total: 3 }, REPLAY, 1 << 20);
        let greedy = owner_key("acme", "greedy");
        let first = s.create(greedy.clone(), "v".into(), json!({}), 1).unwrap().session;
        let second = s.create(greedy.clone(), "v".into(), json!({}), 2).unwrap().session;
        assert!(s.get(&first.id, &greedy, 3).is_ok(), "touched: now the second is the least recently used");
        let third = s.create(greedy.clone(), "v".into(), json!({}), 4).unwrap();
        assert_eq!(third.ended, vec![second.id.clone()]);
        assert_eq!(s.get(&second.id, &greedy, 5).unwrap_err(), SessionError::NotFound);
        assert_eq!(s.owned_by(&greedy), 2);
        let other = owner_key("acme", "other");
        assert!(s.create(other.clone(), "v".into(), json!({}), 5).is_ok(), "another principal initializes");
        // The table is full of live sessions: a third principal is refused, nobody is evicted.
        assert_eq!(s.create(owner_key("acme", "third"), "v".into(), json!({}), 6).unwrap_err(), SessionError::Full);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn idle_sessions_are_swept() {
        let s = Sessions::new(10, SessionLimits { per_principal: 5, total: 2 }, REPLAY, 1 << 20);
        let a = owner_key("t", "a");
        let old = s.create(a.clone(), "v".into(), json!({}), 0).unwrap().session;
        s.create(owner_key("t", "b"), "v".into(), json!({}), 5).unwrap();
        // Full; at 12 the first is idle past the TTL and swept to make room.
        let c = s.create(owner_key("t", "c"), "v".into(), json!({}), 12).unwrap();
        assert_eq!(c.ended, vec![old.id.clone()]);
        assert_eq!(s.owned_by(&a), 0);
        // A periodic sweep ends idle sessions even when there is room.
        let late = s.create(a, "v".into(), json!({}), 100).unwrap();
        assert_eq!(late.ended.len(), 2, "b and c were idle");
        assert_eq!(s.len(), 1);
    }
}
