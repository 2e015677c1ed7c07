//! MCP wire handling: JSON-RPC messages, transport header checks, the `tools/list` response
//! filter (JSON and SSE), the federated endpoint's core, and MCP-native confirmation.

pub mod client;
pub mod confirm;
pub mod discovery;
pub mod elicitation;
pub mod federation;
pub mod jsonrpc;
pub mod request_state;
pub mod session;
pub mod sse;
pub mod tools_list;
pub mod upstream;
