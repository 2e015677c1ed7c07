//! `otel`: where and how spans are exported. Trace context is propagated whatever this says;
//! spans are only recorded and exported when `endpoint` is set.

use serde::Deserialize;

use crate::config::ConfigError;

/// Span export over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelConfig {
    /// OTLP/HTTP base URL of the collector (e.g. `http://127.0.0.1:4318`); spans are POSTed to
    /// `{endpoint}/v1/traces` (a URL already ending in `/v1/traces` is used as is). Empty: no
    /// spans are recorded or exported (trace context is still continued and forwarded).
    /// Env `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[serde(default)]
    pub endpoint: String,
    /// `service.name` of the exported resource. Env `OTEL_SERVICE_NAME`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Fraction of new traces recorded, 0..=1. A caller's `traceparent` decides for the
    /// traces it continues (its sampled flag is followed).
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// Finished spans waiting for export, at most. When full, new spans are dropped and
    /// counted (`fastmcp_otel_spans_total{result="dropped"}`); requests never wait.
    #[serde(default = "default_queue_spans")]
    pub queue_spans: usize,
    /// Spans per export request, at most.
    #[serde(default = "default_batch_spans")]
    pub batch_spans: usize,
    /// Longest time a finished span waits before it is exported, milliseconds.
    #[serde(default = "default_batch_delay_ms")]
    pub batch_delay_ms: u64,
    /// Timeout of one export request, seconds.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            endpoint: String::new(),
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
            queue_spans: default_queue_spans(),
            batch_spans: default_batch_spans(),
            batch_delay_ms: default_batch_delay_ms(),
            timeout_seconds: default_timeout_seconds(),
        }
    }
}

fn default_service_name() -> String {
    "fastmcp".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}
fn default_queue_spans() -> usize {
    4096
}
fn default_batch_spans() -> usize {
    512
}
fn default_batch_delay_ms() -> u64 {
    1000
}
fn default_timeout_seconds() -> u64 {
    10
}

impl OtelConfig {
    /// Export is configured.
    pub fn enabled(&self) -> bool {
        !self.endpoint.is_empty()
    }

    /// The URL spans are POSTed to.
    pub fn traces_url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled() {
            let uri: http::Uri = self
                .traces_url()
                .parse()
                .map_err(|_| ConfigError::new("otel.endpoint", format!("not a URL: {:?}", self.endpoint)))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(ConfigError::new("otel.endpoint", "must be an http:// or https:// URL with a host"));
            }
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::new("otel.sample_ratio", "must be between 0 and 1"));
        }
        if self.queue_spans == 0 || self.batch_spans == 0 {
            return Err(ConfigError::new("otel.queue_spans", "queue_spans and batch_spans must be at least 1"));
        }
        if self.batch_delay_ms == 0 || self.timeout_seconds == 0 {
            return Err(ConfigError::new(
                "otel.batch_delay_ms",
                "batch_delay_ms and timeout_seconds must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_and_validation() {
        let mut c = OtelConfig { endpoint: "http://127.0.0.1:4318".into(), ..OtelConfig::default() };
        assert_eq!(c.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert!(c.validate().is_ok());
        c.endpoint = "https://otel.example/v1/traces/".into();
        assert_eq!(c.traces_url(), "https://otel.example/v1/traces");
        c.endpoint = "ftp://x".into();
        assert_eq!(c.validate().unwrap_err().key, "otel.endpoint");
        c.endpoint = "not a url".into();
        assert_eq!(c.validate().unwrap_err().key, "otel.endpoint");
        let off = OtelConfig { sample_ratio: 1.5, ..OtelConfig::default() };
        assert!(!off.enabled());
        assert_eq!(off.validate().unwrap_err().key, "otel.sample_ratio");
    }
}
