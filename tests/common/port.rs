//! Free ports for test servers, chosen below the kernel's ephemeral range.
//!
//! Binding port 0 and releasing it hands out an ephemeral port that the kernel may give the
//! very next moment to another test's port-0 listener or outgoing connection (the suite runs
//! many gateways, upstreams and clients in parallel): the server started on it then fails to
//! bind while the readiness probe talks to someone else. Ports below the ephemeral range are
//! never handed out that way; a random one that binds now is taken.

use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;

/// The lowest port of the kernel's ephemeral range (Linux default 32768).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

/// A port that nothing listens on now, outside the ephemeral range when there is room.
pub fn free_port() -> u16 {
    let high = ephemeral_low().saturating_sub(1);
    let low = 10_000u16;
    if high > low + 1000 {
        for _ in 0..200 {
            // Each `RandomState` has fresh random keys: its empty hash is a random number.
            let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
            let port = low + (random % u64::from(high - low)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}
