//! Name resolution for upstreams reached through pingora (the proxy path, REST providers).
//!
//! [`resolve_all`] returns every address so a caller (the egress check) can inspect the
//! IPs before anything connects; [`resolve`] is "the first of those" for callers that just
//! connect. IP literals are never looked up.

use std::net::{IpAddr, SocketAddr};

/// Why a host gave no address. The text names the host, never a URL or credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The lookup itself failed (unknown name, resolver unreachable, …).
    #[error("cannot resolve {host}: {reason}")]
    Lookup {
        /// The host that was looked up.
        host: String,
        /// The resolver's error, for the log.
        reason: String,
    },
    /// The lookup succeeded with no address.
    #[error("{host} did not resolve to any address")]
    NoAddress {
        /// The host that was looked up.
        host: String,
    },
}

/// Every address `host:port` resolves to, in resolver order (never empty). `host` is a name
/// or an IP literal without brackets, as in [`super::Endpoint::host`].
pub async fn resolve_all(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ResolveError::Lookup { host: host.to_string(), reason: e.to_string() })?
        .collect();
    if addrs.is_empty() {
        return Err(ResolveError::NoAddress { host: host.to_string() });
    }
    Ok(addrs)
}

/// The first address `host:port` resolves to (see [`resolve_all`]).
pub async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ResolveError> {
    let addrs = resolve_all(host, port).await?;
    addrs.into_iter().next().ok_or_else(|| ResolveError::NoAddress { host: host.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_literals_are_not_looked_up() {
        assert_eq!(resolve("127.0.0.1", 80).await.unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(resolve_all("::1", 8080).await.unwrap(), vec!["[::1]:8080".parse().unwrap()]);
    }

    #[tokio::test]
    async fn names_resolve_to_every_address() {
        let all = resolve_all("localhost", 9).await.unwrap();
        assert!(!all.is_empty() && all.iter().all(|a| a.port() == 9 && a.ip().is_loopback()), "{all:?}");
        assert_eq!(resolve("localhost", 9).await.unwrap(), all[0]);
    }

    #[tokio::test]
    async fn unknown_names_fail_with_the_host() {
        let e = resolve("no-such-host.invalid", 80).await.unwrap_err();
        assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
    }
}
