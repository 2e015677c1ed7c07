//! Building admin responses: JSON or Prometheus text, never cached, with the correlation id.

use http::Response;
use serde_json::Value;

use super::error::AdminError;

/// A response body with its status and content type, before the common headers.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply { status, content_type: "application/json", body: v.to_string().into_bytes(), headers: vec![] }
    }

    pub fn text(content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply { status: 200, content_type, body, headers: vec![] }
    }

    pub fn error(e: &AdminError, corr_id: &str) -> Reply {
        Reply { headers: e.headers(), ..Reply::json(e.status(), e.body(corr_id)) }
    }

    /// The HTTP response.
    pub fn into_response(self, corr_id: &str) -> Response<Vec<u8>> {
        let mut b = Response::builder()
            .status(self.status)
            .header("content-type", self.content_type)
            .header("content-length", self.body.len())
            .header("cache-control", "no-store")
            .header("x-content-type-options", "nosniff")
            .header("x-correlation-id", corr_id);
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(self.body).unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

/// Answers `http` with the head of a never-cached, never-buffered event stream (the admin
/// plane's SSE routes); false when the consumer is already gone.
pub async fn open_event_stream(http: &mut pingora::protocols::http::ServerSession, corr_id: &str) -> bool {
    http.set_keepalive(None);
    let Ok(mut head) = pingora_http::ResponseHeader::build(200, Some(6)) else { return false };
    for (k, v) in [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("x-accel-buffering", "no"),
        ("x-correlation-id", corr_id),
    ] {
        let _ = head.insert_header(k, v);
    }
    http.write_response_header(Box::new(head)).await.is_ok()
}
