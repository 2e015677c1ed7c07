//! The in-memory idempotency backend (one gateway instance), with an injectable clock and
//! byte bounds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::budget::{IdempotencyLimits, NoRoom, Records, State};
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

/// Idempotency records in process memory, lost on restart, bounded in bytes per caller and in
/// total ([`IdempotencyLimits`], bookkeeping in `budget.rs`). Each method takes one short
/// lock, never held across an await.
pub struct MemoryIdempotencyStore {
    records: Mutex<Records>,
    clock: Arc<dyn Clock>,
    limits: IdempotencyLimits,
}

impl MemoryIdempotencyStore {
    /// A store on the system clock with the default limits.
    pub fn new() -> MemoryIdempotencyStore {
        MemoryIdempotencyStore::with_limits(Arc::new(SystemClock::new()), IdempotencyLimits::default())
    }

    /// A store on `clock` holding at most `max_records` records (default byte limits); past
    /// that `begin` fails with [`StoreError::Full`] until records expire.
    pub fn with_clock(clock: Arc<dyn Clock>, max_records: usize) -> MemoryIdempotencyStore {
        let limits = IdempotencyLimits { max_records, ..IdempotencyLimits::default() };
        MemoryIdempotencyStore::with_limits(clock, limits)
    }

    /// A store on `clock` within `limits` (each at least 1).
    pub fn with_limits(clock: Arc<dyn Clock>, limits: IdempotencyLimits) -> MemoryIdempotencyStore {
        let limits = IdempotencyLimits {
            max_records: limits.max_records.max(1),
            max_bytes: limits.max_bytes.max(1),
            max_bytes_per_subject: limits.max_bytes_per_subject.max(1),
            max_answer_bytes: limits.max_answer_bytes,
        };
        MemoryIdempotencyStore { records: Mutex::new(Records::default()), clock, limits }
    }

    /// Records held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.records.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes accounted for all records (answers plus [`super::RECORD_OVERHEAD`] each).
    pub fn bytes(&self) -> usize {
        self.records.lock().bytes()
    }

    /// Bytes accounted for the records of `key`'s caller (tenant + subject).
    pub fn subject_bytes(&self, key: &IdemKey) -> usize {
        self.records.lock().owner_bytes(&owner(key))
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        MemoryIdempotencyStore::new()
    }
}

/// The caller a record is accounted to: tenant and subject, length-prefixed.
fn owner(key: &IdemKey) -> String {
    format!("{}:{}\0{}", key.tenant.len(), key.tenant, key.sub)
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn begin(&self, key: &IdemKey, payload_hash: &str, ttl: Duration) -> Result<Begin, StoreError> {
        let storage_key = key.storage_key();
        let now = self.clock.now();
        let mut records = self.records.lock();
        records.sweep(now);
        if let Some(record) = records.get_mut(&storage_key) {
            if record.payload_hash != payload_hash {
                return Ok(Begin::PayloadMismatch);
            }
            return Ok(match &record.state {
                State::InFlight => Begin::InFlight,
                State::Done { status, body } => Begin::Replay { status: *status, body: body.clone() },
                State::Dropped { status, why } => Begin::AnswerDropped { status: *status, why: *why },
            });
        }
        records
            .claim(storage_key, owner(key), payload_hash.to_string(), ttl, now, &self.limits)
            .map(|()| Begin::Proceed)
            .map_err(|no_room| match no_room {
                NoRoom::Total => StoreError::Full,
                NoRoom::Subject => StoreError::SubjectFull,
            })
    }

    async fn complete(&self, key: &IdemKey, status: u16, body: Vec<u8>) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut records = self.records.lock();
        records.sweep(now);
        records.answer(&key.storage_key(), status, body, now, &self.limits);
        Ok(())
    }

    async fn abandon(&self, key: &IdemKey) -> Result<(), StoreError> {
        let storage_key = key.storage_key();
        let now = self.clock.now();
        let mut records = self.records.lock();
        records.sweep(now);
        if records.get_mut(&storage_key).is_some_and(|r| matches!(r.state, State::InFlight)) {
            records.remove(&storage_key);
        }
        Ok(())
    }
}
