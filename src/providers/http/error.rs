//! The one error type of the HTTP provider core and its mapping to gateway statuses.

/// Why a tool call could not become an upstream request, or why the upstream answer is not a
/// tool result. Messages are written for callers: they never carry credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// 422: the tool input is missing a field, has a wrong type, or would change the URL shape.
    #[error("{0}")]
    Validation(String),
    /// 404: no provider knows this tool id.
    #[error("{0}")]
    NotFound(String),
    /// 502: the upstream answered with an error. `status` is the upstream HTTP status and
    /// `message` the provider's own (scrubbed, truncated) error text.
    #[error("upstream returned HTTP {status}: {message}")]
    Upstream {
        /// The upstream HTTP status code.
        status: u16,
        /// The provider's error message, scrubbed of tokens and truncated.
        message: String,
    },
    /// 502: the upstream answered something that is not JSON. The body is never echoed.
    #[error("{0}")]
    Garbage(String),
    /// 502: the gateway's own provider configuration or credential is unusable (bad base URL,
    /// missing developer token, credential of the wrong kind). Not the caller's fault.
    #[error("{0}")]
    Misconfigured(String),
    /// 403: the request would carry a brokered credential to a URL the credential is not
    /// bound to (`providers.credentials.<id>.allowed_urls`). Refused by operator policy, not
    /// an upstream failure: nothing was sent.
    #[error("{0}")]
    CredentialNotBound(String),
}

impl ProviderError {
    /// The HTTP status the gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) => 422,
            Self::NotFound(_) => 404,
            Self::Upstream { .. } | Self::Garbage(_) | Self::Misconfigured(_) => 502,
            Self::CredentialNotBound(_) => 403,
        }
    }

    /// The gateway error code string (`VALIDATION_ERROR`, `NOT_FOUND`, `PROVIDER_ERROR`,
    /// `FORBIDDEN`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_ERROR",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Upstream { .. } | Self::Garbage(_) | Self::Misconfigured(_) => "PROVIDER_ERROR",
            Self::CredentialNotBound(_) => "FORBIDDEN",
        }
    }

    /// Shorthand for [`ProviderError::Validation`].
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    /// Shorthand for [`ProviderError::Misconfigured`].
    pub(crate) fn misconfigured(message: impl Into<String>) -> Self {
        Self::Misconfigured(message.into())
    }
}
