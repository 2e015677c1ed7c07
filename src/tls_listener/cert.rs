//! The listener's certificate, re-read when its files change: a rustls
//! [`ResolvesServerCert`] that pingora's acceptor asks on every handshake.
//!
//! Each handshake stats the two files (cheap next to the handshake's own signature) and
//! compares size, mtime and inode with what was last loaded. A change is loaded under a write
//! lock — by one handshake, the others keep answering with the current certificate until it
//! is swapped. Connections already open keep the certificate they were made with; nothing is
//! dropped. A pair that does not load (half-written files, a key that does not match the
//! certificate) keeps the previous certificate serving, is logged once per state of the
//! files, and is retried as soon as either file changes again — so a rotation that writes the
//! certificate and then the key ends on the new pair.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// What a file looked like when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    mtime: Option<SystemTime>,
    ino: u64,
}

/// Both files' stamps.
type Stamp = (FileStamp, FileStamp);

struct State {
    current: Arc<CertifiedKey>,
    /// The files as they were when `current` was loaded.
    loaded: Option<Stamp>,
    /// The files as they were when loading them last failed (not retried until they change).
    failed: Option<Stamp>,
}

/// The certificate and key at two paths, kept current.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    /// Which listener (logs).
    listener: &'static str,
    state: RwLock<State>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair now: a startup error if it does not load.
    pub fn load(
        listener: &'static str,
        cert: &str,
        key: &str,
        provider: Arc<CryptoProvider>,
    ) -> Result<ReloadingCert, String> {
        let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
        let stamp = stamp(&cert, &key);
        let current = Arc::new(load_pair(&cert, &key, &provider)?);
        let state = RwLock::new(State { current, loaded: stamp, failed: None });
        Ok(ReloadingCert { cert, key, provider, listener, state })
    }

    /// The certificate to serve now, reloading it first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // Files that cannot be stat'ed (mid-rename, briefly) are not a change: keep serving.
        let Some(now) = stamp(&self.cert, &self.key) else {
            return self.state.read().current.clone();
        };
        {
            let st = self.state.read();
            if st.loaded == Some(now) || st.failed == Some(now) {
                return st.current.clone();
            }
        }
        let mut st = self.state.write();
        if st.loaded == Some(now) || st.failed == Some(now) {
            return st.current.clone();
        }
        // Stamped before reading: a write that lands while we read changes the stamp again
        // and is picked up by the next handshake.
        match load_pair(&self.cert, &self.key, &self.provider) {
            Ok(k) => {
                st.current = Arc::new(k);
                st.loaded = Some(now);
                st.failed = None;
                tracing::info!(listener = self.listener, cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                st.failed = Some(now);
                tracing::error!(listener = self.listener, error = %e, "TLS certificate reload failed; still serving the previous one");
            }
        }
        st.current.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let one = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| FileStamp { len: m.len(), mtime: m.modified().ok(), ino: m.ino() })
    };
    Some((one(cert)?, one(key)?))
}

/// Reads a PEM chain and key and checks that they belong together.
fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = read_certs(cert)?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))
}

/// Every certificate in a PEM file (other blocks are skipped).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A self-signed P-256 pair for `cn` written to `dir/{cert,key}.pem` by openssl.
    fn pair(dir: &Path, cn: &str, cert: &str, key: &str) {
        let ok = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", &format!("/CN={cn}"), "-keyout"])
            .arg(dir.join(key))
            .arg("-out")
            .arg(dir.join(cert))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success());
    }

    fn ring() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fastmcp-cert-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_new_pair_on_disk_is_served_and_a_broken_one_is_not() {
        let d = dir("rotate");
        pair(&d, "one", "cert.pem", "key.pem");
        let (c, k) = (d.join("cert.pem"), d.join("key.pem"));
        let r = ReloadingCert::load("test", c.to_str().unwrap(), k.to_str().unwrap(), ring()).unwrap();
        let first = r.current();
        assert!(Arc::ptr_eq(&first, &r.current()), "unchanged files are not re-read");

        // Rotation by rename, as cert-manager and Kubernetes secret volumes do.
        pair(&d, "two", "cert2.pem", "key2.pem");
        std::fs::rename(d.join("cert2.pem"), &c).unwrap();
        std::fs::rename(d.join("key2.pem"), &k).unwrap();
        let second = r.current();
        assert_ne!(first.cert[0], second.cert[0], "the new certificate is served");

        // Half a rotation: a new certificate with the old key does not match; the previous
        // pair keeps serving, and the matching key completes it.
        pair(&d, "three", "cert3.pem", "key3.pem");
        std::fs::rename(d.join("cert3.pem"), &c).unwrap();
        assert_eq!(r.current().cert[0], second.cert[0]);
        std::fs::rename(d.join("key3.pem"), &k).unwrap();
        let third = r.current();
        assert_ne!(third.cert[0], second.cert[0]);

        // Garbage keeps the last good pair; so does a vanished file.
        std::fs::write(&c, "not pem").unwrap();
        assert_eq!(r.current().cert[0], third.cert[0]);
        std::fs::remove_file(&k).unwrap();
        assert_eq!(r.current().cert[0], third.cert[0]);
    }

    #[test]
    fn a_pair_that_does_not_load_is_a_startup_error() {
        let d = dir("bad");
        pair(&d, "a", "a.pem", "a.key");
        pair(&d, "b", "b.pem", "b.key");
        let p = |f: &str| d.join(f).display().to_string();
        let e = ReloadingCert::load("test", &p("a.pem"), &p("b.key"), ring()).unwrap_err();
        assert!(e.contains("a.pem"), "{e}");
        assert!(ReloadingCert::load("test", &p("missing.pem"), &p("a.key"), ring()).unwrap_err().contains("missing"));
        assert!(ReloadingCert::load("test", &p("a.key"), &p("a.key"), ring()).unwrap_err().contains("no certificate"));
        assert!(ReloadingCert::load("test", &p("a.pem"), &p("a.pem"), ring()).unwrap_err().contains("no private key"));
    }
}
