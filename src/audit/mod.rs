//! The audit trail: every decision appended to `audit-YYYYMMDD.jsonl`, hash-chained across
//! files (DESIGN §9).
//!
//! One writer thread owns the files and the chain. Callers send events over a channel; the
//! writer drains whatever has queued, writes the batch, fsyncs once if any caller in the batch
//! asked for durability (group commit), then acknowledges. `hash` is the SHA-256 of the
//! record's canonical JSON without `hash`; `prev_hash` links to the previous record (64 zeros
//! for the first).

pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::canonical;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited decision or outcome. `seq`, `ts`, `instance`, `prev_hash` and `hash` are added
/// by the writer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEvent {
    pub corr_id: String,
    pub tenant: String,
    pub sub: String,
    pub action: String,
    #[serde(rename = "toolId")]
    pub tool_id: Option<String>,
    /// `decision` (before acting) or `completion` (after the upstream answered or failed).
    pub phase: &'static str,
    pub decision: AuditDecision,
    pub outcome: AuditOutcome,
    pub request_hash: Option<String>,
    pub result_hash: Option<String>,
    pub latency_ms: f64,
    pub provider: Option<String>,
    pub server: Option<String>,
    pub mcp_method: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditDecision {
    /// `allow`, `deny`, `hold`, `confirmed`, `rate_limited`, `unauthenticated`, `error`.
    pub result: String,
    pub allow: bool,
    pub reasons: Vec<String>,
    pub policy_revision: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditOutcome {
    pub status: Option<u16>,
    pub error_code: Option<String>,
}

struct Msg {
    event: Value,
    ack: oneshot::Sender<Result<(), String>>,
    durable: bool,
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
}

impl AuditLog {
    /// Opens `dir` (creating it), continues the chain found there, and starts the writer.
    pub fn open(dir: &Path, instance: String) -> Result<AuditLog, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (seq, prev) = chain_tail(dir)?;
        let (tx, rx) = mpsc::channel();
        let mut w = Writer {
            dir: dir.to_path_buf(),
            instance,
            seq,
            prev,
            file: None,
        };
        std::thread::Builder::new()
            .name("fastmcp-audit".into())
            .spawn(move || w.run(rx))
            .map_err(|e| format!("audit writer thread: {e}"))?;
        Ok(AuditLog { tx })
    }

    /// Appends `event`; resolves once it is written to the file, and fsynced when `durable`
    /// (written records survive a process exit; fsynced ones survive a machine crash).
    pub async fn append(&self, event: &AuditEvent, durable: bool) -> Result<(), String> {
        let event = serde_json::to_value(event).map_err(|e| e.to_string())?;
        let (ack, ack_rx) = oneshot::channel();
        self.tx
            .send(Msg {
                event,
                ack,
                durable,
            })
            .map_err(|_| "audit writer stopped".to_string())?;
        ack_rx
            .await
            .map_err(|_| "audit writer stopped".to_string())?
    }
}

struct Writer {
    dir: PathBuf,
    instance: String,
    seq: u64,
    prev: String,
    file: Option<(String, File)>,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let durable = batch.iter().any(|m| m.durable);
            let result = self.write_batch(&mut batch, durable);
            if let Err(e) = &result {
                tracing::error!(error = %e, "audit write failed");
            }
            crate::metrics::audit_records(batch.len() as u64, result.is_ok());
            for m in batch {
                let _ = m.ack.send(result.clone());
            }
        }
    }

    fn write_batch(&mut self, batch: &mut [Msg], durable: bool) -> Result<(), String> {
        let mut pending: Vec<u8> = Vec::with_capacity(batch.len() * 512);
        for m in batch.iter_mut() {
            let now = chrono::Utc::now();
            let day = now.format("%Y%m%d").to_string();
            if self.file.as_ref().map(|(d, _)| d != &day).unwrap_or(true) {
                self.flush(&mut pending, true)?;
                let path = self.dir.join(format!("audit-{day}.jsonl"));
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                self.file = Some((day, f));
            }
            self.seq += 1;
            if let Value::Object(obj) = &mut m.event {
                obj.insert("seq".into(), self.seq.into());
                obj.insert(
                    "ts".into(),
                    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                        .into(),
                );
                obj.insert("instance".into(), self.instance.clone().into());
                obj.insert("prev_hash".into(), self.prev.clone().into());
                let hash = canonical::hash(&m.event);
                if let Value::Object(obj) = &mut m.event {
                    obj.insert("hash".into(), hash.clone().into());
                }
                self.prev = hash;
            }
            pending.extend_from_slice(canonical::to_string(&m.event).as_bytes());
            pending.push(b'\n');
        }
        self.flush(&mut pending, durable)
    }

    fn flush(&mut self, pending: &mut Vec<u8>, sync: bool) -> Result<(), String> {
        let Some((_, f)) = self.file.as_mut() else {
            return Ok(());
        };
        if !pending.is_empty() {
            f.write_all(pending)
                .map_err(|e| format!("audit write: {e}"))?;
            pending.clear();
        }
        if sync {
            f.sync_data().map_err(|e| format!("audit fsync: {e}"))?;
        }
        Ok(())
    }
}

/// Sorted `audit-*.jsonl` files of `dir`.
pub fn chain_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `(seq, hash)` of the last record in `dir`, or `(0, genesis)`.
fn chain_tail(dir: &Path) -> Result<(u64, String), String> {
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
            let v: Value = serde_json::from_str(&line).map_err(|e| {
                format!(
                    "{}: last record unreadable ({e}); run `fastmcp audit verify`",
                    path.display()
                )
            })?;
            let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
            let hash = v
                .get("hash")
                .and_then(Value::as_str)
                .unwrap_or(GENESIS_HASH)
                .to_string();
            return Ok((seq, hash));
        }
    }
    Ok((0, GENESIS_HASH.to_string()))
}

#[cfg(test)]
mod tests;
