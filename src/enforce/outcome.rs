//! What happened to a request, in one vocabulary for audit records, metrics and logs.

use crate::error::GatewayError;

/// The outcome of one request (or of one decided call within it).
///
/// The label is what `decision.result` of an audit record, the `decision` label of
/// `fastmcp_requests_total` and the `decision` field of log lines say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Decided and allowed; forwarded, executed or answered by the gateway.
    Allowed,
    /// Allowed after its hold was redeemed (action token, elicitation, MRTR answer).
    Confirmed,
    /// Parked behind a confirmation hold; nothing ran.
    Held,
    /// The user declined a held call; its hold is spent and nothing ran.
    Declined,
    /// The policy said no (also: an action token presented for another call).
    Denied,
    /// Over its rate limit.
    RateLimited,
    /// A spent, unknown or expired action token; an idempotent request still in flight.
    Conflict,
    /// Malformed or invalid input (400, 422).
    Invalid,
    /// No or bad credentials (401).
    Unauthenticated,
    /// Unknown route, server, tool or session (404).
    NotFound,
    /// HTTP method not served on this route (405).
    MethodNotAllowed,
    /// Body over the size limit (413).
    TooLarge,
    /// A `Host` or `Origin` the gateway does not answer (DNS rebinding, 403).
    HostRefused,
    /// A fail-closed dependency (policy, audit, state) is down (503).
    Unavailable,
    /// An idempotent retry answered from the stored result; nothing ran again.
    Replayed,
    /// The gateway failed to run an admitted call (upstream down or timed out).
    Failed,
    /// An operator approved a hold (admin API).
    Approved,
    /// An operator dropped a hold (admin API).
    Rejected,
}

impl Outcome {
    /// The stable label (audit `decision.result`, metrics, logs).
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allow",
            Outcome::Confirmed => "confirmed",
            Outcome::Held => "hold",
            Outcome::Declined => "declined",
            Outcome::Denied => "deny",
            Outcome::RateLimited => "rate_limited",
            Outcome::Conflict => "conflict",
            Outcome::Invalid => "invalid",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::NotFound => "not_found",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::TooLarge => "too_large",
            Outcome::HostRefused => "host_refused",
            Outcome::Unavailable => "unavailable",
            Outcome::Replayed => "replay",
            Outcome::Failed => "error",
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
        }
    }

    /// Did the decided call go (or may it go) upstream?
    pub fn allows(self) -> bool {
        matches!(self, Outcome::Allowed | Outcome::Confirmed | Outcome::Approved)
    }

    /// The outcome a refusal with `err` has. Host/Origin refusals are [`Outcome::HostRefused`],
    /// which the caller states itself (they are 403s like a policy denial).
    pub fn of(err: &GatewayError) -> Outcome {
        match err {
            GatewayError::BadRequest { .. } | GatewayError::Validation { .. } | GatewayError::SchemaInvalid { .. } => {
                Outcome::Invalid
            }
            GatewayError::Unauthorized { .. } => Outcome::Unauthenticated,
            GatewayError::Forbidden { .. } => Outcome::Denied,
            GatewayError::NotFound { .. } => Outcome::NotFound,
            GatewayError::MethodNotAllowed { .. } => Outcome::MethodNotAllowed,
            GatewayError::Conflict { .. } => Outcome::Conflict,
            GatewayError::PayloadTooLarge { .. } | GatewayError::QuotaExceeded { .. } => Outcome::TooLarge,
            GatewayError::RateLimited { .. } => Outcome::RateLimited,
            GatewayError::Unavailable { .. } => Outcome::Unavailable,
            GatewayError::Provider { .. } | GatewayError::ProviderTimeout { .. } => Outcome::Failed,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_one_outcome_each() {
        assert_eq!(Outcome::of(&GatewayError::bad_request("x")), Outcome::Invalid);
        assert_eq!(Outcome::of(&GatewayError::PayloadTooLarge { limit: 1 }), Outcome::TooLarge);
        assert_eq!(Outcome::of(&GatewayError::Conflict { message: "x".into() }), Outcome::Conflict);
        assert_eq!(Outcome::Denied.label(), "deny");
        assert!(Outcome::Confirmed.allows() && !Outcome::Held.allows());
    }
}
