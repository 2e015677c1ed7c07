//! The fsync thread: group commit, then publishing. Every fsync covers all records written
//! before it started; waiters are answered, the batch is published to the hub (live streams
//! and sinks: records reach them only once durable), the checkpoint lines it covers go to the
//! checkpoint file, and a time-based checkpoint is made when due. Records nobody waits for are
//! synced within `publish_every`.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::checkpoint::{CheckpointFile, CheckpointLine};
use super::health::Health;
use super::hub::{Hub, Published};
use super::writer::Chain;
use super::AuditError;
use crate::metrics::METRICS;

pub(super) type Ack = oneshot::Sender<Result<(), AuditError>>;

/// What the fsync thread shares with appenders.
pub(super) struct Syncer {
    pending: Mutex<Vec<Ack>>,
    wake: Condvar,
    /// Minimum time between two fsyncs: under load, records arriving meanwhile share the next
    /// fsync (fewer, larger commits); an idle log fsyncs at once.
    window: Duration,
    publish_every: Duration,
}

impl Syncer {
    pub(super) fn new(window: Duration, publish_every: Duration) -> Syncer {
        Syncer { pending: Mutex::new(Vec::new()), wake: Condvar::new(), window, publish_every }
    }

    /// Asks for an fsync covering records already written; the receiver resolves when done.
    pub(super) fn request(&self) -> oneshot::Receiver<Result<(), AuditError>> {
        let (tx, rx) = oneshot::channel();
        match self.pending.lock() {
            Ok(mut p) => {
                p.push(tx);
                self.wake.notify_one();
            }
            Err(_) => {
                let _ = tx.send(Err(AuditError::Stopped));
            }
        }
        rx
    }

    /// Runs the thread until the log is dropped (`chain`'s last strong reference).
    pub(super) fn start(
        self: &Arc<Self>,
        chain: std::sync::Weak<parking_lot::Mutex<Chain>>,
        health: Arc<Health>,
        hub: Arc<Hub>,
        checkpoints: Option<CheckpointFile>,
    ) -> Result<(), AuditError> {
        let me = self.clone();
        let mut state = Round { held: Vec::new(), retry: Vec::new(), lines: Vec::new(), checkpoints };
        std::thread::Builder::new()
            .name("fastmcp-audit-sync".into())
            .spawn(move || {
                let mut last_sync: Option<Instant> = None;
                loop {
                    let Some(waiters) = me.wait(&mut last_sync) else { return };
                    let Some(chain) = chain.upgrade() else {
                        for w in waiters {
                            let _ = w.send(Err(AuditError::Stopped));
                        }
                        return;
                    };
                    let taken = {
                        let mut c = chain.lock();
                        if c.checkpoint_due() {
                            c.checkpoint();
                        }
                        c.take()
                    };
                    drop(chain);
                    if waiters.is_empty() && taken.written.is_empty() && state.held.is_empty() && state.lines.is_empty()
                    {
                        continue;
                    }
                    last_sync = Some(Instant::now());
                    state.round(taken, waiters, &health, &hub);
                }
            })
            .map_err(|e| AuditError::Thread(e.to_string()))?;
        Ok(())
    }

    /// Waits for waiters or the publish tick; respects the group-commit window.
    fn wait(&self, last_sync: &mut Option<Instant>) -> Option<Vec<Ack>> {
        let mut p = self.pending.lock().ok()?;
        if p.is_empty() {
            p = self.wake.wait_timeout(p, self.publish_every).ok()?.0;
        }
        if p.is_empty() {
            return Some(Vec::new());
        }
        drop(p);
        if let Some(t) = *last_sync {
            let next = t + self.window;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        Some(std::mem::take(&mut *self.pending.lock().ok()?))
    }
}

/// State kept across rounds.
struct Round {
    /// Written, not yet synced (an fsync failed): published after the next good one.
    held: Vec<Arc<Published>>,
    /// Files whose fsync failed, retried.
    retry: Vec<Arc<File>>,
    /// Checkpoint lines not yet in the checkpoint file.
    lines: Vec<CheckpointLine>,
    checkpoints: Option<CheckpointFile>,
}

impl Round {
    fn round(&mut self, taken: super::writer::Taken, waiters: Vec<Ack>, health: &Health, hub: &Hub) {
        let mut files = std::mem::take(&mut self.retry);
        for f in taken.files {
            if !files.iter().any(|g| Arc::ptr_eq(g, &f)) {
                files.push(f);
            }
        }
        let batch = taken.written.len();
        self.held.extend(taken.written);
        self.lines.extend(taken.checkpoints);
        let mut result = Ok(());
        for f in &files {
            if let Err(e) = f.sync_data() {
                result = Err(AuditError::Sync(e.to_string()));
            }
        }
        let top = self.held.last().map(|r| r.seq).unwrap_or(0);
        match &result {
            Ok(()) => {
                if batch > 0 {
                    // Rounds that only answer waiters whose records an earlier fsync covered
                    // sync nothing: not a batch.
                    METRICS.audit_fsync_batch.observe(batch as f64);
                }
                health.synced(top);
                hub.publish(std::mem::take(&mut self.held));
                if let (Some(file), false) = (&self.checkpoints, self.lines.is_empty()) {
                    match file.append(&self.lines) {
                        Ok(()) => self.lines.clear(),
                        Err(e) => {
                            tracing::error!(file = %file.path().display(), error = %e, "audit checkpoint file not written; retrying")
                        }
                    }
                } else {
                    self.lines.clear();
                }
            }
            Err(e) => {
                health.fail("sync", top, &e.to_string());
                self.retry = files;
            }
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}
