//! Running a tool once its call is allowed: broker the credential, call the provider, map its
//! failure to the error table. Providers: the in-process database, the built-in HTTP
//! providers and manifest-described HTTP tools (through pingora's connector), and MCP servers
//! (as a client in their era).
//!
//! Outbound rules ([`outbound`]): a brokered credential is only built into a request for a
//! URL it is bound to; a destination only a manifest named is checked against the egress
//! policy before the call is admitted ([`preflight`], no DNS) and on its resolved addresses
//! at connect time (the sender). Both refusals are 403 `FORBIDDEN` (reasons
//! `credential_not_bound`, `egress_refused`): the operator's rules said no and nothing was
//! sent, which is not an upstream failure. A 3xx is a 502 and is never followed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::auth::Principal;
use crate::broker::{BrokerError, Caller, Credential as Brokered};
use crate::catalog::manifest::Manifest;
use crate::enforce::Admitted;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::policy::PolicySnapshot;
use crate::providers::database::{Access, DbError};
use crate::providers::http::{self, Credential, Destination, HttpToolSpec, ProviderError, UpstreamRequest};
use crate::providers::sender::{Egress, Outgoing, SendError};
use crate::rest::outbound;

/// A tool's result and what the agent may know about the credential used.
pub struct Executed {
    pub result: Value,
    /// `{"token_type","expires_in","audience"}`: never the token itself.
    pub token_meta: Value,
}

/// No credential was involved.
fn no_token() -> Value {
    json!({"token_type": "none", "expires_in": null, "audience": null})
}

/// Runs `manifest`'s tool with `input` on behalf of `who` (the principal whose call it is).
/// Only an admitted call runs.
pub async fn run(
    gw: &Gateway,
    policy: &PolicySnapshot,
    who: &Principal,
    manifest: &Manifest,
    input: &Value,
    admitted: &Admitted,
) -> Result<Executed, GatewayError> {
    let started = std::time::Instant::now();
    let provider = manifest.provider_id.as_str();
    let out = match provider {
        "database" => database(gw, policy, who, manifest, input).await,
        "mcp" => mcp(gw, who, manifest, input, admitted).await,
        _ => http_tool(gw, who, manifest, input).await,
    };
    crate::metrics::METRICS.upstream_duration.with_label_values(&[provider]).observe(started.elapsed().as_secs_f64());
    out
}

async fn database(
    gw: &Gateway,
    policy: &PolicySnapshot,
    who: &Principal,
    manifest: &Manifest,
    input: &Value,
) -> Result<Executed, GatewayError> {
    let db = gw.rest.database.clone();
    // Defense in depth: the policy already asked for database.write on anything but a read;
    // the connection itself is read-only unless the caller holds that scope.
    let access =
        if policy.holds_scope(&who.scopes, &who.roles, "database.write") { Access::Write } else { Access::Read };
    let tool = manifest.tool_id.split_once(':').map(|(_, t)| t.to_string()).unwrap_or_default();
    let input = input.clone();
    let ran = tokio::task::spawn_blocking(move || match tool.as_str() {
        "listTables" => db.list_tables(),
        "getSchema" => db.get_schema(input.get("table").and_then(Value::as_str).unwrap_or_default()),
        "executeQuery" => {
            let sql = input.get("query").and_then(Value::as_str).unwrap_or_default();
            let params = input.get("params").and_then(Value::as_array).cloned().unwrap_or_default();
            db.execute_query(sql, &params, access)
        }
        other => Err(DbError::NotFound(format!("no database tool {other:?}"))),
    })
    .await
    .map_err(|_| GatewayError::Provider { message: "database task failed".into() })?;
    let result = ran.map_err(db_error)?;
    Ok(Executed { result, token_meta: no_token() })
}

fn db_error(e: DbError) -> GatewayError {
    let message = e.to_string();
    match e.kind().status() {
        403 => GatewayError::Forbidden { message, reasons: vec!["database_refused".into()] },
        404 => GatewayError::NotFound { message },
        422 => GatewayError::Validation { message },
        504 => GatewayError::ProviderTimeout { message },
        _ => GatewayError::Provider { message },
    }
}

/// `mcp:{server}:{tool}`: a `tools/call` on the server, as its client (per principal).
async fn mcp(
    gw: &Gateway,
    who: &Principal,
    manifest: &Manifest,
    input: &Value,
    admitted: &Admitted,
) -> Result<Executed, GatewayError> {
    let mut parts = manifest.tool_id.splitn(3, ':');
    let (Some(_), Some(server), Some(tool)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(GatewayError::NotFound { message: "not an MCP tool id".into() });
    };
    let Some(server) = gw.catalog.server(server) else {
        return Err(GatewayError::NotFound { message: format!("no MCP server {server:?}") });
    };
    let timeout = server.timeout(&gw.cfg.limits);
    let key = format!("o:{}", crate::mcp::session::owner_key(&who.tenant, &who.sub));
    // A REST caller has no MCP client behind it to relay the server's requests to.
    let client = gw.fed.upstreams.client(&server, &key, timeout, json!({}), admitted).await?;
    let proof = admitted.proof();
    let params = json!({"name": tool, "arguments": input});
    let name = server.name.clone();
    // The MCP client finds the span on its thread and names it in its `traceparent`.
    let span = crate::otel::child("upstream", opentelemetry::trace::SpanKind::Client);
    if let Some(s) = span.as_ref().filter(|s| s.trace().is_recording()) {
        s.set("fastmcp.server", server.name.clone());
    }
    let trace = span.as_ref().map(|s| s.trace().clone());
    let response =
        crate::otel::spawn_blocking(trace, move || client.request(&proof, "tools/call", params, &mut |_| {}))
            .await
            .map_err(|_| GatewayError::Provider { message: "MCP call task failed".into() })?
            .map_err(|e| {
                if let Some(s) = span.as_ref() {
                    s.fail("MCP call failed");
                }
                crate::mcp::upstream::client_error(&name, &e)
            })?;
    drop(span);
    match (response.get("result"), response.get("error")) {
        (Some(r), _) => {
            // MCP clients SHOULD check structured results against the tool's outputSchema.
            let listed = gw.fed.tool(&server.name, tool);
            if let (Some(schema), Some(structured)) =
                (listed.as_ref().and_then(|t| t.get("outputSchema")), r.get("structuredContent"))
            {
                if gw.rest.schemas.validate(&format!("{}#structured", manifest.tool_id), schema, structured).is_err() {
                    return Err(GatewayError::Provider {
                        message: "structuredContent does not match the tool's outputSchema".into(),
                    });
                }
            }
            Ok(Executed { result: r.clone(), token_meta: no_token() })
        }
        (None, Some(e)) => Err(GatewayError::Provider {
            message: format!("MCP error {}", e.get("code").and_then(Value::as_i64).unwrap_or(0)),
        }),
        _ => Err(GatewayError::Provider { message: "MCP server answered garbage".into() }),
    }
}

/// The broker's provider id for a tool: the built-in ones by name, else the manifest's.
fn credential_id(manifest: &Manifest) -> &str {
    &manifest.provider_id
}

/// Stands in for the brokered secret when a request is built only to be checked.
const STAND_IN_SECRET: &str = "stand-in";

fn http_spec(manifest: &Manifest) -> Result<Option<HttpToolSpec>, GatewayError> {
    match &manifest.http {
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| GatewayError::Provider { message: format!("manifest http spec: {e}") }),
        None => Ok(None),
    }
}

/// The request an HTTP tool call becomes, with `secret` placed as the provider's credential
/// kind says. The builder refuses a secret outside the provider's binding (403).
fn http_request(
    gw: &Gateway,
    manifest: &Manifest,
    input: &Value,
    spec: Option<&HttpToolSpec>,
    secret: Option<&str>,
) -> Result<UpstreamRequest, GatewayError> {
    let provider = credential_id(manifest);
    let credential = match (secret, provider) {
        (None, _) => Credential::None,
        (Some(s), "pipedrive") => Credential::ApiTokenQuery(s),
        (Some(s), _) => Credential::Bearer(s),
    };
    let bound_to = gw.rest.outbound.binding(provider);
    http::build(&manifest.tool_id, input, &gw.cfg.providers.http, credential, bound_to, spec).map_err(provider_error)
}

/// Before an HTTP tool call is admitted (so before it can be held), checked without
/// contacting anyone (no token is fetched, nothing is sent):
/// - 403 when the operator's outbound rules would refuse its request anyway: a brokered
///   credential outside its destinations, or a manifest-named destination the egress policy
///   refuses without DNS (the sender still checks the resolved addresses at connect time);
/// - when `held`, 422 when it could never run as the gateway is configured (a missing
///   credential or provider configuration, input the provider cannot use), so nobody is asked
///   to confirm or approve it. A call that runs now reports such problems when it runs.
pub fn preflight(gw: &Gateway, manifest: &Manifest, input: &Value, held: bool) -> Result<(), GatewayError> {
    let provider = manifest.provider_id.as_str();
    if matches!(provider, "database" | "mcp") {
        return Ok(());
    }
    let cannot = |why: String| GatewayError::Validation {
        message: format!("this call cannot run as the gateway is configured ({why}); nothing was held"),
    };
    let spec = match http_spec(manifest) {
        Ok(s) => s,
        Err(e) if held => return Err(cannot(e.message())),
        Err(_) => return Ok(()),
    };
    let has_credential = gw.rest.broker.providers().any(|p| p == provider);
    match http_request(gw, manifest, input, spec.as_ref(), has_credential.then_some(STAND_IN_SECRET)) {
        Ok(req) => gw.rest.outbound.check_request(&req),
        Err(e @ GatewayError::Forbidden { .. }) => Err(e),
        Err(e) if held => Err(cannot(e.message())),
        Err(_) => Ok(()),
    }
}

async fn http_tool(
    gw: &Gateway,
    who: &Principal,
    manifest: &Manifest,
    input: &Value,
) -> Result<Executed, GatewayError> {
    let spec = http_spec(manifest)?;
    let provider = credential_id(manifest);
    let brokered: Option<Brokered> = if gw.rest.broker.providers().any(|p| p == provider) {
        let caller = Caller::new(who.sub.clone(), who.tenant.clone());
        Some(gw.rest.broker.credential(provider, &caller, &[]).await.map_err(broker_error)?)
    } else {
        None
    };
    let req = http_request(gw, manifest, input, spec.as_ref(), brokered.as_ref().map(Brokered::secret))?;
    gw.rest.outbound.check_request(&req)?;
    let headers: Vec<(String, String)> = req.headers.clone();
    let method = req.method.as_str().to_string();
    let out = Outgoing {
        tls: req.endpoint.tls,
        host: &req.endpoint.host,
        port: req.endpoint.port,
        method: &method,
        path_and_query: &req.path_and_query,
        headers: &headers,
        body: req.body.as_deref(),
        egress: match req.destination {
            Destination::Operator => Egress::Operator,
            Destination::Manifest => Egress::Checked(&gw.rest.outbound.policy),
        },
    };
    let limits = &gw.cfg.limits;
    let reply = gw
        .rest
        .sender
        .send(
            &out,
            Duration::from_secs(limits.connect_timeout_seconds),
            Duration::from_secs(limits.upstream_timeout_seconds),
        )
        .await
        .map_err(|e| match e {
            SendError::Timeout => GatewayError::ProviderTimeout { message: format!("{provider} timed out") },
            SendError::Refused(e) => outbound::egress_refused(e),
            SendError::Failed(detail) => {
                tracing::warn!(provider, error = %detail, "provider request failed");
                GatewayError::Provider { message: format!("{provider} unreachable or failed") }
            }
        })?;
    if (300..400).contains(&reply.status) {
        // Never followed: a redirect could lead anywhere, and its Location is not the caller's.
        return Err(GatewayError::Provider {
            message: format!("{provider} answered a redirect (HTTP {}); redirects are not followed", reply.status),
        });
    }
    let result = http::parse_response(
        &manifest.tool_id,
        spec.as_ref(),
        reply.status,
        reply.content_type.as_deref(),
        &reply.body,
    )
    .map_err(provider_error)?;
    let token_meta = brokered.map(|c| c.meta()).unwrap_or_else(no_token);
    Ok(Executed { result, token_meta })
}

fn provider_error(e: ProviderError) -> GatewayError {
    let message = e.to_string();
    if let ProviderError::CredentialNotBound(_) = e {
        tracing::warn!(error = %message, "brokered credential refused for an unbound destination");
        return GatewayError::Forbidden { message, reasons: vec![outbound::CREDENTIAL_NOT_BOUND.into()] };
    }
    match e.status() {
        404 => GatewayError::NotFound { message },
        422 => GatewayError::Validation { message },
        _ => GatewayError::Provider { message },
    }
}

fn broker_error(e: BrokerError) -> GatewayError {
    let message = format!("credential broker: {e}");
    match e.status_code() {
        504 => GatewayError::ProviderTimeout { message },
        _ => GatewayError::Provider { message },
    }
}
