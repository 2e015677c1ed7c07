//! Whether the audit trail can be written and synced. A write or fsync failure marks it
//! failed (write-class calls are then refused, read-only ones follow `audit.on_error`); while
//! failed, every append waits for its own fsync, so the first record that is written and
//! synced again — on the same disk, without a restart — marks it recovered. Both transitions
//! are logged once and counted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::metrics::METRICS;

#[derive(Debug, Default)]
pub struct Health {
    failed: AtomicBool,
    /// The last seq written before the failure: only a later record, synced, proves recovery.
    failed_at: AtomicU64,
}

impl Health {
    pub fn new() -> Health {
        METRICS.audit_healthy.set(1);
        Health::default()
    }

    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// A write (`kind = "write"`) or fsync (`"sync"`) failed; `seq` is the last seq written.
    pub fn fail(&self, kind: &'static str, seq: u64, error: &str) {
        METRICS.audit_failures.with_label_values(&[kind]).inc();
        self.failed_at.fetch_max(seq, Ordering::AcqRel);
        if !self.failed.swap(true, Ordering::AcqRel) {
            METRICS.audit_healthy.set(0);
            tracing::error!(kind, error, "audit trail UNAVAILABLE: write-class calls are refused (503) until records can be written and synced again");
        }
    }

    /// Records up to `seq` were synced.
    pub fn synced(&self, seq: u64) {
        if self.is_failed() && seq > self.failed_at.load(Ordering::Acquire) && self.failed.swap(false, Ordering::AcqRel)
        {
            METRICS.audit_healthy.set(1);
            METRICS.audit_recoveries.inc();
            tracing::warn!(seq, "audit trail recovered: records are written and synced again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_needs_a_record_written_after_the_failure() {
        let h = Health::new();
        h.fail("write", 10, "disk full");
        h.synced(10);
        assert!(h.is_failed(), "records from before the failure prove nothing");
        h.synced(11);
        assert!(!h.is_failed());
    }
}
