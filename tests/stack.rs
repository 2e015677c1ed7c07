//! The deployment stack (docker-compose.yml) and its native twin (scripts/stack.sh).
//!
//! No container engine is reachable here, so the compose file is validated by
//! `docker-compose config -q` and checked against the files the native run shares with it;
//! `scripts/stack.sh up` then runs the same topology on free ports: both gateways must be up
//! in Prometheus, their `/metrics` must pass `promtool check metrics`, every Grafana panel's
//! query must be valid PromQL for that Prometheus, an MCP SDK client's calls through the load
//! balancer must reach both instances, and `down` must leave none of the recorded processes.
//!
//! A test whose tool (docker-compose, haproxy, prometheus, redis-server) is absent prints why
//! and returns; `.ci/run` installs them all.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http, python, repo, sdk_client, temp_dir};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns the missing tools among `tools` after printing the skip reason (empty: go on).
fn missing(test: &str, tools: &[&str]) -> bool {
    let absent: Vec<_> = tools.iter().filter(|t| !have(t)).collect();
    if absent.is_empty() {
        return false;
    }
    eprintln!("SKIP {test}: {absent:?} not installed (.ci/run installs them)");
    true
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The default ports scripts/stack.sh documents (`STACK_X_PORT:-N`).
fn stack_default(var: &str) -> String {
    let script = read("scripts/stack.sh");
    let needle = format!("${{STACK_{var}:-");
    let start = script.find(&needle).unwrap_or_else(|| panic!("stack.sh has no {needle}")) + needle.len();
    script[start..].chars().take_while(|c| c.is_ascii_digit()).collect()
}

#[test]
fn compose_file_is_valid_and_matches_the_native_stack() {
    if missing("compose_file_is_valid", &["docker-compose"]) {
        return;
    }
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(repo())
        .output()
        .expect("run docker-compose");
    assert!(out.status.success(), "docker-compose config -q: {}", String::from_utf8_lossy(&out.stderr));

    let mut compose = yaml("docker-compose.yml");
    compose.apply_merge().expect("YAML merge keys"); // `<<: *gateway`
    let services = &compose["services"];
    for s in ["gateway1", "gateway2", "lb", "redis", "demo", "everything", "prometheus", "grafana"] {
        assert!(services.get(s).is_some(), "docker-compose.yml has no service {s}");
    }
    // The same ports as the native run's defaults, and the same deploy/ files.
    for (svc, listen, admin) in [("gateway1", "GW1_PORT", "GW1_ADMIN_PORT"), ("gateway2", "GW2_PORT", "GW2_ADMIN_PORT")]
    {
        let env = &services[svc]["environment"];
        assert_eq!(env["FASTMCP_LISTEN"].as_str(), Some(format!("0.0.0.0:{}", stack_default(listen)).as_str()));
        assert_eq!(env["FASTMCP_ADMIN_LISTEN"].as_str(), Some(format!("0.0.0.0:{}", stack_default(admin)).as_str()));
        let vols = serde_yaml_ng::to_string(&services[svc]["volumes"]).expect("yaml");
        assert!(vols.contains("./deploy/gateway.yaml:") && vols.contains("./deploy/policies.yml:"), "{svc}: {vols}");
        assert_eq!(
            services[svc]["command"],
            serde_yaml_ng::from_str::<serde_yaml_ng::Value>(r#"["serve", "--config", "/etc/fastmcp/gateway.yaml"]"#)
                .expect("yaml")
        );
    }
    let lb_ports = serde_yaml_ng::to_string(&services["lb"]["ports"]).expect("yaml");
    assert!(lb_ports.contains(&format!("{0}:{0}", stack_default("LB_PORT"))), "lb ports: {lb_ports}");
    let lb_vols = serde_yaml_ng::to_string(&services["lb"]["volumes"]).expect("yaml");
    assert!(lb_vols.contains("./deploy/haproxy.cfg:"), "{lb_vols}");
    let prom_vols = serde_yaml_ng::to_string(&services["prometheus"]["volumes"]).expect("yaml");
    assert!(prom_vols.contains("./deploy/prometheus.yml:"), "{prom_vols}");

    // Prometheus scrapes exactly the two instances' admin ports (stack.sh rewrites the hosts).
    let prom = yaml("deploy/prometheus.yml");
    let targets: Vec<String> = prom["scrape_configs"][0]["static_configs"]
        .as_sequence()
        .expect("static_configs")
        .iter()
        .flat_map(|g| g["targets"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let want = [
        format!("gateway1:{}", stack_default("GW1_ADMIN_PORT")),
        format!("gateway2:{}", stack_default("GW2_ADMIN_PORT")),
    ];
    assert_eq!(targets, want);
}

/// The metric families src/metrics.rs registers.
fn registered_metrics() -> BTreeSet<String> {
    let src = read("src/metrics.rs");
    src.split('"').filter(|s| s.starts_with("fastmcp_") && !s.contains(' ')).map(str::to_string).collect()
}

/// Every `fastmcp_*` series name a dashboard query uses.
fn dashboard_queries() -> Vec<String> {
    let dash: serde_json::Value = serde_json::from_str(&read("deploy/grafana/dashboards/fastmcp.json")).expect("JSON");
    let mut exprs = vec![];
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs
}

#[test]
fn dashboard_queries_use_registered_metrics() {
    let known = registered_metrics();
    assert!(known.contains("fastmcp_requests_total") && known.contains("fastmcp_holds_pending"), "{known:?}");
    let exprs = dashboard_queries();
    let mut used = BTreeSet::new();
    for e in &exprs {
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("fastmcp_") {
                let family =
                    ["_bucket", "_sum", "_count"].iter().find_map(|s| word.strip_suffix(s)).unwrap_or(word).to_string();
                assert!(known.contains(&family), "dashboard uses {word}, which src/metrics.rs does not register");
                used.insert(family);
            }
        }
    }
    // The panels the deployment promises: decisions, latency, holds, reloads, audit.
    for m in [
        "fastmcp_requests_total",
        "fastmcp_request_duration_seconds",
        "fastmcp_holds_pending",
        "fastmcp_policy_reloads_total",
        "fastmcp_audit_records_total",
    ] {
        assert!(used.contains(m), "no dashboard panel shows {m}");
    }
}

#[test]
fn images_run_unprivileged_with_a_healthcheck_and_pinned_peers() {
    let docker = read("Dockerfile");
    let runtime = docker.rsplit("\nFROM ").next().expect("a runtime stage");
    let user = runtime.lines().find_map(|l| l.strip_prefix("USER ")).expect("runtime stage sets USER");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "runtime user {user}");
    assert!(runtime.contains("HEALTHCHECK") && runtime.contains("fastmcp-healthcheck"), "no HEALTHCHECK");
    assert!(runtime.contains("COPY deploy/healthcheck.sh /usr/local/bin/fastmcp-healthcheck"));
    // The builder stage copies everything the build reads: the sources, the vendored patch
    // and every top-level directory a file embedded with include_str!/include_bytes! lives in.
    let builder = docker.split("\nFROM ").nth(1).expect("a builder stage");
    let mut dirs = BTreeSet::from(["src".to_string(), "vendor".to_string(), "benches".to_string()]);
    embedded_top_dirs(&repo().join("src"), &mut dirs);
    for d in &dirs {
        assert!(builder.contains(&format!("\nCOPY {d} ./{d}\n")), "Dockerfile's builder does not COPY {d}/");
    }
    assert!(builder.contains("COPY Cargo.toml Cargo.lock ./") && builder.contains("--locked"));
    // The compose stack's server-everything is the version the tests run.
    let pkg: serde_json::Value = serde_json::from_str(&read("tests/node/package.json")).expect("package.json");
    let v = pkg["dependencies"]["@modelcontextprotocol/server-everything"].as_str().expect("pinned version");
    assert!(
        read("deploy/peers.Dockerfile").contains(&format!("@modelcontextprotocol/server-everything@{v} ")),
        "deploy/peers.Dockerfile must install server-everything {v}"
    );
}

/// Adds the top-level repository directory of every file that a source under `dir` embeds.
fn embedded_top_dirs(dir: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let path = e.expect("entry").path();
        if path.is_dir() {
            embedded_top_dirs(&path, out);
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for part in text.split(macro_name).skip(1) {
                let rel = part.split('"').next().unwrap_or("");
                let target = path.parent().expect("parent").join(rel);
                let target = target.canonicalize().unwrap_or_else(|e| panic!("{}: {rel}: {e}", path.display()));
                let root = repo().canonicalize().expect("repo");
                let top = target.strip_prefix(&root).expect("embedded file inside the repo").components().next();
                if let Some(top) = top {
                    out.insert(top.as_os_str().to_string_lossy().into_owned());
                }
            }
        }
    }
}

/// The running native stack; `down` on drop, so a failing assertion leaves no process.
struct Stack {
    dir: PathBuf,
    env: Vec<(String, String)>,
    ports: Ports,
    down: bool,
}

#[derive(Clone, Copy)]
struct Ports {
    lb: u16,
    gw1_admin: u16,
    gw2_admin: u16,
    prometheus: u16,
}

impl Stack {
    fn script(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(repo().join("scripts/stack.sh"))
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .expect("run scripts/stack.sh")
    }

    /// `scripts/stack.sh token ARGS` (a JWT signed by the stack's shared dev key).
    fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        let out = self.script(&all);
        assert!(out.status.success(), "stack.sh token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8").trim().to_string()
    }

    /// `(service, pid)` of every process `up` recorded.
    fn pids(&self) -> Vec<(String, u32)> {
        let mut out = vec![];
        for e in std::fs::read_dir(self.dir.join("pids")).expect("pids dir") {
            let p = e.expect("entry").path();
            let text = std::fs::read_to_string(&p).expect("pid file");
            let pid = text.split_whitespace().next().and_then(|s| s.parse().ok()).expect("pid");
            out.push((p.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string(), pid));
        }
        out.sort();
        out
    }

    fn down(&mut self) -> Output {
        self.down = true;
        self.script(&["down"])
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !self.down {
            let out = self.script(&["down"]);
            eprintln!("stack down (cleanup): {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A running (not zombie) process with this pid.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn get(port: u16, path: &str) -> common::Resp {
    http("GET", &format!("http://127.0.0.1:{port}{path}"), &[], b"")
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sum of `fastmcp_requests_total` in one instance's exposition.
fn requests_total(admin_port: u16) -> f64 {
    let text = String::from_utf8(get(admin_port, "/metrics").body).expect("utf8 metrics");
    text.lines()
        .filter(|l| l.starts_with("fastmcp_requests_total{") || l.starts_with("fastmcp_requests_total "))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

fn promtool_check(metrics: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().expect("stdin").write_all(metrics).expect("write metrics");
    child.wait_with_output().expect("promtool output")
}

fn start_stack(dir: &Path) -> Stack {
    try_start_stack(dir, env!("CARGO_BIN_EXE_fastmcp")).unwrap_or_else(|out| {
        panic!(
            "stack.sh up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `stack.sh up` on free ports with `bin` as the gateway; `Err` with its output when it failed
/// (it then stopped what it had started).
fn try_start_stack(dir: &Path, bin: &str) -> Result<Stack, Output> {
    let ports = Ports { lb: free_port(), gw1_admin: free_port(), gw2_admin: free_port(), prometheus: free_port() };
    let env: Vec<(String, String)> = [
        ("STACK_DIR", dir.display().to_string()),
        ("FASTMCP_BIN", bin.to_string()),
        ("PYTHON", python().display().to_string()),
        ("STACK_LB_PORT", ports.lb.to_string()),
        ("STACK_GW1_PORT", free_port().to_string()),
        ("STACK_GW1_ADMIN_PORT", ports.gw1_admin.to_string()),
        ("STACK_GW2_PORT", free_port().to_string()),
        ("STACK_GW2_ADMIN_PORT", ports.gw2_admin.to_string()),
        ("STACK_REDIS_PORT", free_port().to_string()),
        ("STACK_DEMO_PORT", free_port().to_string()),
        ("STACK_EVERYTHING_PORT", free_port().to_string()),
        ("STACK_PROMETHEUS_PORT", ports.prometheus.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut stack = Stack { dir: dir.to_path_buf(), env, ports, down: false };
    let up = stack.script(&["up"]);
    if !up.status.success() {
        stack.down = true; // `up` stopped what it started
        return Err(up);
    }
    Ok(stack)
}

#[test]
fn a_failed_up_stops_what_it_started() {
    if missing("failed_up", &["redis-server", "haproxy", "prometheus", "node"]) {
        return;
    }
    let dir = temp_dir("stack-fail");
    // A gateway binary whose `serve` fails: Redis and both MCP servers are already up then.
    let fake = dir.join("fastmcp-broken");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = serve ]; then echo 'broken on purpose' >&2; exit 3; fi\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_fastmcp")
        ),
    )
    .expect("write fake binary");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let state = dir.join("state");
    let out = match try_start_stack(&state, &fake.display().to_string()) {
        Ok(_) => panic!("stack.sh up succeeded with a gateway that cannot start"),
        Err(out) => out,
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gateway1 exited") && stderr.contains("broken on purpose"), "{stderr}");
    for s in ["redis", "demo", "everything"] {
        assert!(stderr.contains(&format!("stopped {s}")), "{s} not stopped: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(state.join("pids")).expect("pids dir").collect();
    assert!(left.is_empty(), "pid files left after a failed up: {left:?}");
}

#[test]
fn native_stack_scrapes_balances_and_stops_cleanly() {
    if missing("native_stack", &["redis-server", "haproxy", "prometheus", "promtool", "node"]) {
        return;
    }
    let dir = temp_dir("stack");
    let mut stack = start_stack(&dir);
    let Ports { lb, gw1_admin, gw2_admin, prometheus } = stack.ports;

    let status = stack.script(&["status"]);
    assert!(status.status.success(), "status: {}", String::from_utf8_lossy(&status.stdout));

    // Prometheus reports both gateway targets up (it scrapes every 5 s).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let targets = get(prometheus, "/api/v1/targets").json();
        let up: BTreeSet<String> = targets["data"]["activeTargets"]
            .as_array()
            .expect("activeTargets")
            .iter()
            .filter(|t| t["health"] == "up")
            .filter_map(|t| t["labels"]["gateway"].as_str().map(str::to_string))
            .collect();
        if up.len() == 2 && up.contains("gateway1") && up.contains("gateway2") {
            break;
        }
        assert!(Instant::now() < deadline, "gateway targets not up in Prometheus: {targets}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // The image's HEALTHCHECK script (as in the image: the address from FASTMCP_ADMIN_LISTEN,
    // a wildcard host asked on loopback), and each instance's exposition through promtool.
    let healthcheck = |listen: String| {
        Command::new(repo().join("deploy/healthcheck.sh"))
            .env("FASTMCP_ADMIN_LISTEN", listen)
            .status()
            .expect("run healthcheck.sh")
            .success()
    };
    assert!(!healthcheck(format!("0.0.0.0:{}", free_port())), "healthcheck.sh passed on a closed port");
    for admin in [gw1_admin, gw2_admin] {
        assert!(healthcheck(format!("0.0.0.0:{admin}")), "healthcheck.sh on admin port {admin}");
        let metrics = get(admin, "/metrics");
        assert_eq!(metrics.status, 200);
        let check = promtool_check(&metrics.body);
        assert!(
            check.status.success(),
            "promtool check metrics on :{admin}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }

    // Every Grafana panel's query is accepted by this Prometheus.
    for expr in dashboard_queries() {
        let q = expr.replace("$gateway", ".*");
        let r = get(prometheus, &format!("/api/v1/query?query={}", encode(&q)));
        assert_eq!(r.status, 200, "query {q}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], "success", "query {q}");
    }

    // Both instances have discovered both MCP servers (the demo server's annotations are
    // trusted: `echo` is read-only only once discovered).
    let admin =
        format!("Bearer {}", stack.token(&["--sub", "ops", "--tenant", "platform", "--roles", "platform-admin"]));
    for port in [gw1_admin, gw2_admin] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s =
                http("GET", &format!("http://127.0.0.1:{port}/admin/mcp/servers"), &[("authorization", &admin)], b"");
            let s = s.json();
            if ["demo", "everything"].iter().all(|n| s["servers"][n]["tools"].as_u64().unwrap_or(0) > 0) {
                break;
            }
            assert!(Instant::now() < deadline, "instance on :{port} did not discover demo and everything: {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // An SDK client through the load balancer; calls are spread over both instances.
    let token = stack.token(&["--sub", "alice", "--tenant", "acme", "--roles", "mcp-user"]);
    let before = (requests_total(gw1_admin), requests_total(gw2_admin));
    let url = format!("http://127.0.0.1:{lb}/mcp/demo");
    let mut calls = 0;
    loop {
        calls += 1;
        let text = format!("via-lb-{calls}");
        let r = sdk_client(&url, &token, "auto", &["call", "echo", &serde_json::json!({ "text": text }).to_string()]);
        assert_eq!(r["ok"], true, "call {calls} through the load balancer: {r}");
        assert_eq!(r["text"], text.as_str());
        let now = (requests_total(gw1_admin), requests_total(gw2_admin));
        if now.0 > before.0 && now.1 > before.1 {
            break;
        }
        assert!(
            calls < 8,
            "{calls} calls through the load balancer did not reach both instances: {before:?} -> {now:?}"
        );
    }
    // Each call ran exactly once on the demo server, whichever instance forwarded it.
    let counts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo-calls.json")).expect("calls file")).expect("JSON");
    assert_eq!(counts["echo"], calls, "demo server calls: {counts}");
    // A refused call is refused the same way by the balanced stack (denied tool, no forward).
    let denied = sdk_client(&url, &token, "auto", &["call", "read_secret", r#"{"name":"db"}"#]);
    assert_eq!(denied["ok"], false, "{denied}");
    assert_eq!(denied["data"]["code"], "FORBIDDEN", "{denied}");

    // 2025-11-25 sessions live in the instance that created them: HAProxy keeps each
    // session's requests on it (stick on Mcp-Session-Id), so handshake, call and DELETE of
    // every session land together (round robin alone answers "session not found").
    let federated = format!("http://127.0.0.1:{lb}/mcp");
    for i in 0..4 {
        let text = format!("session-{i}");
        let r = sdk_client(
            &federated,
            &token,
            "legacy",
            &["call", "demo__echo", &serde_json::json!({ "text": text }).to_string()],
        );
        assert_eq!(r["ok"], true, "2025-11-25 session {i} through the load balancer: {r}");
        assert_eq!(r["text"], text.as_str());
        assert_eq!(r["protocol_version"], "2025-11-25");
    }

    // down stops every recorded process and frees the ports.
    let pids = stack.pids();
    assert_eq!(pids.len(), 7, "recorded processes: {pids:?}");
    let down = stack.down();
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    let left: Vec<_> = pids.iter().filter(|(_, pid)| running(*pid)).collect();
    assert!(left.is_empty(), "processes left after down: {left:?}");
    for port in [lb, gw1_admin, gw2_admin, prometheus] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still open after down");
    }
    let status = stack.script(&["status"]);
    assert_eq!(status.status.code(), Some(3), "status after down: {}", String::from_utf8_lossy(&status.stdout));
}
