//! A change counter for pending holds on this instance: bumped when a hold is made,
//! approved, denied or redeemed here, so a live hold stream re-lists at once instead of at
//! its next periodic re-list (which catches changes made by other instances sharing Redis).

use tokio::sync::watch;

/// The counter. Cheap to clone; bumping never waits for a watcher.
#[derive(Debug, Clone)]
pub struct HoldEvents {
    tx: watch::Sender<u64>,
}

impl Default for HoldEvents {
    fn default() -> Self {
        HoldEvents { tx: watch::channel(0).0 }
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
}
