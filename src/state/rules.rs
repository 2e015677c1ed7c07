//! The rules every backend applies, in one place: may `who` redeem this hold, and what one
//! token-bucket step answers. A backend only supplies atomicity (a lock in memory, a
//! compare-and-delete script in Redis); the decisions are made here, so the backends cannot
//! drift apart.

use super::{Hold, HoldConsume, RateOutcome, RateSpec, Redeemer};

/// What redeeming `h` as `who` at unix second `now` should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeem {
    /// Remove the hold and run the call once.
    Consume,
    /// Remove the hold; the caller is told it expired.
    Expired,
    /// Keep it pending; the caller is told why (`Mismatch`, `AwaitingApproval`).
    Keep(Refused),
}

/// Why a pending hold stays pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Mismatch,
    AwaitingApproval,
}

impl Refused {
    pub fn outcome(self) -> HoldConsume {
        match self {
            Refused::Mismatch => HoldConsume::Mismatch,
            Refused::AwaitingApproval => HoldConsume::AwaitingApproval,
        }
    }
}

/// The redemption rules: not expired; the bound caller with a matching binding (approved
/// first in approver mode), or an approver for the same tenant, tool and arguments — who, for
/// a hold of its own, is only its caller (four eyes).
pub fn redeem(h: &Hold, who: Redeemer<'_>, now: i64) -> Redeem {
    if h.expires_at <= now {
        return Redeem::Expired;
    }
    let who = match who {
        Redeemer::Approver { sub, binding, .. } if h.sub == sub => Redeemer::Caller { binding },
        other => other,
    };
    match who {
        Redeemer::Caller { binding } if h.binding != binding => Redeem::Keep(Refused::Mismatch),
        Redeemer::Caller { .. } if h.needs_approval && h.approved_by.is_none() => {
            Redeem::Keep(Refused::AwaitingApproval)
        }
        Redeemer::Approver { tenant, tool_id, args_hash, .. }
            if h.tenant != tenant || h.tool_id != tool_id || h.args_hash != args_hash =>
        {
            Redeem::Keep(Refused::Mismatch)
        }
        _ => Redeem::Consume,
    }
}

/// One token-bucket step: `tokens` in the bucket after refilling, before this call. Returns
/// the tokens left and the answer (`RateLimit-*`, `Retry-After`).
pub fn take(spec: RateSpec, tokens: f64) -> (f64, RateOutcome) {
    let burst = burst(spec);
    let mut tokens = tokens.min(burst);
    let allowed = tokens >= 1.0;
    if allowed {
        tokens -= 1.0;
    }
    (tokens, outcome(spec, allowed, tokens))
}

/// The answer for a bucket holding `tokens` after the step (`allowed` or not).
pub fn outcome(spec: RateSpec, allowed: bool, tokens: f64) -> RateOutcome {
    let secs = |x: f64| if spec.rps > 0.0 { (x / spec.rps).ceil().max(0.0) as u64 } else { u64::MAX };
    RateOutcome {
        allowed,
        limit: spec.burst,
        remaining: tokens.floor().max(0.0) as u64,
        reset_secs: secs(burst(spec) - tokens),
        retry_after_secs: if allowed { 0 } else { secs(1.0 - tokens).max(1) },
    }
}

/// The bucket size (at least one token).
pub fn burst(spec: RateSpec) -> f64 {
    spec.burst.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(needs_approval: bool) -> Hold {
        Hold {
            id: "h".into(),
            sub: "a".into(),
            tenant: "t".into(),
            tool_id: "x".into(),
            args_hash: "0".into(),
            binding: "b".into(),
            expires_at: 100,
            input: None,
            needs_approval,
            approved_by: None,
            view: Default::default(),
        }
    }

    #[test]
    fn the_rules() {
        let h = hold(false);
        assert_eq!(redeem(&h, Redeemer::Caller { binding: "b" }, 99), Redeem::Consume);
        assert_eq!(redeem(&h, Redeemer::Caller { binding: "b" }, 100), Redeem::Expired);
        assert_eq!(redeem(&h, Redeemer::Caller { binding: "c" }, 99), Redeem::Keep(Refused::Mismatch));
        let h = hold(true);
        assert_eq!(redeem(&h, Redeemer::Caller { binding: "b" }, 99), Redeem::Keep(Refused::AwaitingApproval));
        let own = Redeemer::Approver { sub: "a", binding: "b", tenant: "t", tool_id: "x", args_hash: "0" };
        assert_eq!(redeem(&h, own, 99), Redeem::Keep(Refused::AwaitingApproval), "four eyes");
        let boss = Redeemer::Approver { sub: "boss", binding: "z", tenant: "t", tool_id: "x", args_hash: "0" };
        assert_eq!(redeem(&h, boss, 99), Redeem::Consume);
        let elsewhere = Redeemer::Approver { sub: "boss", binding: "z", tenant: "u", tool_id: "x", args_hash: "0" };
        assert_eq!(redeem(&h, elsewhere, 99), Redeem::Keep(Refused::Mismatch));
    }

    #[test]
    fn bucket_step() {
        let spec = RateSpec { rps: 2.0, burst: 3 };
        let (left, o) = take(spec, 3.0);
        assert!(o.allowed);
        assert_eq!((left, o.remaining, o.reset_secs), (2.0, 2, 1));
        let (left, o) = take(spec, 0.5);
        assert!(!o.allowed);
        assert_eq!((left, o.retry_after_secs), (0.5, 1));
    }
}
