//! Publishing durable records: a ring of the latest ones and a broadcast for live streams
//! (`GET /admin/audit/stream`), and a bounded queue per sink (SQLite index, Redis Stream,
//! stdout). The fsync thread publishes after each fsync; it never waits for a consumer: a
//! full sink queue drops the batch (the sink fills the gap from the files), a lagging stream
//! receiver is dropped by the stream.

use std::collections::VecDeque;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::AuditEvent;

/// A durable record as consumers see it: its line and the facts streams filter on.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub seq: u64,
    /// The record as written (one JSON object, no newline).
    pub line: Vec<u8>,
    pub tenant: String,
    pub sub: String,
    pub tool: Option<String>,
    /// `decision.result`.
    pub outcome: String,
}

impl Published {
    /// Takes the filter facts out of the written `event` (no copies on the append path).
    pub(super) fn new(seq: u64, line: Vec<u8>, mut event: AuditEvent) -> Published {
        Published {
            seq,
            line,
            tenant: std::mem::take(&mut event.tenant),
            sub: std::mem::take(&mut event.sub),
            tool: event.tool_id.take(),
            outcome: std::mem::take(&mut event.decision.result),
        }
    }

    /// From a line read back from a chain file.
    pub fn from_line(seq: u64, line: Vec<u8>) -> Published {
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        Published {
            seq,
            tenant: s("tenant"),
            sub: s("sub"),
            tool: v.get("toolId").and_then(|x| x.as_str()).map(String::from),
            outcome: v.pointer("/decision/result").and_then(|x| x.as_str()).unwrap_or_default().to_string(),
            line,
        }
    }
}

pub type Batch = Arc<Vec<Arc<Published>>>;

/// A sink's queue: its name (metrics) and sender.
struct SinkQueue {
    name: &'static str,
    tx: SyncSender<Batch>,
}

pub struct Hub {
    inner: Mutex<Ring>,
    live: broadcast::Sender<Arc<Published>>,
    sinks: Mutex<Vec<SinkQueue>>,
}

struct Ring {
    records: VecDeque<Arc<Published>>,
    cap: usize,
    /// The last published seq (0: none since start).
    last: u64,
}

/// A live subscription: records after the resume point that the ring still had, then the
/// live receiver.
pub struct Subscription {
    /// Records after the resume point kept in memory (in order).
    pub backlog: Vec<Arc<Published>>,
    /// `Some(first)`: records from `after + 1` to `first - 1` are no longer in memory (read
    /// them from the files).
    pub missing_before: Option<u64>,
    pub live: broadcast::Receiver<Arc<Published>>,
}

impl Hub {
    /// `ring` records kept for resuming; `live` records a stream receiver may lag behind.
    pub fn new(ring: usize, live: usize, last: u64) -> Hub {
        let (tx, _) = broadcast::channel(live.max(1));
        Hub {
            inner: Mutex::new(Ring { records: VecDeque::with_capacity(ring.min(1 << 16)), cap: ring, last }),
            live: tx,
            sinks: Mutex::new(Vec::new()),
        }
    }

    /// Adds a sink queue of `cap` batches.
    pub fn add_sink(&self, name: &'static str, cap: usize) -> std::sync::mpsc::Receiver<Batch> {
        let (tx, rx) = std::sync::mpsc::sync_channel(cap.max(1));
        self.sinks.lock().push(SinkQueue { name, tx });
        rx
    }

    /// The last published seq.
    pub fn last(&self) -> u64 {
        self.inner.lock().last
    }

    /// Publishes records that just became durable (in seq order).
    pub fn publish(&self, batch: Vec<Arc<Published>>) {
        if batch.is_empty() {
            return;
        }
        {
            let mut ring = self.inner.lock();
            for r in &batch {
                ring.last = r.seq;
                if ring.cap > 0 {
                    if ring.records.len() == ring.cap {
                        ring.records.pop_front();
                    }
                    ring.records.push_back(r.clone());
                }
                // Under the ring lock: a subscriber sees each record in its backlog or live.
                let _ = self.live.send(r.clone());
            }
        }
        let batch: Batch = Arc::new(batch);
        let mut sinks = self.sinks.lock();
        sinks.retain(|s| match s.tx.try_send(batch.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                crate::metrics::METRICS.audit_sink_dropped.with_label_values(&[s.name]).inc_by(batch.len() as u64);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }

    /// Subscribes to records after `after` (`None`: only records published from now on).
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let ring = self.inner.lock();
        let live = self.live.subscribe();
        let Some(after) = after else { return Subscription { backlog: vec![], missing_before: None, live } };
        let backlog: Vec<Arc<Published>> = ring.records.iter().filter(|r| r.seq > after).cloned().collect();
        let first_kept = ring.records.front().map(|r| r.seq).unwrap_or(ring.last + 1);
        let missing_before = (after + 1 < first_kept && after < ring.last).then_some(first_kept);
        Subscription { backlog, missing_before, live }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> Arc<Published> {
        Arc::new(Published::from_line(seq, format!("{{\"seq\":{seq}}}").into_bytes()))
    }

    #[test]
    fn resume_from_ring_then_live_without_gaps_or_duplicates() {
        let hub = Hub::new(3, 16, 0);
        hub.publish((1..=5).map(rec).collect());
        let mut s = hub.subscribe(Some(3));
        assert_eq!(s.backlog.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(s.missing_before, None);
        hub.publish(vec![rec(6)]);
        assert_eq!(s.live.try_recv().unwrap().seq, 6);
        let old = hub.subscribe(Some(1));
        assert_eq!(old.missing_before, Some(4), "2 and 3 fell out of the ring");
        assert!(hub.subscribe(Some(6)).backlog.is_empty());
        let rx = hub.add_sink("t", 1);
        hub.publish(vec![rec(7)]);
        hub.publish(vec![rec(8)]);
        assert_eq!(rx.try_recv().unwrap()[0].seq, 7);
        assert!(rx.try_recv().is_err(), "a full sink queue drops, never blocks");
    }
}
