//! HTTP tool providers: the plain-Rust core between a REST tool call and the upstream HTTP
//! exchange. [`build`] turns `(tool id, input)` into an exact [`UpstreamRequest`];
//! [`parse_response`] turns the upstream answer into a tool result or a [`ProviderError`].
//! The gateway does the networking (through pingora); nothing here opens a socket.
//!
//! Built-in tools: `pipedrive:createDeal`, `pipedrive:getDeal`, `pipedrive:updateDeal`,
//! `pipedrive:createContact` ([`pipedrive`]) and `ads:createCampaign` ([`googleads`]). Any
//! other tool id needs a manifest [`HttpToolSpec`]. Built-in ids always win over a spec, so a
//! manifest cannot point a built-in tool (and its credential) somewhere else.
//!
//! A brokered credential is bound to [`Destinations`]: [`build`] refuses
//! ([`ProviderError::CredentialNotBound`]) to put it into a request for any other URL, so a
//! manifest that borrows a provider id cannot carry that provider's credential elsewhere.

mod config;
mod destinations;
mod encode;
mod endpoint;
mod error;
mod generic;
pub mod googleads;
mod input;
pub mod pipedrive;
mod request;
mod spec;
mod template;

pub use config::{EgressConfig, HttpProvidersConfig, Secret};
pub use destinations::Destinations;
pub use endpoint::Endpoint;
pub use error::ProviderError;
pub use request::{Credential, Destination, UpstreamRequest};
pub use spec::{AuthKind, AuthSpec, BodyMode, BodySpec, HttpToolSpec, ResponseKind};

use serde_json::Value;

/// Which provider handles a tool id.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    /// A Pipedrive operation (tool id without the prefix).
    Pipedrive(&'a str),
    /// `ads:createCampaign`.
    GoogleAds,
    /// A manifest-described tool.
    Generic(&'a HttpToolSpec),
}

const PIPEDRIVE_OPS: &[&str] = &["createDeal", "getDeal", "updateDeal", "createContact"];

fn route<'a>(tool_id: &'a str, spec: Option<&'a HttpToolSpec>) -> Result<Route<'a>, ProviderError> {
    if let Some(op) = tool_id.strip_prefix(pipedrive::PREFIX).filter(|op| PIPEDRIVE_OPS.contains(op)) {
        return Ok(Route::Pipedrive(op));
    }
    if tool_id == googleads::CREATE_CAMPAIGN {
        return Ok(Route::GoogleAds);
    }
    spec.map(Route::Generic).ok_or_else(|| ProviderError::NotFound(format!("unknown HTTP tool {tool_id:?}")))
}

/// Builds the upstream request for one tool call. `spec` is the manifest's `http` section
/// for non-built-in tools (ignored for built-in ids). A `credential` that carries a secret
/// is only placed into a request whose URL is under `bound_to`; the request then counts as
/// an operator-chosen [`Destination`].
pub fn build(
    tool_id: &str,
    input: &Value,
    cfg: &HttpProvidersConfig,
    credential: Credential<'_>,
    bound_to: &Destinations,
    spec: Option<&HttpToolSpec>,
) -> Result<UpstreamRequest, ProviderError> {
    let mut req = assemble(tool_id, input, cfg, credential, spec)?;
    if credential.secret().is_some() {
        if !bound_to.allows(&req.endpoint, &req.path_and_query) {
            return Err(ProviderError::CredentialNotBound(format!(
                "the provider's credential may not be sent to {}://{}{}",
                req.endpoint.scheme(),
                req.endpoint.authority(),
                req.endpoint.path
            )));
        }
        // The operator named this URL as the credential's destination.
        req.destination = Destination::Operator;
    }
    Ok(req)
}

/// The request as the route describes it, before the credential's binding is checked
/// (module-private: everything outside goes through [`build`]).
fn assemble(
    tool_id: &str,
    input: &Value,
    cfg: &HttpProvidersConfig,
    credential: Credential<'_>,
    spec: Option<&HttpToolSpec>,
) -> Result<UpstreamRequest, ProviderError> {
    match route(tool_id, spec)? {
        Route::Pipedrive(op) => pipedrive::build(op, input, cfg, credential)
            .unwrap_or_else(|| Err(ProviderError::NotFound(format!("unknown HTTP tool {tool_id:?}")))),
        Route::GoogleAds => googleads::build(input, cfg, credential),
        Route::Generic(spec) => generic::build(spec, input, credential),
    }
}

/// Maps the upstream answer for `tool_id` to the tool result. `spec` must be the same one
/// given to [`build`] (it decides JSON vs text for generic tools).
pub fn parse_response(
    tool_id: &str,
    spec: Option<&HttpToolSpec>,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, ProviderError> {
    match route(tool_id, spec)? {
        Route::Pipedrive(_) => pipedrive::parse_response(status, content_type, body),
        Route::GoogleAds => googleads::parse_response(status, content_type, body),
        Route::Generic(spec) => generic::parse_response(spec, status, content_type, body),
    }
}

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod common_tests;
#[cfg(test)]
mod generic_tests;
#[cfg(test)]
mod googleads_tests;
#[cfg(test)]
mod pipedrive_tests;
