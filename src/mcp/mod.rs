//! MCP wire handling and the two MCP doors: JSON-RPC messages, transport header checks, the
//! `/mcp/{server}` door (`proxied`, `tool_call`), the federated endpoint's core
//! (`federation`), the one SSE parser, the fail-closed response filter and byte-faithful
//! `tools/list` filtering, MCP-native confirmation, and upstream requests relayed to federated
//! clients (`relay`).

pub mod client;
pub mod confirm;
pub mod discovery;
pub mod elicitation;
pub mod federation;
pub mod inbound;
pub mod jsonrpc;
pub mod param_headers;
pub mod proxied;
pub mod proxied_sessions;
pub mod relay;
pub mod request_state;
pub mod response_filter;
pub mod server_info;
pub mod session;
pub mod sse;
mod tool_call;
pub mod tools_list;
pub mod upstream;
mod visible;
