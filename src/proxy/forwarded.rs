//! The URL clients reach the gateway at, for everything that names it back to them (RFC 9728
//! metadata, `WWW-Authenticate`, the scheme in `Forwarded` upstream):
//!
//! 1. `public_url`, when configured: the operator knows best (behind a TLS terminator the
//!    gateway cannot see the client's scheme or name).
//! 2. Otherwise the listener's scheme and the request's `Host` — except that a request whose
//!    TCP peer is in `trusted_proxies` may replace them with `X-Forwarded-Proto` and
//!    `X-Forwarded-Host`. From anyone else those headers are ignored: a client must not be
//!    able to make the gateway advertise a metadata URL of its choosing.
//!
//! Pure: the glue passes the peer address and the header values.

use std::net::IpAddr;

use http::uri::Authority;

/// Parses `public_url` into its canonical origin (`scheme://authority`, lowercase scheme and
/// host, no trailing slash). Only an origin is accepted: a path prefix would put the gateway's
/// routes (and the RFC 9728 well-known path) somewhere the gateway does not serve them.
pub fn parse_public_url(raw: &str) -> Result<String, String> {
    let uri: http::Uri = raw.trim().parse().map_err(|_| format!("{raw:?} is not a URL"))?;
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        Some(s) if s.eq_ignore_ascii_case("http") => "http",
        _ => return Err(format!("{raw:?}: the scheme must be http or https")),
    };
    let authority = uri.authority().ok_or_else(|| format!("{raw:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!("{raw:?}: user information is not allowed"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() || raw.contains('#') {
        return Err(format!("{raw:?}: only scheme://host[:port] is allowed (no path, query or fragment)"));
    }
    Ok(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

/// The peers whose `X-Forwarded-*` headers are believed: CIDR blocks or single addresses.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `fd00::/8`, `127.0.0.1` (one address). Host bits below the prefix
    /// are refused: `10.1.2.3/8` is probably a typo for something narrower.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let mut out = Vec::with_capacity(entries.len());
        for raw in entries {
            let entry = raw.trim();
            let (ip, len) = match entry.split_once('/') {
                Some((ip, len)) => (ip, Some(len)),
                None => (entry, None),
            };
            let ip: IpAddr = ip.parse().map_err(|_| format!("{raw:?} is not an IP address or CIDR block"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| format!("{raw:?}: bad prefix"))?,
            };
            if masked(ip, len) != ip {
                return Err(format!("{raw:?}: address bits set below the /{len} prefix"));
            }
            out.push((ip, len));
        }
        Ok(TrustedProxies(out))
    }

    /// Is `peer` one of them? (An IPv4-mapped IPv6 peer is judged as IPv4.)
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|(net, len)| net.is_ipv4() == peer.is_ipv4() && masked(peer, *len) == *net)
    }
}

/// `ip` with every bit below the first `len` cleared.
fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// What one request says about how it was addressed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addressed<'a> {
    /// The TCP peer (the client, or the proxy in front of us).
    pub peer: Option<IpAddr>,
    pub host: Option<&'a str>,
    pub forwarded_proto: Option<&'a str>,
    pub forwarded_host: Option<&'a str>,
}

/// How the gateway names itself to clients.
#[derive(Debug, Clone, Default)]
pub struct PublicOrigin {
    /// Canonical `public_url`, if configured.
    configured: Option<String>,
    /// The listener speaks TLS.
    tls: bool,
    trusted: TrustedProxies,
}

impl PublicOrigin {
    /// From the (validated) config; an invalid value here means no `public_url` and no
    /// trusted proxies, which only makes the gateway name itself by `Host`.
    pub fn new(cfg: &crate::config::Config) -> PublicOrigin {
        let configured = (!cfg.public_url.is_empty()).then(|| parse_public_url(&cfg.public_url).ok()).flatten();
        let trusted = TrustedProxies::parse(&cfg.trusted_proxies).unwrap_or_default();
        PublicOrigin { configured, tls: cfg.tls.enabled(), trusted }
    }

    /// The configured public origin's host name (an allowed `Host`), if any.
    pub fn configured_host(&self) -> Option<String> {
        let origin = self.configured.as_deref()?;
        let authority: Authority = origin.split_once("://")?.1.parse().ok()?;
        Some(authority.host().trim_matches(['[', ']']).to_string())
    }

    /// `scheme://authority` clients reach this request's gateway at.
    pub fn base(&self, req: &Addressed<'_>) -> String {
        if let Some(origin) = &self.configured {
            return origin.clone();
        }
        let trusted = req.peer.is_some_and(|p| self.trusted.contains(p));
        let forwarded_host = req.forwarded_host.filter(|_| trusted).and_then(first_authority);
        let host = forwarded_host.or_else(|| req.host.and_then(authority)).unwrap_or_else(|| "localhost".into());
        format!("{}://{host}", self.scheme(req))
    }

    /// The scheme the client used: a trusted proxy's `X-Forwarded-Proto`, else the listener's.
    pub fn scheme(&self, req: &Addressed<'_>) -> &'static str {
        if let Some(origin) = &self.configured {
            return if origin.starts_with("https:") { "https" } else { "http" };
        }
        let trusted = req.peer.is_some_and(|p| self.trusted.contains(p));
        let forwarded = req.forwarded_proto.filter(|_| trusted).map(|v| first(v).to_ascii_lowercase());
        match forwarded.as_deref() {
            Some("https") => "https",
            Some("http") => "http",
            _ if self.tls => "https",
            _ => "http",
        }
    }
}

/// The first element of a comma-separated forwarded list (the hop nearest the client).
fn first(v: &str) -> &str {
    v.split(',').next().unwrap_or("").trim()
}

fn first_authority(v: &str) -> Option<String> {
    authority(first(v))
}

/// `v` if it is a plain `host[:port]` (no user info), lowercased.
fn authority(v: &str) -> Option<String> {
    let a: Authority = v.parse().ok()?;
    (!a.as_str().contains('@')).then(|| a.as_str().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(public_url: &str, tls: bool, trusted: &[&str]) -> PublicOrigin {
        let trusted = TrustedProxies::parse(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let configured = (!public_url.is_empty()).then(|| parse_public_url(public_url).unwrap());
        PublicOrigin { configured, tls, trusted }
    }

    fn req<'a>(peer: &str, host: &'a str, proto: Option<&'a str>, fhost: Option<&'a str>) -> Addressed<'a> {
        Addressed { peer: peer.parse().ok(), host: Some(host), forwarded_proto: proto, forwarded_host: fhost }
    }

    #[test]
    fn public_url_must_be_an_origin() {
        assert_eq!(parse_public_url("HTTPS://GW.Example.com/").unwrap(), "https://gw.example.com");
        assert_eq!(parse_public_url("http://10.0.0.1:8443").unwrap(), "http://10.0.0.1:8443");
        assert_eq!(parse_public_url("https://[::1]:8443").unwrap(), "https://[::1]:8443");
        for bad in [
            "gw.example.com",
            "ftp://gw.example.com",
            "https://gw.example.com/prefix",
            "https://gw.example.com/?a=1",
            "https://gw.example.com/#x",
            "https://user@gw.example.com",
            "",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trusted_proxies_are_cidr_blocks() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "127.0.0.1".into(), "fd00::/8".into()]).unwrap();
        for ok in ["10.1.2.3", "127.0.0.1", "::ffff:10.9.9.9", "fd12::1"] {
            assert!(t.contains(ok.parse().unwrap()), "{ok}");
        }
        for no in ["11.0.0.1", "127.0.0.2", "::1", "fe80::1"] {
            assert!(!t.contains(no.parse().unwrap()), "{no}");
        }
        let all = TrustedProxies::parse(&["0.0.0.0/0".into()]).unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()) && !all.contains("::1".parse().unwrap()));
        for bad in ["10.1.2.3/8", "10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/x", "::/"] {
            assert!(TrustedProxies::parse(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn public_url_wins_over_everything() {
        let o = origin("https://gw.example.com", false, &["127.0.0.1"]);
        let r = req("127.0.0.1", "localhost:8001", Some("http"), Some("evil.example"));
        assert_eq!(o.base(&r), "https://gw.example.com");
        assert_eq!(o.scheme(&r), "https");
        assert_eq!(o.configured_host().as_deref(), Some("gw.example.com"));
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let o = origin("", false, &["10.0.0.0/8"]);
        let via_proxy = req("10.0.0.7", "gw-internal:8001", Some("https, http"), Some("gw.example.com:8443, x"));
        assert_eq!(o.base(&via_proxy), "https://gw.example.com:8443");
        let direct = req("192.0.2.1", "localhost:8001", Some("https"), Some("evil.example"));
        assert_eq!(o.base(&direct), "http://localhost:8001", "an untrusted peer's X-Forwarded-* is ignored");
        let nothing = origin("", false, &[]);
        assert_eq!(nothing.base(&via_proxy), "http://gw-internal:8001");
    }

    #[test]
    fn the_listener_scheme_and_a_sane_host_otherwise() {
        let tls = origin("", true, &["127.0.0.1"]);
        assert_eq!(tls.base(&req("127.0.0.1", "localhost:8443", None, None)), "https://localhost:8443");
        assert_eq!(tls.base(&req("127.0.0.1", "x", Some("gopher"), Some("a b"))), "https://x", "junk is ignored");
        let plain = origin("", false, &[]);
        assert_eq!(plain.base(&req("127.0.0.1", "bad host/x", None, None)), "http://localhost");
        assert_eq!(plain.base(&req("127.0.0.1", "u@h", None, None)), "http://localhost");
        assert_eq!(plain.base(&Addressed::default()), "http://localhost");
    }
}
