//! Black-box test harness: starts the real `fastmcp` binary (and real peers) on free ports.
#![allow(dead_code)]

pub mod audit;
pub mod clients;
pub mod lenient;
pub mod port;
pub mod redis;
pub mod versioned;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use port::free_port;

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "fastmcp-it-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Polls until `addr` accepts TCP connections (bounded; not a fixed sleep).
pub fn wait_for_port(port: u16, what: &str, child: Option<&mut Child>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("{what} exited early with {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port} within 30 s");
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn python() -> PathBuf {
    std::env::var_os("FASTMCP_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join(".venv/bin/python"))
}

/// A running gateway.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// A platform-admin JWT for the admin API, minted on first use.
    admin_jwt: std::sync::OnceLock<String>,
}

pub struct GatewayBuilder {
    env: Vec<(String, String)>,
    config: Option<String>,
    dir: PathBuf,
}

impl GatewayBuilder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// YAML merged over the embedded defaults.
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = Some(yaml.into());
        self
    }

    pub fn start(self) -> Gateway {
        let port = free_port();
        let admin_port = free_port();
        let mut env = vec![
            ("FASTMCP_LISTEN".to_string(), format!("127.0.0.1:{port}")),
            ("FASTMCP_ADMIN_LISTEN".to_string(), format!("127.0.0.1:{admin_port}")),
            ("FASTMCP_DATA_DIR".to_string(), self.dir.join("data").display().to_string()),
            ("AUDIT_WORM_DIR".to_string(), self.dir.join("audit").display().to_string()),
            ("LOG_LEVEL".to_string(), "info".to_string()),
        ];
        env.extend(self.env);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastmcp"));
        cmd.arg("serve").current_dir(&self.dir);
        if let Some(yaml) = &self.config {
            let path = self.dir.join("config.yaml");
            std::fs::write(&path, yaml).expect("write config");
            cmd.arg("--config").arg(path);
        }
        let log = std::fs::File::create(self.dir.join("gateway.log")).expect("log file");
        let log2 = log.try_clone().expect("log file");
        let mut child = cmd
            .envs(env.iter().cloned())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("spawn fastmcp");
        wait_for_port(admin_port, "fastmcp admin", Some(&mut child));
        wait_for_port(port, "fastmcp gateway", Some(&mut child));
        Gateway { child, port, admin_port, dir: self.dir, env, admin_jwt: Default::default() }
    }
}

impl Gateway {
    pub fn builder(tag: &str) -> GatewayBuilder {
        GatewayBuilder { env: vec![], config: None, dir: temp_dir(tag) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// A dev-key JWT of operator `ops` with the default admin role (`platform-admin`).
    pub fn admin_jwt(&self) -> String {
        self.admin_jwt.get_or_init(|| self.mint("ops", "platform", "platform-admin")).clone()
    }

    /// An authenticated admin request (`Authorization: Bearer` the platform-admin JWT; a POST
    /// is sent as `application/json`, as the admin API requires).
    pub fn admin(&self, method: &str, path: &str) -> Resp {
        self.admin_as(&self.admin_jwt(), method, path)
    }

    /// An admin request with `bearer` as the credential.
    pub fn admin_as(&self, bearer: &str, method: &str, path: &str) -> Resp {
        let auth = format!("Bearer {bearer}");
        let mut headers = vec![("authorization", auth.as_str())];
        if method == "POST" {
            headers.push(("content-type", "application/json"));
        }
        http(method, &self.admin_url(path), &headers, b"")
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.dir.join("audit")
    }

    /// Runs a `fastmcp` subcommand with this gateway's environment.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_fastmcp"))
            .args(args)
            .current_dir(&self.dir)
            .envs(self.env.iter().cloned())
            .output()
            .expect("run fastmcp")
    }

    pub fn mint(&self, sub: &str, tenant: &str, roles: &str) -> String {
        self.mint_with(&["--sub", sub, "--tenant", tenant, "--roles", roles])
    }

    pub fn mint_with(&self, extra: &[&str]) -> String {
        let mut args = vec!["token", "mint"];
        args.extend_from_slice(extra);
        let config = self.dir.join("config.yaml");
        let config = config.display().to_string();
        if std::path::Path::new(&config).exists() {
            args.extend_from_slice(&["--config", &config]);
        }
        let out = self.cli(&args);
        assert!(out.status.success(), "mint failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8").trim().to_string()
    }

    /// Stops with SIGINT (fast graceful exit) and waits.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn data_dir_has_dev_keys(&self) -> bool {
        self.dir.join("data/dev-keys").exists()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response as the tests see it.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A plain HTTP/1.1 request (one connection per request).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("host: {authority}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    // A refused request may be answered before the body is read; ignore a reset then.
    let _ = s.write_all(body);
    read_response(&mut BufReader::new(s))
}

pub fn read_response<R: BufRead>(r: &mut R) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let len = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size hex");
            if n == 0 {
                let mut end = String::new();
                let _ = r.read_line(&mut end);
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body).expect("body");
    } else {
        let _ = r.read_to_end(&mut body);
    }
    Resp { status, headers, body }
}

/// JSON-RPC POST to an MCP route with a bearer token.
pub fn mcp_post(url: &str, token: Option<&str>, body: &serde_json::Value, extra: &[(&str, &str)]) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> =
        vec![("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    if let Some(a) = auth.as_deref() {
        headers.push(("authorization", a));
    }
    headers.extend_from_slice(extra);
    http("POST", url, &headers, body.to_string().as_bytes())
}

pub fn tools_call(id: u64, name: &str, args: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

/// The Python SDK demo MCP server (tests/py/demo_server.py), counting calls per tool.
pub struct DemoServer {
    pub child: Child,
    pub port: u16,
    pub calls_file: PathBuf,
}

impl DemoServer {
    pub fn start(dir: &Path) -> DemoServer {
        Self::start_on(dir, free_port())
    }

    /// Starts on a given port (e.g. one a gateway was already told about).
    pub fn start_on(dir: &Path, port: u16) -> DemoServer {
        let calls_file = dir.join("calls.json");
        let log = std::fs::File::create(dir.join("demo_server.log")).expect("log");
        let mut child = Command::new(python())
            .arg(repo().join("tests/py/demo_server.py"))
            .args(["--port", &port.to_string(), "--calls-file"])
            .arg(&calls_file)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn demo server (run scripts/setup-test-deps.sh first)");
        wait_for_port(port, "demo MCP server", Some(&mut child));
        DemoServer { child, port, calls_file }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn calls(&self, tool: &str) -> u64 {
        std::fs::read_to_string(&self.calls_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get(tool).and_then(|n| n.as_u64()))
            .unwrap_or(0)
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `@modelcontextprotocol/server-everything` over streamable HTTP (2025-11-25 sessions).
pub struct EverythingServer {
    pub child: Child,
    pub port: u16,
}

impl EverythingServer {
    pub fn start(dir: &Path) -> EverythingServer {
        let port = free_port();
        let log = std::fs::File::create(dir.join("everything.log")).expect("log");
        let entry = repo().join("tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        let mut child = Command::new("node")
            .arg(entry)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn server-everything (run scripts/setup-test-deps.sh first)");
        wait_for_port(port, "server-everything", Some(&mut child));
        EverythingServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://localhost:{}/mcp", self.port)
    }
}

impl Drop for EverythingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls the gateway's `/admin/mcp/servers` until every server in `names` has tools
/// (bounded by `within`); returns the last status document.
pub fn wait_discovered(gw: &Gateway, names: &[&str], within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let status = gw.admin("GET", "/admin/mcp/servers").json();
        let up = names.iter().all(|n| status["servers"][n]["tools"].as_u64().unwrap_or(0) > 0);
        if up {
            return status;
        }
        assert!(Instant::now() < deadline, "servers {names:?} not discovered: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs tests/py/mcp_client.py and returns its one JSON line.
pub fn sdk_client(url: &str, token: &str, mode: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo().join("tests/py/mcp_client.py"))
        .args(["--url", url, "--token", token, "--mode", mode])
        .args(args)
        .output()
        .expect("run mcp_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| {
        panic!("no JSON from client; stdout={stdout} stderr={}", String::from_utf8_lossy(&out.stderr))
    });
    serde_json::from_str(line).expect("client JSON")
}

/// A fake MCP upstream answering every request with an empty JSON-RPC tool result.
pub fn json_ok_upstream() -> u16 {
    fake_upstream(|_head, _body, s| {
        let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    })
}

/// A raw-TCP fake upstream: answers each request through `handler(request_head, body, stream)`.
pub fn fake_upstream<F>(handler: F) -> u16
where
    F: Fn(String, Vec<u8>, &mut TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handler = std::sync::Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" || line == "\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    handler(head, body, &mut stream);
                }
            });
        }
    });
    port
}

/// Every audit chain line under `dir` (the `audit-*.jsonl` files, in name order; not the
/// index, checkpoints or quarantine beside them).
pub fn audit_text(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
    });
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect()
}
