//! The federated `/mcp` endpoint's plain-Rust core: FastMCP as one MCP server in front of all
//! configured servers.
//!
//! - Tools discovered on each server are exposed as `{server}{sep}{tool}` (default `__`),
//!   sorted by server then tool so every client sees the same order.
//! - A name resolves back to its server by the longest configured server-name prefix, so a
//!   server name containing the separator still resolves unambiguously.
//! - `initialize` (2025-11-25) and `server/discover` (2026-07-28) are answered here.

pub mod door;
mod lists;
mod routed;
pub mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::config::McpConfig;
use crate::mcp::discovery::Discovery;
use crate::mcp::elicitation::{Elicitations, Pending};
use crate::mcp::request_state::StateSealer;
use crate::mcp::session::{SessionLimits, SessionStore, Sessions};
use crate::mcp::upstream::Upstreams;

/// Protocol versions the federated endpoint speaks, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

/// The newest handshake-era version (what `initialize` offers when the client's is unknown).
pub const LATEST_HANDSHAKE: &str = "2025-11-25";

/// Federation state shared by all requests.
pub struct Federation {
    pub separator: String,
    /// Tool definitions last discovered on each server (as the server named them).
    tools: RwLock<BTreeMap<String, Vec<Value>>>,
    /// Background discovery of the configured servers (set once at start).
    discovery: OnceLock<Discovery>,
    /// The server that listed each resource URI (for `resources/read`).
    resource_owners: RwLock<HashMap<String, String>>,
    /// Sessions (this process's, or shared: `state::Backend::share_federation`).
    pub sessions: Arc<dyn SessionStore>,
    /// The memory sessions (their bounds and TTL configure a shared store too).
    pub local_sessions: Arc<Sessions>,
    pub sealer: Arc<StateSealer>,
    /// Upstream clients per (server, session or principal).
    pub upstreams: Upstreams,
    /// Elicitations waiting for a 2025-11-25 client's answer.
    pub pending: Arc<dyn Elicitations>,
    /// Tool list changes, for sessions' GET streams.
    changes: tokio::sync::broadcast::Sender<()>,
}

impl Federation {
    pub fn new(cfg: &McpConfig) -> Result<Federation, String> {
        let sealer = StateSealer::new(&cfg.request_state_key.0).map_err(|e| format!("mcp.request_state_key: {e}"))?;
        let local = Arc::new(Sessions::new(
            cfg.session_ttl_seconds,
            SessionLimits { per_principal: cfg.max_sessions_per_principal, total: cfg.max_sessions },
        ));
        Ok(Federation {
            separator: cfg.separator.clone(),
            tools: RwLock::new(BTreeMap::new()),
            resource_owners: RwLock::new(HashMap::new()),
            discovery: OnceLock::new(),
            sessions: local.clone(),
            local_sessions: local,
            sealer: Arc::new(sealer),
            upstreams: Upstreams::default(),
            pending: Arc::new(Pending::default()),
            changes: tokio::sync::broadcast::channel(16).0,
        })
    }

    /// Replaces `server`'s discovered tools.
    pub fn set_tools(&self, server: &str, tools: Vec<Value>) {
        let changed = self.tools.read().get(server) != Some(&tools);
        self.tools.write().insert(server.to_string(), tools);
        if changed {
            // Nobody listening is fine: sessions subscribe when they open their GET stream.
            let _ = self.changes.send(());
        }
    }

    /// Fires whenever a server's discovered tool list changes (`tools/list_changed`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    /// Keeps the running discovery (the first one set wins).
    pub fn set_discovery(&self, d: Discovery) {
        if let Err(extra) = self.discovery.set(d) {
            extra.stop();
        }
    }

    /// Discovery state of every server: status, era, tool count and names.
    pub fn status(&self) -> Value {
        let snapshot = self.discovery.get().map(Discovery::snapshot).unwrap_or_default();
        let mut out = serde_json::Map::new();
        for (name, st) in snapshot {
            let names: Vec<&str> = st.tools.iter().filter_map(|t| t.get("name")?.as_str()).collect();
            out.insert(
                name,
                json!({
                    "status": st.status,
                    "era": st.era,
                    "tools": names.len(),
                    "tool_names": names,
                    "last_ok": st.last_ok.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
                }),
            );
        }
        json!({ "servers": out })
    }

    /// The federated name of `tool` on `server`.
    pub fn exposed_name(&self, server: &str, tool: &str) -> String {
        format!("{server}{}{tool}", self.separator)
    }

    /// Splits a federated name into (server, tool) among `servers`.
    pub fn resolve<'a>(&self, name: &'a str, servers: &[String]) -> Option<(String, &'a str)> {
        servers
            .iter()
            .filter_map(|s| {
                let rest = name.strip_prefix(s.as_str())?.strip_prefix(self.separator.as_str())?;
                (!rest.is_empty()).then_some((s.clone(), rest))
            })
            .max_by_key(|(s, _)| s.len())
    }

    /// Every discovered tool `visible(server, tool)` admits, renamed and in a stable order.
    pub fn visible_tools(&self, mut visible: impl FnMut(&str, &Value) -> bool) -> Vec<Value> {
        let tools = self.tools.read();
        let mut out = Vec::new();
        for (server, list) in tools.iter() {
            let mut named: Vec<(&str, &Value)> =
                list.iter().filter_map(|t| Some((t.get("name")?.as_str()?, t))).collect();
            named.sort_by(|a, b| a.0.cmp(b.0));
            named.dedup_by(|a, b| a.0 == b.0);
            for (name, tool) in named {
                if visible(server, tool) {
                    let mut t = tool.clone();
                    if let Some(obj) = t.as_object_mut() {
                        obj.insert("name".into(), Value::String(self.exposed_name(server, name)));
                    }
                    out.push(t);
                }
            }
        }
        out
    }

    /// Remembers that `server` listed resource `uri`.
    pub fn set_resource_owner(&self, uri: &str, server: &str) {
        if self.resource_owners.read().get(uri).map(String::as_str) != Some(server) {
            self.resource_owners.write().insert(uri.to_string(), server.to_string());
        }
    }

    /// The server that listed resource `uri`.
    pub fn resource_owner(&self, uri: &str) -> Option<String> {
        self.resource_owners.read().get(uri).cloned()
    }

    /// The definition `server` listed for `tool`.
    pub fn tool(&self, server: &str, tool: &str) -> Option<Value> {
        self.tools.read().get(server)?.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(tool)).cloned()
    }

    /// Every discovered tool as (server, definition).
    pub fn all_tools(&self) -> Vec<(String, Value)> {
        let tools = self.tools.read();
        tools.iter().flat_map(|(s, list)| list.iter().map(move |t| (s.clone(), t.clone()))).collect()
    }
}

/// What the gateway offers as an MCP server.
pub fn capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "resources": {},
        "prompts": {},
    })
}

use crate::mcp::server_info::server_info;

/// The `initialize` result: the client's version if we speak it, else our newest handshake one.
pub fn initialize_result(requested: Option<&str>) -> Value {
    let version = requested
        .filter(|v| SUPPORTED_VERSIONS.contains(v) && !crate::mcp::confirm::is_modern(v))
        .unwrap_or(LATEST_HANDSHAKE);
    json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": "FastMCP gateway: tools of several MCP servers, named {server}__{tool}, behind one policy.",
    })
}

/// The `server/discover` result.
pub fn discover_result() -> Value {
    json!({
        "resultType": "complete",
        "supportedVersions": SUPPORTED_VERSIONS,
        "capabilities": capabilities(),
        "_meta": {"io.modelcontextprotocol/serverInfo": server_info()},
        "ttlMs": 0,
        "cacheScope": "private",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed() -> Federation {
        let cfg: McpConfig = serde_yaml_ng::from_str("servers: {}").unwrap();
        Federation::new(&cfg).unwrap()
    }

    #[test]
    fn names_round_trip_and_longest_server_prefix_wins() {
        let f = fed();
        let servers = vec!["a".to_string(), "a__b".to_string()];
        assert_eq!(f.exposed_name("demo", "echo"), "demo__echo");
        assert_eq!(f.resolve("a__b__x", &servers), Some(("a__b".into(), "x")));
        assert_eq!(f.resolve("a__x", &servers), Some(("a".into(), "x")));
        assert_eq!(f.resolve("a__", &servers), None);
        assert_eq!(f.resolve("zzz__x", &servers), None);
    }

    #[test]
    fn visible_tools_are_renamed_filtered_and_ordered() {
        let f = fed();
        f.set_tools("zeta", vec![json!({"name": "b"}), json!({"name": "a"})]);
        f.set_tools("alpha", vec![json!({"name": "secret"}), json!({"name": "echo", "annotations": {"x": 1}})]);
        let names: Vec<String> = f
            .visible_tools(|_, t| t["name"] != "secret")
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["alpha__echo", "zeta__a", "zeta__b"]);
        assert_eq!(f.tool("alpha", "echo").unwrap()["annotations"], json!({"x": 1}));
    }

    #[tokio::test]
    async fn only_real_changes_are_announced() {
        let f = fed();
        let mut rx = f.subscribe();
        f.set_tools("a", vec![json!({"name": "x"})]);
        assert!(rx.try_recv().is_ok());
        f.set_tools("a", vec![json!({"name": "x"})]);
        assert!(rx.try_recv().is_err(), "same list, no notification");
        f.set_tools("a", vec![]);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(initialize_result(Some("2025-06-18"))["protocolVersion"], "2025-06-18");
        assert_eq!(initialize_result(Some("1999-01-01"))["protocolVersion"], LATEST_HANDSHAKE);
        assert_eq!(discover_result()["supportedVersions"][0], "2026-07-28");
    }
}
