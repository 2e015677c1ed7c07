//! Where pins live: the [`PinStore`] trait, and its memory backend (the default; one
//! instance). With `state.redis_url` the pins are shared through Redis (`redis.rs`).
//! Calls are synchronous: discovery runs on plain threads and an approval is rare; the
//! Redis backend bounds every call by `state.redis.timeout_ms`.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// One approved tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    /// [`super::fingerprint`] of `definition`.
    pub hash: String,
    /// The approved definition (the fingerprinted fields only).
    pub definition: serde_json::Value,
    /// `first_use` (pinned at the server's first discovery) or the approving admin actor.
    pub approved_by: String,
    /// RFC 3339 time of the approval.
    pub approved_at: String,
}

/// A server's pins by tool name.
pub type ServerPins = BTreeMap<String, Pin>;

/// The pin store.
pub trait PinStore: Send + Sync {
    /// `server`'s pins, or `None` when it was never pinned.
    fn load(&self, server: &str) -> Result<Option<ServerPins>, StateError>;
    /// Trust on first use: stores `first` as `server`'s pins unless it has pins already
    /// (another instance may have been first), in one atomic step; returns the pins in force.
    fn pin_first(&self, server: &str, first: ServerPins) -> Result<ServerPins, StateError>;
    /// Approves `pin` as `tool`'s definition on an already pinned `server`.
    fn approve(&self, server: &str, tool: &str, pin: &Pin) -> Result<(), StateError>;
}

/// Pins in this process's memory.
#[derive(Default)]
pub struct MemoryPins {
    servers: Mutex<HashMap<String, ServerPins>>,
}

impl PinStore for MemoryPins {
    fn load(&self, server: &str) -> Result<Option<ServerPins>, StateError> {
        Ok(self.servers.lock().get(server).cloned())
    }

    fn pin_first(&self, server: &str, first: ServerPins) -> Result<ServerPins, StateError> {
        Ok(self.servers.lock().entry(server.to_string()).or_insert(first).clone())
    }

    fn approve(&self, server: &str, tool: &str, pin: &Pin) -> Result<(), StateError> {
        self.servers.lock().entry(server.to_string()).or_default().insert(tool.to_string(), pin.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(h: &str) -> Pin {
        Pin {
            hash: h.into(),
            definition: serde_json::json!({}),
            approved_by: "first_use".into(),
            approved_at: "t".into(),
        }
    }

    #[test]
    fn the_first_pinning_wins_and_approvals_replace_one_tool() {
        let s = MemoryPins::default();
        assert_eq!(s.load("a").unwrap(), None);
        let first = s.pin_first("a", ServerPins::from([("x".into(), pin("1"))])).unwrap();
        assert_eq!(first["x"].hash, "1");
        // A second "first" use (another discovery, another instance) re-trusts nothing.
        let again = s.pin_first("a", ServerPins::from([("x".into(), pin("2")), ("y".into(), pin("3"))])).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again["x"].hash, "1");
        s.approve("a", "y", &pin("3")).unwrap();
        assert_eq!(s.load("a").unwrap().unwrap()["y"].hash, "3");
    }
}
