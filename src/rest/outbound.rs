//! The operator's outbound rules for REST HTTP tools, built once from configuration:
//!
//! - where each brokered credential may be sent ([`Destinations`] per provider id:
//!   `providers.credentials.<id>.allowed_urls`, by default the built-in provider's configured
//!   base URL — Pipedrive's, Google Ads' — and nowhere for any other provider);
//! - the egress address policy for destinations only a manifest names
//!   (`providers.http.egress`, plus the gateway's own listeners, [`EgressPolicy`]).
//!
//! The request builder enforces the first on every call ([`crate::providers::http::build`]),
//! the sender the second at connect time ([`crate::providers::sender`]). This module adds the
//! checks that need no DNS, for registration ([`Outbound::check_manifest`]) and for a call
//! before it is admitted ([`Outbound::check_request`]): refused there, a call leaves a
//! decision record of its refusal and never becomes a hold.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::Value;

use crate::catalog::manifest::Manifest;
use crate::config::Config;
use crate::error::GatewayError;
use crate::providers::http::{pipedrive, Destination, Destinations, Endpoint, UpstreamRequest};
use crate::upstream::{EgressError, EgressPolicy};

/// Reason attached to a refused credential destination (audit records, error details).
pub const CREDENTIAL_NOT_BOUND: &str = "credential_not_bound";
/// Reason attached to an egress refusal.
pub const EGRESS_REFUSED: &str = "egress_refused";

/// Credential bindings and the egress policy.
#[derive(Debug)]
pub struct Outbound {
    bindings: BTreeMap<String, Destinations>,
    none: Destinations,
    /// The egress address policy the sender applies to manifest-named destinations.
    pub policy: EgressPolicy,
}

impl Outbound {
    /// Builds the rules from `cfg` (validated: every URL and allow entry parses).
    pub fn from_config(cfg: &Config) -> Result<Outbound, String> {
        let http = &cfg.providers.http;
        let mut bindings = BTreeMap::new();
        let builtin = |id: &str| -> Option<Endpoint> {
            match id {
                "pipedrive" => {
                    pipedrive::endpoint(&http.pipedrive_company_domain, http.pipedrive_base_url.as_deref()).ok()
                }
                "ads" => Endpoint::provider_base(&http.google_ads_base_url).ok(),
                _ => None,
            }
        };
        // The built-in providers' bases bind their credentials even before one is configured
        // (registration under a reserved id compares against them).
        for id in ["pipedrive", "ads"] {
            bindings.insert(id.to_string(), Destinations::of(builtin(id).into_iter().collect()));
        }
        for (id, c) in &cfg.providers.credentials {
            let d = match c.allowed_urls() {
                Some(urls) => {
                    Destinations::parse(urls).map_err(|e| format!("providers.credentials.{id}.allowed_urls: {e}"))?
                }
                None => Destinations::of(builtin(id).into_iter().collect()),
            };
            bindings.insert(id.clone(), d);
        }
        let own: Vec<SocketAddr> = [&cfg.listen, &cfg.admin_listen].iter().filter_map(|a| a.parse().ok()).collect();
        let policy = EgressPolicy::new(&http.egress.allow, http.egress.allow_public, &own)
            .map_err(|e| format!("providers.http.egress.allow: {e}"))?;
        Ok(Outbound { bindings, none: Destinations::none(), policy })
    }

    /// Where `provider`'s credential may go (nowhere when nothing is configured for it).
    pub fn binding(&self, provider: &str) -> &Destinations {
        self.bindings.get(provider).unwrap_or(&self.none)
    }

    /// Registration: a manifest's `http.base_url` must lie under its provider's credential
    /// binding when that provider has a brokered credential, and otherwise pass the egress
    /// checks that need no DNS (IP literals, numeric forms, the gateway's listeners). Names
    /// are judged when the call connects: what they resolve to can change.
    pub fn check_manifest(&self, m: &Manifest, has_credential: bool) -> Result<(), GatewayError> {
        let Some(base) = m.http.as_ref().and_then(|h| h.get("base_url")) else {
            return Ok(());
        };
        let endpoint = base
            .as_str()
            .ok_or_else(|| "must be a string".to_string())
            .and_then(|b| Endpoint::provider_base(b).map_err(|e| e.to_string()))
            .map_err(|e| GatewayError::Validation { message: format!("manifest http.base_url: {e}") })?;
        if has_credential {
            return if self.binding(&m.provider_id).covers_base(&endpoint) {
                Ok(())
            } else {
                Err(not_bound(&m.provider_id))
            };
        }
        self.policy.check_host(&endpoint.host, endpoint.port).map_err(egress_refused)
    }

    /// A built request, before its call is admitted: a manifest-named destination passes the
    /// egress checks that need no DNS (the sender checks the resolved addresses).
    pub fn check_request(&self, req: &UpstreamRequest) -> Result<(), GatewayError> {
        match req.destination {
            Destination::Operator => Ok(()),
            Destination::Manifest => {
                self.policy.check_host(&req.endpoint.host, req.endpoint.port).map_err(egress_refused)
            }
        }
    }
}

/// The 403 for a credential that may not go where a manifest points.
pub fn not_bound(provider: &str) -> GatewayError {
    GatewayError::Forbidden {
        message: format!(
            "the {provider:?} credential may not be sent to this base URL \
             (providers.credentials.{provider}.allowed_urls)"
        ),
        reasons: vec![CREDENTIAL_NOT_BOUND.into()],
    }
}

/// The 403 for an egress refusal (the host and the kind of address, not the address).
pub fn egress_refused(e: EgressError) -> GatewayError {
    if let EgressError::Refused { host, addr, class } = &e {
        tracing::warn!(host, %addr, class, "egress refused");
    }
    GatewayError::Forbidden { message: e.to_string(), reasons: vec![EGRESS_REFUSED.into()] }
}

/// The `http` section's `base_url`, if the manifest has one.
pub fn base_url(m: &Manifest) -> Option<&str> {
    m.http.as_ref().and_then(|h| h.get("base_url")).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outbound(env: &[(&str, &str)]) -> Outbound {
        let cfg = Config::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        Outbound::from_config(&cfg).unwrap()
    }

    fn manifest(provider: &str, base: &str) -> Manifest {
        Manifest::from_value(json!({"toolId": format!("{provider}:t"), "name": "n", "provider_id": provider,
            "tenant": "acme", "inputs": {"type": "object"},
            "http": {"method": "GET", "base_url": base, "path": "/x"}}))
        .unwrap()
    }

    fn reasons(r: Result<(), GatewayError>) -> Vec<String> {
        match r {
            Err(GatewayError::Forbidden { reasons, .. }) => reasons,
            other => panic!("expected 403, got {other:?}"),
        }
    }

    #[test]
    fn credentials_default_to_the_built_in_base_and_otherwise_go_nowhere() {
        let o = outbound(&[
            ("FASTMCP__PROVIDERS__HTTP__PIPEDRIVE_BASE_URL", "http://127.0.0.1:9000/api/v1"),
            ("FASTMCP__PROVIDERS__CREDENTIALS__CRM__KIND", "static"),
            ("FASTMCP__PROVIDERS__CREDENTIALS__CRM__SECRET", "k"),
        ]);
        assert_eq!(o.binding("pipedrive").urls(), ["http://127.0.0.1:9000/api/v1"]);
        assert_eq!(o.binding("ads").urls(), ["https://googleads.googleapis.com"]);
        assert!(o.binding("crm").urls().is_empty(), "no allowed_urls: bound nowhere");
        assert!(o.binding("unknown").urls().is_empty());
        let o = outbound(&[
            ("FASTMCP__PROVIDERS__CREDENTIALS__CRM__KIND", "static"),
            ("FASTMCP__PROVIDERS__CREDENTIALS__CRM__SECRET", "k"),
            ("FASTMCP__PROVIDERS__CREDENTIALS__CRM__ALLOWED_URLS", r#"["https://crm.example.com/api"]"#),
        ]);
        assert_eq!(o.binding("crm").urls(), ["https://crm.example.com/api"]);
    }

    #[test]
    fn registration_checks_the_binding_or_the_static_egress_rules() {
        let o = outbound(&[("FASTMCP_ADMIN_LISTEN", "127.0.0.1:9901")]);
        // With a credential: only under its binding (Pipedrive's default base here).
        let stolen = manifest("pipedrive", "http://127.0.0.1:13003");
        assert_eq!(reasons(o.check_manifest(&stolen, true)), [CREDENTIAL_NOT_BOUND]);
        assert!(o.check_manifest(&manifest("pipedrive", "https://x.pipedrive.com/api/v1"), true).is_err());
        // Without one: the egress policy on IP literals and numeric forms.
        for base in [
            "http://127.0.0.1:9901",
            "http://169.254.169.254",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]",
            "http://2130706433",
            "http://0x7f.1",
            "http://0.0.0.0:80",
            "http://10.0.0.1",
        ] {
            assert_eq!(reasons(o.check_manifest(&manifest("crm", base), false)), [EGRESS_REFUSED], "{base}");
        }
        // Names are judged at connect time; public literals pass.
        assert!(o.check_manifest(&manifest("crm", "http://localhost:9"), false).is_ok());
        assert!(o.check_manifest(&manifest("crm", "https://93.184.216.34/api"), false).is_ok());
        let bad = manifest("crm", "ftp://h");
        assert!(matches!(o.check_manifest(&bad, false), Err(GatewayError::Validation { .. })));
    }

    #[test]
    fn the_admin_listener_is_refused_even_when_loopback_is_allowed() {
        let o = outbound(&[
            ("FASTMCP_ADMIN_LISTEN", "127.0.0.1:9901"),
            ("FASTMCP__PROVIDERS__HTTP__EGRESS__ALLOW", r#"["127.0.0.0/8"]"#),
        ]);
        assert_eq!(reasons(o.check_manifest(&manifest("crm", "http://127.0.0.1:9901"), false)), [EGRESS_REFUSED]);
        assert!(o.check_manifest(&manifest("crm", "http://127.0.0.1:9902"), false).is_ok());
    }
}
