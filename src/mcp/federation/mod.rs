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
pub mod relay;
pub mod replay;
mod routed;
pub mod stream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::config::McpConfig;
use crate::mcp::discovery::Discovery;
use crate::mcp::elicitation::{Elicitations, Pending};
use crate::mcp::param_headers::Marks;
use crate::mcp::relay::Relays;
use crate::mcp::request_state::StateSealer;
use crate::mcp::session::{SessionLimits, SessionStore, Sessions};
use crate::mcp::upstream::Upstreams;
use replay::ReplayLimits;

/// The notification a session's standalone stream carries when a server's tools change.
pub const LIST_CHANGED: &str = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;

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
    /// Upstream servers' own requests relayed to a client, waiting for its answer.
    pub relays: Arc<Relays>,
}

impl Federation {
    pub fn new(cfg: &McpConfig) -> Result<Federation, String> {
        let sealer = StateSealer::new(&cfg.request_state_key.0).map_err(|e| format!("mcp.request_state_key: {e}"))?;
        let local = Arc::new(Sessions::new(
            cfg.session_ttl_seconds,
            SessionLimits { per_principal: cfg.max_sessions_per_principal, total: cfg.max_sessions },
            ReplayLimits { max_events: cfg.replay.max_events_per_session, max_bytes: cfg.replay.max_bytes_per_session },
            cfg.replay.max_bytes_total,
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
            relays: Arc::new(Relays::new(
                cfg.relay_max_pending,
                std::time::Duration::from_secs(cfg.relay_timeout_seconds),
            )),
        })
    }

    /// Replaces `server`'s discovered tools; a change is announced on every session's
    /// standalone stream (`tools/list_changed`, kept for resumption like any event). A tool
    /// whose `x-mcp-header` marks are invalid is warned about once (per reason): no door
    /// offers it.
    pub fn set_tools(&self, server: &str, tools: Vec<Value>) {
        for (tool, why) in self.upstreams.params.set(server, &tools) {
            tracing::warn!(server, tool, reason = %why, "tool not offered: invalid x-mcp-header annotation");
        }
        let changed = self.tools.read().get(server) != Some(&tools);
        self.tools.write().insert(server.to_string(), tools);
        if changed {
            self.local_sessions.to_every_stream(LIST_CHANGED);
        }
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

    /// The configured servers whose last discovery offered `capability` (`logging`, …).
    pub fn offering(&self, capability: &str) -> Vec<String> {
        let snapshot = self.discovery.get().map(Discovery::snapshot).unwrap_or_default();
        snapshot.into_iter().filter(|(_, st)| st.offers(capability)).map(|(name, _)| name).collect()
    }

    /// The capabilities the federated endpoint offers now (see [`capabilities`]).
    pub fn offered(&self) -> Value {
        let upstream: Vec<&str> = PASSED_ON.iter().copied().filter(|c| !self.offering(c).is_empty()).collect();
        capabilities(&upstream)
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
    pub fn visible_tools(&self, visible: impl FnMut(&str, &Value) -> bool) -> Vec<Value> {
        self.visible_tools_over(&BTreeMap::new(), visible)
    }

    /// Like [`Federation::visible_tools`], with `own` lists replacing discovery's for their
    /// servers (what a session's own upstream session lists: servers offer tools by the
    /// client capabilities declared to them).
    pub fn visible_tools_over(
        &self,
        own: &BTreeMap<String, Vec<Value>>,
        mut visible: impl FnMut(&str, &Value) -> bool,
    ) -> Vec<Value> {
        let tools = self.tools.read();
        let servers: BTreeSet<&String> = tools.keys().chain(own.keys()).collect();
        let mut out = Vec::new();
        for server in servers {
            let Some(list) = own.get(server).or_else(|| tools.get(server)) else { continue };
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

    /// The `x-mcp-header` marks of `tool` on `server` as discovered (`None`: the tool has none,
    /// or is unknown).
    pub fn params(&self, server: &str, tool: &str) -> Option<Marks> {
        self.upstreams.params.get(server, tool)
    }

    /// [`Federation::params`] of a federated name (`{server}__{tool}`) among `servers`.
    pub fn params_of_exposed(&self, exposed: &str, servers: &[String]) -> Option<Marks> {
        let (server, tool) = self.resolve(exposed, servers)?;
        self.params(&server, tool)
    }

    /// Every discovered tool as (server, definition).
    pub fn all_tools(&self) -> Vec<(String, Value)> {
        let tools = self.tools.read();
        tools.iter().flat_map(|(s, list)| list.iter().map(move |t| (s.clone(), t.clone()))).collect()
    }
}

/// Capabilities offered only when an upstream offers them (its methods are routed there).
pub const PASSED_ON: &[&str] = &["logging", "completions"];

/// What the gateway offers as an MCP server: tools, resources and prompts always; each of
/// [`PASSED_ON`] in `upstream` too.
pub fn capabilities(upstream: &[&str]) -> Value {
    let mut caps = json!({
        "tools": {"listChanged": true},
        "resources": {},
        "prompts": {},
    });
    for c in PASSED_ON.iter().filter(|c| upstream.contains(c)) {
        caps[*c] = json!({});
    }
    caps
}

use crate::mcp::server_info::server_info;

/// The `initialize` result: the client's version if we speak it, else our newest handshake one.
pub fn initialize_result(requested: Option<&str>, capabilities: Value) -> Value {
    let version = requested
        .filter(|v| SUPPORTED_VERSIONS.contains(v) && !crate::mcp::confirm::is_modern(v))
        .unwrap_or(LATEST_HANDSHAKE);
    json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": server_info(),
        "instructions": "FastMCP gateway: tools of several MCP servers, named {server}__{tool}, behind one policy.",
    })
}

/// The `server/discover` result.
pub fn discover_result(capabilities: Value) -> Value {
    json!({
        "resultType": "complete",
        "supportedVersions": SUPPORTED_VERSIONS,
        "capabilities": capabilities,
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
        // A session's own list replaces discovery's for its server; other servers keep theirs.
        let own = BTreeMap::from([
            ("zeta".to_string(), vec![json!({"name": "c"})]),
            ("new".into(), vec![json!({"name": "n"})]),
        ]);
        let names: Vec<String> =
            f.visible_tools_over(&own, |_, _| true).iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["alpha__echo", "alpha__secret", "new__n", "zeta__c"]);
    }

    #[test]
    fn only_real_changes_are_announced_on_streams_that_were_opened() {
        let f = fed();
        let listening =
            f.local_sessions.create("o".into(), "2025-11-25".into(), serde_json::json!({}), 1).unwrap().session;
        let quiet = f.local_sessions.create("o".into(), "2025-11-25".into(), serde_json::json!({}), 1).unwrap().session;
        let mut stream = listening.outbox.attach(None);
        let rx = stream.live.as_mut().unwrap();
        f.set_tools("a", vec![json!({"name": "x"})]);
        assert_eq!(&*rx.try_recv().unwrap().data, LIST_CHANGED);
        f.set_tools("a", vec![json!({"name": "x"})]);
        assert!(rx.try_recv().is_err(), "same list, no notification");
        f.set_tools("a", vec![]);
        assert!(rx.try_recv().is_ok());
        assert_eq!(quiet.outbox.retained().0, 0, "a session that never listened keeps nothing");
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(initialize_result(Some("2025-06-18"), capabilities(&[]))["protocolVersion"], "2025-06-18");
        assert_eq!(initialize_result(Some("1999-01-01"), capabilities(&[]))["protocolVersion"], LATEST_HANDSHAKE);
        assert_eq!(discover_result(capabilities(&[]))["supportedVersions"][0], "2026-07-28");
    }

    #[test]
    fn logging_and_completions_are_offered_only_when_an_upstream_offers_them() {
        let plain = capabilities(&[]);
        assert!(plain.get("logging").is_none() && plain.get("completions").is_none(), "{plain}");
        assert_eq!(plain["tools"]["listChanged"], true);
        let both = capabilities(&["logging", "completions", "sampling"]);
        assert_eq!((both["logging"].clone(), both["completions"].clone()), (json!({}), json!({})));
        assert!(both.get("sampling").is_none(), "only what the gateway routes");
        assert!(fed().offered().get("logging").is_none(), "nothing discovered, nothing passed on");
    }
}
