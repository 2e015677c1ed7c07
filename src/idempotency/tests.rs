use std::sync::Arc;
use std::time::Duration;

use super::*;

const TTL: Duration = Duration::from_secs(60);

fn key(sub: &str, k: &str) -> IdemKey {
    IdemKey::new("acme", sub, "ads:createCampaign", k)
}

fn store() -> (Arc<ManualClock>, MemoryIdempotencyStore) {
    let clock = Arc::new(ManualClock::default());
    let store = MemoryIdempotencyStore::with_clock(clock.clone(), DEFAULT_MAX_RECORDS);
    (clock, store)
}

async fn begin(store: &MemoryIdempotencyStore, k: &IdemKey, hash: &str) -> Begin {
    store.begin(k, hash, TTL).await.unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn replay_returns_stored_status_and_body() {
    let (_, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
    store.complete(&k, 201, b"{\"ok\":true}".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(begin(&store, &k, "h").await, Begin::Replay { status: 201, body: b"{\"ok\":true}".to_vec() });
    assert_eq!(begin(&store, &k, "h").await, Begin::Replay { status: 201, body: b"{\"ok\":true}".to_vec() });
}

#[tokio::test]
async fn same_key_other_payload_is_a_mismatch() {
    let (_, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h1").await, Begin::Proceed);
    assert_eq!(begin(&store, &k, "h2").await, Begin::PayloadMismatch, "while in flight");
    store.complete(&k, 200, b"r".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(begin(&store, &k, "h2").await, Begin::PayloadMismatch, "after completion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_twenty_concurrent_begins_proceeds() {
    let store = Arc::new(MemoryIdempotencyStore::new());
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.begin(&key("agent-1", "race"), "h", TTL).await
            })
        })
        .collect();
    let mut proceed = 0;
    let mut in_flight = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(Begin::Proceed)) => proceed += 1,
            Ok(Ok(Begin::InFlight)) => in_flight += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((proceed, in_flight), (1, 19));
}

#[tokio::test]
async fn other_subject_same_key_does_not_see_the_record() {
    let (_, store) = store();
    let mine = key("agent-1", "shared");
    assert_eq!(begin(&store, &mine, "h").await, Begin::Proceed);
    store.complete(&mine, 200, b"secret result".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(begin(&store, &key("agent-2", "shared"), "h").await, Begin::Proceed);
    let other_tenant = IdemKey::new("globex", "agent-1", "ads:createCampaign", "shared");
    assert_eq!(begin(&store, &other_tenant, "h").await, Begin::Proceed);
    let other_tool = IdemKey::new("acme", "agent-1", "pipedrive:createDeal", "shared");
    assert_eq!(begin(&store, &other_tool, "h").await, Begin::Proceed);
}

#[tokio::test]
async fn expiry_lets_the_key_run_again() {
    let (clock, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
    store.complete(&k, 200, b"r".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    clock.advance(TTL - Duration::from_millis(1));
    assert!(matches!(begin(&store, &k, "h").await, Begin::Replay { .. }));
    clock.advance(Duration::from_millis(1));
    assert_eq!(begin(&store, &k, "other").await, Begin::Proceed, "an expired key is free, any payload");
}

#[tokio::test]
async fn an_in_flight_claim_expires_too() {
    let (clock, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
    clock.advance(TTL);
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
}

#[tokio::test]
async fn completion_restarts_the_ttl() {
    let (clock, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
    clock.advance(TTL / 2);
    store.complete(&k, 200, b"r".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    clock.advance(TTL / 2 + Duration::from_secs(1));
    assert!(matches!(begin(&store, &k, "h").await, Begin::Replay { .. }));
}

#[tokio::test]
async fn abandon_lets_a_retry_proceed() {
    let (_, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
    store.abandon(&k).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(begin(&store, &k, "h2").await, Begin::Proceed);
}

#[tokio::test]
async fn abandon_and_complete_leave_a_completed_record_alone() {
    let (_, store) = store();
    let k = key("agent-1", "k1");
    assert_eq!(begin(&store, &k, "h").await, Begin::Proceed);
    store.complete(&k, 200, b"first".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    store.abandon(&k).await.unwrap_or_else(|e| panic!("{e}"));
    store.complete(&k, 500, b"second".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(begin(&store, &k, "h").await, Begin::Replay { status: 200, body: b"first".to_vec() });
    // Completing a key nobody claimed stores nothing.
    let ghost = key("agent-1", "ghost");
    store.complete(&ghost, 200, b"x".to_vec()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(begin(&store, &ghost, "h").await, Begin::Proceed);
}

#[tokio::test]
async fn full_store_refuses_then_recovers_after_expiry() {
    let clock = Arc::new(ManualClock::default());
    let store = MemoryIdempotencyStore::with_clock(clock.clone(), 3);
    for i in 0..3 {
        assert_eq!(begin(&store, &key("a", &format!("k{i}")), "h").await, Begin::Proceed);
    }
    assert_eq!(store.begin(&key("a", "k3"), "h", TTL).await, Err(StoreError::Full));
    clock.advance(TTL);
    assert_eq!(begin(&store, &key("a", "k3"), "h").await, Begin::Proceed);
    assert_eq!(store.len(), 1, "expired records were swept");
}

#[test]
fn storage_keys_do_not_collide_across_separators() {
    let a = IdemKey::new("t", "a:b", "c", "k");
    let b = IdemKey::new("t", "a", "b:c", "k");
    assert_ne!(a.storage_key(), b.storage_key());
    let c = IdemKey::new("t\0", "a", "c", "k");
    let d = IdemKey::new("t", "\0a", "c", "k");
    assert_ne!(c.storage_key(), d.storage_key());
    assert_eq!(a.storage_key(), IdemKey::new("t", "a:b", "c", "k").storage_key());
    assert!(a.storage_key().starts_with("idem:v1:"));
    assert!(!a.storage_key().contains("a:b"), "no caller data in the backend key");
}

#[test]
fn header_values() {
    assert_eq!(parse_key("abc-123_XYZ.~!"), Ok("abc-123_XYZ.~!"));
    assert_eq!(parse_key("\"8e03978e-40d5\""), Ok("8e03978e-40d5"));
    assert_eq!(parse_key(&"k".repeat(MAX_KEY_LEN)).map(str::len), Ok(MAX_KEY_LEN));
    assert!(parse_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    for bad in ["", "\"\"", "has space", "tab\there", "nul\0", "ünïcode", "line\nbreak"] {
        assert!(parse_key(bad).is_err(), "{bad:?}");
    }
}
