//! The registry of upstream servers' own requests (sampling, elicitation, roots, ping)
//! relayed to a federated client and waiting for its answer.
//!
//! Each relayed request gets a fresh id on the client's session (`fastmcp-relay-…`), so the
//! ids of two servers — or the gateway's own confirmations — never collide there; the entry
//! remembers which server asked, under which id, and where the answer goes. An answer is
//! only taken from the session the request was relayed on. Bounded per session (its oldest
//! waiting request is refused to make room) and in time (unanswered after the relay
//! timeout, a request is refused); a refused request is answered upstream with a JSON-RPC
//! error, so no server is left waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngCore;
use serde_json::Value;

use crate::enforce::Proof;
use crate::mcp::client::{wire, ClientError, McpClient};

/// Where the client's answer goes.
pub enum ReplyTo {
    /// POSTed to the upstream on the gateway's upstream session, by this client (HTTP calls
    /// forwarded through pingora: nothing of the gateway waits for it).
    Upstream(Arc<McpClient>),
    /// Handed to a blocking upstream call waiting for it (stdio servers and calls the
    /// gateway's client runs), which answers the server itself.
    Waiter(std::sync::mpsc::Sender<Value>),
}

/// One relayed request waiting for the client's answer.
pub struct Relayed {
    /// The server that asked.
    pub server: String,
    /// The id the server gave its request (restored on the answer).
    pub upstream_id: Value,
    pub to: ReplyTo,
    at: Instant,
}

impl Relayed {
    pub fn new(server: &str, upstream_id: Value, to: ReplyTo) -> Relayed {
        Relayed { server: server.to_string(), upstream_id, to, at: Instant::now() }
    }

    /// Sends `answer` (a JSON-RPC response; its id becomes the server's) where it belongs.
    /// Blocking for [`ReplyTo::Upstream`] (an HTTP POST).
    pub fn send(self, proof: &Proof, mut answer: Value) -> Result<(), ClientError> {
        answer["id"] = self.upstream_id;
        match self.to {
            ReplyTo::Upstream(client) => client.respond(proof, &answer),
            // A waiter that gave up already answered the server itself.
            ReplyTo::Waiter(tx) => tx.send(answer).map_err(|_| ClientError::Protocol("nobody waits".into())),
        }
    }

    /// Refuses the request upstream (`why` is the error's message), off the caller's thread.
    pub fn fail(self, why: &str) {
        let refusal = wire::refusal(&serde_json::json!({"id": self.upstream_id}), why);
        let server = self.server.clone();
        match self.to {
            ReplyTo::Waiter(tx) => {
                let _ = tx.send(refusal);
            }
            ReplyTo::Upstream(client) => {
                std::thread::spawn(move || {
                    // The gateway's own answer to the server: nothing of the caller's goes.
                    if let Err(e) = client.respond(&Proof::gateway_own("relay refusal"), &refusal) {
                        tracing::debug!(server = %server, error = %e, "could not refuse a server's request");
                    }
                });
            }
        }
    }
}

/// Waiting requests by gateway session, oldest first.
type Waiting = HashMap<String, VecDeque<(String, Relayed)>>;

/// Every relayed request still waiting for its answer.
pub struct Relays {
    waiting: Mutex<Waiting>,
    max_per_session: usize,
    ttl: Duration,
}

impl Relays {
    /// At most `max_per_session` waiting requests per session, each for at most `ttl`.
    pub fn new(max_per_session: usize, ttl: Duration) -> Relays {
        Relays { waiting: Mutex::new(HashMap::new()), max_per_session: max_per_session.max(1), ttl }
    }

    /// How long a relayed request waits for the client's answer.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Remembers `entry` on `session` and returns the id the client sees. The session's
    /// oldest request is refused when it has its maximum; expired requests of every session
    /// are refused on the way.
    pub fn insert(&self, session: &str, entry: Relayed) -> String {
        let mut raw = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut raw);
        let id = format!("fastmcp-relay-{}", hex::encode(raw));
        let mut gone = Vec::new();
        {
            let mut w = self.waiting.lock();
            let ttl = self.ttl;
            w.retain(|_, q| {
                while q.front().is_some_and(|(_, e)| e.at.elapsed() > ttl) {
                    gone.extend(q.pop_front());
                }
                !q.is_empty()
            });
            let q = w.entry(session.to_string()).or_default();
            while q.len() >= self.max_per_session {
                gone.extend(q.pop_front());
            }
            q.push_back((id.clone(), entry));
        }
        for (_, e) in gone {
            e.fail("the client did not answer in time");
        }
        id
    }

    /// The request `id` relayed on `session`, taken (answered once).
    pub fn take(&self, session: &str, id: &Value) -> Option<Relayed> {
        let id = id.as_str()?;
        let mut w = self.waiting.lock();
        let q = w.get_mut(session)?;
        let at = q.iter().position(|(x, _)| x == id)?;
        let (_, e) = q.remove(at)?;
        if q.is_empty() {
            w.remove(session);
        }
        Some(e)
    }

    /// Refuses `id` on `session` once the relay timeout passed without an answer (when a
    /// runtime is there to wait; otherwise the next insert's sweep does).
    pub fn expire_later(self: &Arc<Self>, session: &str, id: &str) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let (me, session, id) = (self.clone(), session.to_string(), Value::String(id.to_string()));
        rt.spawn(async move {
            tokio::time::sleep(me.ttl).await;
            if let Some(e) = me.take(&session, &id) {
                e.fail("the client did not answer in time");
            }
        });
    }

    /// The session ended: its waiting requests are refused.
    pub fn end(&self, session: &str) {
        let gone = self.waiting.lock().remove(session).unwrap_or_default();
        for (_, e) in gone {
            e.fail("the client's session ended");
        }
    }

    /// Requests waiting on `session`.
    pub fn waiting(&self, session: &str) -> usize {
        self.waiting.lock().get(session).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn waiter(server: &str, id: Value) -> (Relayed, std::sync::mpsc::Receiver<Value>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (Relayed::new(server, id, ReplyTo::Waiter(tx)), rx)
    }

    #[test]
    fn answers_reach_the_asking_server_under_its_own_id_from_the_same_session_only() {
        let r = Relays::new(8, Duration::from_secs(60));
        let (a, a_rx) = waiter("a", json!(1));
        let (b, b_rx) = waiter("b", json!(1));
        let ida = r.insert("s1", a);
        let idb = r.insert("s1", b);
        assert_ne!(ida, idb, "two servers' id 1 do not collide on one session");
        assert!(r.take("s2", &json!(ida)).is_none(), "another session cannot answer");
        let got = r.take("s1", &json!(idb)).expect("waiting");
        assert_eq!(got.server, "b");
        got.send(&Proof::gateway_own("test"), json!({"jsonrpc": "2.0", "id": idb, "result": {"x": 1}})).unwrap();
        assert_eq!(b_rx.recv().unwrap(), json!({"jsonrpc": "2.0", "id": 1, "result": {"x": 1}}));
        assert!(r.take("s1", &json!(idb)).is_none(), "answered once");
        assert!(a_rx.try_recv().is_err(), "a still waits");
        assert_eq!(r.waiting("s1"), 1);
    }

    #[test]
    fn past_its_bound_a_session_refuses_its_own_oldest_and_an_ended_session_refuses_all() {
        let r = Relays::new(2, Duration::from_secs(60));
        let (first, first_rx) = waiter("a", json!("x"));
        r.insert("s1", first);
        let (other, other_rx) = waiter("a", json!(9));
        r.insert("s2", other);
        for n in 0..2 {
            r.insert("s1", waiter("a", json!(n)).0);
        }
        let refused = first_rx.recv().expect("refused");
        assert_eq!((refused["id"].clone(), refused["error"]["code"].clone()), (json!("x"), json!(-32601)));
        assert_eq!(r.waiting("s1"), 2);
        assert!(other_rx.try_recv().is_err(), "another session's request is untouched");
        r.end("s2");
        assert_eq!(other_rx.recv().expect("refused")["id"], 9);
        assert_eq!(r.waiting("s2"), 0);
    }

    #[test]
    fn expired_requests_are_refused() {
        let r = Relays::new(8, Duration::ZERO);
        let (old, old_rx) = waiter("a", json!(5));
        r.insert("s1", old);
        // A zero timeout: by the next insert the first request is past it.
        r.insert("s2", waiter("a", json!(6)).0);
        assert_eq!(old_rx.recv().expect("refused")["id"], 5);
        assert_eq!(r.waiting("s1"), 0);
    }
}
