//! Acceptance (issue 14, "Starts and stops"): a second `serve` on a busy port exits 2 with one
//! line naming the address; SIGTERM lets an in-flight call finish (200, audit record on disk)
//! within `grace_period_seconds`; `serve --upgrade` takes the listening sockets over from the
//! running gateway while a client hammering the port never sees a refused connection.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Waits (bounded) for `child` to exit; kills it and fails if it does not.
fn wait_exit(child: &mut Child, within: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `path` (bounded) until it contains `needle`.
fn wait_for_text(path: &Path, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(Instant::now() < deadline, "{} never said {needle:?}:\n{text}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill");
    assert!(ok.success(), "kill {sig} failed");
}

#[test]
fn a_second_serve_on_a_busy_port_exits_2_naming_the_address() {
    let gw = Gateway::builder("busy").start();
    let other = temp_dir("busy-second");
    let free = free_port();
    for (listen, admin, named) in [
        (format!("127.0.0.1:{}", gw.port), format!("127.0.0.1:{free}"), format!("listen 127.0.0.1:{}", gw.port)),
        (
            format!("127.0.0.1:{free}"),
            format!("127.0.0.1:{}", gw.admin_port),
            format!("admin_listen 127.0.0.1:{}", gw.admin_port),
        ),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastmcp"))
            .arg("serve")
            .current_dir(&other)
            .env("FASTMCP_LISTEN", &listen)
            .env("FASTMCP_ADMIN_LISTEN", &admin)
            .env("FASTMCP_DATA_DIR", other.join("data"))
            .env("AUDIT_WORM_DIR", other.join("audit"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = wait_exit(&mut child, Duration::from_secs(20), "the second gateway");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim(), format!("startup failed: {named}: address already in use"));
    }
    // The first gateway is untouched.
    assert_eq!(http("GET", &gw.url("/health"), &[], b"").status, 200);
}

#[test]
fn sigterm_lets_an_in_flight_call_finish_and_record_its_outcome() {
    let arrived = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let (a, r) = (arrived.clone(), release.clone());
    // A slow upstream: it answers only once the test lets it, after SIGTERM has been handled.
    let port = fake_upstream(move |_head, _body, s| {
        a.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !r.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"slow"}]}}"#;
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    });
    let mut gw = Gateway::builder("sigterm")
        // The fixture lets `mcp-user` call `echo` on `demo`.
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .config(&format!(
            "grace_period_seconds: 5\nmcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: []}}\n"
        ))
        .start();
    let user = gw.mint("alice", "acme", "mcp-user");
    let url = gw.url("/mcp/demo");
    let call = std::thread::spawn(move || mcp_post(&url, Some(&user), &tools_call(1, "echo", json!({})), &[]));

    let deadline = Instant::now() + Duration::from_secs(20);
    while !arrived.load(Ordering::SeqCst) {
        assert!(!call.is_finished(), "the call ended before reaching the upstream:\n{}", gw.log());
        assert!(Instant::now() < deadline, "the call never reached the upstream:\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&gw.child, "-TERM");
    wait_for_text(&gw.dir.join("gateway.log"), "Graceful shutdown started", Duration::from_secs(10));
    release.store(true, Ordering::SeqCst);

    let resp = call.join().expect("client thread");
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.json()["result"]["content"][0]["text"], "slow");
    let status = wait_exit(&mut gw.child, Duration::from_secs(20), "the gateway after SIGTERM");
    assert!(status.success(), "exit {status}:\n{}", gw.log());

    // Its audit records, decision and completion, are on disk and the chain verifies.
    let corr = resp.header("x-correlation-id").expect("correlation id").to_string();
    let mut phases = Vec::new();
    for line in audit_text(&gw.audit_dir()).lines() {
        let rec: serde_json::Value = serde_json::from_str(line).expect("record");
        if rec["corr_id"] == corr.as_str() {
            phases.push((rec["phase"].as_str().unwrap_or("").to_string(), rec["decision"]["result"].clone()));
        }
    }
    assert!(phases.iter().any(|(p, r)| p == "decision" && r == "allow"), "{phases:?}");
    assert!(phases.iter().any(|(p, _)| p == "completion"), "no completion record: {phases:?}");
    let out = gw.cli(&["audit", "verify", &gw.audit_dir().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// One `GET /health` on a new connection: `Err` when the connection is refused or the answer
/// is not a 200.
fn health_once(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(format!("GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut BufReader::new(s), &mut line).map_err(|e| format!("read: {e}"))?;
    if line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answer {line:?}"))
    }
}

#[test]
fn upgrade_hands_the_listening_sockets_over_without_refusing_a_connection() {
    let sock_dir = temp_dir("upgrade-sock");
    let sock = sock_dir.join("up.sock");
    let mut old = Gateway::builder("upgrade")
        .env("FASTMCP__UPGRADE_SOCK", &sock.display().to_string())
        .config("grace_period_seconds: 1\n")
        .start();
    let port = old.port;

    // The client: new connection after new connection, until told to stop (bounded by count).
    const MAX_REQUESTS: u64 = 100_000;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let (st, sv) = (stop.clone(), served.clone());
    let hammer = std::thread::spawn(move || {
        let mut failures = Vec::new();
        for _ in 0..MAX_REQUESTS {
            if st.load(Ordering::SeqCst) {
                break;
            }
            // Paced (a rate, not a synchronisation): about a thousand connections a second.
            std::thread::sleep(Duration::from_millis(1));
            match health_once(port) {
                Ok(()) => {
                    sv.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => failures.push(e),
            }
        }
        failures
    });

    // The new gateway: same configuration, sockets from the old one.
    let log = std::fs::File::create(old.dir.join("upgraded.log")).expect("log");
    let mut new = Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(["serve", "--upgrade", "--config"])
        .arg(old.dir.join("config.yaml"))
        .current_dir(&old.dir)
        .envs(old.env.iter().cloned())
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn the new gateway");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(new.try_wait().expect("try_wait").is_none(), "the new gateway exited early");
        assert!(Instant::now() < deadline, "the new gateway never opened {}", sock.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = served.load(Ordering::SeqCst);
    signal(&old.child, "-QUIT");
    wait_for_text(&old.dir.join("upgraded.log"), "fastmcp serving", Duration::from_secs(20));
    let status = wait_exit(&mut old.child, Duration::from_secs(30), "the old gateway after SIGQUIT");
    assert!(status.success(), "old gateway exit {status}");

    // The old process is gone: what answers now is the new one.
    let after_old = served.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while served.load(Ordering::SeqCst) < after_old + 50 {
        assert!(Instant::now() < deadline, "the new gateway does not answer");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    let failures = hammer.join().expect("hammer");
    let total = served.load(Ordering::SeqCst);
    eprintln!(
        "served {before} before SIGQUIT, {} more until the old gateway exited, {total} in all",
        after_old - before
    );
    assert!(failures.is_empty(), "{} failed requests, first: {:?}", failures.len(), failures.first());
    assert!(after_old > before, "requests were served during the hand-over");
    assert_eq!(http("GET", &old.admin_url("/health"), &[], b"").status, 200, "the admin socket came along");

    signal(&new, "-INT");
    wait_exit(&mut new, Duration::from_secs(20), "the new gateway");
}
