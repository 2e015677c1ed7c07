//! Helpers to run the real peers (Python SDK demo server, Node server-everything).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
pub const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/demo_server.py");
pub const EVERYTHING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
);

/// Kills (and reaps) the child when the test ends, pass or fail.
pub struct Peer {
    pub child: Child,
    pub port: u16,
    _calls: Option<PathBuf>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(p) = &self._calls {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[path = "../common/port.rs"]
mod port;
pub use port::free_port;

/// Polls until something accepts TCP connections on `port` (bounded).
pub fn wait_ready(port: u16, timeout: Duration) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval, not synchronisation
    }
    panic!("peer on port {port} did not become ready within {timeout:?}");
}

/// Spawns the demo server on `port` without waiting for it.
pub fn spawn_demo(port: u16, extra: &[&str]) -> Peer {
    let calls = std::env::temp_dir().join(format!("mcpclient-calls-{port}-{}.json", std::process::id()));
    let child = Command::new(PYTHON)
        .arg(DEMO)
        .args(["--port", &port.to_string(), "--calls-file"])
        .arg(&calls)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Peer { child, port, _calls: Some(calls) }
}

/// Demo server (Python SDK), ready to serve.
pub fn demo(extra: &[&str]) -> Peer {
    let peer = spawn_demo(free_port(), extra);
    wait_ready(peer.port, Duration::from_secs(30));
    peer
}

/// server-everything over streamable HTTP, ready to serve.
pub fn everything() -> Peer {
    let port = free_port();
    let child = Command::new("node")
        .args([EVERYTHING, "streamableHttp"])
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peer = Peer { child, port, _calls: None };
    wait_ready(port, Duration::from_secs(30));
    peer
}

pub fn demo_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/mcp")
}

pub fn everything_url(port: u16) -> String {
    format!("http://localhost:{port}/mcp")
}

pub fn tool_names(tools: &[serde_json::Value]) -> Vec<String> {
    tools.iter().filter_map(|t| t["name"].as_str().map(str::to_string)).collect()
}

/// The text of the first content block of a tools/call response.
pub fn first_text(resp: &serde_json::Value) -> String {
    resp["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string()
}
