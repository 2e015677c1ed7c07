//! Parsing a provider base URL into scheme, authority and base path.

use super::ProviderError;

/// Where a provider lives (configurable so tests point at local fakes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` when true, `http` otherwise.
    pub tls: bool,
    /// Host name or IP literal, lowercase, without brackets for IPv6.
    pub host: String,
    /// Port; the scheme default when the URL has none.
    pub port: u16,
    /// Path prefix every request path is appended to: empty or `/seg/seg`, never a trailing `/`.
    pub base_path: String,
}

impl Endpoint {
    /// Parses `http[s]://host[:port][/base/path]`. User info, query, fragment, dot segments
    /// and characters outside the URL path grammar are refused: a base URL is configuration,
    /// and anything odd in it is a misconfiguration rather than something to guess about.
    pub fn parse(base_url: &str) -> Result<Endpoint, ProviderError> {
        let bad = |why: &str| ProviderError::misconfigured(format!("invalid provider base URL: {why}"));
        let (tls, rest) = if let Some(rest) = base_url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base_url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("scheme must be http or https"));
        };
        if rest.contains(['?', '#', '@', '\\']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("no user info, query, fragment or whitespace allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("malformed host or port"))?;
        let port = match port {
            Some(p) => p,
            None if tls => 443,
            None => 80,
        };
        let base_path = path.trim_end_matches('/');
        let segments_ok = base_path.split('/').skip(1).all(|s| !s.is_empty() && s != "." && s != "..");
        if !segments_ok || !base_path.bytes().all(is_path_byte) {
            return Err(bad("base path must be plain segments"));
        }
        Ok(Endpoint { tls, host: host.to_ascii_lowercase(), port, base_path: base_path.to_owned() })
    }

    /// `host[:port]` as sent in the `Host` header: the port is omitted when it is the scheme
    /// default, IPv6 literals are bracketed.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Splits `host[:port]` or `[v6]:port`; `None` when either part is malformed.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return None;
        }
        let port = match after {
            "" => None,
            a => Some(a.strip_prefix(':')?),
        };
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if host.is_empty() || !host.split('.').all(label_ok) {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Bytes allowed in a configured base path: unreserved, sub-delims, `:`, `@`, `/` and `%`.
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}
