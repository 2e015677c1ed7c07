//! `fastmcp audit verify`: walks every instance's chain in a directory and names the first
//! record that was edited, deleted, inserted or reordered (`file:line`).
//!
//! - A torn tail (an incomplete last line of a chain, left by a crash and not yet moved
//!   aside by a restart) is reported apart from tampering: it is not a break.
//! - A chain that does not start at the genesis hash must be explained by a retention record
//!   naming the file removed before it.
//! - With trusted public keys (`--pubkey`), signed checkpoints (in the chain and in the
//!   checkpoint file) prove that no record up to the last checkpoint was dropped and that no
//!   file was rewritten with a recomputed chain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::checkpoint::{self, AuditCheckpoint, TrustedKeys};
use super::files::{self, ChainFile};
use super::reader::{self, Item};
use super::{RetainedFile, GENESIS_HASH};
use crate::canonical;

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq)]
pub struct Break {
    pub file: String,
    pub line: usize,
    pub seq: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{}:{} (seq {}): {}", self.file, self.line, seq, self.reason),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.reason),
        }
    }
}

/// What to check beyond the hash chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Trusted checkpoint keys: checkpoints are then required and checked.
    pub keys: Option<TrustedKeys>,
    /// Directory of the checkpoint files (default: the audit directory).
    pub checkpoint_dir: Option<PathBuf>,
    /// Most records a chain may hold after its last checkpoint before missing checkpoints
    /// are reported (0: no limit).
    pub max_unsigned: u64,
}

/// One verified chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainReport {
    /// The instance (`""`: the legacy unnamed chain).
    pub instance: String,
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Checkpoints whose signature and hash were verified.
    pub checkpoints: u64,
    /// Torn tails a restart moved aside (from `recovery` records).
    pub recoveries: Vec<String>,
    /// An incomplete last line not yet moved aside: `file bytes from..to`.
    pub torn: Option<String>,
    /// Things worth knowing that are not breaks.
    pub warnings: Vec<String>,
}

/// Verifies every chain in `dir`; returns how many records were checked.
pub fn verify_dir(dir: &Path) -> Result<u64, Break> {
    Ok(verify(dir, &VerifyOptions::default())?.iter().map(|c| c.records).sum())
}

/// Verifies every chain in `dir`.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Result<Vec<ChainReport>, Break> {
    let at_dir = |reason: String| Break { file: dir.display().to_string(), line: 0, seq: None, reason };
    let chains = files::chains(dir).map_err(|e| at_dir(e.to_string()))?;
    let mut out = Vec::new();
    for (instance, chain) in &chains {
        out.push(verify_chain(dir, instance, chain, opts)?);
    }
    if let Some(keys) = &opts.keys {
        // A checkpoint file whose chain is gone entirely: every file was dropped.
        let cdir = opts.checkpoint_dir.clone().unwrap_or_else(|| dir.to_path_buf());
        for entry in std::fs::read_dir(&cdir).map_err(|e| at_dir(e.to_string()))?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(instance) =
                name.strip_prefix("checkpoints-").and_then(|n| n.strip_suffix(".jsonl")).map(String::from)
            else {
                continue;
            };
            let instance = instance.as_str();
            if !chains.contains_key(instance) {
                let lines = checkpoint_lines(&entry.path(), instance, keys)?;
                if let Some((seq, (_, line, _, _))) = lines.into_iter().next() {
                    return Err(Break {
                        file: name,
                        line,
                        seq: Some(seq),
                        reason: format!("truncated: instance {instance:?} has signed checkpoints but no chain files"),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A checkpoint-file entry: (hash, file line, record seq, signature).
type FileCheckpoint = (String, usize, u64, String);
/// Checkpoint-file entries by covered seq.
type FileCheckpoints = HashMap<u64, FileCheckpoint>;

/// Reads and signature-checks `instance`'s checkpoint file.
fn checkpoint_lines(path: &Path, instance: &str, keys: &TrustedKeys) -> Result<Vec<(u64, FileCheckpoint)>, Break> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let brk = |line: usize, seq: Option<u64>, reason: String| Break { file: name.clone(), line, seq, reason };
    let mut out = Vec::new();
    for (no, parsed) in checkpoint::read_file(path).map_err(|e| brk(0, None, e.to_string()))? {
        let l = parsed.map_err(|e| brk(no, None, format!("not a checkpoint line: {e}")))?;
        if l.instance != instance || !keys.verifies(instance, &l.checkpoint) {
            return Err(brk(no, Some(l.checkpoint.seq), "checkpoint signature invalid (or unknown key)".into()));
        }
        out.push((l.checkpoint.seq, (l.checkpoint.hash, no, l.record_seq, l.checkpoint.sig)));
    }
    Ok(out)
}

fn verify_chain(dir: &Path, instance: &str, chain: &[ChainFile], opts: &VerifyOptions) -> Result<ChainReport, Break> {
    let mut report = ChainReport { instance: instance.to_string(), ..Default::default() };
    let cfile = files::checkpoint_file(opts.checkpoint_dir.as_deref().unwrap_or(dir), instance);
    let cname = cfile.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let filed: FileCheckpoints = match &opts.keys {
        Some(keys) => checkpoint_lines(&cfile, instance, keys)?.into_iter().collect(),
        None => HashMap::new(),
    };
    // The chain records that carry the filed checkpoints: seq → (file line, signature).
    let carriers: HashMap<u64, (usize, String)> =
        filed.values().map(|(_, line, record_seq, sig)| (*record_seq, (*line, sig.clone()))).collect();
    let mut prev = GENESIS_HASH.to_string();
    let mut expected_seq: Option<u64> = None;
    // Where the chain starts when it does not start at genesis, to be explained by retention.
    let mut cut: Option<(String, usize, u64, String)> = None;
    let mut retained: Vec<RetainedFile> = Vec::new();
    let mut last_signed = 0u64;
    let mut file_checked = 0usize;
    let mut last_pos = (String::new(), 0usize);
    for (i, f) in chain.iter().enumerate() {
        let is_last = i + 1 == chain.len();
        let name = f.name.clone();
        let brk = |line: usize, seq: Option<u64>, reason: String| Break { file: name.clone(), line, seq, reason };
        let mut failure: Option<Break> = None;
        let mut torn_at: Option<(usize, u64, usize)> = None;
        let r = reader::open(f).map_err(|e| brk(0, None, e.to_string()))?;
        reader::scan(r, |item| {
            let (n, text) = match item {
                Item::Line { no, text, .. } => (no, text),
                Item::Torn { no, offset, bytes } => {
                    torn_at = Some((no, offset, bytes.len()));
                    return true;
                }
            };
            if let Some((tn, _, _)) = torn_at {
                failure = Some(brk(tn, None, "incomplete record in the middle of the file".into()));
                return false;
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                return true;
            }
            match check_line(&text, &prev, expected_seq) {
                Err((seq, reason)) => {
                    failure = Some(brk(n, seq, reason));
                    false
                }
                Ok(rec) => {
                    if expected_seq.is_none() && (rec.linked != GENESIS_HASH || rec.seq != Some(1)) {
                        cut = Some((name.clone(), n, rec.seq.unwrap_or(0), rec.linked.clone()));
                    }
                    let seq = rec.seq.unwrap_or(0);
                    if report.records == 0 {
                        report.first_seq = seq;
                    }
                    if let Some(k) = &opts.keys {
                        if let Some(c) = &rec.checkpoint {
                            if !k.verifies(instance, c) {
                                failure = Some(brk(n, rec.seq, "checkpoint signature invalid (or unknown key)".into()));
                                return false;
                            }
                            if c.seq + 1 != seq || c.hash != prev {
                                failure = Some(brk(n, rec.seq, "checkpoint does not vouch for the record before it (rewritten)".into()));
                                return false;
                            }
                            report.checkpoints += 1;
                            last_signed = last_signed.max(c.seq);
                        }
                        if let Some((hash, line, _, _)) = filed.get(&seq) {
                            if *hash != rec.stored {
                                failure = Some(brk(n, rec.seq, format!(
                                    "rewritten: the signed checkpoint ({cname}:{line}) vouches for another hash of this record"
                                )));
                                return false;
                            }
                            file_checked += 1;
                            last_signed = last_signed.max(seq);
                        }
                        if let Some((line, sig)) = carriers.get(&seq) {
                            if rec.checkpoint.as_ref().map(|c| &c.sig) != Some(sig) {
                                failure = Some(brk(n, rec.seq, format!(
                                    "rewritten: {cname}:{line} names this seq as its checkpoint record"
                                )));
                                return false;
                            }
                        }
                    }
                    if let Some(r) = rec.recovery {
                        report.recoveries.push(r);
                    }
                    retained.extend(rec.retained);
                    expected_seq = rec.seq.map(|s| s + 1);
                    prev = rec.stored;
                    report.records += 1;
                    report.last_seq = seq;
                    last_pos = (name.clone(), n);
                    true
                }
            }
        })
        .map_err(|e| brk(0, None, e.to_string()))?;
        if let Some(b) = failure {
            return Err(b);
        }
        if let Some((n, offset, len)) = torn_at {
            if !is_last {
                return Err(brk(n, None, "incomplete record before the chain's last file".into()));
            }
            report.torn =
                Some(format!("{name}:{n} bytes {offset}..{} (a restart moves it to quarantine/)", offset + len as u64));
        }
    }
    if let Some((file, line, seq, linked)) = cut {
        let explained = retained.iter().any(|r| r.last_seq + 1 == seq && r.last_hash == linked);
        if !explained {
            return Err(Break {
                file,
                line,
                seq: Some(seq),
                reason: "chain does not start at the genesis hash and no retention record names the removed records (deleted file?)".into(),
            });
        }
        report.warnings.push(format!("starts at seq {seq}: earlier files were removed by retention"));
    }
    if let Some(_keys) = &opts.keys {
        let (file, line) = last_pos.clone();
        let brk = |seq: Option<u64>, reason: String| Break { file: file.clone(), line, seq, reason };
        for (seq, (_, cline, record_seq, _)) in &filed {
            if *seq > report.last_seq || *record_seq > report.last_seq {
                return Err(Break {
                    file: cname.clone(),
                    line: *cline,
                    seq: Some(*seq),
                    reason: format!(
                        "truncated: this signed checkpoint covers seq {seq} (recorded as seq {record_seq}) but the chain ends at seq {}",
                        report.last_seq
                    ),
                });
            }
        }
        report.checkpoints += file_checked as u64;
        if instance.is_empty() && last_signed == 0 {
            report.warnings.push("legacy chain (audit-YYYYMMDD.jsonl) carries no signed checkpoints".into());
        } else if report.records > 0 && last_signed == 0 {
            return Err(brk(
                Some(report.last_seq),
                "no checkpoint signed by a trusted key: the chain may have been rewritten".into(),
            ));
        } else {
            // The checkpoint record after the last signed seq is itself unsigned: allow it.
            let unsigned = report.last_seq.saturating_sub(last_signed);
            if opts.max_unsigned > 0 && unsigned > opts.max_unsigned + 1 {
                return Err(brk(Some(report.last_seq), format!(
                    "{unsigned} records after the last signed checkpoint (seq {last_signed}), more than the cadence allows: checkpoints were removed"
                )));
            }
            if unsigned > 1 {
                report.warnings.push(format!(
                    "{unsigned} records after the last signed checkpoint (seq {last_signed}) are not yet vouched for"
                ));
            }
        }
    }
    Ok(report)
}

/// A record that passed the chain checks.
struct Checked {
    seq: Option<u64>,
    stored: String,
    linked: String,
    checkpoint: Option<AuditCheckpoint>,
    recovery: Option<String>,
    retained: Vec<RetainedFile>,
}

fn check_line(text: &[u8], prev: &str, expected_seq: Option<u64>) -> Result<Checked, (Option<u64>, String)> {
    let mut v: Value = serde_json::from_slice(text).map_err(|e| (None, format!("not JSON: {e}")))?;
    let seq = v.get("seq").and_then(Value::as_u64);
    let Some(obj) = v.as_object_mut() else {
        return Err((seq, "not an object".into()));
    };
    let stored = obj.remove("hash").and_then(|h| h.as_str().map(String::from)).unwrap_or_default();
    let linked = obj.get("prev_hash").and_then(Value::as_str).unwrap_or_default().to_string();
    if canonical::hash(&v) != stored {
        return Err((seq, "record was modified (hash mismatch)".into()));
    }
    // The first record read may follow records removed by retention (checked by the caller).
    if expected_seq.is_some() && linked != prev {
        return Err((
            seq,
            "chain broken: prev_hash does not match the previous record (deleted, inserted or reordered)".into(),
        ));
    }
    if let (Some(want), Some(got)) = (expected_seq, seq) {
        if got != want {
            return Err((seq, format!("sequence gap: expected seq {want}")));
        }
    }
    let checkpoint = v.get("checkpoint").and_then(|c| serde_json::from_value(c.clone()).ok());
    let recovery = v.get("recovery").map(|r| {
        let s = |k: &str| r.get(k).map(|x| x.to_string()).unwrap_or_default();
        format!("{} bytes {}..{} of {} moved to {}", s("reason"), s("from"), s("to"), s("file"), s("quarantine"))
    });
    let retained = v
        .pointer("/retention/files")
        .and_then(|f| serde_json::from_value::<Vec<RetainedFile>>(f.clone()).ok())
        .unwrap_or_default();
    Ok(Checked { seq, stored, linked, checkpoint, recovery, retained })
}
