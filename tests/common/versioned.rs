//! A fake 2026-07-28 MCP server whose tool list depends on a version the test turns: what
//! `tools/list` answers is the test's function of it; `tools/call` runs (counted) and answers
//! "ran {name}". Tests of list changes (resumed streams, pinning) share it.

use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

pub struct VersionedServer {
    pub port: u16,
    /// The version `tools/list` is answered for.
    pub version: Arc<AtomicU32>,
    /// `tools/call`s run.
    pub calls: Arc<AtomicU64>,
}

impl VersionedServer {
    /// `name` is its serverInfo name; `tools(version)` the list it answers.
    pub fn start(name: &'static str, tools: impl Fn(u32) -> Value + Send + Sync + 'static) -> VersionedServer {
        let version = Arc::new(AtomicU32::new(0));
        let calls = Arc::new(AtomicU64::new(0));
        let (v, c) = (version.clone(), calls.clone());
        let port = super::fake_upstream(move |head, body, s| {
            if !head.starts_with("POST") {
                let _ = write!(s, "HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
                return;
            }
            let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let Some(id) = msg.get("id").cloned() else {
                let _ = write!(s, "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
                return;
            };
            let result = match msg["method"].as_str().unwrap_or("") {
                "server/discover" => json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
                    "capabilities": {"tools": {"listChanged": true}},
                    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": name, "version": "1"}}}),
                "tools/list" => json!({"resultType": "complete", "tools": tools(v.load(Ordering::SeqCst))}),
                "tools/call" => {
                    c.fetch_add(1, Ordering::SeqCst);
                    let name = msg["params"]["name"].as_str().unwrap_or("?");
                    json!({"resultType": "complete", "content": [{"type": "text", "text": format!("ran {name}")}]})
                }
                _ => json!({"resultType": "complete"}),
            };
            let b = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
                b.len()
            );
        });
        VersionedServer { port, version, calls }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}
