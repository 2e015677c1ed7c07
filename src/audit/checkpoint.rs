//! Signed checkpoints: an Ed25519 signature over `(instance, seq, hash, time)` of the chain's
//! latest record, written into the chain (an `audit.checkpoint` record) and appended to the
//! separate checkpoint file `checkpoints-<instance>.jsonl`. With the public key, `audit verify
//! --pubkey` proves that no record up to the last checkpoint was dropped (the checkpoint names
//! a seq the chain must reach) and that no file was rewritten wholesale (a recomputed chain
//! cannot match the signed hashes).

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::canonical;

/// What a checkpoint signs, and the signature. Fields in JSON-name order (canonical).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// The covered record's `hash`.
    pub hash: String,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The covered record's `seq`: every record up to it is vouched for.
    pub seq: u64,
    /// Base64 Ed25519 signature over [`signed_bytes`].
    pub sig: String,
    /// When the checkpoint was made (RFC 3339, UTC).
    pub ts: String,
}

/// A line of the checkpoint file: the checkpoint, its instance and the seq of the chain record
/// that carries it (so dropping that record is seen too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointLine {
    pub checkpoint: AuditCheckpoint,
    pub instance: String,
    pub record_seq: u64,
}

/// The bytes a checkpoint signature covers.
pub fn signed_bytes(instance: &str, seq: u64, hash: &str, ts: &str) -> Vec<u8> {
    format!("fastmcp-audit-checkpoint-v1\n{instance}\n{seq}\n{hash}\n{ts}").into_bytes()
}

/// First 16 hex digits of the SHA-256 of the raw public key.
pub fn key_id(public: &[u8]) -> String {
    canonical::sha256_hex(public)[..16].to_string()
}

/// The checkpoint signing key.
pub struct Signer {
    pair: Ed25519KeyPair,
    id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.id).finish()
    }
}

impl Signer {
    /// Loads the PKCS#8 key at `path`, creating it (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<Signer, String> {
        let show = path.display();
        let der = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(format!("{show}: {e}")),
        };
        check_mode(path);
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der))
            .map_err(|_| format!("{show}: not an Ed25519 PKCS#8 key"))?;
        let id = key_id(pair.public_key().as_ref());
        Ok(Signer { pair, id })
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// The raw public key, base64 (what `fastmcp audit pubkey` prints).
    pub fn public_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// Signs the checkpoint of record `(seq, hash)` of `instance` at `ts`.
    pub fn sign(&self, instance: &str, seq: u64, hash: &str, ts: &str) -> AuditCheckpoint {
        let sig = self.pair.sign(&signed_bytes(instance, seq, hash, ts));
        AuditCheckpoint {
            hash: hash.to_string(),
            key_id: self.id.clone(),
            seq,
            sig: base64::engine::general_purpose::STANDARD.encode(sig.as_ref()),
            ts: ts.to_string(),
        }
    }
}

fn create(path: &Path) -> Result<Vec<u8>, String> {
    let show = path.display();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let doc =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| format!("{show}: key generation failed"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| format!("{show}: {e}"))?;
    f.write_all(doc.as_ref()).and_then(|_| f.sync_all()).map_err(|e| format!("{show}: {e}"))?;
    tracing::info!(path = %show, "created the audit checkpoint signing key");
    Ok(doc.as_ref().to_vec())
}

#[cfg(unix)]
fn check_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the audit signing key is readable by others; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn check_mode(_: &Path) {}

/// Public keys trusted by `audit verify --pubkey`: one base64 key per line (`#` comments).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(Vec<(String, Vec<u8>)>);

impl TrustedKeys {
    pub fn load(path: &Path) -> Result<TrustedKeys, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut keys = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(line)
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or_else(|| format!("{}: not a base64 Ed25519 public key: {line:?}", path.display()))?;
            keys.push((key_id(&raw), raw));
        }
        if keys.is_empty() {
            return Err(format!("{}: no public key", path.display()));
        }
        Ok(TrustedKeys(keys))
    }

    /// Is `c` a valid signature of `instance`'s checkpoint by one of these keys?
    pub fn verifies(&self, instance: &str, c: &AuditCheckpoint) -> bool {
        let Some((_, key)) = self.0.iter().find(|(id, _)| *id == c.key_id) else { return false };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(&c.sig) else { return false };
        UnparsedPublicKey::new(&ED25519, key).verify(&signed_bytes(instance, c.seq, &c.hash, &c.ts), &sig).is_ok()
    }
}

/// Appends checkpoint lines to an instance's checkpoint file (fsynced).
pub struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    pub fn new(path: PathBuf) -> CheckpointFile {
        CheckpointFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, lines: &[CheckpointLine]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut buf, l)?;
            buf.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(&buf)?;
        f.sync_data()
    }
}

/// Reads a checkpoint file: `(line number, line)` of each readable line.
pub fn read_file(path: &Path) -> std::io::Result<Vec<(usize, Result<CheckpointLine, String>)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_str(l).map_err(|e| e.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_the_signed_facts() {
        let dir = std::env::temp_dir().join(format!("fastmcp-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = dir.join("k.p8");
        let s = Signer::load_or_create(&key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(Signer::load_or_create(&key).unwrap().key_id(), s.key_id(), "loaded, not recreated");
        let pubfile = dir.join("pub");
        std::fs::write(&pubfile, format!("# fastmcp\n{}\n", s.public_b64())).unwrap();
        let keys = TrustedKeys::load(&pubfile).unwrap();
        let c = s.sign("gw", 7, "ab", "2025-01-01T00:00:00Z");
        assert!(keys.verifies("gw", &c));
        assert!(!keys.verifies("other", &c));
        assert!(!keys.verifies("gw", &AuditCheckpoint { seq: 8, ..c.clone() }));
        assert!(!keys.verifies("gw", &AuditCheckpoint { hash: "ac".into(), ..c }));
    }
}
