//! Which request headers may cross the gateway, in each direction that matters.
//!
//! Upstream requests carry an allow-list: what MCP needs (content negotiation, the MCP
//! headers, the user agent) plus what the operator adds per server. Trace context is not
//! passed through: the gateway continues the agent's trace and sends its own child span's
//! `traceparent`/`tracestate` (`proxy/trace.rs`). The
//! agent's credentials (`Authorization`, `Cookie`, API keys), forwarding headers (the gateway
//! writes its own when configured), `Accept-Encoding` (the gateway must be able to read what
//! it filters) and every hop-by-hop header never go upstream.

use http::HeaderMap;

/// Request headers forwarded upstream as the agent sent them.
const FORWARDED: &[&str] = &[
    "content-type",
    "accept",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "user-agent",
];

/// The MCP headers a federated call gets from the gateway's own upstream session instead.
const SESSION_HEADERS: &[&str] = &["mcp-protocol-version", "mcp-session-id", "mcp-method", "mcp-name"];

/// `Mcp-Param-{Name}` (2026-07-28): forwarded as sent on `/mcp/{server}` (intermediaries
/// must); on federated calls the gateway's client sets the upstream tool's own instead.
const PARAM_PREFIX: &str = "mcp-param-";

/// Headers that may appear at most once (two of them are a smuggling attempt or a bug).
pub const SINGLETONS: &[&str] =
    &["mcp-method", "mcp-name", "mcp-session-id", "mcp-protocol-version", "authorization", "last-event-id"];

/// Names an operator may never add to a server's forwarded headers: they carry the agent's
/// credentials or belong to one hop.
pub const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-action-token",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "host",
    "content-length",
];

/// May the agent's header `name` (lowercase) go upstream? `extra` are the server's
/// configured additions; `federated` calls get the MCP session and `Mcp-Param-*` headers
/// from the gateway.
pub fn forwarded(name: &str, extra: &[String], federated: bool) -> bool {
    if federated && (SESSION_HEADERS.contains(&name) || name.starts_with(PARAM_PREFIX)) {
        return false;
    }
    FORWARDED.contains(&name) || name.starts_with(PARAM_PREFIX) || extra.iter().any(|e| e == name)
}

/// The names in `headers` that must be removed before the request goes upstream.
pub fn to_remove(headers: &HeaderMap, extra: &[String], federated: bool) -> Vec<http::HeaderName> {
    let mut out: Vec<http::HeaderName> =
        headers.keys().filter(|k| !forwarded(k.as_str(), extra, federated)).cloned().collect();
    out.dedup();
    out
}

/// The first singleton header that appears more than once.
pub fn duplicated(headers: &HeaderMap) -> Option<&'static str> {
    SINGLETONS.iter().copied().find(|h| headers.get_all(*h).iter().nth(1).is_some())
}

/// The `Content-Length` the request declares, when it is a number.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

/// The request announces a body (`Content-Length` above zero, or `Transfer-Encoding`).
pub fn announces_body(headers: &HeaderMap) -> bool {
    let len = headers.get("content-length").and_then(|v| v.to_str().ok()).map(str::trim);
    headers.contains_key("transfer-encoding") || len.is_some_and(|l| l != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    #[test]
    fn only_the_allow_list_goes_upstream() {
        let h = map(&[
            ("authorization", "Bearer agent"),
            ("cookie", "sid=1"),
            ("x-api-key", "k"),
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "6.6.6.6"),
            ("accept-encoding", "gzip"),
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("content-type", "application/json"),
            ("mcp-session-id", "s"),
            ("mcp-param-region", "eu"),
            ("x-tenant-hint", "acme"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("tracestate", "a=1"),
        ]);
        let mut gone: Vec<String> =
            to_remove(&h, &["x-tenant-hint".into()], false).iter().map(|n| n.to_string()).collect();
        gone.sort();
        assert_eq!(
            gone,
            [
                "accept-encoding",
                "authorization",
                "connection",
                "cookie",
                "forwarded",
                "traceparent",
                "tracestate",
                "upgrade",
                "x-api-key",
                "x-forwarded-for"
            ]
        );
        let fed: Vec<String> = to_remove(&h, &[], true).iter().map(|n| n.to_string()).collect();
        assert!(fed.contains(&"mcp-session-id".to_string()), "federated calls use the gateway's upstream session");
        assert!(fed.contains(&"mcp-param-region".to_string()), "federated calls get the gateway's Mcp-Param-*");
        let proxied: Vec<String> = to_remove(&h, &[], false).iter().map(|n| n.to_string()).collect();
        assert!(!proxied.contains(&"mcp-param-region".to_string()), "intermediaries forward Mcp-Param-*");
    }

    #[test]
    fn duplicates_and_bodies() {
        assert_eq!(duplicated(&map(&[("mcp-name", "a"), ("mcp-name", "b")])), Some("mcp-name"));
        assert_eq!(duplicated(&map(&[("mcp-name", "a"), ("accept", "x"), ("accept", "y")])), None);
        assert!(announces_body(&map(&[("content-length", "3")])));
        assert!(announces_body(&map(&[("transfer-encoding", "chunked")])));
        assert!(!announces_body(&map(&[("content-length", "0")])));
        assert!(!announces_body(&map(&[])));
    }
}
