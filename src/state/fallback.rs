//! The fail modes of a shared backend (`state.redis.on_error`): a call Redis cannot answer is
//! refused (`fail_closed`: the caller maps the error to 503) or served from this instance's
//! memory (`fail_open`, counted in `fastmcp_state_fallback_total{kind}`; the transition is
//! logged once by the connection's health tracking).
//!
//! Holds made in memory while Redis was away stay redeemable here after it is back: a hold
//! Redis does not know is looked up in memory too (a memory hold is only ever consumed once,
//! under its lock, so nothing runs twice).

use std::sync::Arc;

use async_trait::async_trait;

use super::memory::MemoryState;
use super::{Hold, HoldConsume, HoldPut, HoldQuota, RateOutcome, RateSpec, Redeemer, StateError, StateStore};
use crate::config::OnError;

/// Counts one call served from memory.
pub fn fell_back(kind: &'static str) {
    crate::metrics::METRICS.state_fallback.with_label_values(&[kind]).inc();
}

/// A shared store with a per-instance memory behind it.
pub struct Resilient {
    pub shared: Arc<dyn StateStore>,
    pub memory: MemoryState,
    pub limits: OnError,
    pub holds: OnError,
}

impl Resilient {
    fn open(&self, mode: OnError, kind: &'static str, e: StateError) -> Result<(), StateError> {
        match mode {
            OnError::FailClosed => Err(e),
            OnError::FailOpen => {
                fell_back(kind);
                Ok(())
            }
        }
    }
}

#[async_trait]
impl StateStore for Resilient {
    async fn take_token(&self, key: &str, spec: RateSpec) -> Result<RateOutcome, StateError> {
        match self.shared.take_token(key, spec).await {
            Ok(o) => Ok(o),
            Err(e) => {
                self.open(self.limits, "limits", e)?;
                self.memory.take_token(key, spec).await
            }
        }
    }

    async fn put_hold(&self, token_hash: &str, hold: Hold, quota: HoldQuota) -> Result<HoldPut, StateError> {
        match self.shared.put_hold(token_hash, hold.clone(), quota).await {
            Ok(p) => Ok(p),
            Err(e) => {
                self.open(self.holds, "holds", e)?;
                self.memory.put_hold(token_hash, hold, quota).await
            }
        }
    }

    async fn consume_hold(&self, token_hash: &str, who: Redeemer<'_>) -> Result<HoldConsume, StateError> {
        match self.shared.consume_hold(token_hash, who).await {
            Ok(HoldConsume::NotFound) => self.memory.consume_hold(token_hash, who).await,
            Ok(c) => Ok(c),
            Err(e) => {
                self.open(self.holds, "holds", e)?;
                self.memory.consume_hold(token_hash, who).await
            }
        }
    }

    async fn peek_hold(&self, token_hash: &str) -> Result<Option<Hold>, StateError> {
        match self.shared.peek_hold(token_hash).await {
            Ok(Some(h)) => Ok(Some(h)),
            Ok(None) => self.memory.peek_hold(token_hash).await,
            Err(e) => {
                self.open(self.holds, "holds", e)?;
                self.memory.peek_hold(token_hash).await
            }
        }
    }

    async fn pending_holds(&self) -> Result<usize, StateError> {
        let here = self.memory.pending_holds().await?;
        match self.shared.pending_holds().await {
            Ok(n) => Ok(n + here),
            Err(e) => {
                self.open(self.holds, "holds", e)?;
                Ok(here)
            }
        }
    }

    async fn list_holds(&self) -> Result<Vec<Hold>, StateError> {
        let mut list = match self.shared.list_holds().await {
            Ok(l) => l,
            Err(e) => {
                self.open(self.holds, "holds", e)?;
                Vec::new()
            }
        };
        list.extend(self.memory.list_holds().await?);
        list.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then_with(|| a.id.cmp(&b.id)));
        Ok(list)
    }

    async fn decide_hold(&self, id: &str, approve: bool, by: &str) -> Result<bool, StateError> {
        match self.shared.decide_hold(id, approve, by).await {
            Ok(true) => Ok(true),
            Ok(false) => self.memory.decide_hold(id, approve, by).await,
            Err(e) => {
                self.open(self.holds, "holds", e)?;
                self.memory.decide_hold(id, approve, by).await
            }
        }
    }
}
