//! The audit trail (DESIGN §9): every decision appended to its instance's chain of daily files
//! `audit-<instance>-YYYYMMDD.jsonl`, hash-chained across files.
//!
//! Records are written on the caller's thread under the chain lock (`writer.rs`); the fsync
//! thread (`sync.rs`) group-commits them, answers callers waiting for durability, and
//! publishes durable records (`hub.rs`) to live streams and sinks (`sinks/`: SQLite index,
//! Redis Stream, stdout). `hash` is the SHA-256 of the record's canonical JSON without `hash`;
//! `prev_hash` links to the previous record of the same instance (64 zeros for the first).
//!
//! Crash safety (`recover.rs`): a torn tail is moved into `quarantine/` on startup and a
//! `recovery` record names it. Failures (`health.rs`): a write or fsync error fails the trail
//! closed until a record is written and synced again. Truncation evidence
//! (`checkpoint.rs`): signed checkpoints in the chain and in `checkpoints-<instance>.jsonl`.
//! `verify.rs` checks all of it; `retention.rs` archives or removes old files.

pub mod checkpoint;
mod claim;
pub mod files;
mod health;
pub mod hub;
pub mod index;
pub mod reader;
pub mod recover;
pub mod retention;
pub mod setup;
pub mod sinks;
mod sync;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use checkpoint::AuditCheckpoint;
pub use hub::{Published, Subscription};
pub use writer::Clock;

use crate::metrics::METRICS;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited decision or outcome. `seq`, `ts`, `instance` and `prev_hash` are set by the
/// writer, which also appends `hash`.
///
/// Fields are declared in byte order of their JSON names (nested structs too): serializing
/// the struct then yields canonical JSON directly, so the writer hashes the bytes it writes
/// without building and re-sorting a JSON tree. `serialization_is_canonical` checks this.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent {
    pub action: String,
    /// Who acted, on records of operator actions (the admin API): the approver of a hold,
    /// the operator who reloaded the policy. `sub` stays the subject whose call it is.
    /// Absent (not `null`) on every other record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<AuditActor>,
    /// On `audit.checkpoint` records only: the signed checkpoint of the record before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<AuditCheckpoint>,
    pub corr_id: String,
    pub decision: AuditDecision,
    pub instance: String,
    pub latency_ms: f64,
    pub mcp_method: Option<String>,
    /// What kind of message was decided: `request`, `notification`, `response`,
    /// `server_request` (a server's own request relayed to the client), `stream` (GET),
    /// `end_session` (DELETE) or `rest`.
    pub message: Option<&'static str>,
    pub outcome: AuditOutcome,
    /// `decision` (before acting), `completion` (after the upstream answered or failed), or
    /// `system` (the trail's own records: checkpoint, recovery, retention).
    pub phase: &'static str,
    /// On calls of a tool of a server with pinning on: what its pin said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<AuditPin>,
    pub prev_hash: String,
    pub provider: Option<String>,
    /// On an operator's hold decision (`holds.decide`): the reason the approver gave.
    /// Absent (not `null`) on every other record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On `audit.recovery` records only: the torn tail moved aside at startup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<AuditRecovery>,
    pub request_hash: Option<String>,
    pub result_hash: Option<String>,
    /// On `audit.retention` records only: the files archived or removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<AuditRetention>,
    pub seq: u64,
    pub server: Option<String>,
    pub sub: String,
    pub tenant: String,
    #[serde(rename = "toolId")]
    pub tool_id: Option<String>,
    pub ts: String,
}

/// Tool-definition pinning's view of a call (`mcp.servers.<name>.pinning`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditPin {
    /// Fingerprint of the tool's current definition (`null`: the gateway has not seen it).
    pub definition_hash: Option<String>,
    /// `warn` or `enforce`.
    pub mode: &'static str,
    /// The definition is the approved one; `false` in `warn` mode is a flagged mismatch.
    pub pinned: bool,
}

/// The acting identity of an operator action.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditActor {
    /// `admin_token` (the configured admin bearer token) or `jwt` (a gateway JWT).
    pub kind: &'static str,
    /// The JWT's `sub` (empty for the admin token).
    pub sub: String,
    /// The JWT's tenant (empty for the admin token).
    pub tenant: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditDecision {
    pub allow: bool,
    pub policy_revision: String,
    pub reasons: Vec<String>,
    /// The outcome's label ([`crate::enforce::Outcome::label`]).
    pub result: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditOutcome {
    pub error_code: Option<String>,
    pub status: Option<u16>,
}

/// A torn tail moved aside: which bytes of which file, and where they are now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecovery {
    /// The chain file (name) the tail was cut from.
    pub file: String,
    /// Byte range `from..to` of the tail in that file.
    pub from: u64,
    /// Its copy, relative to the audit directory.
    pub quarantine: String,
    pub reason: String,
    pub to: u64,
}

/// Files taken out of the directory by retention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRetention {
    /// `archive` (compressed to `.jsonl.gz`) or `delete`.
    pub action: String,
    pub files: Vec<RetainedFile>,
}

/// One file handled by retention: the chain's continuity across the cut is its last record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetainedFile {
    pub file: String,
    pub first_seq: u64,
    pub last_hash: String,
    pub last_seq: u64,
}

/// The decision of the trail's own records.
pub(crate) fn system_decision(result: &str) -> AuditDecision {
    AuditDecision { allow: true, result: result.to_string(), ..Default::default() }
}

/// Why the trail could not take a record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuditError {
    #[error("audit write to {file}: {error}")]
    Write { file: String, error: String },
    #[error("audit fsync: {0}")]
    Sync(String),
    #[error("{path}: {error}")]
    Io { path: String, error: String },
    #[error("audit record encoding: {0}")]
    Encode(String),
    #[error("audit writer stopped")]
    Stopped,
    #[error("audit thread: {0}")]
    Thread(String),
    #[error("{0}")]
    Config(String),
}

impl AuditError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> AuditError {
        AuditError::Io { path: path.display().to_string(), error: e.to_string() }
    }

    pub(crate) fn write(file: &str, e: std::io::Error) -> AuditError {
        AuditError::Write { file: file.to_string(), error: e.to_string() }
    }
}

/// What read-only calls do when their record cannot be written (`audit.on_error`).
/// Write-class calls are always refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse them too (503): nothing happens unrecorded.
    #[default]
    FailClosed,
    /// Let them through, counted in `fastmcp_audit_unrecorded_total`.
    Continue,
}

/// Checkpoint settings of an open log.
pub struct CheckpointOptions {
    pub signer: checkpoint::Signer,
    pub every_records: u64,
    pub every: Duration,
    /// Directory of the checkpoint file (the audit directory, or another disk).
    pub file_dir: PathBuf,
}

/// How to open the log.
pub struct Options {
    pub instance: String,
    /// Minimum time between two fsyncs (group commit).
    pub window: Duration,
    /// Records nobody waits for are synced and published within this.
    pub publish_every: Duration,
    pub on_error: OnError,
    pub checkpoints: Option<CheckpointOptions>,
    /// Records kept in memory for stream resumption.
    pub ring: usize,
    /// Records a live stream may fall behind before it is dropped.
    pub live_queue: usize,
    /// The clock (tests); `None`: UTC now.
    pub clock: Option<Clock>,
}

impl Options {
    pub fn new(instance: impl Into<String>) -> Options {
        Options {
            instance: instance.into(),
            window: Duration::ZERO,
            publish_every: Duration::from_millis(50),
            on_error: OnError::FailClosed,
            checkpoints: None,
            ring: 10_000,
            live_queue: 1024,
            clock: None,
        }
    }
}

/// Handle to the audit trail. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    chain: Arc<parking_lot::Mutex<writer::Chain>>,
    syncer: Arc<sync::Syncer>,
    health: Arc<health::Health>,
    hub: Arc<hub::Hub>,
    on_error: OnError,
    instance: String,
    dir: PathBuf,
    clock: Clock,
    /// Held for the process's lifetime: no other process writes this chain.
    _claim: Option<std::fs::File>,
}

/// Resolves when a written record is on stable storage (fsynced).
pub struct Durable(Option<oneshot::Receiver<Result<(), AuditError>>>);

impl Durable {
    /// Waits for the fsync covering the record.
    pub async fn wait(self) -> Result<(), AuditError> {
        match self.0 {
            Some(rx) => rx.await.map_err(|_| AuditError::Stopped)?,
            None => Ok(()),
        }
    }
}

impl AuditLog {
    /// Opens `dir` for `instance` with default options (no checkpoints).
    pub fn open(dir: &Path, instance: String) -> Result<AuditLog, AuditError> {
        Self::open_with(dir, Options::new(instance))
    }

    /// Opens `dir` (creating it), finds where `instance`'s chain ends (a torn tail is moved
    /// aside before the first record is written), and starts the fsync thread. A directory
    /// that cannot be written does not stop the start: the trail then fails closed.
    pub fn open_with(dir: &Path, mut opts: Options) -> Result<AuditLog, AuditError> {
        if !files::valid_instance(&opts.instance) {
            return Err(AuditError::Config(format!(
                "audit.instance {:?}: 1-64 of A-Z a-z 0-9 . _ - (it names the chain's files)",
                opts.instance
            )));
        }
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!(dir = %dir.display(), error = %e, "audit directory cannot be created");
        }
        let (instance, claimed) = claim::claim(dir, &opts.instance)?;
        opts.instance = instance;
        let tail = recover::tail(dir, &opts.instance)?;
        let clock: Clock = opts.clock.unwrap_or_else(|| Arc::new(chrono::Utc::now));
        let last = tail.seq;
        let mut chain = writer::Chain::new(dir.to_path_buf(), opts.instance.clone(), tail, clock.clone());
        let checkpoint_file = opts
            .checkpoints
            .as_ref()
            .map(|c| checkpoint::CheckpointFile::new(files::checkpoint_file(&c.file_dir, &opts.instance)));
        if let Some(c) = opts.checkpoints {
            chain.set_checkpoints(writer::Checkpoints {
                signer: Arc::new(c.signer),
                every_records: c.every_records.max(1),
                every: c.every,
            });
        }
        let health = Arc::new(health::Health::new());
        if let Err(e) = chain.recover() {
            // Retried before the next record; until then the trail is failed (closed).
            health.fail("write", last, &e.to_string());
        }
        let chain = Arc::new(parking_lot::Mutex::new(chain));
        let hub = Arc::new(hub::Hub::new(opts.ring, opts.live_queue, last));
        let syncer = Arc::new(sync::Syncer::new(opts.window, opts.publish_every));
        syncer.start(Arc::downgrade(&chain), health.clone(), hub.clone(), checkpoint_file)?;
        let inner = Inner {
            chain,
            syncer,
            health,
            hub,
            on_error: opts.on_error,
            instance: opts.instance,
            dir: dir.to_path_buf(),
            clock,
            _claim: claimed,
        };
        Ok(AuditLog { inner: Arc::new(inner) })
    }

    /// Appends `event` to the file (it then survives a process exit) and returns a handle that
    /// resolves once it is fsynced (it then survives a crash). While the trail is failed, it
    /// returns only once the record is synced: an error means the disk still fails.
    pub async fn append_written(&self, event: &AuditEvent) -> Result<Durable, AuditError> {
        let probing = self.inner.health.is_failed();
        self.write(event)?;
        let durable = Durable(Some(self.inner.syncer.request()));
        if probing {
            durable.wait().await?;
            return Ok(Durable(None));
        }
        Ok(durable)
    }

    /// Appends `event`; resolves once written, and also fsynced when `durable` (or while the
    /// trail is failed).
    pub async fn append(&self, event: &AuditEvent, durable: bool) -> Result<(), AuditError> {
        let probing = self.inner.health.is_failed();
        self.write(event)?;
        if durable || probing {
            Durable(Some(self.inner.syncer.request())).wait().await
        } else {
            Ok(())
        }
    }

    /// Appends `event` now, not fsynced: for a record written where nothing can be awaited
    /// (a decision inside a response hook). The write is the same as [`AuditLog::append`]'s.
    pub fn append_now(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.write(event)
    }

    /// The decision record of an admitted read-only call: like [`AuditLog::append`], but with
    /// `audit.on_error: continue` a failure lets the call through (counted).
    pub async fn append_read_only(&self, event: &AuditEvent) -> Result<(), AuditError> {
        match self.append(event, false).await {
            Err(e) if self.inner.on_error == OnError::Continue => {
                METRICS.audit_unrecorded.inc();
                tracing::warn!(corr_id = %event.corr_id, error = %e, "read-only call let through unrecorded (audit.on_error: continue)");
                Ok(())
            }
            r => r,
        }
    }

    fn write(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut chain = self.inner.chain.lock();
        let result = chain.append(event.clone());
        crate::metrics::audit_records(1, result.is_ok());
        if let Err(e) = &result {
            self.inner.health.fail("write", chain.seq(), &e.to_string());
        }
        result.map(|_| ())
    }

    /// Records are written and synced (no failure since the last recovery).
    pub fn healthy(&self) -> bool {
        !self.inner.health.is_failed()
    }

    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The seq of the last durable (published) record.
    pub fn last_published(&self) -> u64 {
        self.inner.hub.last()
    }

    pub(crate) fn hub(&self) -> Arc<hub::Hub> {
        self.inner.hub.clone()
    }

    /// The seq of the last record written (durable or not yet).
    pub fn last_written(&self) -> u64 {
        self.inner.chain.lock().seq()
    }

    /// Live durable records after `after` (`None`: from now on).
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        self.inner.hub.subscribe(after)
    }

    /// A bounded queue of published batches for a sink.
    pub fn add_sink(&self, name: &'static str, cap: usize) -> std::sync::mpsc::Receiver<hub::Batch> {
        self.inner.hub.add_sink(name, cap)
    }

    /// Makes a checkpoint now if records came since the last one (shutdown, retention).
    pub fn checkpoint_now(&self) {
        self.inner.chain.lock().checkpoint();
    }

    /// The current day's file name suffix (retention never touches it).
    pub(crate) fn today(&self) -> String {
        let c = self.inner.chain.lock();
        c.current_day().map(String::from).unwrap_or_else(|| writer::today(&self.inner.clock))
    }

    /// Appends one of the trail's own records durably (retention).
    pub(crate) async fn append_system(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.append(&event, true).await
    }
}

/// Sorted chain file paths of `dir` (every instance).
pub fn chain_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    files::list(dir).map(|f| f.into_iter().map(|f| f.path).collect()).map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests;
