//! The span pipeline when `otel.endpoint` is set: the OpenTelemetry SDK's tracer, a bounded
//! queue of finished spans, and one plain thread that batches them and POSTs OTLP/HTTP
//! protobuf (`opentelemetry-otlp`'s exporter over the ureq client of [`super::client`]).
//!
//! pingora owns the gateway's runtimes and no request may wait on export, so the exporter
//! has its own thread: a span ending on a request path is one `try_send` on a bounded
//! channel; when the queue is full the span is dropped and counted
//! (`fastmcp_otel_spans_total{result="dropped"}`). Export results are counted too
//! (`exported`, `failed`). With no endpoint none of this exists and [`tracer`] is `None`.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;

use super::client::UreqClient;
use super::OtelConfig;
use crate::metrics::METRICS;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer, when export is configured (set once by [`init`]).
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Starts the pipeline when `cfg.endpoint` is set (once per process; a second call keeps the
/// first pipeline). Errors are startup failures.
pub fn init(cfg: &OtelConfig) -> Result<(), String> {
    if !cfg.enabled() || TRACER.get().is_some() {
        return Ok(());
    }
    let url = cfg.traces_url();
    let timeout = Duration::from_secs(cfg.timeout_seconds);
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(UreqClient::new(timeout))
        .with_endpoint(url.clone())
        .with_timeout(timeout)
        .build()
        .map_err(|e| format!("otel.endpoint: {e}"))?;
    let resource = Resource::builder().with_service_name(cfg.service_name.clone()).build();
    exporter.set_resource(&resource);
    let processor = QueueProcessor::start(exporter, cfg)?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(cfg.sample_ratio))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("fastmcp");
    // The provider lives as long as the process: the tracer holds it.
    let _ = TRACER.set(tracer);
    tracing::info!(endpoint = %url, service = %cfg.service_name, "exporting spans over OTLP/HTTP");
    Ok(())
}

enum Msg {
    Span(Box<SpanData>),
    Flush(SyncSender<()>),
}

/// Finished spans → bounded queue → the export thread.
#[derive(Debug)]
pub struct QueueProcessor {
    tx: SyncSender<Msg>,
}

impl QueueProcessor {
    /// Starts the export thread over `exporter`.
    pub fn start<E: SpanExporter + 'static>(exporter: E, cfg: &OtelConfig) -> Result<QueueProcessor, String> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue_spans);
        let batch = cfg.batch_spans;
        let delay = Duration::from_millis(cfg.batch_delay_ms);
        std::thread::Builder::new()
            .name("otel-export".into())
            .spawn(move || run(exporter, rx, batch, delay))
            .map_err(|e| format!("otel export thread: {e}"))?;
        Ok(QueueProcessor { tx })
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        match self.tx.try_send(Msg::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => count("dropped", 1),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let (done, wait) = mpsc::sync_channel(1);
        // A full queue is flushed by the thread anyway; block here (flush is not a request path).
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(30));
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }
}

fn count(result: &str, n: usize) {
    METRICS.otel_spans.with_label_values(&[result]).inc_by(n as u64);
}

/// The export thread: a batch goes out when it is full or its oldest span waited `delay`.
fn run<E: SpanExporter>(exporter: E, rx: Receiver<Msg>, batch_size: usize, delay: Duration) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(batch_size);
    let mut oldest: Option<Instant> = None;
    let mut failures: u64 = 0;
    loop {
        let wait = oldest.map(|t| delay.saturating_sub(t.elapsed())).unwrap_or(Duration::from_secs(3600));
        let flush = match rx.recv_timeout(wait) {
            Ok(Msg::Span(s)) => {
                batch.push(*s);
                oldest.get_or_insert_with(Instant::now);
                None
            }
            Ok(Msg::Flush(done)) => Some(Some(done)),
            Err(RecvTimeoutError::Timeout) => Some(None),
            Err(RecvTimeoutError::Disconnected) => {
                send(&exporter, &mut batch, &mut failures);
                return;
            }
        };
        let due = batch.len() >= batch_size || flush.is_some();
        if due {
            send(&exporter, &mut batch, &mut failures);
            oldest = None;
        }
        if let Some(Some(done)) = flush {
            let _ = done.try_send(());
        }
    }
}

fn send<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, failures: &mut u64) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    match futures::executor::block_on(exporter.export(std::mem::take(batch))) {
        Ok(()) => {
            count("exported", n);
            if *failures > 0 {
                tracing::info!(after_failures = *failures, "span export recovered");
                *failures = 0;
            }
        }
        Err(e) => {
            count("failed", n);
            *failures += 1;
            // One line for the first failure, then one per hundred: a collector that is down
            // must not flood the log.
            if *failures == 1 || failures.is_multiple_of(100) {
                tracing::warn!(error = %e, spans = n, failures = *failures, "span export failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{Span as _, Tracer as _};

    /// Records batches; blocks every export until `gate` lets one through.
    #[derive(Debug, Clone)]
    struct Recording {
        batches: Arc<Mutex<Vec<usize>>>,
        gate: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl SpanExporter for Recording {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let _ = self.gate.lock().unwrap().recv();
            self.batches.lock().unwrap().push(batch.len());
            Ok(())
        }
    }

    fn exported() -> u64 {
        METRICS.otel_spans.with_label_values(&["exported"]).get()
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking_and_the_rest_is_exported() {
        let (open, gate) = mpsc::channel();
        let exporter = Recording { batches: Default::default(), gate: Arc::new(Mutex::new(gate)) };
        let batches = exporter.batches.clone();
        let cfg = OtelConfig { queue_spans: 2, batch_spans: 1, batch_delay_ms: 5, ..OtelConfig::default() };
        let provider =
            SdkTracerProvider::builder().with_span_processor(QueueProcessor::start(exporter, &cfg).unwrap()).build();
        let tracer = provider.tracer("test");
        let dropped_before = METRICS.otel_spans.with_label_values(&["dropped"]).get();
        let exported_before = exported();
        // The thread takes the first span and blocks in export; two fill the queue; the
        // remaining seven are dropped, and ending them never waits.
        for _ in 0..10 {
            tracer.start("s").end();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let dropped = || METRICS.otel_spans.with_label_values(&["dropped"]).get() - dropped_before;
        assert!(dropped() >= 7, "dropped {}", dropped());
        for _ in 0..10 {
            let _ = open.send(());
        }
        while exported() - exported_before < 10 - dropped() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(exported() - exported_before, 10 - dropped());
        assert_eq!(batches.lock().unwrap().iter().sum::<usize>() as u64, 10 - dropped());
    }
}
