//! Rate limiting: one token bucket per tenant + subject + tool, taken only after the policy
//! allowed the call (denied calls use no quota).

use crate::config::RateLimitConfig;
use crate::error::GatewayError;
use crate::policy::RateOverride;
use crate::state::{RateOutcome, RateSpec, StateStore};

/// The bucket key. Tenant and subject are length-prefixed: claims are caller-chosen strings,
/// and no choice of them may make two callers share a bucket.
pub fn bucket_key(tenant: &str, sub: &str, tool_id: &str) -> String {
    format!("rl:{}:{tenant}:{}:{sub}:{tool_id}", tenant.len(), sub.len())
}

/// Which configured default applies to a call (a matching rule's own limit wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateClass {
    /// Tool calls and content methods: `default_rps` / `burst`.
    #[default]
    Call,
    /// Protocol plumbing: `plumbing_rps` / `plumbing_burst`.
    Plumbing,
}

/// Applies the limit; `Ok(Some(outcome))` when allowed (for `RateLimit-*` headers).
pub async fn check(
    cfg: &RateLimitConfig,
    class: RateClass,
    state: &dyn StateStore,
    key: &str,
    over: Option<RateOverride>,
) -> Result<Option<RateOutcome>, GatewayError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let spec = match over {
        Some(o) if o.rps > 0.0 && o.burst > 0 => RateSpec { rps: o.rps, burst: o.burst },
        _ if class == RateClass::Plumbing => RateSpec { rps: cfg.plumbing_rps, burst: cfg.plumbing_burst },
        _ => RateSpec { rps: cfg.default_rps, burst: cfg.burst },
    };
    let out = state
        .take_token(key, spec)
        .await
        .map_err(|e| GatewayError::Unavailable { message: format!("rate limiter unavailable: {}", e.0) })?;
    if out.allowed {
        Ok(Some(out))
    } else {
        Err(GatewayError::RateLimited {
            retry_after: out.retry_after_secs.max(1),
            limit: out.limit,
            remaining: out.remaining,
            reset: out.reset_secs.max(1),
        })
    }
}

/// `RateLimit-*` headers for an allowed call.
pub fn headers(out: &RateOutcome) -> [(&'static str, String); 3] {
    [
        ("ratelimit-limit", out.limit.to_string()),
        ("ratelimit-remaining", out.remaining.to_string()),
        ("ratelimit-reset", out.reset_secs.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::bucket_key;

    #[test]
    fn keys_cannot_collide_across_callers() {
        assert_ne!(bucket_key("a:1", "b", "t"), bucket_key("a", "1:b", "t"));
        assert_ne!(bucket_key("a", "b", "x:y"), bucket_key("a", "b:x", "y"));
    }
}
