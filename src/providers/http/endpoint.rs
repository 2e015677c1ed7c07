//! A provider base URL as the one upstream [`Endpoint`], parsed strictly
//! ([`Endpoint::provider_base`]), with the failure as a provider misconfiguration.

pub use crate::upstream::Endpoint;

use super::ProviderError;

/// Parses a provider base URL (see [`Endpoint::provider_base`]).
pub fn parse(base_url: &str) -> Result<Endpoint, ProviderError> {
    Endpoint::provider_base(base_url)
        .map_err(|e| ProviderError::misconfigured(format!("invalid provider base URL: {e}")))
}
