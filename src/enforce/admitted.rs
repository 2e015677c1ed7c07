//! The proof that a call was decided, limited, confirmed if needed, and recorded.
//!
//! Everything that sends bytes upstream (the pingora forward, a provider call, the upstream
//! MCP client) takes an [`Admitted`]. Only the enforcement core builds one, and only after the
//! call's decision record is written; gateway-originated traffic (discovery, a client's own
//! session handshake) says so explicitly with [`Admitted::gateway_own`].

use std::time::Instant;

use crate::audit::{AuditEvent, Durable};
use crate::state::RateOutcome;

use super::outcome::Outcome;

/// An admitted call. Not `Clone`: one admission, one completion.
pub struct Admitted {
    /// The decision record, turned into the completion record when the call ends.
    pub(super) record: Option<Box<AuditEvent>>,
    /// fsync of the decision record (write-class calls in durable mode).
    pub(super) durable: Option<Durable>,
    pub(super) rate: Option<RateOutcome>,
    pub(super) outcome: Outcome,
    pub(super) started: Instant,
    /// Why the gateway itself sends this (no caller request behind it).
    pub(super) own: Option<&'static str>,
    /// The request's trace (the fsync wait is a child span of it).
    pub(super) trace: Option<crate::otel::Trace>,
}

impl Admitted {
    /// Traffic the gateway originates itself: discovery and the session handshakes of its own
    /// upstream clients. Never for a caller's message.
    pub fn gateway_own(purpose: &'static str) -> Admitted {
        Admitted {
            record: None,
            durable: None,
            rate: None,
            outcome: Outcome::Allowed,
            started: Instant::now(),
            own: Some(purpose),
            trace: None,
        }
    }

    /// `Allowed` or `Confirmed`.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The rate-limit state after this call (`RateLimit-*` headers).
    pub fn rate(&self) -> Option<&RateOutcome> {
        self.rate.as_ref()
    }

    /// Set for gateway-originated traffic: what it is for.
    pub fn own_purpose(&self) -> Option<&'static str> {
        self.own
    }

    /// Waits until the decision record is on stable storage (before the call is answered).
    /// A failed fsync cannot undo a call that already ran: it is logged and counted.
    pub async fn wait_durable(&mut self) {
        if let Some(d) = self.durable.take() {
            let span = self.trace.as_ref().map(|t| t.child("audit.sync", opentelemetry::trace::SpanKind::Internal));
            let t = Instant::now();
            let waited = d.wait().await;
            crate::metrics::METRICS.audit_durable_wait.observe(t.elapsed().as_secs_f64());
            if let (Some(span), Err(_)) = (&span, &waited) {
                span.fail("audit fsync failed");
            }
            drop(span);
            if let Err(e) = waited {
                crate::metrics::METRICS.audit_records.with_label_values(&["fsync_error"]).inc();
                let corr = self.record.as_ref().map(|r| r.corr_id.as_str()).unwrap_or("");
                tracing::error!(corr_id = corr, error = %e, "audit record not durable");
            }
        }
    }
}

/// Evidence of an admission for a sender that runs off the request's task (the blocking
/// upstream MCP client): only [`Admitted::proof`] and [`Proof::gateway_own`] make one.
#[derive(Debug, Clone)]
pub struct Proof {
    _private: (),
}

impl Proof {
    /// Gateway-originated traffic (discovery, tests of the client): see [`Admitted::gateway_own`].
    pub fn gateway_own(_purpose: &'static str) -> Proof {
        Proof { _private: () }
    }
}

impl Admitted {
    /// The proof this admission hands to a sender on another thread.
    pub fn proof(&self) -> Proof {
        Proof { _private: () }
    }
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted").field("outcome", &self.outcome).field("own", &self.own).finish()
    }
}
