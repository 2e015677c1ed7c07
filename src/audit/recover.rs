//! Startup: where an instance's chain ends, and a torn tail to move aside.
//!
//! A crash can leave the newest file ending in part of a record (bytes after the last
//! newline), or in lines that are no record at all (a file extended before its data reached
//! the disk). Those bytes are the torn tail: the chain continues from the last readable
//! record, and the writer moves the tail into `quarantine/` (with its byte range) before it
//! writes anything, followed by a `recovery` record naming it. Startup never fails on it.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::files::{self, ChainFile};
use super::reader::{self, Item};
use super::{AuditError, AuditRecovery, GENESIS_HASH};

/// A torn tail still to be moved aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Torn {
    pub file: ChainFile,
    /// Byte range `from..to` of the tail in `file`.
    pub from: u64,
    pub to: u64,
    /// `torn tail` (an incomplete last line) or `unreadable tail` (complete lines that are no
    /// record).
    pub reason: &'static str,
}

/// Where a chain ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    pub seq: u64,
    pub hash: String,
    pub torn: Option<Torn>,
}

/// The end of `instance`'s chain in `dir`: its last readable record and any torn tail after it.
pub fn tail(dir: &Path, instance: &str) -> Result<Tail, AuditError> {
    let chain = files::chain_of(dir, instance).map_err(|e| AuditError::io(dir, e))?;
    let mut torn = None;
    for f in chain.iter().rev() {
        let mut last: Option<(u64, String)> = None;
        let mut good_end = 0u64;
        let mut end = 0u64;
        let mut incomplete = false;
        let scanned = reader::scan(reader::open(f).map_err(|e| AuditError::io(&f.path, e))?, |item| {
            match item {
                Item::Line { offset, text, .. } => {
                    end = offset + text.len() as u64 + 1;
                    if let Some((seq, hash)) = record_end(&text) {
                        last = Some((seq, hash));
                        good_end = end;
                    }
                }
                Item::Torn { offset, bytes, .. } => {
                    end = offset + bytes.len() as u64;
                    incomplete = true;
                }
            }
            true
        });
        scanned.map_err(|e| AuditError::io(&f.path, e))?;
        // Only the newest file with content can have a tail: the writer never moves on to a
        // new file before a record reached the previous one whole.
        if torn.is_none() && end > good_end && !f.compressed {
            let reason = if incomplete { "torn tail" } else { "unreadable tail" };
            torn = Some(Torn { file: f.clone(), from: good_end, to: end, reason });
        }
        if let Some((seq, hash)) = last {
            return Ok(Tail { seq, hash, torn });
        }
    }
    Ok(Tail { seq: 0, hash: GENESIS_HASH.to_string(), torn })
}

/// `(seq, hash)` of a record line, if it is one.
fn record_end(line: &[u8]) -> Option<(u64, String)> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let seq = v.get("seq")?.as_u64()?;
    let hash = v.get("hash")?.as_str()?.to_string();
    Some((seq, hash))
}

/// Copies the torn bytes to `quarantine/<file>.<from>-<to>` (fsynced), then cuts them off
/// the chain file (fsynced). Repeating it after a crash in between is harmless.
pub fn quarantine(dir: &Path, t: &Torn) -> Result<AuditRecovery, AuditError> {
    let qdir = files::quarantine_dir(dir);
    std::fs::create_dir_all(&qdir).map_err(|e| AuditError::io(&qdir, e))?;
    let bytes = reader::read_all(&t.file.path).map_err(|e| AuditError::io(&t.file.path, e))?;
    let (from, to) = (t.from as usize, (t.to as usize).min(bytes.len()));
    let name = format!("{}.{}-{}", t.file.name, t.from, t.to);
    let qpath = qdir.join(&name);
    let mut q = std::fs::File::create(&qpath).map_err(|e| AuditError::io(&qpath, e))?;
    q.write_all(bytes.get(from..to).unwrap_or_default())
        .and_then(|_| q.sync_all())
        .and_then(|_| files::sync_dir(&qdir))
        .map_err(|e| AuditError::io(&qpath, e))?;
    let f = std::fs::OpenOptions::new().write(true).open(&t.file.path).map_err(|e| AuditError::io(&t.file.path, e))?;
    f.set_len(t.from).and_then(|_| f.sync_all()).map_err(|e| AuditError::io(&t.file.path, e))?;
    tracing::warn!(file = %t.file.name, from = t.from, to = t.to, quarantine = %name, reason = t.reason,
        "audit chain: moved a torn tail aside; the chain continues from the last whole record");
    crate::metrics::METRICS.audit_quarantined.inc();
    Ok(AuditRecovery {
        file: t.file.name.clone(),
        from: t.from,
        quarantine: format!("quarantine/{name}"),
        reason: t.reason.to_string(),
        to: t.to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_unreadable_tails_are_found_after_the_last_record() {
        let dir = std::env::temp_dir().join(format!("fastmcp-recover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let good = r#"{"seq":1,"hash":"h1"}"#;
        let path = dir.join("audit-gw-20250101.jsonl");
        std::fs::write(&path, format!("{good}\n{{\"seq\":2,\"ha")).unwrap();
        let t = tail(&dir, "gw").unwrap();
        assert_eq!((t.seq, t.hash.as_str()), (1, "h1"));
        let torn = t.torn.clone().unwrap();
        assert_eq!((torn.from, torn.to, torn.reason), (good.len() as u64 + 1, good.len() as u64 + 13, "torn tail"));
        let rec = quarantine(&dir, &torn).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{good}\n"));
        assert_eq!(std::fs::read_to_string(dir.join(&rec.quarantine)).unwrap(), "{\"seq\":2,\"ha");
        assert_eq!(tail(&dir, "gw").unwrap().torn, None);

        std::fs::write(&path, format!("{good}\n\0\0\0\nnot json\n")).unwrap();
        let t = tail(&dir, "gw").unwrap();
        assert_eq!(t.torn.unwrap().reason, "unreadable tail");
        assert_eq!(tail(&dir, "other").unwrap(), Tail { seq: 0, hash: GENESIS_HASH.into(), torn: None });
    }
}
