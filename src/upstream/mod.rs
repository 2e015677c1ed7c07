//! The upstream layer: how the gateway reaches the servers behind it, whichever path it takes
//! (the pingora proxy, REST providers, the upstream MCP client, JWKS and OAuth fetches).
//!
//! - [`endpoint`]: one [`Endpoint`] type, parsed from an MCP server URL or a provider base
//!   URL, with one `Host` header rule.
//! - [`resolve`]: one resolver, returning every address (for the egress check) or the
//!   first.
//! - [`egress`]: the egress address policy for manifest-described HTTP tools (pure; judged on
//!   the resolved addresses the sender then connects to).
//! - [`tls`]: one set of trusted roots (the platform store, or `SSL_CERT_FILE` /
//!   `SSL_CERT_DIR`), the same as pingora's connector, and the ureq TLS config over it.
//! - [`headers`]: the one function that dresses an upstream MCP request for its era
//!   (`MCP-Protocol-Version`, `Mcp-Session-Id`, `Mcp-Method`, encoded `Mcp-Name`).

pub mod egress;
pub mod endpoint;
pub mod headers;
pub mod resolve;
pub mod tls;

pub use egress::{EgressError, EgressPolicy};
pub use endpoint::{Endpoint, EndpointError};
pub use resolve::{resolve, resolve_all, ResolveError};
