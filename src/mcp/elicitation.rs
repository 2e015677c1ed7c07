//! Server-to-client `elicitation/create` requests of 2025-11-25 federated sessions.
//!
//! The held `tools/call` keeps its SSE response open and waits here; the client answers with
//! a separate POST carrying a JSON-RPC response, which [`Pending::deliver`] hands over. An
//! answer is only accepted from the session the question was asked on.

use std::collections::HashMap;

use parking_lot::Mutex;
use rand::RngCore;
use serde_json::Value;
use tokio::sync::oneshot;

/// Questions waiting for an answer, by (session id, request id).
#[derive(Default)]
pub struct Pending {
    waiting: Mutex<HashMap<(String, String), oneshot::Sender<Value>>>,
}

impl Pending {
    /// Registers a new question on `session`: its JSON-RPC id and the answer's receiver.
    pub fn ask(&self, session: &str) -> (String, oneshot::Receiver<Value>) {
        let mut raw = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut raw);
        let id = format!("fastmcp-confirm-{}", hex::encode(raw));
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
