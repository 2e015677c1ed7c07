//! The gateway's own identity as an MCP server, and federated results made to speak with it:
//! a federated client talks to one server, FastMCP, whatever upstream answered.

use serde_json::{json, Value};

/// The `_meta` key 2026-07-28 servers name themselves under in results.
pub const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

/// What the gateway says it is (`initialize`, `server/discover`, results it relays).
pub fn server_info() -> Value {
    json!({"name": "fastmcp-gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// `msg` with an upstream's `result._meta[serverInfo]` replaced by the gateway's. `None` when
/// the message names no server (nothing to change).
pub fn as_gateway(msg: &Value) -> Option<Value> {
    msg.pointer("/result/_meta")?.get(SERVER_INFO_META)?;
    let mut out = msg.clone();
    out["result"]["_meta"][SERVER_INFO_META] = server_info();
    Some(out)
}

/// [`as_gateway`] on a raw message. `Err` when it is not JSON.
pub fn as_gateway_raw(msg: &[u8]) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let v: Value = serde_json::from_slice(msg)?;
    Ok(as_gateway(&v).map(|m| m.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_identity_is_replaced_only_where_present() {
        let up = json!({"id": 1, "result": {"content": [], "_meta": {SERVER_INFO_META: {"name": "demo"}, "k": 1}}});
        let out = as_gateway(&up).unwrap();
        assert_eq!(out["result"]["_meta"][SERVER_INFO_META]["name"], "fastmcp-gateway");
        assert_eq!(out["result"]["_meta"]["k"], 1);
        assert!(as_gateway(&json!({"id": 1, "result": {"content": []}})).is_none());
        assert!(as_gateway_raw(b"not json").is_err());
    }
}
