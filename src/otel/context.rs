//! W3C Trace Context (`traceparent`, `tracestate`): reading the caller's, minting fresh ids,
//! writing ours. Pure: no I/O, no global state.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rand::RngCore;

/// The header names, lowercase.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The caller's span context when its `traceparent` is valid ([`well_formed`]); its
/// `tracestate` comes along when well formed.
pub fn extract(headers: &http::HeaderMap) -> Option<SpanContext> {
    // Two traceparents are not a trace context (W3C: the header is a singleton).
    let mut all = headers.get_all(TRACEPARENT).iter();
    let (Some(tp), None) = (all.next(), all.next()) else { return None };
    // The propagator alone accepts short ids (it parses them as numbers): check the shape first.
    if !tp.to_str().is_ok_and(well_formed) {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// W3C Trace Context §3.2: `version-traceid-parentid-flags`, lowercase hex of exactly 2, 32,
/// 16 and 2 digits, version not `ff`, ids not all zero. Version `00` has nothing after the
/// flags; a later version may add fields after a `-` (they are ignored).
pub fn well_formed(tp: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    if tp.len() < 55 || !tp.is_char_boundary(55) {
        return false;
    }
    let (head, rest) = tp.split_at(55);
    let mut parts = head.split('-');
    let (Some(version), Some(trace), Some(parent), Some(flags), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let tail_ok = match version {
        "00" => rest.is_empty(),
        _ => rest.is_empty() || rest.starts_with('-'),
    };
    hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && nonzero(trace)
        && hex(parent, 16)
        && nonzero(parent)
        && hex(flags, 2)
        && tail_ok
}

/// The context of a span the gateway starts without exporting it: the caller's trace id,
/// flags and state when there is one, else a new trace (not sampled: nothing records it).
pub fn local_root(parent: Option<&SpanContext>) -> SpanContext {
    match parent {
        Some(p) => SpanContext::new(p.trace_id(), new_span_id(), p.trace_flags(), false, p.trace_state().clone()),
        None => SpanContext::new(new_trace_id(), new_span_id(), TraceFlags::NOT_SAMPLED, false, TraceState::NONE),
    }
}

/// A child of `of` (same trace, flags and state; a new span id).
pub fn local_child(of: &SpanContext) -> SpanContext {
    SpanContext::new(of.trace_id(), new_span_id(), of.trace_flags(), false, of.trace_state().clone())
}

/// `traceparent` naming `sc` as the parent.
pub fn traceparent(sc: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8())
}

/// `tracestate` to send along, if any.
pub fn tracestate(sc: &SpanContext) -> Option<String> {
    let h = sc.trace_state().header();
    (!h.is_empty()).then_some(h)
}

/// The parent context a span continuing `parent` is started in.
pub fn parent_context(parent: Option<&SpanContext>) -> Context {
    match parent {
        Some(p) => Context::new().with_remote_span_context(p.clone()),
        None => Context::new(),
    }
}

fn new_trace_id() -> TraceId {
    let mut b = [0u8; 16];
    loop {
        rand::thread_rng().fill_bytes(&mut b);
        if b != [0; 16] {
            return TraceId::from_bytes(b);
        }
    }
}

fn new_span_id() -> SpanId {
    let mut b = [0u8; 8];
    loop {
        rand::thread_rng().fill_bytes(&mut b);
        if b != [0; 8] {
            return SpanId::from_bytes(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_caller_context_is_continued_with_a_new_span() {
        let sc = extract(&map(&[("traceparent", TP), ("tracestate", "vendor=opaque,b=2")])).unwrap();
        assert_eq!(format!("{}", sc.trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(sc.is_sampled() && sc.is_remote());
        let ours = local_root(Some(&sc));
        assert_eq!(ours.trace_id(), sc.trace_id());
        assert_ne!(ours.span_id(), sc.span_id());
        let tp = traceparent(&ours);
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"), "{tp}");
        assert_ne!(tp, TP);
        assert_eq!(tracestate(&ours).as_deref(), Some("vendor=opaque,b=2"));
        let child = local_child(&ours);
        assert_eq!(child.trace_id(), ours.trace_id());
        assert_ne!(child.span_id(), ours.span_id());
    }

    #[test]
    fn invalid_or_absent_context_starts_a_new_trace() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(extract(&map(&[("traceparent", bad)])).is_none(), "{bad:?}");
        }
        assert!(extract(&map(&[("traceparent", TP), ("traceparent", TP)])).is_none(), "duplicate header");
        // A later version may carry more fields; what version 00 defines is still read.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
        assert!(well_formed(future) && well_formed(TP));
        let fresh = local_root(None);
        assert!(fresh.is_valid() && !fresh.is_sampled());
        let other = local_root(None);
        assert_ne!(fresh.trace_id(), other.trace_id());
        assert_eq!(traceparent(&fresh).len(), 55);
        assert_eq!(tracestate(&fresh), None);
    }
}
