//! Chain file names and listing. Each instance writes its own chain into daily files
//! `audit-<instance>-YYYYMMDD.jsonl` (compressed by retention to `….jsonl.gz`); files named
//! `audit-YYYYMMDD.jsonl` (written before chains were per instance) are the chain of the
//! unnamed instance `""`, so existing directories still verify.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One file of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFile {
    pub path: PathBuf,
    /// The file name (as reports name it).
    pub name: String,
    /// The instance whose chain it belongs to (`""`: the legacy unnamed chain).
    pub instance: String,
    /// `YYYYMMDD` (UTC) of its records.
    pub day: String,
    /// Archived by retention (gzip).
    pub compressed: bool,
}

/// Instance ids name files and records: 1–64 of `[A-Za-z0-9._-]`, not starting with `.`/`-`.
pub fn valid_instance(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The file name of `instance`'s chain on `day`.
pub fn file_name(instance: &str, day: &str) -> String {
    if instance.is_empty() {
        format!("audit-{day}.jsonl")
    } else {
        format!("audit-{instance}-{day}.jsonl")
    }
}

/// `(instance, day, compressed)` of a chain file name, or `None` for any other file.
pub fn parse_name(name: &str) -> Option<(String, String, bool)> {
    let rest = name.strip_prefix("audit-")?;
    let (rest, compressed) = match rest.strip_suffix(".jsonl.gz") {
        Some(r) => (r, true),
        None => (rest.strip_suffix(".jsonl")?, false),
    };
    let is_day = |d: &str| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit());
    if is_day(rest) {
        return Some((String::new(), rest.to_string(), compressed));
    }
    let (instance, day) = rest.rsplit_once('-')?;
    (is_day(day) && valid_instance(instance)).then(|| (instance.to_string(), day.to_string(), compressed))
}

/// Every chain file of `dir`, sorted by instance then day. A day both archived and plain (a
/// crash while archiving) is listed once, plain: the archive is only complete once the plain
/// file is gone.
pub fn list(dir: &Path) -> std::io::Result<Vec<ChainFile>> {
    let mut files: Vec<ChainFile> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(String::from) else { continue };
        let Some((instance, day, compressed)) = parse_name(&name) else { continue };
        if !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        files.push(ChainFile { path: entry.path(), name, instance, day, compressed });
    }
    files.sort_by(|a, b| (&a.instance, &a.day, a.compressed).cmp(&(&b.instance, &b.day, b.compressed)));
    files.dedup_by(|later, earlier| later.instance == earlier.instance && later.day == earlier.day);
    Ok(files)
}

/// The chains of `dir`: instance → its files in order.
pub fn chains(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<ChainFile>>> {
    let mut out: BTreeMap<String, Vec<ChainFile>> = BTreeMap::new();
    for f in list(dir)? {
        out.entry(f.instance.clone()).or_default().push(f);
    }
    Ok(out)
}

/// The files of one instance's chain.
pub fn chain_of(dir: &Path, instance: &str) -> std::io::Result<Vec<ChainFile>> {
    Ok(list(dir)?.into_iter().filter(|f| f.instance == instance).collect())
}

/// The separate checkpoint file of `instance` in `dir`.
pub fn checkpoint_file(dir: &Path, instance: &str) -> PathBuf {
    let name =
        if instance.is_empty() { "checkpoints.jsonl".to_string() } else { format!("checkpoints-{instance}.jsonl") };
    dir.join(name)
}

/// Where torn tails are moved aside.
pub fn quarantine_dir(dir: &Path) -> PathBuf {
    dir.join("quarantine")
}

/// fsyncs a directory (a created, renamed or removed entry survives a crash).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_for_named_and_legacy_chains() {
        assert_eq!(parse_name("audit-20250101.jsonl"), Some(("".into(), "20250101".into(), false)));
        assert_eq!(parse_name("audit-gw-1-20250101.jsonl"), Some(("gw-1".into(), "20250101".into(), false)));
        assert_eq!(parse_name("audit-gw.a-20250101.jsonl.gz"), Some(("gw.a".into(), "20250101".into(), true)));
        for other in
            ["audit-.jsonl", "audit-x-2025.jsonl", "audit-x-20250101.json", "index.sqlite", "audit--20250101.jsonl"]
        {
            assert_eq!(parse_name(other), None, "{other}");
        }
        assert_eq!(file_name("gw-1", "20250101"), "audit-gw-1-20250101.jsonl");
        assert_eq!(file_name("", "20250101"), "audit-20250101.jsonl");
        assert!(
            !valid_instance("a/b") && !valid_instance("") && !valid_instance(".x") && valid_instance("host-1.local")
        );
    }
}
