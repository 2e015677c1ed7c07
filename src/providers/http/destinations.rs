//! Where a brokered credential may be sent: a list of URL prefixes
//! (`providers.credentials.<id>.allowed_urls`, by default the provider's configured base URL).
//! [`super::build`] refuses to put a credential into a request for any other URL, whoever
//! wrote the manifest and whatever its `provider_id` says.
//!
//! A prefix is parsed like a provider base URL ([`Endpoint::provider_base`]) and matched on
//! parsed parts, never on raw strings: same scheme, same host (exact, lowercase), same port,
//! and a path equal to the prefix's path or below it at a segment boundary. So
//! `https://api.pipedrive.com/api/v1` covers `…/api/v1/deals` but not `…/api/v10`,
//! `https://api.pipedrive.com.evil.test/…`, `http://api.pipedrive.com/…` or port 8443.

use super::{endpoint, Endpoint, ProviderError};

/// The URL prefixes one credential is bound to. Empty: the credential goes nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations(Vec<Endpoint>);

impl Destinations {
    /// Parses URL prefixes (each a valid provider base URL).
    pub fn parse<S: AsRef<str>>(urls: &[S]) -> Result<Destinations, ProviderError> {
        urls.iter().map(|u| endpoint::parse(u.as_ref().trim())).collect::<Result<_, _>>().map(Destinations)
    }

    /// Exactly these endpoints (base URLs already parsed).
    pub fn of(endpoints: Vec<Endpoint>) -> Destinations {
        Destinations(endpoints)
    }

    /// No destination at all.
    pub fn none() -> Destinations {
        Destinations(Vec::new())
    }

    /// Whether a request to `endpoint` with origin-form target `path_and_query` is under one
    /// of the prefixes.
    pub fn allows(&self, endpoint: &Endpoint, path_and_query: &str) -> bool {
        let path = path_and_query.split(['?', '#']).next().unwrap_or_default();
        self.0.iter().any(|p| same_origin(p, endpoint) && under(&p.path, path))
    }

    /// Whether every request built on base URL `base` stays under one of the prefixes (the
    /// base itself is at or below a prefix).
    pub fn covers_base(&self, base: &Endpoint) -> bool {
        self.0.iter().any(|p| same_origin(p, base) && under(&p.path, &base.path))
    }

    /// The prefixes, for logs.
    pub fn urls(&self) -> Vec<String> {
        self.0.iter().map(|e| format!("{}://{}{}", e.scheme(), e.authority(), e.path)).collect()
    }
}

fn same_origin(a: &Endpoint, b: &Endpoint) -> bool {
    a.tls == b.tls && a.host == b.host && a.port == b.port
}

/// `path` is `prefix` or below it at a segment boundary (an empty prefix covers every path).
fn under(prefix: &str, path: &str) -> bool {
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        endpoint::parse(url).unwrap()
    }

    #[test]
    fn prefixes_match_on_parsed_parts_and_segment_boundaries() {
        let d = Destinations::parse(&["https://api.pipedrive.com/api/v1"]).unwrap();
        let base = ep("https://api.pipedrive.com/api/v1");
        assert!(d.allows(&base, "/api/v1/deals?api_token=x"));
        assert!(d.allows(&base, "/api/v1"));
        assert!(!d.allows(&base, "/api/v10/deals"));
        assert!(!d.allows(&base, "/api/deals"));
        for other in [
            "https://api.pipedrive.com.evil.test/api/v1",
            "http://api.pipedrive.com/api/v1",
            "https://api.pipedrive.com:8443/api/v1",
            "https://evil.test/api/v1",
        ] {
            assert!(!d.allows(&ep(other), "/api/v1/deals"), "{other}");
            assert!(!d.covers_base(&ep(other)), "{other}");
        }
        assert!(d.covers_base(&ep("https://API.pipedrive.com:443/api/v1/")));
        assert!(d.covers_base(&ep("https://api.pipedrive.com/api/v1/deals")));
        assert!(!d.covers_base(&ep("https://api.pipedrive.com/api")));
    }

    #[test]
    fn an_origin_prefix_covers_every_path_and_none_covers_nothing() {
        let d = Destinations::parse(&["http://127.0.0.1:9000", "https://b.example/x"]).unwrap();
        assert!(d.allows(&ep("http://127.0.0.1:9000"), "/anything/at/all"));
        assert!(d.allows(&ep("https://b.example"), "/x/y"));
        assert!(!d.allows(&ep("https://b.example"), "/y"));
        assert!(!Destinations::none().allows(&ep("http://127.0.0.1:9000"), "/"));
        assert_eq!(d.urls(), vec!["http://127.0.0.1:9000".to_string(), "https://b.example/x".to_string()]);
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in ["ftp://h", "https://u:p@h", "https://h/a?x", "https://h/../x", "h.example"] {
            assert!(Destinations::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
