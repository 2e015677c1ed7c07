//! MCP wire handling: JSON-RPC messages, transport header checks, and the `tools/list`
//! response filter (JSON and SSE).

pub mod jsonrpc;
pub mod sse;
pub mod tools_list;
