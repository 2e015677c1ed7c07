//! What happened to this instance's holds: a change counter bumped when a hold is made,
//! approved, denied or redeemed here, so a live hold stream re-lists at once instead of at
//! its next periodic re-list (which catches changes made by other instances sharing Redis);
//! and the holds an operator denied here recently, so the agent's later confirmation is told
//! it was denied rather than that its token is unknown.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Denied holds remembered (the oldest is forgotten first; then the agent gets the generic
/// "unknown or already used" answer, still a refusal).
pub const DENIED_KEPT: usize = 1024;

/// The counter and the recent denials. Cheap to clone; bumping never waits for a watcher.
#[derive(Debug, Clone)]
pub struct HoldEvents {
    tx: watch::Sender<u64>,
    /// (hold id, unix seconds until which it is remembered: the hold's own expiry).
    denied: Arc<Mutex<VecDeque<(String, i64)>>>,
}

impl Default for HoldEvents {
    fn default() -> Self {
        HoldEvents { tx: watch::channel(0).0, denied: Arc::default() }
    }
}

impl HoldEvents {
    /// Something about this instance's holds changed.
    pub fn bump(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that wakes at the next bump.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Hold `id` (valid until `expires_at`) was denied by an operator.
    pub fn denied(&self, id: &str, expires_at: i64) {
        let Ok(mut d) = self.denied.lock() else { return };
        let now = chrono::Utc::now().timestamp();
        d.retain(|(_, until)| *until > now);
        if d.len() >= DENIED_KEPT {
            d.pop_front();
        }
        d.push_back((id.to_string(), expires_at));
        drop(d);
        self.bump();
    }

    /// Was hold `id` denied here (and would it not have expired yet)?
    pub fn was_denied(&self, id: &str) -> bool {
        let now = chrono::Utc::now().timestamp();
        self.denied.lock().is_ok_and(|d| d.iter().any(|(i, until)| i == id && *until > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bump_wakes_a_subscriber() {
        let e = HoldEvents::default();
        let mut rx = e.subscribe();
        e.bump();
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert_eq!(*rx.borrow(), 1);
    }

    #[test]
    fn denials_are_remembered_until_the_hold_would_expire_and_bounded() {
        let e = HoldEvents::default();
        let later = chrono::Utc::now().timestamp() + 60;
        e.denied("a", later);
        e.denied("gone", 0);
        assert!(e.was_denied("a") && !e.was_denied("gone") && !e.was_denied("b"));
        for i in 0..DENIED_KEPT {
            e.denied(&format!("x{i}"), later);
        }
        assert!(!e.was_denied("a"), "the oldest is forgotten first");
        assert!(e.was_denied(&format!("x{}", DENIED_KEPT - 1)));
    }
}
