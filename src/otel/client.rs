//! The exporter's HTTP client: ureq (the gateway's blocking client, with the gateway's one
//! root set), so the OTLP exporter brings in no reqwest or hyper. It only ever runs on the
//! export thread, so blocking inside the `async fn` is what is wanted there.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// Largest collector answer read (it is only ever a small status message).
const MAX_ANSWER_BYTES: u64 = 64 << 10;

#[derive(Debug)]
pub struct UreqClient {
    agent: ureq::Agent,
}

impl UreqClient {
    pub fn new(timeout: Duration) -> UreqClient {
        let agent = crate::upstream::tls::ureq_agent_config()
            .timeout_global(Some(timeout))
            // The exporter reads the status itself (a 4xx/5xx is a failed export, not an error
            // of the transport).
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        UreqClient { agent }
    }
}

#[async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = request.map(|b| b.to_vec());
        let mut answer = self.agent.run(request)?;
        let body = answer.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec()?;
        let (parts, _) = answer.into_parts();
        Ok(Response::from_parts(parts, Bytes::from(body)))
    }
}
