//! One set of trusted TLS roots for every upstream connection the gateway makes: the proxy
//! path and REST providers (pingora's rustls connector), the upstream MCP client, JWKS
//! fetches and OAuth token requests (ureq).
//!
//! The roots are what `pingora::tls::load_native_certs` returns — the very function
//! pingora's connector calls (`pingora_rustls::load_platform_certs_incl_env_into_store`,
//! i.e. `rustls-native-certs` 0.7): when `SSL_CERT_FILE` and/or `SSL_CERT_DIR` are set, the
//! certificates in that file and that directory's hash files, *instead of* the platform
//! store; otherwise the platform store. That is OpenSSL's convention (the variables replace
//! the default bundle); an operator who wants a private CA *and* the public roots points
//! `SSL_CERT_FILE` at a bundle holding both.
//!
//! pingora 0.9.1 cannot be handed a root store: its connector builds its own from
//! `ConnectorOptions::ca_file` (one PEM path; the gateway sets none) or from that same loader,
//! and the only other hook, `PeerOptions::ca`, rebuilds a root store and a rustls
//! `ClientConfig` for every connection. So the pingora paths keep pingora's loader, and this
//! module calls the same function on the same environment, which gives the same
//! certificates. It also adds them the way pingora does (`RootCertStore::add`, all or
//! nothing): a bundle pingora would refuse is refused here too.
//!
//! Loaded once, on first use. If loading fails the store is empty, so every HTTPS upstream
//! fails verification (fail closed) while plain-HTTP upstreams keep working; the reason is
//! logged once and kept in [`Roots::error`].

use std::sync::{Arc, OnceLock};

use pingora::tls::{CertificateDer, RootCertStore};
use ureq::config::ConfigBuilder;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::typestate::AgentScope;

/// Where the trusted roots came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// `SSL_CERT_FILE` and/or `SSL_CERT_DIR`.
    Environment,
    /// The platform's certificate store.
    Platform,
}

/// The trusted roots, loaded once.
pub struct Roots {
    source: RootSource,
    store: Arc<RootCertStore>,
    /// The same certificates in ureq's form, shared by every agent.
    ureq: Arc<Vec<Certificate<'static>>>,
    error: Option<String>,
}

impl Roots {
    /// Where the roots came from.
    pub fn source(&self) -> RootSource {
        self.source
    }

    /// How many roots are trusted (0 after a load failure).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no root is trusted (every HTTPS upstream then fails verification).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The roots as a rustls store, for any rustls client config built in this crate.
    pub fn store(&self) -> Arc<RootCertStore> {
        self.store.clone()
    }

    /// The roots as PEM, for clients that take a bundle (the Redis client); empty after a
    /// load failure, so such a client trusts nothing.
    pub fn pem(&self) -> Vec<u8> {
        use base64::Engine as _;
        let mut out = Vec::new();
        for cert in self.ureq.iter() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.der());
            out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        out
    }

    /// Why loading failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// The process's trusted roots (loaded on first call).
pub fn roots() -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(load)
}

fn load() -> Roots {
    let env_set = ["SSL_CERT_FILE", "SSL_CERT_DIR"].iter().any(|v| std::env::var_os(v).is_some());
    let source = if env_set { RootSource::Environment } else { RootSource::Platform };
    match load_certs() {
        Ok((store, certs)) => {
            tracing::debug!(?source, roots = store.len(), "TLS roots loaded");
            Roots { source, store: Arc::new(store), ureq: Arc::new(certs), error: None }
        }
        Err(e) => {
            tracing::error!(?source, error = %e, "TLS roots could not be loaded; HTTPS upstreams will fail");
            Roots { source, store: Arc::new(RootCertStore::empty()), ureq: Arc::new(Vec::new()), error: Some(e) }
        }
    }
}

fn load_certs() -> Result<(RootCertStore, Vec<Certificate<'static>>), String> {
    let certs: Vec<CertificateDer<'static>> = pingora::tls::load_native_certs().map_err(|e| e.to_string())?;
    let mut store = RootCertStore::empty();
    for cert in &certs {
        store.add(cert.clone()).map_err(|e| format!("unusable root certificate: {e}"))?;
    }
    let ureq = certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
    Ok((store, ureq))
}

/// ureq's TLS configuration over [`roots`] (instead of ureq's built-in webpki roots).
pub fn ureq_tls_config() -> TlsConfig {
    TlsConfig::builder().root_certs(RootCerts::Specific(roots().ureq.clone())).build()
}

/// The start of every ureq agent the gateway builds: [`ureq_tls_config`] already set;
/// callers add timeouts and the like, then `.build().new_agent()`.
pub fn ureq_agent_config() -> ConfigBuilder<AgentScope> {
    ureq::Agent::config_builder().tls_config(ureq_tls_config())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_load_once_and_agents_use_them() {
        let r = roots();
        assert!(std::ptr::eq(r, roots()));
        assert_eq!(r.len(), r.ureq.len());
        assert_eq!(r.is_empty(), r.error().is_some() || r.ureq.is_empty());
        match ureq_tls_config().root_certs() {
            RootCerts::Specific(certs) => assert!(Arc::ptr_eq(certs, &r.ureq)),
            _ => panic!("ureq would fall back to its own roots"),
        }
        let agent: ureq::Agent = ureq_agent_config().build().into();
        assert!(matches!(agent.config().tls_config().root_certs(), RootCerts::Specific(_)));
    }
}
