//! Sinks: consumers of durable records beside the chain (the SQLite index, a Redis Stream,
//! stdout). Each runs on its own thread, fed by a bounded queue from the hub; it never slows
//! the append path. A sink knows how far it got (`position`); a gap — a dropped batch, a
//! reconnect, a restart — is filled from the chain files, so the sink ends up holding the
//! same records as the chain.

pub mod redis;
pub mod stdout;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::files;
use super::hub::{Batch, Published};
use super::reader;
use super::{AuditError, AuditLog};
use crate::metrics::METRICS;

/// One destination of durable records.
pub trait Sink: Send {
    fn name(&self) -> &'static str;
    /// The highest seq of `instance` the sink already holds (asked after every (re)start).
    fn position(&mut self, instance: &str) -> Result<u64, String>;
    /// Stores `records` (consecutive, ascending) of `instance`.
    fn write(&mut self, instance: &str, records: &[Arc<Published>]) -> Result<(), String>;
    /// How long the sink waits for more batches after one arrives, so that one write (one
    /// SQLite transaction, one Redis pipeline) carries many records: under load this is what
    /// keeps a sink's cost per record small. Zero: write each batch as it comes.
    fn linger(&self) -> Duration {
        Duration::ZERO
    }
}

/// The most records one sink write carries (a lingering sink stops gathering here).
const MAX_WRITE: usize = 4_096;

/// The first batch from `rx` within `idle` and, for a lingering sink, every batch that
/// arrives within `linger` after it (up to [`MAX_WRITE`] records), as one list. `Ok(None)`:
/// nothing came (a chance to refill a gap); `Err`: the log is gone.
fn gather(rx: &Receiver<Batch>, idle: Duration, linger: Duration) -> Result<Option<Vec<Arc<Published>>>, ()> {
    let first = match rx.recv_timeout(idle) {
        Ok(b) => b,
        Err(RecvTimeoutError::Timeout) => return Ok(None),
        Err(RecvTimeoutError::Disconnected) => return Err(()),
    };
    let mut all: Vec<Arc<Published>> = first.iter().cloned().collect();
    let until = Instant::now() + linger;
    while all.len() < MAX_WRITE {
        // Queued batches are taken without waiting; then, while lingering, the next ones.
        let next = match rx.try_recv() {
            Ok(b) => b,
            Err(_) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(b) => b,
                    Err(_) => break,
                }
            }
        };
        all.extend(next.iter().cloned());
    }
    Ok(Some(all))
}

/// Records read from the files per refill round (a long gap is filled in rounds).
const REFILL_CHUNK: u64 = 5_000;

/// Starts `sink` on its own thread.
pub fn spawn(log: &AuditLog, mut sink: Box<dyn Sink>) -> Result<(), AuditError> {
    let name = sink.name();
    let rx = log.add_sink(name, 256);
    let hub = log.hub();
    let dir: PathBuf = log.dir().to_path_buf();
    let instance = log.instance().to_string();
    std::thread::Builder::new()
        .name(format!("fastmcp-audit-{name}"))
        .spawn(move || {
            let mut pos: Option<u64> = None;
            let mut failing = false;
            let mut backoff = Duration::from_millis(100);
            let linger = sink.linger();
            loop {
                let Ok(batch) = gather(&rx, Duration::from_millis(500), linger) else { return };
                let round = (|| -> Result<(), String> {
                    let p = match pos {
                        Some(p) => p,
                        None => sink.position(&instance)?,
                    };
                    pos = Some(p);
                    let upto = hub.last();
                    let mut todo: Vec<Arc<Published>> =
                        batch.map(|b| b.into_iter().filter(|r| r.seq > p).collect()).unwrap_or_default();
                    let first = todo.first().map(|r| r.seq).unwrap_or(upto + 1);
                    if first > p + 1 && p < upto {
                        let to = (first - 1).min(p + REFILL_CHUNK);
                        let chain = files::chain_of(&dir, &instance).map_err(|e| e.to_string())?;
                        let gap: Vec<Arc<Published>> = reader::records_between(&chain, p + 1, to)
                            .map_err(|e| e.to_string())?
                            .into_iter()
                            .map(|(seq, line)| Arc::new(Published::from_line(seq, line)))
                            .collect();
                        if to + 1 < first {
                            todo = gap; // more to refill next round
                        } else {
                            todo = gap.into_iter().chain(todo).collect();
                        }
                    }
                    if let Some(last) = todo.last().map(|r| r.seq) {
                        sink.write(&instance, &todo)?;
                        pos = Some(last);
                    }
                    Ok(())
                })();
                match round {
                    Ok(()) => {
                        if failing {
                            tracing::info!(sink = name, "audit sink writing again");
                        }
                        failing = false;
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        METRICS.audit_sink_errors.with_label_values(&[name]).inc();
                        if !failing {
                            tracing::error!(sink = name, error = %e, "audit sink failed; retrying (it catches up from the chain)");
                        }
                        failing = true;
                        pos = None;
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
        .map_err(|e| AuditError::Thread(e.to_string()))?;
    Ok(())
}
