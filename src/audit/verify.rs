//! `fastmcp audit verify`: walks the chain across daily files and names the first record that
//! was edited, deleted, inserted or reordered.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::{chain_files, GENESIS_HASH};
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

/// Verifies every record in `dir`; returns how many were checked.
pub fn verify_dir(dir: &Path) -> Result<u64, Break> {
    let files =
        chain_files(dir).map_err(|e| Break { file: dir.display().to_string(), line: 0, seq: None, reason: e })?;
    let mut prev = GENESIS_HASH.to_string();
    let mut expected_seq: Option<u64> = None;
    let mut count = 0;
    for path in files {
        let name = path.display().to_string();
        let brk = |line: usize, seq: Option<u64>, reason: String| Break { file: name.clone(), line, seq, reason };
        let f = File::open(&path).map_err(|e| brk(0, None, e.to_string()))?;
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| brk(n, None, e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut v: Value = serde_json::from_str(&line).map_err(|e| brk(n, None, format!("not JSON: {e}")))?;
            let seq = v.get("seq").and_then(Value::as_u64);
            let Some(obj) = v.as_object_mut() else {
                return Err(brk(n, seq, "not an object".into()));
            };
            let stored = obj.remove("hash").and_then(|h| h.as_str().map(String::from)).unwrap_or_default();
            let linked = obj.get("prev_hash").and_then(Value::as_str).unwrap_or_default().to_string();
            if canonical::hash(&v) != stored {
                return Err(brk(n, seq, "record was modified (hash mismatch)".into()));
            }
            if linked != prev {
                return Err(brk(
                    n,
                    seq,
                    "chain broken: prev_hash does not match the previous record (deleted, inserted or reordered)"
                        .into(),
                ));
            }
            if let (Some(want), Some(got)) = (expected_seq, seq) {
                if got != want {
                    return Err(brk(n, seq, format!("sequence gap: expected seq {want}")));
                }
            }
            expected_seq = seq.map(|s| s + 1);
            prev = stored;
            count += 1;
        }
    }
    Ok(count)
}
