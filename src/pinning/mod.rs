//! Tool-definition pinning: a rug-pull and tool-poisoning defence.
//!
//! A server with `mcp.servers.<name>.pinning: warn | enforce` has each tool's definition
//! fingerprinted (`fingerprint.rs`). Its first discovery pins every tool it lists (trust on
//! first use); from then on a tool is *approved* only while the definition last seen for it
//! — by discovery, or in a `tools/list` answer forwarded on `/mcp/{server}` — has its
//! pinned fingerprint. A changed definition, or a name that was not pinned (a new or renamed
//! tool), is *unapproved* until an admin approves the current definition. A re-discovery
//! (periodic, or after `notifications/tools/list_changed`) re-checks; it never re-trusts.
//!
//! [`Pins`] is the book the doors and the enforcement core read synchronously: the pinned
//! definitions (loaded from the [`PinStore`] at every discovery, written through on
//! approval) and the current ones. What it says about a tool ([`PinFacts`]) goes into the
//! policy input (`resource.definition_hash`, `resource.pinned`) and the audit record; what
//! to do about it is the core's (`enforce::Enforcer::authorize`) and `tool_visible`'s.

mod fingerprint;
pub mod redis;
pub mod sqlite;
mod store;

pub use fingerprint::{definition, fingerprint, FIELDS};
pub use store::{MemoryPins, Pin, PinStore, ServerPins};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::config::{McpServerConfig, PinMode};
use crate::state::StateError;

/// Who approved a pin taken at a server's first discovery.
pub const FIRST_USE: &str = "first_use";

/// What pinning says about one tool of a server with pinning on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinFacts {
    pub mode: PinMode,
    /// Fingerprint of the definition judged (`None`: the gateway has not seen the tool).
    pub definition_hash: Option<String>,
    /// The definition is the approved one.
    pub pinned: bool,
}

/// The last definition seen of a tool.
#[derive(Debug, Clone)]
struct Seen {
    hash: String,
    definition: Value,
}

#[derive(Default)]
struct Book {
    /// `None`: not pinned yet (no discovery yet, or the store could not be read before any
    /// load succeeded) — nothing is approved.
    pinned: Option<ServerPins>,
    current: BTreeMap<String, Seen>,
}

/// Why an approval was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("no MCP server {0:?} is configured")]
    UnknownServer(String),
    #[error("pinning is off for server {0:?}")]
    Off(String),
    #[error("server {0:?} has not been discovered yet: nothing is pinned")]
    NotPinned(String),
    #[error("the gateway has not seen a tool {0:?} on this server")]
    UnknownTool(String),
    #[error(transparent)]
    Store(#[from] StateError),
}

/// The pin book of every configured server.
pub struct Pins {
    modes: HashMap<String, PinMode>,
    store: Arc<dyn PinStore>,
    book: RwLock<HashMap<String, Book>>,
}

impl Pins {
    pub fn new(servers: &BTreeMap<String, McpServerConfig>, store: Arc<dyn PinStore>) -> Pins {
        let modes = servers.iter().map(|(n, s)| (n.clone(), s.pinning)).collect();
        Pins { modes, store, book: RwLock::new(HashMap::new()) }
    }

    /// `server`'s mode (`off` for an unknown server).
    pub fn mode(&self, server: &str) -> PinMode {
        self.modes.get(server).copied().unwrap_or_default()
    }

    /// Takes a (re)discovered tool list: the first one pins every tool (unless the store
    /// already has pins for the server: another instance, an earlier run), every one loads
    /// the pins in force and replaces the current definitions. A store that cannot be read
    /// keeps the pins loaded before (none the first time: nothing is approved).
    pub fn discovered(&self, server: &str, tools: &[Value]) {
        if self.mode(server) == PinMode::Off {
            return;
        }
        let current: BTreeMap<String, Seen> = tools
            .iter()
            .filter_map(|t| {
                let name = t.get("name")?.as_str().filter(|n| !n.is_empty())?;
                Some((name.to_string(), Seen { hash: fingerprint(t), definition: definition(t) }))
            })
            .collect();
        let loaded = match self.store.load(server) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => {
                let at = now();
                let first = current
                    .iter()
                    .map(|(n, s)| {
                        let pin = Pin {
                            hash: s.hash.clone(),
                            definition: s.definition.clone(),
                            approved_by: FIRST_USE.into(),
                            approved_at: at.clone(),
                        };
                        (n.clone(), pin)
                    })
                    .collect();
                let r = self.store.pin_first(server, first);
                if r.is_ok() {
                    tracing::info!(server, tools = current.len(), "tool definitions pinned (first use)");
                }
                r
            }
            Err(e) => Err(e),
        };
        let mut book = self.book.write();
        let b = book.entry(server.to_string()).or_default();
        match loaded {
            Ok(p) => b.pinned = Some(p),
            Err(e) => tracing::error!(server, error = %e, "tool pins could not be loaded; keeping the pins in hand"),
        }
        b.current = current;
        let unapproved: Vec<&str> =
            b.current.iter().filter(|(n, s)| !approved(b, n, Some(&s.hash))).map(|(n, _)| n.as_str()).collect();
        if !unapproved.is_empty() {
            tracing::warn!(server, tools = ?unapproved, mode = self.mode(server).label(),
                "tool definitions differ from their pins (changed or new): unapproved until an admin approves them");
        }
    }

    /// A tool `server` listed (in a `tools/list` answer on either door): remembers its
    /// definition as the current one and judges it. `None`: pinning is off.
    pub fn listed(&self, server: &str, tool: &Value) -> Option<PinFacts> {
        let mode = self.mode(server);
        if mode == PinMode::Off {
            return None;
        }
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        let hash = fingerprint(tool);
        let known = self.book.read().get(server).and_then(|b| b.current.get(name)).map(|s| s.hash == hash);
        if known != Some(true) && !name.is_empty() {
            let seen = Seen { hash: hash.clone(), definition: definition(tool) };
            self.book.write().entry(server.to_string()).or_default().current.insert(name.to_string(), seen);
        }
        let pinned = self.book.read().get(server).is_some_and(|b| !name.is_empty() && approved(b, name, Some(&hash)));
        Some(PinFacts { mode, definition_hash: Some(hash), pinned })
    }

    /// A call of `tool` on `server`, judged by the definition last seen for it. `None`:
    /// pinning is off.
    pub fn of_call(&self, server: &str, tool: &str) -> Option<PinFacts> {
        let mode = self.mode(server);
        if mode == PinMode::Off {
            return None;
        }
        let book = self.book.read();
        let b = book.get(server);
        let hash = b.and_then(|b| b.current.get(tool)).map(|s| s.hash.clone());
        let pinned = b.is_some_and(|b| approved(b, tool, hash.as_deref()));
        Some(PinFacts { mode, definition_hash: hash, pinned })
    }

    /// Approves the current definition of `tool` on `server` as `actor`; returns the new pin.
    pub fn approve(&self, server: &str, tool: &str, actor: &str) -> Result<Pin, ApproveError> {
        match self.modes.get(server) {
            None => return Err(ApproveError::UnknownServer(server.into())),
            Some(PinMode::Off) => return Err(ApproveError::Off(server.into())),
            Some(_) => {}
        }
        let seen = {
            let book = self.book.read();
            let b = book.get(server).filter(|b| b.pinned.is_some()).ok_or(ApproveError::NotPinned(server.into()))?;
            b.current.get(tool).cloned().ok_or(ApproveError::UnknownTool(tool.into()))?
        };
        let pin = Pin { hash: seen.hash, definition: seen.definition, approved_by: actor.into(), approved_at: now() };
        self.store.approve(server, tool, &pin)?;
        if let Some(p) = self.book.write().get_mut(server).and_then(|b| b.pinned.as_mut()) {
            p.insert(tool.to_string(), pin.clone());
        }
        Ok(pin)
    }

    /// Pinned versus current definitions of `server`, with the differing fields of every
    /// unapproved tool. `None`: no such server.
    pub fn report(&self, server: &str) -> Option<Value> {
        let mode = *self.modes.get(server)?;
        let book = self.book.read();
        let empty = Book::default();
        let b = book.get(server).unwrap_or(&empty);
        let pinned = b.pinned.clone().unwrap_or_default();
        let mut names: Vec<&String> = pinned.keys().chain(b.current.keys()).collect();
        names.sort();
        names.dedup();
        let tools: Vec<Value> = names
            .into_iter()
            .map(|name| {
                let pin = pinned.get(name);
                let cur = b.current.get(name);
                let status = match (pin, cur) {
                    (Some(p), Some(c)) if p.hash == c.hash => "approved",
                    (Some(_), Some(_)) => "changed",
                    (None, Some(_)) => "new",
                    (Some(_), None) => "not_listed",
                    (None, None) => "unknown",
                };
                let diff = match (pin, cur) {
                    (Some(p), Some(c)) if p.hash != c.hash => diff(&p.definition, &c.definition),
                    (None, Some(c)) => diff(&json!({}), &c.definition),
                    _ => vec![],
                };
                json!({
                    "name": name,
                    "status": status,
                    "approved": matches!(status, "approved" | "not_listed"),
                    "pinned": pin,
                    "current": cur.map(|c| json!({"hash": c.hash, "definition": c.definition})),
                    "diff": diff,
                })
            })
            .collect();
        Some(json!({
            "server": server,
            "mode": mode.label(),
            "pinned": b.pinned.is_some(),
            "tools": tools,
        }))
    }
}

/// Is `name`'s definition with fingerprint `hash` approved? A tool never seen (`None`) is
/// approved if it is pinned at all: the gateway saw no other definition of it.
fn approved(b: &Book, name: &str, hash: Option<&str>) -> bool {
    match (b.pinned.as_ref().and_then(|p| p.get(name)), hash) {
        (Some(_), None) => true,
        (Some(p), Some(h)) => p.hash == h,
        (None, _) => false,
    }
}

/// The fingerprinted fields that differ between two definitions.
fn diff(pinned: &Value, current: &Value) -> Vec<Value> {
    FIELDS
        .iter()
        .filter_map(|f| {
            let (a, b) = (pinned.get(*f), current.get(*f));
            (a != b).then(|| json!({"field": f, "pinned": a, "current": b}))
        })
        .collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
