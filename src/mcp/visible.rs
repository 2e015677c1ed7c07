//! Which listed tools a caller may see: the same `tools.invoke` decision a call would get,
//! without arguments and without a record (the list request has its own).

use serde_json::Value;

use crate::auth::Principal;
use crate::catalog::McpServer;
use crate::config::PinMode;
use crate::enforce::{Lister, Origin};
use crate::gateway::Gateway;
use crate::policy::PolicySnapshot;

impl Gateway {
    /// The visibility checks of one `tools/list` answer for `principal`.
    pub fn tool_lister<'p>(&self, policy: &'p PolicySnapshot, principal: &Principal, corr_id: &str) -> Lister<'p> {
        let origin = Origin { protocol: "mcp", path: "", http_method: "POST", client_ip: "", corr_id };
        self.enforce.lister(policy, principal, origin, "tools/list")
    }

    /// May the caller of `lister` call `tool` (a `tools/list` entry) on `server`? Errors
    /// hide the tool.
    pub fn tool_visible(&self, lister: &Lister<'_>, server: &McpServer, tool: &Value) -> bool {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return false;
        };
        // Invalid `x-mcp-header` marks: clients MUST drop the tool (2026-07-28) and the gateway
        // could not check its headers, so no door lists it (discovery warned once).
        if crate::mcp::param_headers::of_tool(tool).is_err() {
            return false;
        }
        // Pinning (enforce): a definition that is not the approved one is not offered; the
        // definition is remembered as the tool's current one, which its calls are judged by.
        let pin = self.enforce.pins.listed(&server.name, tool);
        if pin.as_ref().is_some_and(|p| p.mode == PinMode::Enforce && !p.pinned) {
            return false;
        }
        let annotations = tool.get("annotations");
        self.catalog.remember(server, name, annotations);
        let mut resource = self.catalog.tool_resource(server, name, annotations);
        if let (Some(p), Some(r)) = (pin, resource.as_object_mut()) {
            r.insert("definition_hash".into(), serde_json::json!(p.definition_hash));
            r.insert("pinned".into(), serde_json::json!(p.pinned));
        }
        lister.visible("tools.invoke", &resource)
    }
}
