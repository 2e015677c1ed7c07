//! The chain writer: sequence, hashes, daily files, torn-tail recovery and checkpoints.
//! Callers hold the chain lock while appending (a page-cache append costs microseconds, less
//! than handing the record to another thread); the fsync thread (`sync.rs`) takes what was
//! written, makes it durable and publishes it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::checkpoint::{CheckpointLine, Signer};
use super::files;
use super::hub::Published;
use super::recover::{self, Torn};
use super::{AuditError, AuditEvent, AuditRecovery};
use crate::canonical;

/// The clock records are stamped with (tests move it across days).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the fsync thread takes after each round.
#[derive(Default)]
pub(super) struct Taken {
    pub written: Vec<Arc<Published>>,
    pub files: Vec<Arc<File>>,
    pub checkpoints: Vec<CheckpointLine>,
}

/// The checkpoint cadence and key.
pub(super) struct Checkpoints {
    pub signer: Arc<Signer>,
    /// A checkpoint after this many records.
    pub every_records: u64,
    /// A checkpoint this long after the last one when records came meanwhile.
    pub every: std::time::Duration,
}

struct Open {
    day: String,
    day_no: i64,
    name: String,
    f: Arc<File>,
    /// Bytes of whole records in the file: a failed append is cut back to it.
    len: u64,
    /// A failed append could not be cut back: nothing is written until it is.
    dirty: bool,
}

/// The chain's state.
pub(super) struct Chain {
    dir: PathBuf,
    instance: String,
    seq: u64,
    prev: String,
    file: Option<Open>,
    clock: Clock,
    /// A torn tail found at startup, not yet moved aside.
    torn: Option<Torn>,
    /// The `recovery` record still to write (the tail is already in quarantine).
    recovery: Option<AuditRecovery>,
    taken: Taken,
    checkpoints: Option<Checkpoints>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl Chain {
    pub(super) fn new(dir: PathBuf, instance: String, tail: recover::Tail, clock: Clock) -> Chain {
        Chain {
            dir,
            instance,
            seq: tail.seq,
            prev: tail.hash,
            file: None,
            clock,
            torn: tail.torn,
            recovery: None,
            taken: Taken::default(),
            checkpoints: None,
            // Records written before this start are covered by the first checkpoint too.
            since_checkpoint: u64::from(tail.seq > 0),
            last_checkpoint: Instant::now(),
        }
    }

    pub(super) fn set_checkpoints(&mut self, c: Checkpoints) {
        self.checkpoints = Some(c);
    }

    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// Moves a torn tail aside and writes its `recovery` record, if one is waiting. Called
    /// before every append, so a failure (a read-only directory) is retried with the next.
    pub(super) fn recover(&mut self) -> Result<(), AuditError> {
        if let Some(t) = &self.torn {
            self.recovery = Some(recover::quarantine(&self.dir, t)?);
            self.torn = None;
        }
        if let Some(r) = self.recovery.clone() {
            let ev = AuditEvent {
                action: "audit.recovery".into(),
                phase: "system",
                decision: super::system_decision("recovered"),
                recovery: Some(r),
                ..Default::default()
            };
            self.write(ev)?;
            self.recovery = None;
        }
        Ok(())
    }

    /// Appends `event` (after any pending recovery) and a checkpoint when one is due;
    /// returns the file the record went to.
    pub(super) fn append(&mut self, event: AuditEvent) -> Result<Arc<File>, AuditError> {
        self.recover()?;
        let f = self.write(event)?;
        self.since_checkpoint += 1;
        if self.checkpoints.as_ref().is_some_and(|c| self.since_checkpoint >= c.every_records) {
            self.checkpoint();
        }
        Ok(f)
    }

    /// Is a time-based checkpoint due?
    pub(super) fn checkpoint_due(&self) -> bool {
        self.since_checkpoint > 0
            && self.checkpoints.as_ref().is_some_and(|c| self.last_checkpoint.elapsed() >= c.every)
    }

    /// Signs `(instance, seq, hash, time)` of the last record and writes the checkpoint
    /// record. A failure leaves it due (the next append or tick tries again).
    pub(super) fn checkpoint(&mut self) {
        let Some(c) = &self.checkpoints else { return };
        if self.seq == 0 || self.since_checkpoint == 0 {
            return;
        }
        let ts = (self.clock)().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let signed = c.signer.sign(&self.instance, self.seq, &self.prev, &ts);
        let ev = AuditEvent {
            action: "audit.checkpoint".into(),
            phase: "system",
            decision: super::system_decision("checkpoint"),
            checkpoint: Some(signed.clone()),
            ..Default::default()
        };
        match self.write(ev) {
            Ok(_) => {
                self.taken.checkpoints.push(CheckpointLine {
                    checkpoint: signed,
                    instance: self.instance.clone(),
                    record_seq: self.seq,
                });
                self.since_checkpoint = 0;
                self.last_checkpoint = Instant::now();
                crate::metrics::METRICS.audit_checkpoints.inc();
            }
            Err(e) => tracing::error!(error = %e, "audit checkpoint not written"),
        }
    }

    /// What was written since the last call (for the fsync thread).
    pub(super) fn take(&mut self) -> Taken {
        std::mem::take(&mut self.taken)
    }

    /// Completes `event` (seq, ts, instance, prev_hash), writes it with its hash as one line.
    /// Only a record that reached the file whole advances the chain; a partial write is cut
    /// back so the file never holds half a record followed by more.
    fn write(&mut self, mut event: AuditEvent) -> Result<Arc<File>, AuditError> {
        let now = (self.clock)();
        // The day number decides rotation; the file name is formatted only when it changes.
        let day_no = now.timestamp().div_euclid(86_400);
        if self.file.as_ref().is_none_or(|o| o.day_no != day_no) {
            self.rotate(&now.format("%Y%m%d").to_string(), day_no)?;
        }
        let Some(open) = self.file.as_mut() else { return Err(AuditError::Stopped) };
        if open.dirty {
            open.f.set_len(open.len).map_err(|e| AuditError::write(&open.name, e))?;
            open.dirty = false;
        }
        event.seq = self.seq + 1;
        event.ts = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        event.instance.clone_from(&self.instance);
        event.prev_hash = std::mem::take(&mut self.prev);
        let mut line = match serde_json::to_vec(&event) {
            Ok(l) => l,
            Err(e) => {
                self.prev = std::mem::take(&mut event.prev_hash);
                return Err(AuditError::Encode(e.to_string()));
            }
        };
        let hash = canonical::sha256_hex(&line);
        // `{...}` becomes `{...,"hash":"<hex>"}`; verification re-canonicalizes the record
        // without `hash`, so where the key sits in the line does not matter.
        line.pop();
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(hash.as_bytes());
        line.extend_from_slice(b"\"}\n");
        if let Err(e) = (&*open.f).write_all(&line) {
            self.prev = std::mem::take(&mut event.prev_hash);
            open.dirty = open.f.set_len(open.len).is_err();
            return Err(AuditError::write(&open.name, e));
        }
        open.len += line.len() as u64;
        line.pop();
        self.seq += 1;
        self.prev = hash;
        if !self.taken.files.iter().any(|f| Arc::ptr_eq(f, &open.f)) {
            self.taken.files.push(open.f.clone());
        }
        self.taken.written.push(Arc::new(Published::new(self.seq, line, event)));
        Ok(open.f.clone())
    }

    /// Opens the file of `day` (the previous one is synced by the fsync thread, which took
    /// it with its last records).
    fn rotate(&mut self, day: &str, day_no: i64) -> Result<(), AuditError> {
        let name = files::file_name(&self.instance, day);
        let path = self.dir.join(&name);
        let created = !path.exists();
        let f = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| AuditError::write(&name, e))?;
        let len = f.metadata().map_err(|e| AuditError::write(&name, e))?.len();
        if created {
            // The new name must survive a crash with the records in it.
            files::sync_dir(&self.dir).map_err(|e| AuditError::write(&name, e))?;
        }
        self.file = Some(Open { day: day.to_string(), day_no, name, f: Arc::new(f), len, dirty: false });
        Ok(())
    }

    /// The file currently written (for retention, which never touches it).
    pub(super) fn current_day(&self) -> Option<&str> {
        self.file.as_ref().map(|o| o.day.as_str())
    }
}

/// The chain file of `instance` on the day `clock` says.
pub(super) fn today(clock: &Clock) -> String {
    clock().format("%Y%m%d").to_string()
}
