//! Discovery against real peers, including one that only starts after discovery began.

mod peers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastmcp::mcp::client::{Era, Transport};
use fastmcp::mcp::discovery::{Discovery, DiscoveryOptions, ServerStatus};
use parking_lot::Mutex;
use peers::*;
use serde_json::{json, Value};

fn http(url: String) -> Transport {
    Transport::Http { url, headers: vec![], timeout: Duration::from_secs(10) }
}

#[test]
fn discovery_copes_with_a_late_server_and_a_dead_one() {
    let late_port = free_port();
    let dead_port = free_port();
    let changes: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let seen = changes.clone();
    let started = Instant::now();
    let discovery = Discovery::start(
        vec![
            ("late".into(), http(demo_url(late_port))),
            ("dead".into(), http(demo_url(dead_port))),
            ("stdio".into(), Transport::stdio(format!("node {EVERYTHING} stdio"))),
        ],
        DiscoveryOptions { retries: 30, backoff_ms: 100, refresh_interval: Duration::from_secs(300) },
        Arc::new(move |name: &str, tools: &[Value]| seen.lock().push((name.to_string(), tools.len()))),
    );
    // start() must not block on unreachable servers.
    assert!(started.elapsed() < Duration::from_secs(1));
    // The late server is not there yet: at this point it cannot have been discovered.
    assert!(!discovery.wait_until_discovered("late", Duration::from_millis(200)));

    // The scenario under test, not synchronisation: the upstream comes up 5 s later.
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        spawn_demo(late_port, &[])
    });
    assert!(discovery.wait_until_discovered("stdio", Duration::from_secs(60)));
    assert!(discovery.wait_until_discovered("late", Duration::from_secs(60)));
    let _peer = starter.join().unwrap();

    let snap = discovery.snapshot();
    let late = &snap["late"];
    assert_eq!(late.status, ServerStatus::Up);
    assert_eq!(late.era, Some(Era::Stateless20260728));
    assert!(late.last_ok.is_some());
    let names = tool_names(&late.tools);
    for t in ["echo", "add", "read_secret", "delete_item"] {
        assert!(names.contains(&t.to_string()), "{names:?}");
    }
    assert_eq!(snap["stdio"].era, Some(Era::Session20251125));
    assert!(matches!(&snap["dead"].status, ServerStatus::Down { .. }), "{:?}", snap["dead"]);
    assert!(changes.lock().iter().any(|(n, count)| n == "late" && *count == 4));

    // The connected client is usable by callers.
    let client = discovery.client("late").unwrap();
    let resp =
        client.request(&own(), "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}), &mut |_| {}).unwrap();
    assert_eq!(first_text(&resp), "x");
    assert!(discovery.client("dead").is_none());

    let t = Instant::now();
    discovery.stop();
    assert!(t.elapsed() < Duration::from_secs(3), "stop took {:?}", t.elapsed());
}

#[test]
fn discovery_refreshes_periodically_and_listens_on_session_servers() {
    let peer = everything();
    let changes: Arc<Mutex<usize>> = Arc::default();
    let seen = changes.clone();
    let discovery = Discovery::start(
        vec![("ev".into(), http(everything_url(peer.port)))],
        DiscoveryOptions { retries: 3, backoff_ms: 100, refresh_interval: Duration::from_millis(300) },
        Arc::new(move |_: &str, _: &[Value]| *seen.lock() += 1),
    );
    assert!(discovery.wait_until_discovered("ev", Duration::from_secs(30)));
    assert_eq!(discovery.snapshot()["ev"].era, Some(Era::Session20251125));
    // Periodic refresh: on_change fires again. Bounded poll on the counter.
    let deadline = Instant::now() + Duration::from_secs(20);
    while *changes.lock() < 3 {
        assert!(Instant::now() < deadline, "no periodic refresh");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    drop(discovery);
    eprintln!("drop took {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(3), "drop took {:?}", t.elapsed());
}

#[test]
fn discover_once_reports_each_server() {
    let peer = demo(&[]);
    let dead = free_port();
    let results = Discovery::discover_once(
        vec![("demo".into(), http(demo_url(peer.port))), ("dead".into(), http(demo_url(dead)))],
        &DiscoveryOptions { retries: 2, backoff_ms: 10, refresh_interval: Duration::from_secs(300) },
    );
    assert_eq!(results["demo"].status, ServerStatus::Up);
    assert_eq!(tool_names(&results["demo"].tools).len(), 4);
    assert!(matches!(&results["dead"].status, ServerStatus::Down { error } if error.contains("unreachable")));
}

/// The tests drive the client as the gateway's own traffic.
fn own() -> fastmcp::enforce::Proof {
    fastmcp::enforce::Proof::gateway_own("test")
}
