//! Traces: W3C trace context on every request and every upstream call, spans exported over
//! OTLP/HTTP when `otel.endpoint` is set.
//!
//! - Every gateway request gets a [`Trace`] (`Trace::request`): the caller's `traceparent`
//!   is continued (its trace id, flags and `tracestate`), else a new trace starts. The
//!   request's `X-Correlation-ID` is untouched.
//! - Work under the request opens child spans ([`Trace::child`]): policy evaluation, each
//!   upstream call, broker token fetches, the audit fsync wait. An upstream call sends
//!   `traceparent`/`tracestate` naming its own child span ([`Trace::headers`]), never the
//!   agent's header as it came.
//! - The current trace travels with the request's task ([`scope`]) and onto blocking
//!   threads ([`on_thread`], [`spawn_blocking`]), so senders deep in the stack (the REST
//!   sender, the MCP client, the broker) find it with [`current`] without new parameters.
//! - Without an endpoint nothing is recorded: a span is a [`SpanContext`] (random ids, a few
//!   nanoseconds); with one, spans are the OpenTelemetry SDK's and finished spans go to a
//!   bounded queue drained by the exporter's own thread ([`export`]).

mod client;
mod config;
pub mod context;
pub mod export;

use std::cell::RefCell;
use std::future::Future;

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, Value};

pub use config::OtelConfig;

/// One span of a request's trace: what the code working under it needs to open children,
/// annotate it, and tell an upstream who its parent is. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Trace(Kind);

#[derive(Clone, Debug)]
enum Kind {
    /// Not recorded: only the ids to propagate.
    Local(SpanContext),
    /// A recording (or sampled-out) SDK span.
    Exported(Context),
}

impl Trace {
    /// The span of one gateway request (kind server), continuing the caller's trace context
    /// in `headers` when it has a valid one.
    pub fn request(headers: &http::HeaderMap, name: String) -> Trace {
        let parent = context::extract(headers);
        match export::tracer() {
            Some(tracer) => {
                let parent_cx = context::parent_context(parent.as_ref());
                let span = tracer.span_builder(name).with_kind(SpanKind::Server).start_with_context(tracer, &parent_cx);
                Trace(Kind::Exported(parent_cx.with_span(span)))
            }
            None => Trace(Kind::Local(context::local_root(parent.as_ref()))),
        }
    }

    /// A child span named `name` (ended by [`Span::end`] or when the [`Span`] is dropped).
    pub fn child(&self, name: &'static str, kind: SpanKind) -> Span {
        let trace = match (&self.0, export::tracer()) {
            (Kind::Exported(cx), Some(tracer)) => {
                let span = tracer.span_builder(name).with_kind(kind).start_with_context(tracer, cx);
                Trace(Kind::Exported(cx.with_span(span)))
            }
            (Kind::Exported(cx), None) => Trace(Kind::Local(context::local_child(cx.span().span_context()))),
            (Kind::Local(sc), _) => Trace(Kind::Local(context::local_child(sc))),
        };
        Span { trace }
    }

    /// This span's ids.
    pub fn span_context(&self) -> SpanContext {
        match &self.0 {
            Kind::Local(sc) => sc.clone(),
            Kind::Exported(cx) => cx.span().span_context().clone(),
        }
    }

    /// `traceparent` (and `tracestate` when there is one) naming this span as the parent.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let sc = self.span_context();
        let mut out = vec![(context::TRACEPARENT, context::traceparent(&sc))];
        if let Some(state) = context::tracestate(&sc) {
            out.push((context::TRACESTATE, state));
        }
        out
    }

    /// Sets an attribute (recorded spans only; a no-op otherwise).
    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        if let Kind::Exported(cx) = &self.0 {
            let span = cx.span();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(key, value.into()));
            }
        }
    }

    /// Marks the span failed with `message` (no secrets: callers pass codes and statuses).
    pub fn fail(&self, message: &'static str) {
        if let Kind::Exported(cx) = &self.0 {
            cx.span().set_status(Status::error(message));
        }
    }

    /// Ends the span now (later calls do nothing).
    pub fn end(&self) {
        if let Kind::Exported(cx) = &self.0 {
            cx.span().end();
        }
    }

    /// Whether attributes set on it are kept (callers skip building costly values otherwise).
    pub fn is_recording(&self) -> bool {
        matches!(&self.0, Kind::Exported(cx) if cx.span().is_recording())
    }
}

/// A child span; it ends when dropped.
#[derive(Debug)]
pub struct Span {
    trace: Trace,
}

impl Span {
    /// The child as a [`Trace`] (to pass to a thread, or to open grandchildren).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn set(&self, key: &'static str, value: impl Into<Value>) {
        self.trace.set(key, value);
    }

    pub fn fail(&self, message: &'static str) {
        self.trace.fail(message);
    }

    /// `traceparent`/`tracestate` for the upstream request this span stands for.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.trace.headers()
    }

    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        self.trace.end();
    }
}

tokio::task_local! {
    static TASK: Trace;
}

thread_local! {
    static THREAD: RefCell<Option<Trace>> = const { RefCell::new(None) };
}

/// The trace of the request being worked on: the task's ([`scope`]), else the thread's
/// ([`on_thread`]). None for the gateway's own traffic (discovery, reloads).
pub fn current() -> Option<Trace> {
    TASK.try_with(Trace::clone).ok().or_else(|| THREAD.with(|t| t.borrow().clone()))
}

/// A child of the current trace, if there is one.
pub fn child(name: &'static str, kind: SpanKind) -> Option<Span> {
    current().map(|t| t.child(name, kind))
}

/// The `traceparent`/`tracestate` an upstream call made under the current trace sends
/// (empty without one). The caller opened the span the call stands for ([`child`]) and made
/// it current ([`on_thread`]), so the upstream's parent is that span.
pub fn current_headers() -> Vec<(&'static str, String)> {
    current().map(|t| t.headers()).unwrap_or_default()
}

/// Runs `f` with `trace` as the task's current trace.
pub async fn scope<F: Future>(trace: Option<Trace>, f: F) -> F::Output {
    match trace {
        Some(t) => TASK.scope(t, f).await,
        None => f.await,
    }
}

/// Runs `f` on this thread with `trace` current, restoring what was current before.
pub fn on_thread<R>(trace: Option<Trace>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Trace>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD.with(|t| *t.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(THREAD.with(|t| t.replace(trace)));
    f()
}

/// `tokio::task::spawn_blocking` that carries `trace` (usually [`current`] or a child) onto
/// the blocking thread.
pub fn spawn_blocking<R, F>(trace: Option<Trace>, f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || on_thread(trace, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        h
    }

    #[tokio::test]
    async fn the_current_trace_follows_the_task_and_blocking_threads() {
        assert!(current().is_none());
        let root = Trace::request(&caller(), "POST /mcp".into());
        let root_id = root.span_context().trace_id();
        let inner = scope(Some(root.clone()), async {
            let span = child("upstream", SpanKind::Client).expect("a current trace");
            let t = span.trace().clone();
            let on_thread = spawn_blocking(Some(t.clone()), current_headers).await.unwrap();
            (t.span_context(), on_thread)
        })
        .await;
        let (child_sc, headers) = inner;
        assert_eq!(child_sc.trace_id(), root_id);
        assert_ne!(child_sc.span_id(), root.span_context().span_id());
        assert_eq!(headers, vec![("traceparent", context::traceparent(&child_sc))]);
        assert!(current().is_none(), "the scope ended");
        assert!(spawn_blocking(None, current).await.unwrap().is_none());
    }

    #[test]
    fn on_thread_restores_the_previous_trace() {
        let a = Trace::request(&http::HeaderMap::new(), "a".into());
        let b = Trace::request(&http::HeaderMap::new(), "b".into());
        on_thread(Some(a.clone()), || {
            on_thread(Some(b.clone()), || {
                assert_eq!(current().unwrap().span_context(), b.span_context());
            });
            assert_eq!(current().unwrap().span_context(), a.span_context());
        });
        assert!(current().is_none());
    }
}
