//! TLS on the gateway's own listeners (the gateway listener and the admin listener), through
//! pingora 0.9.1's rustls acceptor.
//!
//! pingora's rustls [`TlsSettings`] takes three hooks, which is all this needs:
//!
//! - `set_cert_resolver`: a rustls `ResolvesServerCert` used instead of pingora's own
//!   cert/key files, asked on every handshake — [`cert::ReloadingCert`] re-reads the files
//!   when they change, so a rotated certificate is served to new connections without a
//!   restart and without touching open ones;
//! - `set_client_cert_verifier`: rustls's `WebPkiClientVerifier` over `client_ca_file`
//!   (mandatory with the listener's `require_mtls`, else optional): no certificate, or one
//!   from another CA, fails the handshake;
//! - `TlsSettings::with_callbacks`: a `TlsAccept::handshake_complete_callback`, which for
//!   rustls receives the peer's chain (`TlsRef::peer_certificate_der`) and whose return value
//!   pingora stores in the connection's `SslDigest::extension`. pingora's own rustls digest
//!   carries only the organization, serial and a hash of the peer certificate, not its SANs,
//!   so the callback parses the verified leaf into a [`PeerIdentity`] there, once per
//!   connection; every request on it reads it back with [`peer_of`].
//!
//! The client CA file is read at startup only (rotate it with a restart or an upgrade); there
//! is no CRL or OCSP check — issue short-lived client certificates.

pub mod cert;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::Digest;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::auth::peer::PeerIdentity;
use crate::config::ListenerTls;

/// pingora's TLS settings for one listener: the reloading certificate, the client
/// verifier when a client CA is configured, and the peer-identity callback.
/// `listener` names the listener in errors and logs.
pub fn settings(listener: &'static str, tls: &ListenerTls, require_client_cert: bool) -> Result<TlsSettings, String> {
    // pingora installs the same process default when it builds the acceptor; the
    // certificate is loaded before that, with the same provider.
    pingora::tls::install_default_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = cert::ReloadingCert::load(listener, &tls.cert_file, &tls.key_file, provider.clone())
        .map_err(|e| format!("{listener}: {e}"))?;
    let mut settings =
        TlsSettings::with_callbacks(Box::new(PeerCallback)).map_err(|e| format!("{listener}: TLS settings: {e}"))?;
    settings.set_cert_resolver(Arc::new(resolver));
    if !tls.client_ca_file.is_empty() {
        let mut roots = RootCertStore::empty();
        let cas = cert::read_certs(std::path::Path::new(&tls.client_ca_file))
            .map_err(|e| format!("{listener}.client_ca_file: {e}"))?;
        let (added, _ignored) = roots.add_parsable_certificates(cas);
        if added == 0 {
            return Err(format!("{listener}.client_ca_file: no usable CA certificate in {}", tls.client_ca_file));
        }
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let builder = if require_client_cert { builder } else { builder.allow_unauthenticated() };
        let verifier = builder.build().map_err(|e| format!("{listener}.client_ca_file: {e}"))?;
        settings.set_client_cert_verifier(verifier);
    }
    Ok(settings)
}

/// After a handshake: the verified client certificate's identity, kept with the connection.
struct PeerCallback;

#[async_trait]
impl TlsAccept for PeerCallback {
    async fn handshake_complete_callback(&self, tls: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        // Only a certificate the verifier accepted gets here (a refused one ends the
        // handshake before this callback).
        let der = tls.peer_certificate_der()?;
        match PeerIdentity::from_der(der) {
            // Stored as an `Arc<PeerIdentity>` inside pingora's `Arc<dyn Any>`: each request
            // then takes a reference count, not a copy of the names.
            Ok(peer) => Some(Arc::new(Arc::new(peer))),
            Err(e) => {
                tracing::warn!(error = %e, "verified client certificate could not be read; no peer identity");
                None
            }
        }
    }
}

/// The client certificate identity of the connection `digest` describes, if it has one.
pub fn peer_of(digest: Option<&Digest>) -> Option<Arc<PeerIdentity>> {
    let ext = &digest?.ssl_digest.as_ref()?.extension;
    ext.get::<Arc<PeerIdentity>>().cloned()
}
