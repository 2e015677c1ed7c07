//! [`BrokerError`]: what can go wrong obtaining a credential, and the HTTP status it maps to.
//!
//! Messages name the provider and the kind of failure, never a secret and never a token
//! endpoint's response body (which may echo the request). An OAuth `error` code is kept only
//! when it looks like one (short, RFC 6749 §5.2 characters) and contains no configured secret.

/// A credential could not be obtained, or the broker configuration is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker configuration is invalid (reported by [`Broker::new`](super::Broker::new)
    /// at startup).
    #[error("credential provider {provider}: {problem}")]
    Config {
        /// The provider whose configuration is wrong.
        provider: String,
        /// What is wrong with it (no secret values).
        problem: String,
    },
    /// `credential()` was asked for a provider that is not configured.
    #[error("credential provider {provider} is not configured")]
    UnknownProvider {
        /// The requested provider name.
        provider: String,
    },
    /// The token endpoint answered with an error status.
    #[error("credential provider {provider}: token endpoint returned HTTP {status}{}", oauth_suffix(.oauth_error))]
    Upstream {
        /// The provider.
        provider: String,
        /// The HTTP status of the token endpoint's answer.
        status: u16,
        /// The OAuth `error` code (RFC 6749 §5.2), when the answer had a plausible one.
        oauth_error: Option<String>,
    },
    /// The token endpoint answered 2xx, but not with a usable token response.
    #[error("credential provider {provider}: invalid token response: {problem}")]
    InvalidResponse {
        /// The provider.
        provider: String,
        /// What was wrong (a fixed description, never the body).
        problem: String,
    },
    /// The token endpoint could not be reached (DNS, connect, TLS, connection reset).
    #[error("credential provider {provider}: token endpoint unreachable: {reason}")]
    Unreachable {
        /// The provider.
        provider: String,
        /// The kind of transport failure.
        reason: String,
    },
    /// The token endpoint did not answer within `http_timeout`.
    #[error("credential provider {provider}: token endpoint timed out")]
    Timeout {
        /// The provider.
        provider: String,
    },
    /// Signing a gateway JWT failed (a key/algorithm problem).
    #[error("credential provider {provider}: signing failed: {reason}")]
    Signing {
        /// The provider.
        provider: String,
        /// The signing error kind.
        reason: String,
    },
}

fn oauth_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
}

impl BrokerError {
    /// The HTTP status the gateway should answer with: 502 when the provider's token endpoint
    /// failed or is unreachable, 504 when it timed out, 500 for gateway-side problems
    /// (configuration, unknown provider, signing).
    pub fn status_code(&self) -> u16 {
        match self {
            BrokerError::Upstream { .. } | BrokerError::InvalidResponse { .. } | BrokerError::Unreachable { .. } => 502,
            BrokerError::Timeout { .. } => 504,
            BrokerError::Config { .. } | BrokerError::UnknownProvider { .. } | BrokerError::Signing { .. } => 500,
        }
    }

    /// The provider the error is about.
    pub fn provider(&self) -> &str {
        match self {
            BrokerError::Config { provider, .. }
            | BrokerError::UnknownProvider { provider }
            | BrokerError::Upstream { provider, .. }
            | BrokerError::InvalidResponse { provider, .. }
            | BrokerError::Unreachable { provider, .. }
            | BrokerError::Timeout { provider }
            | BrokerError::Signing { provider, .. } => provider,
        }
    }

    pub(crate) fn config(provider: &str, problem: impl Into<String>) -> BrokerError {
        BrokerError::Config { provider: provider.to_string(), problem: problem.into() }
    }
}
