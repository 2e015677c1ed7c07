//! The MCP session stores on Redis ([`super::redis::sessions`]), each with this instance's
//! memory store behind it for `state.redis.sessions_on_error: fail_open` (a session or
//! question made in memory during an outage keeps working on this instance afterwards).
//!
//! Upstream session state is per instance: a federated session continuing on instance B gets
//! its gateway session (owner, version, capabilities) from Redis, and B opens its own
//! upstream client session to each server it routes to (a fresh handshake; upstream state
//! such as subscriptions or a log level set through A does not follow). Proxied
//! `/mcp/{server}` sessions are the upstream's own: any instance forwards them, only their
//! owner and capabilities are shared.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fallback::fell_back;
use super::redis::sessions::{Bounds, Questions, Records};
use super::StateError;
use crate::config::OnError;
use crate::mcp::elicitation::{question_id, AnswerFuture, Elicitations, Pending};
use crate::mcp::proxied_sessions::{
    ProxiedSession, ProxiedSessions, ProxiedStore, Unavailable, MAX_PER_OWNER, MAX_TOTAL,
};
use crate::mcp::session::{Created, GatewaySession, SessionError, SessionStore, Sessions};

fn fail(mode: OnError, e: &StateError) -> bool {
    if mode == OnError::FailOpen {
        fell_back("sessions");
        return true;
    }
    tracing::debug!(error = %e, "session store unavailable");
    false
}

#[derive(Serialize, Deserialize)]
struct FedRecord {
    owner: String,
    version: String,
    /// The client's declared capabilities (what upstream sessions declare and relay).
    #[serde(default)]
    capabilities: Value,
}

/// Federated sessions shared through Redis.
pub struct SharedSessions {
    records: Records,
    memory: Arc<Sessions>,
    mode: OnError,
}

impl SharedSessions {
    pub fn new(redis: super::redis::Redis, memory: Arc<Sessions>, mode: OnError) -> SharedSessions {
        let (ttl, limits) = memory.settings();
        let bounds = Bounds {
            ttl: Duration::from_secs(ttl.max(1) as u64),
            per_owner: limits.per_principal,
            total: limits.total,
            evict_when_full: false,
        };
        SharedSessions { records: Records::new(redis, "fed", bounds), memory, mode }
    }
}

#[async_trait]
impl SessionStore for SharedSessions {
    async fn create(
        &self,
        owner: String,
        protocol_version: String,
        client_capabilities: Value,
        now: i64,
    ) -> Result<Created, SessionError> {
        let mut raw = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
        let id = hex::encode(raw);
        let record = FedRecord {
            owner: owner.clone(),
            version: protocol_version.clone(),
            capabilities: client_capabilities.clone(),
        };
        let json = serde_json::to_string(&record).map_err(|_| SessionError::Unavailable)?;
        match self.records.put(&id, &owner, json).await {
            Ok(put) if put.stored => {
                let session = self.memory.adopt(&id, &owner, protocol_version, client_capabilities, now);
                Ok(Created { session, ended: put.ended })
            }
            Ok(_) => Err(SessionError::Full),
            Err(e) if fail(self.mode, &e) => self.memory.create(owner, protocol_version, client_capabilities, now),
            Err(_) => Err(SessionError::Unavailable),
        }
    }

    async fn get(&self, id: &str, owner: &str, now: i64) -> Result<Arc<GatewaySession>, SessionError> {
        match self.records.get(id).await {
            Ok(Some(json)) => match serde_json::from_str::<FedRecord>(&json) {
                Ok(r) if r.owner == owner => Ok(self.memory.adopt(id, &r.owner, r.version, r.capabilities, now)),
                _ => Err(SessionError::NotFound),
            },
            // Gone from Redis (ended on another instance, or expired): this instance's copy
            // ends too; a session made in memory during an outage lives on here.
            Ok(None) => match self.memory.get(id, owner, now) {
                Ok(s) if s.shared => {
                    self.memory.remove(id, owner);
                    Err(SessionError::NotFound)
                }
                other => other,
            },
            Err(e) if fail(self.mode, &e) => self.memory.get(id, owner, now),
            Err(_) => Err(SessionError::Unavailable),
        }
    }

    async fn remove(&self, id: &str, owner: &str) -> Result<bool, SessionError> {
        // This instance's copy goes first (its streams end); one made in memory during an
        // outage is all there is.
        if self.memory.remove(id, owner).is_some_and(|s| !s.shared) {
            return Ok(true);
        }
        match self.records.get(id).await {
            Ok(Some(json)) => match serde_json::from_str::<FedRecord>(&json) {
                Ok(r) if r.owner == owner => {
                    self.records.remove(id).await.map(|()| true).map_err(|_| SessionError::Unavailable)
                }
                _ => Ok(false),
            },
            Ok(None) => Ok(false),
            Err(_) => Err(SessionError::Unavailable),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ProxiedRecord {
    owner: String,
    elicitation: bool,
}

/// Proxied `/mcp/{server}` sessions shared through Redis.
pub struct SharedProxied {
    records: Records,
    memory: ProxiedSessions,
    mode: OnError,
}

impl SharedProxied {
    pub fn new(redis: super::redis::Redis, memory: ProxiedSessions, mode: OnError) -> SharedProxied {
        let bounds = Bounds {
            ttl: Duration::from_secs(memory.ttl_secs().max(1) as u64),
            per_owner: MAX_PER_OWNER,
            total: MAX_TOTAL,
            evict_when_full: true,
        };
        SharedProxied { records: Records::new(redis, "px", bounds), memory, mode }
    }
}

#[async_trait]
impl ProxiedStore for SharedProxied {
    async fn opened(
        &self,
        server: &str,
        id: &str,
        owner: &str,
        elicitation: bool,
        now: i64,
    ) -> Result<(), Unavailable> {
        let record = ProxiedRecord { owner: owner.to_string(), elicitation };
        let json = serde_json::to_string(&record).map_err(|_| Unavailable)?;
        match self.records.put(&Records::member(&[server, id]), owner, json).await {
            Ok(_) => Ok(()),
            Err(e) if fail(self.mode, &e) => {
                self.memory.opened(server, id, owner, elicitation, now);
                Ok(())
            }
            Err(_) => Err(Unavailable),
        }
    }

    async fn owned(
        &self,
        server: &str,
        id: &str,
        owner: &str,
        now: i64,
    ) -> Result<Option<ProxiedSession>, Unavailable> {
        match self.records.get(&Records::member(&[server, id])).await {
            Ok(Some(json)) => Ok(serde_json::from_str::<ProxiedRecord>(&json)
                .ok()
                .filter(|r| r.owner == owner)
                .map(|r| ProxiedSession { owner: r.owner, elicitation: r.elicitation, last_used: now })),
            Ok(None) => Ok(self.memory.owned(server, id, owner, now).ok()),
            Err(e) if fail(self.mode, &e) => Ok(self.memory.owned(server, id, owner, now).ok()),
            Err(_) => Err(Unavailable),
        }
    }

    async fn closed(&self, server: &str, id: &str, owner: &str) -> Result<(), Unavailable> {
        self.memory.closed(server, id, owner);
        if self.owned(server, id, owner, chrono::Utc::now().timestamp()).await?.is_some() {
            self.records.remove(&Records::member(&[server, id])).await.map_err(|_| Unavailable)?;
        }
        Ok(())
    }
}

/// Pending elicitations shared through Redis.
pub struct SharedQuestions {
    questions: Arc<Questions>,
    memory: Pending,
    mode: OnError,
}

impl SharedQuestions {
    pub fn new(redis: super::redis::Redis, mode: OnError) -> SharedQuestions {
        SharedQuestions { questions: Arc::new(Questions::new(redis)), memory: Pending::default(), mode }
    }
}

#[async_trait]
impl Elicitations for SharedQuestions {
    async fn ask(&self, session: &str, wait: Duration) -> Option<(String, AnswerFuture)> {
        let id = question_id();
        match self.questions.ask(session, &id, wait).await {
            Ok(()) => {
                let (questions, session, qid) = (self.questions.clone(), session.to_string(), id.clone());
                let answer: AnswerFuture = Box::pin(async move {
                    let raw = questions.answer(&session, &qid, wait).await.ok()??;
                    serde_json::from_str::<Value>(&raw).ok()
                });
                Some((id, answer))
            }
            Err(e) if fail(self.mode, &e) => Elicitations::ask(&self.memory, session, wait).await,
            Err(_) => None,
        }
    }

    async fn deliver(&self, session: &str, id: &Value, response: Value) -> bool {
        if Pending::deliver(&self.memory, session, id, response.clone()) {
            return true;
        }
        let Some(qid) = id.as_str() else { return false };
        self.questions.deliver(session, qid, response.to_string()).await.unwrap_or(false)
    }

    async fn waits(&self, session: &str, id: &Value) -> bool {
        if Pending::waits(&self.memory, session, id) {
            return true;
        }
        let Some(qid) = id.as_str() else { return false };
        self.questions.waits(session, qid).await.unwrap_or(false)
    }

    async fn forget(&self, session: &str, id: &str) {
        Pending::forget(&self.memory, session, id);
        let _ = self.questions.forget(session, id).await;
    }
}
