//! Retention (`audit.retention_days`): this instance's daily files older than the limit are
//! archived (gzip, `….jsonl.gz`, still part of the chain) or deleted — only once a signed
//! checkpoint in the checkpoint file covers their last record. Deleting first writes an
//! `audit.retention` record naming each file's first and last seq and last hash, so the chain
//! that remains still verifies: its first record links to a hash that record names, and a
//! later checkpoint vouches for both.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::checkpoint;
use super::files::{self, ChainFile};
use super::reader::{self, Item};
use super::{AuditEvent, AuditLog, AuditRetention, RetainedFile};

/// What happens to a file past the retention limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionAction {
    /// Compress to `.jsonl.gz` beside the chain (still verified).
    #[default]
    Archive,
    /// Remove it (the retention record keeps the chain's continuity).
    Delete,
}

impl RetentionAction {
    fn label(self) -> &'static str {
        match self {
            RetentionAction::Archive => "archive",
            RetentionAction::Delete => "delete",
        }
    }
}

/// One pass over `log`'s files. Returns what was done (`None`: nothing due or covered).
pub fn run_once(
    log: &AuditLog,
    days: u32,
    action: RetentionAction,
    checkpoint_dir: &Path,
) -> Result<Option<AuditRetention>, String> {
    let dir = log.dir();
    let today = log.today();
    let cutoff = chrono::NaiveDate::parse_from_str(&today, "%Y%m%d")
        .map_err(|e| e.to_string())?
        .checked_sub_days(chrono::Days::new(days as u64))
        .ok_or("retention_days too large")?
        .format("%Y%m%d")
        .to_string();
    let covered = covered_seq(&files::checkpoint_file(checkpoint_dir, log.instance()))?;
    let chain = files::chain_of(dir, log.instance()).map_err(|e| e.to_string())?;
    let mut due: Vec<(ChainFile, RetainedFile)> = Vec::new();
    for f in chain.iter().filter(|f| f.day < cutoff && f.day != today) {
        if action == RetentionAction::Archive && f.compressed {
            continue;
        }
        let Some(r) = summarize(f)? else { continue };
        if r.last_seq > covered {
            if covered == 0 {
                tracing::info!(file = %f.name, "audit retention waits for a signed checkpoint covering the file");
            }
            break; // later files are not covered either
        }
        due.push((f.clone(), r));
    }
    if due.is_empty() {
        return Ok(None);
    }
    let retention =
        AuditRetention { action: action.label().into(), files: due.iter().map(|(_, r)| r.clone()).collect() };
    let record = AuditEvent {
        action: "audit.retention".into(),
        phase: "system",
        decision: super::system_decision("retention"),
        retention: Some(retention.clone()),
        ..Default::default()
    };
    match action {
        RetentionAction::Delete => {
            // The record explaining the cut is durable before anything is cut.
            futures::executor::block_on(log.append_system(record)).map_err(|e| e.to_string())?;
            for (f, _) in &due {
                std::fs::remove_file(&f.path).map_err(|e| format!("{}: {e}", f.path.display()))?;
            }
        }
        RetentionAction::Archive => {
            for (f, _) in &due {
                archive(f)?;
            }
            futures::executor::block_on(log.append_system(record)).map_err(|e| e.to_string())?;
        }
    }
    files::sync_dir(dir).map_err(|e| e.to_string())?;
    tracing::info!(action = action.label(), files = due.len(), "audit retention applied");
    Ok(Some(retention))
}

/// The highest seq a checkpoint in `path` covers (0: none).
fn covered_seq(path: &Path) -> Result<u64, String> {
    let lines = checkpoint::read_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(lines.into_iter().filter_map(|(_, l)| l.ok()).map(|l| l.checkpoint.seq).max().unwrap_or(0))
}

/// First and last seq and the last hash of a file (`None`: no record).
fn summarize(f: &ChainFile) -> Result<Option<RetainedFile>, String> {
    let mut first = None;
    let mut last: Option<(u64, String)> = None;
    reader::scan(reader::open(f).map_err(|e| e.to_string())?, |item| {
        if let Item::Line { text, .. } = item {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
                if let (Some(seq), Some(hash)) =
                    (v.get("seq").and_then(|s| s.as_u64()), v.get("hash").and_then(|h| h.as_str()))
                {
                    first.get_or_insert(seq);
                    last = Some((seq, hash.to_string()));
                }
            }
        }
        true
    })
    .map_err(|e| e.to_string())?;
    Ok(match (first, last) {
        (Some(first_seq), Some((last_seq, last_hash))) => {
            Some(RetainedFile { file: f.name.clone(), first_seq, last_hash, last_seq })
        }
        _ => None,
    })
}

/// Compresses `f` to `<name>.gz` (written to a temporary name, synced, renamed), then
/// removes the plain file.
fn archive(f: &ChainFile) -> Result<(), String> {
    let gz = PathBuf::from(format!("{}.gz", f.path.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", f.path.display()));
    let input = reader::read_all(&f.path).map_err(|e| format!("{}: {e}", f.path.display()))?;
    let out = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    enc.write_all(&input)
        .and_then(|_| enc.finish())
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &gz).map_err(|e| format!("{}: {e}", gz.display()))?;
    if let Some(parent) = f.path.parent() {
        files::sync_dir(parent).map_err(|e| e.to_string())?;
    }
    std::fs::remove_file(&f.path).map_err(|e| format!("{}: {e}", f.path.display()))
}

/// Runs retention at start and then hourly on its own thread.
pub fn start(log: AuditLog, days: u32, action: RetentionAction, checkpoint_dir: PathBuf) -> Result<(), String> {
    std::thread::Builder::new()
        .name("fastmcp-audit-retention".into())
        .spawn(move || loop {
            if let Err(e) = run_once(&log, days, action, &checkpoint_dir) {
                tracing::error!(error = %e, "audit retention failed; retrying in an hour");
            }
            std::thread::sleep(std::time::Duration::from_secs(3600));
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}
