//! Server-to-client `elicitation/create` requests of 2025-11-25 federated sessions.
//!
//! The held `tools/call` keeps its SSE response open and waits here; the client answers with
//! a separate POST carrying a JSON-RPC response, which [`Pending::deliver`] hands over. An
//! answer is only accepted from the session the question was asked on.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use parking_lot::Mutex;
use rand::RngCore;
use serde_json::Value;
use tokio::sync::oneshot;

/// The answer to one question, when it comes (`None`: nobody answered within the wait, or
/// the store failed).
pub type AnswerFuture = Pin<Box<dyn Future<Output = Option<Value>> + Send>>;

/// Where pending questions live: this process ([`Pending`]) or a store shared by every
/// instance, so the answer may be POSTed to any of them (chosen in `state/`).
#[async_trait::async_trait]
pub trait Elicitations: Send + Sync {
    /// Registers a question on `session` (before it is sent): its JSON-RPC id, and the
    /// answer, awaited for at most `wait`. `None` when the store cannot register it.
    async fn ask(&self, session: &str, wait: Duration) -> Option<(String, AnswerFuture)>;
    /// Hands `response` to question `id` on `session`; false when nobody waits for it.
    async fn deliver(&self, session: &str, id: &Value, response: Value) -> bool;
    /// Is question `id` waiting on `session`?
    async fn waits(&self, session: &str, id: &Value) -> bool;
    /// Drops a question nobody answered.
    async fn forget(&self, session: &str, id: &str);
}

/// A new question id.
pub fn question_id() -> String {
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("fastmcp-confirm-{}", hex::encode(raw))
}

#[async_trait::async_trait]
impl Elicitations for Pending {
    async fn ask(&self, session: &str, wait: Duration) -> Option<(String, AnswerFuture)> {
        let (id, rx) = Pending::ask(self, session);
        Some((id, Box::pin(async move { tokio::time::timeout(wait, rx).await.ok()?.ok() })))
    }

    async fn deliver(&self, session: &str, id: &Value, response: Value) -> bool {
        Pending::deliver(self, session, id, response)
    }

    async fn waits(&self, session: &str, id: &Value) -> bool {
        Pending::waits(self, session, id)
    }

    async fn forget(&self, session: &str, id: &str) {
        Pending::forget(self, session, id)
    }
}

/// Questions waiting for an answer, by (session id, request id).
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<(String, String), oneshot::Sender<Value>>>,
}

impl Pending {
    /// Registers a new question on `session`: its JSON-RPC id and the answer's receiver.
    pub fn ask(&self, session: &str) -> (String, oneshot::Receiver<Value>) {
        let id = question_id();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert((session.to_string(), id.clone()), tx);
        (id, rx)
    }

    /// Hands `response` (a JSON-RPC response object) to the question `id` on `session`.
    /// False when nobody is waiting for it.
    pub fn deliver(&self, session: &str, id: &Value, response: Value) -> bool {
        let Some(id) = id.as_str() else {
            return false;
        };
        match self.waiting.lock().remove(&(session.to_string(), id.to_string())) {
            Some(tx) => tx.send(response).is_ok(),
            None => false,
        }
    }

    /// Is a question `id` waiting on `session`?
    pub fn waits(&self, session: &str, id: &Value) -> bool {
        id.as_str().is_some_and(|id| self.waiting.lock().contains_key(&(session.to_string(), id.to_string())))
    }

    /// Drops a question nobody answered (timeout).
    pub fn forget(&self, session: &str, id: &str) {
        self.waiting.lock().remove(&(session.to_string(), id.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn answers_reach_the_asking_session_only() {
        let p = Pending::default();
        let (id, rx) = p.ask("s1");
        assert!(!p.deliver("s2", &json!(id), json!({"result": {}})), "another session cannot answer");
        assert!(p.deliver("s1", &json!(id), json!({"result": {"action": "accept"}})));
        assert_eq!(rx.await.unwrap()["result"]["action"], "accept");
        assert!(!p.deliver("s1", &json!(id), json!({})), "answered once");
    }
}
