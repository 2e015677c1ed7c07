//! The Redis backend: shared state for several gateway instances (`state.redis_url`).
//!
//! Key layout (every operation's keys share one hash slot, so it runs on Redis Cluster):
//!
//! | keys | what |
//! | --- | --- |
//! | `fastmcp:rl:<hash>` | one token bucket (tenant + subject + tool, hashed) |
//! | `{fastmcp:holds}:h:<token hash>`, `…:exp`, `…:ids`, `…:meta`, `…:bytes`, `…:total` | holds, their expiry and id indexes, byte accounting |
//! | `{fastmcp:idem:<caller>}:r:<key hash>`, `…:exp`, `…:cost`, `…:bytes` | one caller's idempotency records and accounting |
//! | `{fastmcp:sessions}:…` | federated and proxied MCP sessions, their owner and LRU indexes |
//! | `{fastmcp:elicit:<session>:<question>}:q`, `…:a` | a pending elicitation and its answer |
//! | `fastmcp:pins:<server>` | tool-definition pins of one server (`pinning::redis`) |
//! | `fastmcp:mrtr-key` | the shared MRTR sealing key (when `mcp.request_state_key` is empty) |

pub mod client;
mod scripts;
pub mod scripts_idem;
pub mod sessions;
pub mod store;

pub use client::{Redis, Settings};
