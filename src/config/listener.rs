//! TLS settings of the gateway's own listeners (`tls`, `admin.tls`) and their validation.

use serde::Deserialize;

use super::ConfigError;

/// TLS settings of one listener. All paths are PEM files, read at startup (a missing or
/// unreadable file is a startup error) and re-read when they change.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Certificate chain, leaf first. Empty: the listener speaks plain HTTP. Re-read (with
    /// `key_file`) when either file changes; a pair that does not load or does not match
    /// keeps the previous certificate serving and is logged.
    #[serde(default)]
    pub cert_file: String,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1). Required with `cert_file`.
    #[serde(default)]
    pub key_file: String,
    /// CA certificates that issue client certificates. Set: a client certificate is verified
    /// against them (a certificate from another CA is refused); it is required only with the
    /// listener's `require_mtls`, otherwise a client may present none. Read at startup.
    #[serde(default)]
    pub client_ca_file: String,
}

impl ListenerTls {
    /// Whether the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }
}

/// One listener's TLS keys agree with each other and with its `require_mtls`.
pub(super) fn validate_tls(key: &str, tls: &ListenerTls, require_key: &str, require: bool) -> Result<(), ConfigError> {
    if tls.cert_file.is_empty() != tls.key_file.is_empty() {
        return Err(ConfigError::new(key, "set both cert_file and key_file, or neither"));
    }
    if !tls.client_ca_file.is_empty() && !tls.enabled() {
        return Err(ConfigError::new(
            format!("{key}.client_ca_file"),
            "client certificates need TLS: set cert_file and key_file",
        ));
    }
    if require && (!tls.enabled() || tls.client_ca_file.is_empty()) {
        return Err(ConfigError::new(
            require_key,
            format!(
                "mTLS needs {key}.cert_file, {key}.key_file and {key}.client_ca_file; refusing to start without it"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::load(None, pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())))
    }

    #[test]
    fn tls_is_off_by_default_and_mtls_needs_its_files() {
        let c = load(&[]).unwrap();
        assert!(!c.tls.enabled() && !c.admin.tls.enabled() && !c.require_mtls);
        let e = load(&[("REQUIRE_MTLS", "true")]).unwrap_err();
        assert_eq!(e.key, "require_mtls", "{e}");
        let e = load(&[
            ("REQUIRE_MTLS", "true"),
            ("FASTMCP__TLS__CERT_FILE", "c.pem"),
            ("FASTMCP__TLS__KEY_FILE", "k.pem"),
        ])
        .unwrap_err();
        assert!(e.problem.contains("tls.client_ca_file"), "{e}");
        let c = load(&[
            ("REQUIRE_MTLS", "true"),
            ("FASTMCP__TLS__CERT_FILE", "c.pem"),
            ("FASTMCP__TLS__KEY_FILE", "k.pem"),
            ("FASTMCP__TLS__CLIENT_CA_FILE", "ca.pem"),
        ])
        .unwrap();
        assert!(c.require_mtls && c.tls.enabled());
    }

    #[test]
    fn the_sidecar_example_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/examples/sidecar-mtls.yaml");
        let c = Config::load(Some(&path), std::iter::empty()).unwrap();
        assert!(c.require_mtls && c.tls.enabled() && !c.tls.client_ca_file.is_empty());
        assert_eq!(c.public_url, "https://127.0.0.1:8443");
    }

    #[test]
    fn half_configured_tls_is_refused() {
        let e = load(&[("FASTMCP__TLS__CERT_FILE", "c.pem")]).unwrap_err();
        assert_eq!(e.key, "tls");
        let e = load(&[("FASTMCP__ADMIN__TLS__KEY_FILE", "k.pem")]).unwrap_err();
        assert_eq!(e.key, "admin.tls");
        let e = load(&[("FASTMCP__TLS__CLIENT_CA_FILE", "ca.pem")]).unwrap_err();
        assert_eq!(e.key, "tls.client_ca_file");
        let e = load(&[("FASTMCP__ADMIN__REQUIRE_MTLS", "true")]).unwrap_err();
        assert_eq!(e.key, "admin.require_mtls");
    }
}
