//! One endpoint type for every upstream: MCP server URLs (`mcp.servers.*.url`) and REST
//! provider base URLs. Two parsers, because the two are configured differently; one type and
//! one `Host` rule, because both are reached the same way.

/// Where an upstream lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` when true, `http` otherwise.
    pub tls: bool,
    /// Host name (lowercase) or IP literal, without brackets for IPv6.
    pub host: String,
    /// Port; the scheme default when the URL has none.
    pub port: u16,
    /// For an MCP endpoint ([`Endpoint::mcp`]): the path and query sent upstream, `/mcp` when
    /// the URL had none. For a provider ([`Endpoint::provider_base`]): the prefix every
    /// request path is appended to, empty or `/seg/seg`, never a trailing `/`.
    pub path: String,
}

/// Why a URL is not an endpoint (the text names the problem, never echoes the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(String);

fn bad(why: impl Into<String>) -> EndpointError {
    EndpointError(why.into())
}

impl Endpoint {
    /// Parses an MCP server URL `http[s]://host[:port][/path][?query]`; no path means `/mcp`.
    /// User info is refused (credentials are configured as `token`, not hidden in a URL that
    /// ends up in logs), as are a fragment (never sent; the client and the proxy would each
    /// drop it their own way) and port 0.
    pub fn mcp(url: &str) -> Result<Endpoint, EndpointError> {
        if url.contains('#') {
            return Err(bad("a fragment is not allowed in the URL"));
        }
        let uri: http::Uri = url.parse().map_err(|e| bad(format!("not a URL: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user info is not allowed in the URL"));
        }
        let host = authority.host().trim_matches(['[', ']']);
        if host.is_empty() {
            return Err(bad("URL has no host"));
        }
        let port = match authority.port_u16() {
            Some(0) => return Err(bad("port must be 1..=65535")),
            Some(p) => p,
            None => default_port(tls),
        };
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => "/mcp".to_string(),
            Some(p) => p.to_string(),
        };
        Ok(Endpoint { tls, host: host.to_ascii_lowercase(), port, path })
    }

    /// Parses a provider base URL `http[s]://host[:port][/base/path]`. User info, query,
    /// fragment, dot segments and characters outside the URL path grammar are refused: a base
    /// URL is configuration, and anything odd in it is a misconfiguration rather than
    /// something to guess about.
    pub fn provider_base(base_url: &str) -> Result<Endpoint, EndpointError> {
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
        let port = port.unwrap_or(default_port(tls));
        let path = path.trim_end_matches('/');
        let segments_ok = path.split('/').skip(1).all(|s| !s.is_empty() && s != "." && s != "..");
        if !segments_ok || !path.bytes().all(is_path_byte) {
            return Err(bad("base path must be plain segments"));
        }
        Ok(Endpoint { tls, host: host.to_ascii_lowercase(), port, path: path.to_owned() })
    }

    /// The `Host` header value; see [`authority`].
    pub fn authority(&self) -> String {
        authority(self.tls, &self.host, self.port)
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

/// `host[:port]` as sent in the `Host` header, the one rule for every upstream: IPv6 literals
/// are bracketed and the port is omitted when it is the scheme default (RFC 3986 §6.2.3
/// normal form, what curl and browsers send).
pub fn authority(tls: bool, host: &str, port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    if port == default_port(tls) {
        host
    } else {
        format!("{host}:{port}")
    }
}

fn default_port(tls: bool) -> u16 {
    if tls {
        443
    } else {
        80
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(tls: bool, host: &str, port: u16, path: &str) -> Endpoint {
        Endpoint { tls, host: host.into(), port, path: path.into() }
    }

    #[test]
    fn mcp_urls_default_to_the_mcp_path() {
        assert_eq!(Endpoint::mcp("http://localhost:3001").unwrap(), ep(false, "localhost", 3001, "/mcp"));
        assert_eq!(Endpoint::mcp("http://localhost:3001/").unwrap().path, "/mcp");
        assert_eq!(Endpoint::mcp("https://MCP.Example.com").unwrap(), ep(true, "mcp.example.com", 443, "/mcp"));
        assert_eq!(Endpoint::mcp("http://127.0.0.1:9/x/y?k=v").unwrap(), ep(false, "127.0.0.1", 9, "/x/y?k=v"));
        assert_eq!(Endpoint::mcp("http://[::1]:8080/mcp").unwrap(), ep(false, "::1", 8080, "/mcp"));
        // Docker-style service names keep working on the MCP side.
        assert_eq!(Endpoint::mcp("http://mcp_fs:8000/mcp").unwrap().host, "mcp_fs");
    }

    #[test]
    fn mcp_urls_refuse_what_cannot_be_reached_as_configured() {
        for (url, why) in [
            ("ftp://h/mcp", "scheme"),
            ("h.com/mcp", "not a URL"),
            ("http://h.com/mcp#top", "fragment"),
            ("/mcp", "scheme"),
            ("http://user:pw@h.com/mcp", "user info"),
            ("http://h.com:0/mcp", "port"),
            ("http://h .com/", "not a URL"),
        ] {
            let err = Endpoint::mcp(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn provider_base_urls_parse_scheme_host_port_and_base_path() {
        let e = Endpoint::provider_base("https://Acme.pipedrive.com/api/v1/").unwrap();
        assert_eq!(e, ep(true, "acme.pipedrive.com", 443, "/api/v1"));
        assert_eq!(Endpoint::provider_base("http://127.0.0.1:9000").unwrap(), ep(false, "127.0.0.1", 9000, ""));
        assert_eq!(Endpoint::provider_base("http://[::1]:8080/x").unwrap(), ep(false, "::1", 8080, "/x"));
    }

    #[test]
    fn provider_base_urls_refuse_odd_urls() {
        for bad in [
            "ftp://h",
            "h.com",
            "https://",
            "https://user:pw@h.com",
            "https://h.com/a?x=1",
            "https://h.com/#f",
            "https://h.com:0",
            "https://h.com:+80",
            "https://h.com:99999",
            "https://h.com/a/../b",
            "https://h.com/./b",
            "https://h.com//b",
            "https://h .com",
            "https://h.com/a b",
            "https://h_x.com",
            "http://[zz]:1",
            "http://[::1]x",
        ] {
            assert!(Endpoint::provider_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_host_header_rule_for_both_kinds() {
        assert_eq!(Endpoint::provider_base("https://acme.pipedrive.com").unwrap().authority(), "acme.pipedrive.com");
        assert_eq!(Endpoint::mcp("https://mcp.example.com:443/mcp").unwrap().authority(), "mcp.example.com");
        assert_eq!(Endpoint::mcp("http://localhost:80").unwrap().authority(), "localhost");
        assert_eq!(Endpoint::mcp("http://localhost:443").unwrap().authority(), "localhost:443");
        assert_eq!(Endpoint::mcp("https://localhost:80").unwrap().authority(), "localhost:80");
        assert_eq!(Endpoint::mcp("http://[::1]:8080").unwrap().authority(), "[::1]:8080");
        assert_eq!(Endpoint::provider_base("https://[::1]").unwrap().authority(), "[::1]");
        assert_eq!(authority(false, "127.0.0.1", 9000), "127.0.0.1:9000");
        assert_eq!(Endpoint::mcp("https://h").unwrap().scheme(), "https");
    }
}
