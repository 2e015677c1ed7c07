//! The MCP servers the gateway fronts and how their tools look to the policy: tool id
//! `mcp:{server}:{tool}`, provider `mcp`, required scope `mcp.{server}`, and safety tags from
//! config overrides, else (trusted servers only) from annotations, else `destructive`.

pub mod manifest;
pub mod manifests;
mod seed;
pub mod sqlite_url;

pub use seed::seed_manifests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::config::{LimitsConfig, McpServerConfig};
use crate::upstream::Endpoint;

/// One configured upstream MCP server.
#[derive(Debug)]
pub struct McpServer {
    pub name: String,
    pub cfg: McpServerConfig,
    /// The HTTP endpoint; `None` for a stdio server (reached through its client only).
    pub url: Option<Endpoint>,
}

impl McpServer {
    /// How long a call to this server may take: its own `timeout_seconds`, else the
    /// gateway-wide upstream timeout.
    pub fn timeout(&self, limits: &LimitsConfig) -> std::time::Duration {
        std::time::Duration::from_secs(self.cfg.timeout_seconds.unwrap_or(limits.upstream_timeout_seconds))
    }
}

/// Servers by name, plus the annotations last seen in their `tools/list` results.
#[derive(Default)]
pub struct Catalog {
    servers: HashMap<String, Arc<McpServer>>,
    annotations: RwLock<HashMap<(String, String), Value>>,
}

impl Catalog {
    pub fn new(servers: &BTreeMap<String, McpServerConfig>) -> Result<Catalog, String> {
        let mut map = HashMap::new();
        for (name, cfg) in servers {
            let url = if cfg.transport == "stdio" {
                None
            } else {
                Some(Endpoint::mcp(&cfg.url).map_err(|e| format!("mcp.servers.{name}.url: {e}"))?)
            };
            map.insert(name.clone(), Arc::new(McpServer { name: name.clone(), cfg: cfg.clone(), url }));
        }
        Ok(Catalog { servers: map, annotations: RwLock::new(HashMap::new()) })
    }

    pub fn server(&self, name: &str) -> Option<Arc<McpServer>> {
        self.servers.get(name).cloned()
    }

    /// Every server, by name.
    pub fn servers(&self) -> Vec<Arc<McpServer>> {
        let mut all: Vec<Arc<McpServer>> = self.servers.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn server_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.servers.keys().cloned().collect();
        names.sort();
        names
    }

    /// Records a trusted server's annotations from a `tools/list` result so later calls see
    /// the same tags.
    pub fn remember(&self, server: &McpServer, tool: &str, annotations: Option<&Value>) {
        if !server.cfg.trusted {
            return;
        }
        let key = (server.name.clone(), tool.to_string());
        let value = annotations.cloned().unwrap_or(Value::Null);
        if self.annotations.read().get(&key) != Some(&value) {
            self.annotations.write().insert(key, value);
        }
    }

    /// The policy resource for `tool` on `server`. `listed` are annotations from the
    /// `tools/list` result being filtered, if any.
    pub fn tool_resource(&self, server: &McpServer, tool: &str, listed: Option<&Value>) -> Value {
        let annotations = match listed {
            Some(a) => Some(a.clone()),
            None => self.annotations.read().get(&(server.name.clone(), tool.to_string())).cloned(),
        }
        .filter(|a| a.is_object());
        let tags: Vec<String> = if let Some(tags) = server.cfg.tool_tags.get(tool) {
            tags.clone()
        } else if server.cfg.trusted {
            tags_from_annotations(annotations.as_ref())
        } else {
            vec!["destructive".into()]
        };
        json!({
            "toolId": format!("mcp:{}:{}", server.name, tool),
            "provider_id": "mcp",
            "server": server.name,
            "tool": tool,
            "tenant": server.cfg.tenant,
            "safety_tags": tags,
            "annotations": annotations.unwrap_or_else(|| json!({})),
            "required_scopes": [format!("mcp.{}", server.name)],
        })
    }
}

impl Catalog {
    /// The policy resource for a non-tool request (`resources/read`, `prompts/get`, …) on
    /// `server`; `target` is the prompt name or resource URI.
    pub fn server_resource(&self, server: &McpServer, target: Option<&str>) -> Value {
        json!({
            "toolId": format!("mcp:{}", server.name),
            "provider_id": "mcp",
            "server": server.name,
            "target": target,
            "tenant": server.cfg.tenant,
            "safety_tags": [],
            "annotations": {},
            "required_scopes": [format!("mcp.{}", server.name)],
        })
    }
}

/// MCP annotation semantics with the spec's defaults: read-only tools are `read_only`;
/// otherwise `destructiveHint` (default true) makes a tool `destructive`.
pub fn tags_from_annotations(a: Option<&Value>) -> Vec<String> {
    let flag = |k: &str| a.and_then(|a| a.get(k)).and_then(Value::as_bool);
    if flag("readOnlyHint") == Some(true) {
        vec!["read_only".into()]
    } else if flag("destructiveHint").unwrap_or(true) {
        vec!["destructive".into()]
    } else {
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(trusted: bool) -> McpServer {
        let cfg: McpServerConfig = serde_yaml_ng::from_str(&format!(
            "url: http://h:1/mcp\ntrusted: {trusted}\ntool_tags: {{forced: [financial]}}"
        ))
        .unwrap();
        McpServer { name: "demo".into(), url: Endpoint::mcp(&cfg.url).ok(), cfg }
    }

    #[test]
    fn untrusted_annotations_cannot_lower_risk() {
        let c = Catalog::default();
        let ro = json!({"readOnlyHint": true});
        assert_eq!(c.tool_resource(&server(false), "x", Some(&ro))["safety_tags"], json!(["destructive"]));
        assert_eq!(c.tool_resource(&server(true), "x", Some(&ro))["safety_tags"], json!(["read_only"]));
        assert_eq!(
            c.tool_resource(&server(true), "x", None)["safety_tags"],
            json!(["destructive"]),
            "unannotated = destructive"
        );
        assert_eq!(c.tool_resource(&server(false), "forced", None)["safety_tags"], json!(["financial"]));
    }

    #[test]
    fn remembered_annotations_apply_to_calls() {
        let c = Catalog::default();
        let s = server(true);
        c.remember(&s, "x", Some(&json!({"readOnlyHint": true})));
        let r = c.tool_resource(&s, "x", None);
        assert_eq!(r["safety_tags"], json!(["read_only"]));
        assert_eq!(r["toolId"], "mcp:demo:x");
        assert_eq!(r["required_scopes"], json!(["mcp.demo"]));
    }
}
