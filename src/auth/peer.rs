//! The identity a verified client certificate gives its connection (mTLS): the certificate's
//! URI names (SPIFFE IDs) and DNS names, which the policy sees as `input.subject.peer`.
//!
//! Only certificates that passed the listener's client-certificate verification (chain to
//! `tls.client_ca_file`, validity, client-auth usage) reach [`PeerIdentity::from_der`]; the
//! names are then as trustworthy as that CA. Nothing here decides anything: a policy compares
//! them with the JWT (see the sidecar rule in `rego/fastmcp/abac.rego`).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

/// Names kept per kind: a certificate is the operator CA's, but the policy input stays
/// bounded whatever it holds.
const MAX_NAMES: usize = 32;

/// A verified client certificate's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// URI subject alternative names (e.g. `spiffe://acme.example/ns/prod/sa/agent-1`).
    pub uris: Vec<String>,
    /// DNS subject alternative names.
    pub dns: Vec<String>,
    /// SHA-256 of the leaf certificate (DER), lowercase hex: pins one certificate.
    pub sha256: String,
}

impl PeerIdentity {
    /// The identity of a leaf certificate (DER). Fails only on a certificate that does not
    /// parse or whose subject-alternative-name extension is malformed.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("client certificate: {e}"))?;
        let mut uris = Vec::new();
        let mut dns = Vec::new();
        let san = cert.subject_alternative_name().map_err(|e| format!("client certificate SAN: {e}"))?;
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match name {
                GeneralName::URI(u) if uris.len() < MAX_NAMES => uris.push((*u).to_string()),
                GeneralName::DNSName(d) if dns.len() < MAX_NAMES => dns.push(d.to_ascii_lowercase()),
                _ => {}
            }
        }
        Ok(PeerIdentity { uris, dns, sha256: hex::encode(Sha256::digest(der)) })
    }

    /// The first `spiffe://` URI name, if any (a SPIFFE X.509-SVID carries exactly one).
    pub fn spiffe_id(&self) -> Option<&str> {
        self.uris.iter().map(String::as_str).find(|u| u.starts_with("spiffe://"))
    }

    /// `input.subject.peer`.
    pub fn to_json(&self) -> Value {
        json!({
            "uris": self.uris,
            "dns": self.dns,
            "spiffe_id": self.spiffe_id(),
            "sha256": self.sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// Self-signed, made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256
    /// -nodes -subj /CN=agent-1 -addext
    /// subjectAltName=URI:spiffe://acme.example/agent-1,DNS:Agent-1.acme.svc,IP:127.0.0.1`.
    const WITH_SANS: &str = "MIIBvDCCAWOgAwIBAgIUUYQR9442aq8O1n9+wz2dOkTEXLMwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHYWdlbnQtMTAeFw0yNjEyMDExMzQ5MDFaFw0zNjExMjgxMzQ5MDFaMBIxEDAOBgNVBAMMB2FnZW50LTEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQX4qhPNI4171WlZASpg/OBW2LIyk6Cu9Fo+lvckKPyY8QkfXeifAzy8DMHw9mVFutLYU08oPJM7svDQyHeU/A0o4GWMIGTMB0GA1UdDgQWBBROUGmOe6xHNARMSS5l58F00hu5czAfBgNVHSMEGDAWgBROUGmOe6xHNARMSS5l58F00hu5czAPBgNVHRMBAf8EBTADAQH/MEAGA1UdEQQ5MDeGHXNwaWZmZTovL2FjbWUuZXhhbXBsZS9hZ2VudC0xghBBZ2VudC0xLmFjbWUuc3ZjhwR/AAABMAoGCCqGSM49BAMCA0cAMEQCIEt/QJJ88CcU3N/7jNItZBRZGaIWAuKUCNeZa0aZk7qzAiBa2yB8oxf1t2hs13MDBLw5JMvJnwokYgpjzk1FlyYclA==";
    /// The same without any subject alternative name (`-subj /CN=nosan`).
    const NO_SANS: &str = "MIIBdDCCARugAwIBAgIUIMSKBZT69oFFyfCOoloT/eiRR9wwCgYIKoZIzj0EAwIwEDEOMAwGA1UEAwwFbm9zYW4wHhcNMjYxMjAxMTM0OTAxWhcNMzYxMTI4MTM0OTAxWjAQMQ4wDAYDVQQDDAVub3NhbjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEzmqCjRvgRuiwP5tunPJ13Z8eJKUvBFcuNNYUSoMVi5oxIJ+fSFpjmrtPSEjTCFfmUB9NrJ1KHz8IY4Cd4kUR6jUzBRMB0GA1UdDgQWBBSoQMimjteW2cWbWfFIfTMLVzhz5jAfBgNVHSMEGDAWgBSoQMimjteW2cWbWfFIfTMLVzhz5jAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCID9Xh6A41Vdo2DErdw2PhCStI5b/KSCHNKoUQT6Uwsv0AiAMIGMuXIPKdhpyWKD0uysidV721n2uVTtxf/frJy2npw==";

    fn der(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    }

    #[test]
    fn uri_and_dns_names_become_the_peer() {
        let der = der(WITH_SANS);
        let p = PeerIdentity::from_der(&der).unwrap();
        assert_eq!(p.uris, ["spiffe://acme.example/agent-1"]);
        assert_eq!(p.dns, ["agent-1.acme.svc"], "DNS names compare case-insensitively: lowercased");
        assert_eq!(p.spiffe_id(), Some("spiffe://acme.example/agent-1"));
        assert_eq!(p.sha256, hex::encode(Sha256::digest(&der)));
        let j = p.to_json();
        assert_eq!(j["spiffe_id"], "spiffe://acme.example/agent-1");
        assert_eq!(j["uris"][0], "spiffe://acme.example/agent-1");
    }

    #[test]
    fn a_certificate_without_names_is_an_empty_peer() {
        let p = PeerIdentity::from_der(&der(NO_SANS)).unwrap();
        assert!(p.uris.is_empty() && p.dns.is_empty());
        assert_eq!(p.spiffe_id(), None);
        assert_eq!(p.to_json()["spiffe_id"], Value::Null);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(PeerIdentity::from_der(b"not a certificate").is_err());
        assert!(PeerIdentity::from_der(&[]).is_err());
        let mut cut = der(WITH_SANS);
        cut.truncate(100);
        assert!(PeerIdentity::from_der(&cut).is_err());
    }
}
