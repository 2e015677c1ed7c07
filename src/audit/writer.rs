//! The chain writer (sequence, hashes, daily files) and the fsync thread (group commit).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::AuditEvent;
use crate::canonical;

/// The chain's state; callers hold the audit lock while appending.
///
/// More than one process may append to one directory: during a zero-downtime upgrade
/// (`serve --upgrade`) the old gateway drains while the new one serves. Each append therefore
/// holds an exclusive `flock` on the directory itself (no extra file among the records), and
/// when the file has grown since this process last wrote (the other process appended), the
/// chain's tail is re-read before linking to it: the two processes extend one chain instead
/// of forking it.
pub(super) struct Chain {
    dir: PathBuf,
    instance: String,
    seq: u64,
    prev: String,
    file: Option<(String, Arc<File>)>,
    /// The directory, opened to be locked exclusively for each append (across processes).
    lock: File,
    /// Length of the current file after this process's last append (`None`: not yet known).
    end: Option<u64>,
}

impl Chain {
    pub(super) fn new(dir: PathBuf, instance: String, seq: u64, prev: String) -> Result<Chain, String> {
        let lock = File::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Tried once here, so a filesystem without locks fails at startup, not per request.
        lock.lock().map_err(|e| format!("{}: cannot lock the audit directory: {e}", dir.display()))?;
        let _ = lock.unlock();
        Ok(Chain { dir, instance, seq, prev, file: None, lock, end: None })
    }

    /// Appends under the directory lock, first catching up with records another process
    /// wrote since this one last did.
    pub(super) fn append(&mut self, event: AuditEvent) -> Result<Arc<File>, String> {
        self.lock.lock().map_err(|e| format!("audit lock: {e}"))?;
        let out = self.catch_up().and_then(|()| self.append_locked(event));
        // Unlocking cannot fail on a file this process holds open; closing would release too.
        let _ = self.lock.unlock();
        out
    }

    /// Re-reads the tail when the current file is not as this process left it, when the day
    /// has turned (another process may have started the new file), or when this process has
    /// not written yet (another may have since the chain was opened).
    fn catch_up(&mut self) -> Result<(), String> {
        let today = chrono::Utc::now().format("%Y%m%d").to_string();
        let len = match &self.file {
            Some((day, f)) if *day == today => Some(f.metadata().map_err(|e| format!("audit stat: {e}"))?.len()),
            _ => None,
        };
        if len.is_none() || len != self.end {
            let (seq, prev) = super::chain_tail(&self.dir)?;
            self.seq = seq;
            self.prev = prev;
        }
        Ok(())
    }

    /// Completes `event` (seq, ts, instance, prev_hash), writes it with its hash as one line
    /// and returns the file it went to.
    fn append_locked(&mut self, mut event: AuditEvent) -> Result<Arc<File>, String> {
        let now = chrono::Utc::now();
        let day = now.format("%Y%m%d").to_string();
        let file = match &self.file {
            Some((d, f)) if *d == day => f.clone(),
            _ => self.rotate(&day)?,
        };
        event.seq = self.seq + 1;
        event.ts = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        event.instance.clone_from(&self.instance);
        event.prev_hash = std::mem::take(&mut self.prev);
        let mut line = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        let hash = canonical::sha256_hex(&line);
        // `{...}` becomes `{...,"hash":"<hex>"}`; verification re-canonicalizes the record
        // without `hash`, so where the key sits in the line does not matter.
        line.pop();
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(hash.as_bytes());
        line.extend_from_slice(b"\"}\n");
        let written = (&*file).write_all(&line).map_err(|e| format!("audit write: {e}"));
        // Only a record that reached the file advances the chain.
        match written {
            Ok(()) => {
                self.seq += 1;
                self.prev = hash;
                self.end = file.metadata().ok().map(|m| m.len());
                Ok(file)
            }
            Err(e) => {
                self.prev = event.prev_hash;
                Err(e)
            }
        }
    }

    /// Finishes the previous day's file (fsynced) and opens the next.
    fn rotate(&mut self, day: &str) -> Result<Arc<File>, String> {
        if let Some((_, f)) = &self.file {
            f.sync_data().map_err(|e| format!("audit fsync: {e}"))?;
        }
        let path = self.dir.join(format!("audit-{day}.jsonl"));
        let f =
            OpenOptions::new().create(true).append(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let f = Arc::new(f);
        self.file = Some((day.to_string(), f.clone()));
        Ok(f)
    }
}

type Ack = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
struct Pending {
    /// Files with records waiting for an fsync (normally one), and who waits.
    files: Vec<Arc<File>>,
    waiters: Vec<Ack>,
}

/// The fsync thread: every fsync covers all records written before it started.
pub(super) struct Syncer {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Minimum time between two fsyncs: under load, records arriving meanwhile share the next
    /// fsync (fewer, larger commits); an idle log fsyncs at once.
    window: Duration,
}

impl Syncer {
    pub(super) fn start(window: Duration) -> Result<Arc<Syncer>, String> {
        let s = Arc::new(Syncer { pending: Mutex::new(Pending::default()), wake: Condvar::new(), window });
        let worker = s.clone();
        std::thread::Builder::new()
            .name("fastmcp-audit-sync".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("audit fsync thread: {e}"))?;
        Ok(s)
    }

    /// Asks for an fsync of `file` (whose record is already written); the receiver resolves
    /// when it is done.
    pub(super) fn request(&self, file: Arc<File>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        match self.pending.lock() {
            Ok(mut p) => {
                if !p.files.iter().any(|f| Arc::ptr_eq(f, &file)) {
                    p.files.push(file);
                }
                p.waiters.push(tx);
                self.wake.notify_one();
            }
            Err(_) => {
                let _ = tx.send(Err("audit fsync thread failed".into()));
            }
        }
        rx
    }

    fn run(&self) {
        let mut last_sync: Option<Instant> = None;
        loop {
            if let Some(t) = last_sync {
                let next = t + self.window;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
            }
            let batch = {
                let Ok(mut p) = self.pending.lock() else { return };
                while p.waiters.is_empty() {
                    p = match self.wake.wait(p) {
                        Ok(p) => p,
                        Err(_) => return,
                    };
                }
                std::mem::take(&mut *p)
            };
            last_sync = Some(Instant::now());
            let mut result = Ok(());
            for f in &batch.files {
                if let Err(e) = f.sync_data() {
                    tracing::error!(error = %e, "audit fsync failed");
                    result = Err(format!("audit fsync: {e}"));
                }
            }
            for w in batch.waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}
