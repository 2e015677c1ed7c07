//! The request's span from the hooks' side: started in `request_filter` (continuing the
//! caller's `traceparent`), a child for the forwarded call whose id the upstream receives,
//! and the request's facts set when `logging` ends it. See [`crate::otel`].

use opentelemetry::trace::SpanKind;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::Result;

use super::Ctx;
use crate::gateway::Gateway;
use crate::otel::Trace;

/// The request's span (`"{METHOD} {route}"`, bounded names).
pub(super) fn start(session: &Session, ctx: &mut Ctx) -> Trace {
    let req = session.req_header();
    let trace = Trace::request(&req.headers, format!("{} {}", req.method, ctx.route.label()));
    if trace.is_recording() {
        trace.set("http.request.method", req.method.as_str().to_string());
        trace.set("http.route", ctx.route.label());
        trace.set("fastmcp.corr_id", ctx.corr_id.clone());
    }
    ctx.trace = Some(trace.clone());
    trace
}

/// The forwarded call's span; the upstream gets `traceparent`/`tracestate` naming it (the
/// agent's own headers were removed by the allow-list).
pub(super) fn upstream(req: &mut RequestHeader, ctx: &mut Ctx) -> Result<()> {
    let (Some(trace), Some(server)) = (ctx.trace.as_ref(), ctx.server.as_ref()) else { return Ok(()) };
    let span = trace.child("upstream", SpanKind::Client);
    if span.trace().is_recording() {
        span.set("fastmcp.server", server.name.clone());
        if let Some(url) = server.url.as_ref() {
            span.set("server.address", url.host.clone());
            span.set("server.port", i64::from(url.port));
        }
    }
    for (name, value) in span.headers() {
        req.insert_header(name, value)?;
    }
    ctx.upstream_span = Some(span);
    Ok(())
}

/// The upstream answered with `status`.
pub(super) fn upstream_status(ctx: &Ctx, status: u16) {
    if let Some(span) = ctx.upstream_span.as_ref() {
        span.set("http.response.status_code", i64::from(status));
        if status >= 500 {
            span.fail("upstream error status");
        }
    }
}

/// The upstream failed (connect, timeout, reset).
pub(super) fn upstream_failed(ctx: &Ctx, code: &'static str) {
    if let Some(span) = ctx.upstream_span.as_ref() {
        span.set("error.type", code);
        span.fail(code);
    }
}

/// How the request ended, in three words: `refused` (the gateway decided against it: the
/// decision says why), `error` (a 5xx or broken-off answer, or an upstream that failed), `ok`.
fn outcome(ctx: &Ctx, status: u16) -> &'static str {
    let failed_upstream = ctx.upstream_status.is_some_and(|s| s >= 500);
    match ctx.outcome {
        Some(o) if !o.allows() && o != crate::enforce::Outcome::Replayed => "refused",
        _ if status == 0 || status >= 500 || failed_upstream => "error",
        _ if status >= 400 => "refused",
        _ => "ok",
    }
}

/// Ends the upstream span and the request's, with the request's facts: the decision (the
/// same label as audit and metrics), the outcome, status, MCP method and server, and policy
/// revision.
pub(super) fn finish(gw: &Gateway, ctx: &mut Ctx, status: u16) {
    drop(ctx.upstream_span.take());
    let Some(trace) = ctx.trace.take() else { return };
    if trace.is_recording() {
        trace.set("fastmcp.decision", ctx.outcome_label());
        trace.set("fastmcp.outcome", outcome(ctx, status));
        trace.set("http.response.status_code", i64::from(status));
        let revision = ctx.policy.as_ref().map(|p| p.revision().to_string()).unwrap_or_else(|| gw.policy.revision());
        trace.set("fastmcp.policy.revision", revision);
        if let Some(m) = ctx.method.as_deref() {
            // The caller chose it: kept whole only while short.
            let m = if m.len() <= 64 { m } else { super::metric_method(m) };
            trace.set("mcp.method.name", m.to_string());
        }
        if let Some(s) = ctx.server.as_ref() {
            trace.set("fastmcp.server", s.name.clone());
        }
        if status >= 500 || status == 0 {
            trace.fail("request failed");
        }
    }
    trace.end();
}
