//! DNS-rebinding protection (Streamable HTTP spec): which `Host` and `Origin` headers the
//! gateway answers.
//!
//! A rebinding attack makes a browser send `Host: evil.example` and `Origin:
//! http://evil.example` to a loopback service, so comparing the two proves nothing: the Host
//! itself must be one of ours. A gateway on a loopback address answers only loopback names
//! plus `allowed_hosts`; on other addresses, `allowed_hosts` when set (else any Host).

use std::net::{IpAddr, SocketAddr};

/// The host names the gateway answers to.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// The listener is on a loopback address: loopback names are ours.
    loopback_listener: bool,
    /// Extra host names (lowercase, no port).
    allowed: Vec<String>,
}

impl HostPolicy {
    pub fn new(listen: &str, allowed: &[String]) -> HostPolicy {
        let loopback_listener = listen.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
        HostPolicy { loopback_listener, allowed: allowed.iter().map(|h| h.to_ascii_lowercase()).collect() }
    }

    /// Is `host` (a `Host` header or an origin's host, port allowed) one of ours?
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(value) = host else {
            // Without a Host there is nothing to rebind (HTTP/1.0).
            return true;
        };
        let Some(name) = host_name(value) else {
            // A Host that is not an authority is refused, never read as "no Host".
            return false;
        };
        if self.allowed.contains(&name) {
            return true;
        }
        if self.loopback_listener {
            return is_loopback_name(&name);
        }
        self.allowed.is_empty()
    }

    /// May a browser page from `origin` call us (given an allowed `host`)?
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let Ok(uri) = origin.parse::<http::Uri>() else {
            return false;
        };
        let Some(origin_host) = uri.host() else {
            return false;
        };
        let same = host.is_some_and(|h| uri.authority().is_some_and(|a| a.as_str().eq_ignore_ascii_case(h)));
        let name = origin_host.trim_matches(['[', ']']).to_ascii_lowercase();
        is_loopback_name(&name) || self.allowed.contains(&name) || (same && self.host_allowed(host))
    }
}

/// The lowercase host name of a `host[:port]` value.
fn host_name(value: &str) -> Option<String> {
    let authority: http::uri::Authority = value.parse().ok()?;
    Some(authority.host().trim_matches(['[', ']']).to_ascii_lowercase())
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listener_answers_loopback_names_only() {
        let p = HostPolicy::new("127.0.0.1:8001", &[]);
        for ok in ["localhost:8001", "127.0.0.1:8001", "[::1]:8001", "LOCALHOST"] {
            assert!(p.host_allowed(Some(ok)), "{ok}");
        }
        assert!(!p.host_allowed(Some("evil.example.com")), "rebinding");
        assert!(!p.host_allowed(Some("evil.example.com:8001")));
        for bad in ["", "a b", "x/y", "h:port", "[::1", "host:99999"] {
            assert!(!p.host_allowed(Some(bad)), "malformed Host {bad:?}");
        }
        let named = HostPolicy::new("127.0.0.1:8001", &["gw.internal".into()]);
        assert!(named.host_allowed(Some("gw.internal:8001")));
    }

    #[test]
    fn other_listeners_check_only_configured_names() {
        assert!(HostPolicy::new("0.0.0.0:8001", &[]).host_allowed(Some("anything")));
        let p = HostPolicy::new("0.0.0.0:8001", &["gw.example.com".into()]);
        assert!(p.host_allowed(Some("gw.example.com")));
        assert!(!p.host_allowed(Some("evil.example.com")));
    }

    #[test]
    fn origins() {
        let p = HostPolicy::new("127.0.0.1:8001", &[]);
        assert!(p.origin_allowed("http://localhost:3000", Some("127.0.0.1:8001")));
        assert!(!p.origin_allowed("http://evil.example", Some("127.0.0.1:8001")));
        assert!(!p.origin_allowed("http://evil.example.com", Some("evil.example.com")), "same but foreign");
        assert!(!p.origin_allowed("not a url", Some("localhost")));
        let open = HostPolicy::new("0.0.0.0:8001", &[]);
        assert!(open.origin_allowed("https://gw.example.com", Some("gw.example.com")));
    }
}
