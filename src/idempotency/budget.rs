//! The bookkeeping behind [`super::MemoryIdempotencyStore`]: records with their expiry index
//! and their memory cost, per caller (tenant + subject) and in total.
//!
//! Bounds are in bytes. When a record or an answer does not fit, stored answers are dropped
//! oldest first — the caller's own first, then anyone's for the total — and the record stays
//! behind as a small tombstone, so a replay of its key is told the answer is gone instead of
//! running the call again. Tombstones and in-flight claims are never dropped before they
//! expire: when only they fill a budget, a new key is refused.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::Dropped;

/// Approximate memory of one record besides its answer: the map entry and its storage key,
/// the payload hash, the owner key and the index entries.
pub const RECORD_OVERHEAD: usize = 512;

/// The byte and count bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyLimits {
    /// Records (live or tombstones) held at most.
    pub max_records: usize,
    /// Bytes of all records together.
    pub max_bytes: usize,
    /// Bytes of one caller's records.
    pub max_bytes_per_subject: usize,
    /// Larger answers are not stored (their record is a tombstone at once).
    pub max_answer_bytes: usize,
}

impl Default for IdempotencyLimits {
    fn default() -> Self {
        IdempotencyLimits {
            max_records: super::DEFAULT_MAX_RECORDS,
            max_bytes: 64 << 20,
            max_bytes_per_subject: 8 << 20,
            max_answer_bytes: 1 << 20,
        }
    }
}

pub(super) enum State {
    InFlight,
    Done {
        status: u16,
        body: Vec<u8>,
    },
    /// Answered, but the answer is not kept.
    Dropped {
        status: u16,
        why: Dropped,
    },
}

pub(super) struct Record {
    pub owner: String,
    pub payload_hash: String,
    pub state: State,
    pub ttl: Duration,
    expires_at: Duration,
    /// Tie-breaker of this record's expiry index entry.
    expiry_seq: u64,
    /// Position among stored answers (oldest first), when it holds one.
    answer_seq: Option<u64>,
}

#[derive(Default)]
struct Usage {
    bytes: usize,
    /// This caller's stored answers, oldest first.
    answers: BTreeMap<u64, String>,
}

/// Why a claim could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoRoom {
    /// The store holds its maximum of records or bytes.
    Total,
    /// This caller's records fill its share.
    Subject,
}

#[derive(Default)]
pub(super) struct Records {
    map: HashMap<String, Record>,
    by_expiry: BTreeMap<(Duration, u64), String>,
    /// Every stored answer, oldest first.
    answers: BTreeMap<u64, String>,
    owners: HashMap<String, Usage>,
    total: usize,
    seq: u64,
}

fn cost(owner: &str) -> usize {
    RECORD_OVERHEAD + owner.len()
}

impl Records {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes accounted for all records.
    pub fn bytes(&self) -> usize {
        self.total
    }

    /// Bytes accounted for `owner`'s records.
    pub fn owner_bytes(&self, owner: &str) -> usize {
        self.owners.get(owner).map_or(0, |u| u.bytes)
    }

    /// Drops every record whose time is up (cheap: the expiry index is ordered).
    pub fn sweep(&mut self, now: Duration) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.remove(&key);
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Record> {
        self.map.get_mut(key)
    }

    /// Claims `key` for `owner` (in flight) if the bounds allow, dropping old answers to make
    /// room.
    pub fn claim(
        &mut self,
        key: String,
        owner: String,
        payload_hash: String,
        ttl: Duration,
        now: Duration,
        limits: &IdempotencyLimits,
    ) -> Result<(), NoRoom> {
        if self.map.len() >= limits.max_records {
            return Err(NoRoom::Total);
        }
        let need = cost(&owner);
        self.make_room(&owner, need, limits)?;
        self.seq += 1;
        let record = Record {
            owner: owner.clone(),
            payload_hash,
            state: State::InFlight,
            ttl,
            expires_at: now + ttl,
            expiry_seq: self.seq,
            answer_seq: None,
        };
        self.by_expiry.insert((record.expires_at, record.expiry_seq), key.clone());
        self.map.insert(key, record);
        self.owners.entry(owner).or_default().bytes += need;
        self.total += need;
        Ok(())
    }

    /// Stores the answer of the in-flight claim `key` (else leaves it alone): kept when it
    /// fits, else a tombstone saying why. The TTL restarts either way.
    pub fn answer(&mut self, key: &str, status: u16, body: Vec<u8>, now: Duration, limits: &IdempotencyLimits) {
        let Some(record) = self.map.get(key) else { return };
        if !matches!(record.state, State::InFlight) {
            return;
        }
        let owner = record.owner.clone();
        let state = if body.len() > limits.max_answer_bytes {
            State::Dropped { status, why: Dropped::TooLarge }
        } else if self.make_room(&owner, body.len(), limits).is_err() {
            State::Dropped { status, why: Dropped::Evicted }
        } else {
            State::Done { status, body }
        };
        self.seq += 1;
        let seq = self.seq;
        let Some(record) = self.map.get_mut(key) else { return };
        self.by_expiry.remove(&(record.expires_at, record.expiry_seq));
        record.expires_at = now + record.ttl;
        record.expiry_seq = seq;
        self.by_expiry.insert((record.expires_at, seq), key.to_string());
        if let State::Done { body, .. } = &state {
            record.answer_seq = Some(seq);
            let usage = self.owners.entry(owner).or_default();
            usage.bytes += body.len();
            usage.answers.insert(seq, key.to_string());
            self.answers.insert(seq, key.to_string());
            self.total += body.len();
        }
        record.state = state;
    }

    /// Removes `key` and everything accounted for it.
    pub fn remove(&mut self, key: &str) {
        let Some(record) = self.map.remove(key) else { return };
        self.by_expiry.remove(&(record.expires_at, record.expiry_seq));
        let mut freed = cost(&record.owner);
        if let (Some(seq), State::Done { body, .. }) = (record.answer_seq, &record.state) {
            self.answers.remove(&seq);
            freed += body.len();
            if let Some(u) = self.owners.get_mut(&record.owner) {
                u.answers.remove(&seq);
            }
        }
        self.total -= freed.min(self.total);
        if let Some(u) = self.owners.get_mut(&record.owner) {
            u.bytes -= freed.min(u.bytes);
            if u.bytes == 0 {
                self.owners.remove(&record.owner);
            }
        }
    }

    /// Drops old answers until `need` more bytes fit for `owner` and in total.
    fn make_room(&mut self, owner: &str, need: usize, limits: &IdempotencyLimits) -> Result<(), NoRoom> {
        while self.owner_bytes(owner) + need > limits.max_bytes_per_subject {
            let oldest = self.owners.get(owner).and_then(|u| u.answers.first_key_value()).map(|(_, k)| k.clone());
            match oldest {
                Some(key) => self.evict(&key),
                None => return Err(NoRoom::Subject),
            }
        }
        while self.total + need > limits.max_bytes {
            match self.answers.first_key_value().map(|(_, k)| k.clone()) {
                Some(key) => self.evict(&key),
                None => return Err(NoRoom::Total),
            }
        }
        Ok(())
    }

    /// Drops the stored answer of `key`, leaving a tombstone.
    fn evict(&mut self, key: &str) {
        let Some(record) = self.map.get_mut(key) else { return };
        let State::Done { status, body } = &record.state else { return };
        let (status, freed) = (*status, body.len());
        record.state = State::Dropped { status, why: Dropped::Evicted };
        if let Some(seq) = record.answer_seq.take() {
            self.answers.remove(&seq);
            if let Some(u) = self.owners.get_mut(&record.owner) {
                u.answers.remove(&seq);
                u.bytes -= freed.min(u.bytes);
            }
        }
        self.total -= freed.min(self.total);
    }
}
