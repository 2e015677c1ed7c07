//! The policy input document (DESIGN §5), identical for REST and MCP traffic.

use serde_json::{json, Value};

use crate::auth::Principal;

/// What the request is about, besides the caller.
pub struct RequestFacts<'a> {
    pub protocol: &'a str,
    pub mcp_method: Option<&'a str>,
    pub arguments: &'a Value,
    pub path: &'a str,
    pub method: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
}

/// Builds the input for `action` on `resource` by `principal`.
pub fn build(principal: &Principal, action: &str, resource: &Value, req: &RequestFacts<'_>) -> Value {
    json!({
        "subject": {
            "sub": principal.sub,
            "tenant": principal.tenant,
            "roles": principal.roles,
            "scopes": principal.scopes,
            "claims": principal.claims,
            // The verified client certificate's names (mTLS), null without one.
            "peer": principal.peer.as_deref().map(crate::auth::peer::PeerIdentity::to_json),
        },
        "action": action,
        "resource": resource,
        "request": {
            "protocol": req.protocol,
            "mcp_method": req.mcp_method,
            "arguments": req.arguments,
            "path": req.path,
            "method": req.method,
        },
        "context": {
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "client_ip": req.client_ip,
            "corr_id": req.corr_id,
        }
    })
}
