//! The in-memory idempotency backend (one gateway instance), with an injectable clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Begin, IdemKey, IdempotencyStore, StoreError};

/// Default cap on live records in [`MemoryIdempotencyStore`].
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// A monotonic time source.
pub trait Clock: Send + Sync {
    /// Time elapsed since a fixed origin.
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

enum State {
    InFlight,
    Done { status: u16, body: Vec<u8> },
}

struct Record {
    payload_hash: String,
    state: State,
    ttl: Duration,
    expires_at: Duration,
}

struct Records {
    map: HashMap<String, Record>,
    /// Expired records are swept when the map grows to this size.
    sweep_at: usize,
}

/// Idempotency records in process memory, lost on restart. Each method takes one short lock,
/// never held across an await.
pub struct MemoryIdempotencyStore {
    records: Mutex<Records>,
    clock: Arc<dyn Clock>,
    max_records: usize,
}

impl MemoryIdempotencyStore {
    /// A store on the system clock holding at most [`DEFAULT_MAX_RECORDS`] live records.
    pub fn new() -> MemoryIdempotencyStore {
        MemoryIdempotencyStore::with_clock(Arc::new(SystemClock::new()), DEFAULT_MAX_RECORDS)
    }

    /// A store on `clock` holding at most `max_records` live records; past that `begin`
    /// fails with [`StoreError::Full`] until records expire.
    pub fn with_clock(clock: Arc<dyn Clock>, max_records: usize) -> MemoryIdempotencyStore {
        let records = Records { map: HashMap::new(), sweep_at: 1024.min(max_records.max(1)) };
        MemoryIdempotencyStore { records: Mutex::new(records), clock, max_records: max_records.max(1) }
    }

    /// Records held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.records.lock().map.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        MemoryIdempotencyStore::new()
    }
}

impl Records {
    /// The live record under `key`; an expired one is dropped.
    fn live(&mut self, key: &str, now: Duration) -> Option<&mut Record> {
        if self.map.get(key).is_some_and(|r| r.expires_at <= now) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    /// Drops expired records when the map has grown; true when there is room for one more.
    fn make_room(&mut self, now: Duration, max: usize) -> bool {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, r| r.expires_at > now);
            self.sweep_at = (self.map.len() * 2).clamp(1024.min(max), max);
        }
        self.map.len() < max
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn begin(&self, key: &IdemKey, payload_hash: &str, ttl: Duration) -> Result<Begin, StoreError> {
        let storage_key = key.storage_key();
        let now = self.clock.now();
        let mut records = self.records.lock();
        if let Some(record) = records.live(&storage_key, now) {
            if record.payload_hash != payload_hash {
                return Ok(Begin::PayloadMismatch);
            }
            return Ok(match &record.state {
                State::InFlight => Begin::InFlight,
                State::Done { status, body } => Begin::Replay { status: *status, body: body.clone() },
            });
        }
        if !records.make_room(now, self.max_records) {
            return Err(StoreError::Full);
        }
        let record =
            Record { payload_hash: payload_hash.to_string(), state: State::InFlight, ttl, expires_at: now + ttl };
        records.map.insert(storage_key, record);
        Ok(Begin::Proceed)
    }

    async fn complete(&self, key: &IdemKey, status: u16, body: Vec<u8>) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut records = self.records.lock();
        if let Some(record) = records.live(&key.storage_key(), now) {
            if matches!(record.state, State::InFlight) {
                record.state = State::Done { status, body };
                record.expires_at = now + record.ttl;
            }
        }
        Ok(())
    }

    async fn abandon(&self, key: &IdemKey) -> Result<(), StoreError> {
        let storage_key = key.storage_key();
        let now = self.clock.now();
        let mut records = self.records.lock();
        if records.live(&storage_key, now).is_some_and(|r| matches!(r.state, State::InFlight)) {
            records.map.remove(&storage_key);
        }
        Ok(())
    }
}
