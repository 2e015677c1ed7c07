//! MCP wire handling: JSON-RPC messages, transport header checks, the one SSE parser, the
//! fail-closed response filter (JSON and SSE) and byte-faithful `tools/list` filtering, the
//! federated endpoint's core, and MCP-native confirmation.

pub mod client;
pub mod confirm;
pub mod discovery;
pub mod elicitation;
pub mod federation;
pub mod jsonrpc;
pub mod request_state;
pub mod response_filter;
pub mod session;
pub mod sse;
pub mod tools_list;
pub mod upstream;
