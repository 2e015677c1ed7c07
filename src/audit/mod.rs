//! The audit trail: every decision appended to `audit-YYYYMMDD.jsonl`, hash-chained across
//! files (DESIGN §9).
//!
//! One writer thread owns the files and the chain. Callers send events over a channel; the
//! writer drains whatever has queued, writes the batch, fsyncs once if any caller in the batch
//! asked for durability (group commit), then acknowledges. `hash` is the SHA-256 of the
//! record's canonical JSON without `hash`; `prev_hash` links to the previous record (64 zeros
//! for the first).

pub mod verify;
mod writer;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

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
    pub corr_id: String,
    pub decision: AuditDecision,
    pub instance: String,
    pub latency_ms: f64,
    pub mcp_method: Option<String>,
    /// What kind of message was decided: `request`, `notification`, `response`, `stream`
    /// (GET), `end_session` (DELETE) or `rest`.
    pub message: Option<&'static str>,
    pub outcome: AuditOutcome,
    /// `decision` (before acting) or `completion` (after the upstream answered or failed).
    pub phase: &'static str,
    pub prev_hash: String,
    pub provider: Option<String>,
    pub request_hash: Option<String>,
    pub result_hash: Option<String>,
    pub seq: u64,
    pub server: Option<String>,
    pub sub: String,
    pub tenant: String,
    #[serde(rename = "toolId")]
    pub tool_id: Option<String>,
    pub ts: String,
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

/// Handle to the audit trail. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    chain: Arc<Mutex<writer::Chain>>,
    syncer: Arc<writer::Syncer>,
}

/// Resolves when a written record is on stable storage (fsynced).
pub struct Durable(oneshot::Receiver<Result<(), String>>);

impl Durable {
    /// Waits for the fsync covering the record.
    pub async fn wait(self) -> Result<(), String> {
        self.0.await.map_err(|_| "audit fsync thread stopped".to_string())?
    }
}

impl AuditLog {
    /// Opens `dir` (creating it), continues the chain found there, and starts the fsync thread.
    pub fn open(dir: &Path, instance: String) -> Result<AuditLog, String> {
        Self::open_with_window(dir, instance, std::time::Duration::ZERO)
    }

    /// Like [`AuditLog::open`], with at least `window` between two fsyncs (group commit).
    pub fn open_with_window(dir: &Path, instance: String, window: std::time::Duration) -> Result<AuditLog, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (seq, prev) = chain_tail(dir)?;
        let chain = writer::Chain::new(dir.to_path_buf(), instance, seq, prev)?;
        Ok(AuditLog { chain: Arc::new(Mutex::new(chain)), syncer: writer::Syncer::start(window)? })
    }

    /// Appends `event` to the file (it then survives a process exit) and returns a handle that
    /// resolves once it is fsynced (it then survives a crash). The write happens on the
    /// caller's thread under the chain lock: a page-cache append costs microseconds, less than
    /// handing the record to another thread and waking back up.
    pub async fn append_written(&self, event: &AuditEvent) -> Result<Durable, String> {
        let file = self.write(event)?;
        Ok(Durable(self.syncer.request(file)))
    }

    /// Appends `event`; resolves once written, and also fsynced when `durable`.
    pub async fn append(&self, event: &AuditEvent, durable: bool) -> Result<(), String> {
        let file = self.write(event)?;
        if durable {
            Durable(self.syncer.request(file)).wait().await
        } else {
            Ok(())
        }
    }

    fn write(&self, event: &AuditEvent) -> Result<Arc<File>, String> {
        let result = self.chain.lock().append(event.clone());
        crate::metrics::audit_records(1, result.is_ok());
        if let Err(e) = &result {
            tracing::error!(error = %e, "audit write failed");
        }
        result
    }
}

/// Sorted `audit-*.jsonl` files of `dir`.
pub fn chain_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `(seq, hash)` of the last record in `dir`, or `(0, genesis)`.
pub(super) fn chain_tail(dir: &Path) -> Result<(u64, String), String> {
    let files = chain_files(dir)?;
    for path in files.iter().rev() {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut last = None;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            if !line.trim().is_empty() {
                last = Some(line);
            }
        }
        if let Some(line) = last {
            let v: Value = serde_json::from_str(&line)
                .map_err(|e| format!("{}: last record unreadable ({e}); run `fastmcp audit verify`", path.display()))?;
            let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
            let hash = v.get("hash").and_then(Value::as_str).unwrap_or(GENESIS_HASH).to_string();
            return Ok((seq, hash));
        }
    }
    Ok((0, GENESIS_HASH.to_string()))
}

#[cfg(test)]
mod tests;
