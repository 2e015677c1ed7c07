//! Stdio transport: a child process speaking newline-delimited JSON-RPC.
//!
//! A reader thread owns the child's stdout and dispatches by id to the waiting callers
//! (one channel per in-flight request), so several threads can run requests at once.
//! Notifications go to the request named by their `progressToken` when there is one,
//! otherwise to every in-flight request and to the optional background handler. A server's
//! own request goes to an in-flight request whose caller relays such requests (all requests
//! on one connection speak for the same client); with none, it gets the standard reply.
//!
//! The child starts with a cleared environment: `PATH` plus what the operator listed for the
//! server (`mcp.servers.<name>.env`, `MCP_<NAME>_ENV`), never the gateway's own variables.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::wire::{self, Incoming};
use super::{ClientError, NotificationHandler};

/// A caller waiting for its response.
struct Pending {
    tx: mpsc::Sender<Value>,
    /// The request's `_meta.progressToken`, to route progress notifications to it alone.
    progress_token: Option<Value>,
    /// Its caller answers the server's own requests (they are sent to it).
    relays: bool,
}

/// State shared with the reader thread.
struct Shared {
    pending: Mutex<HashMap<String, Pending>>,
    stdin: Mutex<Option<ChildStdin>>,
    handler: Mutex<Option<NotificationHandler>>,
    /// Set when stdout hit EOF (the process exited) or close() ran.
    closed: AtomicBool,
}

/// A running stdio MCP server.
pub(crate) struct StdioConn {
    child: Mutex<Child>,
    shared: Arc<Shared>,
    reader: Mutex<Option<JoinHandle<()>>>,
    timeout: Duration,
}

impl StdioConn {
    /// Spawns `sh -c "exec <command>"` (so shell quoting works and killing the child kills
    /// the server itself, not an intermediate shell) with a cleared environment: only `PATH`
    /// (the gateway's, so the command resolves as written) and `env`, which may replace it.
    /// Nothing else of the gateway's environment — its secrets — reaches the server.
    pub(crate) fn spawn(command: &str, env: &[(String, String)], timeout: Duration) -> Result<Self, ClientError> {
        let mut cmd = Command::new("sh");
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .arg("-c")
            .arg(format!("exec {command}"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Discarded: an unread pipe could block a chatty server; nothing parses it.
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ClientError::Unreachable(format!("cannot spawn stdio server: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ClientError::Io("stdio pipes unavailable".into()));
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            stdin: Mutex::new(Some(stdin)),
            handler: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        let reader_shared = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("mcp-stdio-reader".into())
            .spawn(move || read_loop(BufReader::new(stdout), &reader_shared))
            .map_err(|e| ClientError::Io(format!("cannot start reader thread: {e}")))?;
        Ok(Self { child: Mutex::new(child), shared, reader: Mutex::new(Some(reader)), timeout })
    }

    /// Installs the handler for notifications not tied to an in-flight request.
    pub(crate) fn set_handler(&self, handler: Option<NotificationHandler>) {
        *self.shared.handler.lock() = handler;
    }

    /// Sends a request and waits (bounded by the transport timeout) for its response. The
    /// server's own requests meanwhile are answered with `on_request`'s reply when it is
    /// given (the time it takes is not the server's and does not count against the timeout).
    pub(crate) fn request(
        &self,
        msg: &Value,
        id: &Value,
        timeout: Option<Duration>,
        on_note: &mut dyn FnMut(&Value),
        mut on_request: Option<&mut dyn FnMut(&Value) -> Value>,
    ) -> Result<Value, ClientError> {
        let key = id_key(id);
        let (tx, rx) = mpsc::channel();
        let progress_token = msg.pointer("/params/_meta/progressToken").cloned();
        let relays = on_request.is_some();
        self.shared.pending.lock().insert(key.clone(), Pending { tx, progress_token, relays });
        // Whatever happens below, the pending slot must not outlive this call.
        let _guard = PendingGuard { shared: &self.shared, key };
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Unreachable("stdio server has exited".into()));
        }
        write_line(&self.shared, msg)?;
        let mut deadline = Instant::now() + timeout.unwrap_or(self.timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(m) if wire::classify(&m) == Incoming::Response => return Ok(m),
                Ok(m) if wire::classify(&m) == Incoming::Request => {
                    let asked = Instant::now();
                    let reply = match on_request.as_deref_mut() {
                        Some(answer) => answer(&m),
                        None => wire::reply_to_server_request(&m),
                    };
                    deadline += asked.elapsed();
                    if let Err(e) = write_line(&self.shared, &reply) {
                        tracing::debug!(error = %e, "could not answer stdio server request");
                    }
                }
                Ok(note) => on_note(&note),
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(ClientError::Timeout),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ClientError::Unreachable("stdio server exited before answering".into()))
                }
            }
        }
    }

    /// Writes a notification (or any message that expects no answer).
    pub(crate) fn send(&self, msg: &Value) -> Result<(), ClientError> {
        write_line(&self.shared, msg)
    }

    /// Kills the child and reaps it; idempotent.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Closing stdin first lets well-behaved servers exit on EOF.
        self.shared.stdin.lock().take();
        {
            let mut child = self.child.lock();
            let _ = child.kill();
            let _ = child.wait();
        }
        // Not joined: the reader ends on stdout EOF, which the kill normally causes, but a
        // grandchild that inherited stdout could keep the pipe open; never block on that.
        drop(self.reader.lock().take());
    }
}

impl Drop for StdioConn {
    fn drop(&mut self) {
        self.close();
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    key: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending.lock().remove(&self.key);
    }
}

/// Canonical map key for a JSON-RPC id (numbers and strings both allowed).
fn id_key(id: &Value) -> String {
    id.to_string()
}

fn write_line(shared: &Shared, msg: &Value) -> Result<(), ClientError> {
    let mut line = serde_json::to_vec(msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    let mut stdin = shared.stdin.lock();
    let Some(w) = stdin.as_mut() else {
        return Err(ClientError::Unreachable("stdio server is closed".into()));
    };
    w.write_all(&line).and_then(|()| w.flush()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            ClientError::Unreachable("stdio server has exited".into())
        } else {
            ClientError::Io(e.to_string())
        }
    })
}

fn read_loop(stdout: BufReader<std::process::ChildStdout>, shared: &Shared) {
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            // Servers sometimes log to stdout; that is not a protocol message.
            tracing::debug!("ignoring non-JSON line from stdio server");
            continue;
        };
        match wire::classify(&msg) {
            Incoming::Response => {
                let key = msg.get("id").map(id_key).unwrap_or_default();
                if let Some(p) = shared.pending.lock().get(&key) {
                    let _ = p.tx.send(msg);
                }
            }
            Incoming::Notification => route_notification(shared, msg),
            Incoming::Request => {
                let relayed = shared.pending.lock().values().find(|p| p.relays).map(|p| p.tx.send(msg.clone()));
                if relayed.is_some_and(|sent| sent.is_ok()) {
                    continue;
                }
                let reply = wire::reply_to_server_request(&msg);
                if let Err(e) = write_line(shared, &reply) {
                    tracing::debug!(error = %e, "could not answer stdio server request");
                }
            }
            Incoming::Other => {}
        }
    }
    shared.closed.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiter with Disconnected.
    shared.pending.lock().clear();
}

fn route_notification(shared: &Shared, msg: Value) {
    let token = msg.pointer("/params/progressToken");
    {
        let pending = shared.pending.lock();
        if let Some(t) = token {
            if let Some(p) = pending.values().find(|p| p.progress_token.as_ref() == Some(t)) {
                let _ = p.tx.send(msg);
                return;
            }
        }
        for p in pending.values() {
            let _ = p.tx.send(msg.clone());
        }
    }
    let handler = shared.handler.lock().clone();
    if let Some(h) = handler {
        h(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_sees_path_and_the_listed_variables_only() {
        // HOME is set for any test run; the child must not inherit it.
        assert!(std::env::var_os("HOME").is_some(), "the test needs HOME in its own environment");
        let script = r#"read line; printf '{"jsonrpc":"2.0","id":1,"result":{"home":"%s","listed":"%s","path":"%s"}}\n' "${HOME:-unset}" "$LISTED" "${PATH:+set}""#;
        let env = vec![("LISTED".to_string(), "yes".to_string())];
        let conn =
            StdioConn::spawn(&format!("sh -c '{}'", script.replace('\'', r"'\''")), &env, Duration::from_secs(10))
                .expect("spawn");
        let msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "x"});
        let reply = conn.request(&msg, &serde_json::json!(1), None, &mut |_| {}, None).expect("reply");
        assert_eq!(reply["result"], serde_json::json!({"home": "unset", "listed": "yes", "path": "set"}));
        conn.close();
    }

    /// A server that asks `roots/list` while answering request 1, and returns what it got.
    fn asking_server() -> StdioConn {
        let script = r#"read line; printf '{"jsonrpc":"2.0","id":"srv-1","method":"roots/list"}\n'; read reply; printf '{"jsonrpc":"2.0","id":1,"result":{"got":%s}}\n' "$reply""#;
        StdioConn::spawn(&format!("sh -c '{}'", script.replace('\'', r"'\''")), &[], Duration::from_secs(10))
            .expect("spawn")
    }

    #[test]
    fn a_relaying_caller_answers_the_servers_own_request_and_others_get_the_standard_reply() {
        let msg = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"});
        let conn = asking_server();
        let mut asked = Vec::new();
        let mut answer = |r: &Value| {
            asked.push(r["method"].clone());
            serde_json::json!({"jsonrpc": "2.0", "id": r["id"], "result": {"roots": []}})
        };
        let reply = conn.request(&msg, &serde_json::json!(1), None, &mut |_| {}, Some(&mut answer)).expect("reply");
        assert_eq!(
            reply["result"]["got"],
            serde_json::json!({"jsonrpc": "2.0", "id": "srv-1", "result": {"roots": []}})
        );
        assert_eq!(asked, ["roots/list"]);
        conn.close();
        let conn = asking_server();
        let reply = conn.request(&msg, &serde_json::json!(1), None, &mut |_| {}, None).expect("reply");
        assert_eq!(reply["result"]["got"]["error"]["code"], wire::METHOD_NOT_FOUND, "{reply}");
        assert_eq!(reply["result"]["got"]["id"], "srv-1");
        conn.close();
    }
}
