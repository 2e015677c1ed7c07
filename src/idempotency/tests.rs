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

fn limited(max_bytes: usize, per_subject: usize, max_answer: usize) -> (Arc<ManualClock>, MemoryIdempotencyStore) {
    let clock = Arc::new(ManualClock::default());
    let limits = IdempotencyLimits {
        max_records: DEFAULT_MAX_RECORDS,
        max_bytes,
        max_bytes_per_subject: per_subject,
        max_answer_bytes: max_answer,
    };
    (clock.clone(), MemoryIdempotencyStore::with_limits(clock, limits))
}

async fn answered(store: &MemoryIdempotencyStore, k: &IdemKey, bytes: usize) {
    assert_eq!(begin(store, k, "h").await, Begin::Proceed);
    store.complete(k, 200, vec![b'x'; bytes]).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn an_answer_over_the_per_answer_bound_is_not_stored_and_never_replays_as_a_rerun() {
    let (_, store) = limited(1 << 20, 1 << 20, 1000);
    let k = key("agent-1", "big");
    answered(&store, &k, 1001).await;
    assert_eq!(begin(&store, &k, "h").await, Begin::AnswerDropped { status: 200, why: Dropped::TooLarge });
    assert_eq!(store.subject_bytes(&k), RECORD_OVERHEAD + 14, "only the tombstone is accounted");
    assert_eq!(begin(&store, &k, "other").await, Begin::PayloadMismatch, "the payload check still applies");
    answered(&store, &key("agent-1", "fits"), 1000).await;
    assert!(matches!(begin(&store, &key("agent-1", "fits"), "h").await, Begin::Replay { .. }));
}

#[tokio::test]
async fn a_callers_oldest_answers_go_first_and_other_callers_keep_theirs() {
    // Room for ten records, only three of them with their answer.
    let per_subject = 10 * (RECORD_OVERHEAD + 14) + 3 * 1000;
    let (_, store) = limited(1 << 20, per_subject, 1 << 20);
    answered(&store, &key("agent-2", "theirs"), 1000).await;
    for i in 0..10 {
        answered(&store, &key("agent-1", &format!("k{i}")), 1000).await;
        assert!(store.subject_bytes(&key("agent-1", "x")) <= per_subject, "after {i}");
    }
    // The three newest answers are kept; the older ones were dropped, oldest first.
    let evicted = Begin::AnswerDropped { status: 200, why: Dropped::Evicted };
    for i in 0..7 {
        assert_eq!(begin(&store, &key("agent-1", &format!("k{i}")), "h").await, evicted, "k{i}");
    }
    for i in 7..10 {
        assert!(matches!(begin(&store, &key("agent-1", &format!("k{i}")), "h").await, Begin::Replay { .. }), "k{i}");
    }
    assert!(matches!(begin(&store, &key("agent-2", "theirs"), "h").await, Begin::Replay { .. }), "not pushed out");
}

#[tokio::test]
async fn the_total_bound_drops_the_oldest_answers_of_anyone() {
    let total = 3 * (RECORD_OVERHEAD + 14) + 2 * 1000;
    let (_, store) = limited(total, 1 << 20, 1 << 20);
    answered(&store, &key("agent-1", "a"), 1000).await;
    answered(&store, &key("agent-2", "b"), 1000).await;
    answered(&store, &key("agent-3", "c"), 1000).await;
    assert!(store.bytes() <= total);
    assert_eq!(
        begin(&store, &key("agent-1", "a"), "h").await,
        Begin::AnswerDropped { status: 200, why: Dropped::Evicted }
    );
    assert!(matches!(begin(&store, &key("agent-3", "c"), "h").await, Begin::Replay { .. }));
}

#[tokio::test]
async fn tombstones_and_claims_are_never_dropped_early_so_a_full_share_refuses() {
    let per_subject = 2 * (RECORD_OVERHEAD + 14);
    let (clock, store) = limited(1 << 20, per_subject, 1 << 20);
    assert_eq!(begin(&store, &key("agent-1", "a"), "h").await, Begin::Proceed);
    assert_eq!(begin(&store, &key("agent-1", "b"), "h").await, Begin::Proceed);
    assert_eq!(store.begin(&key("agent-1", "c"), "h", TTL).await, Err(StoreError::SubjectFull));
    assert_eq!(begin(&store, &key("agent-2", "c"), "h").await, Begin::Proceed, "others are not refused");
    assert_eq!(begin(&store, &key("agent-1", "a"), "h").await, Begin::InFlight, "claims kept");
    clock.advance(TTL);
    assert_eq!(begin(&store, &key("agent-1", "c"), "h").await, Begin::Proceed, "room again after expiry");
    assert_eq!(store.len(), 1, "expired records were swept");
    assert_eq!(store.bytes(), RECORD_OVERHEAD + 14);
}

#[tokio::test]
async fn accounting_returns_to_zero() {
    let (clock, store) = limited(1 << 20, 1 << 20, 1 << 20);
    answered(&store, &key("agent-1", "a"), 500).await;
    assert_eq!(begin(&store, &key("agent-1", "b"), "h").await, Begin::Proceed);
    store.abandon(&key("agent-1", "b")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.bytes(), RECORD_OVERHEAD + 14 + 500);
    clock.advance(TTL);
    assert_eq!(begin(&store, &key("agent-9", "z"), "h").await, Begin::Proceed);
    store.abandon(&key("agent-9", "z")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((store.bytes(), store.len()), (0, 0));
}
