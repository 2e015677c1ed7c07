//! Writing the gateway's own responses (errors, holds, health, metadata) to the client.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use serde_json::Value;

/// Writes a complete JSON response with `X-Correlation-ID` and any extra headers.
pub async fn json(
    session: &mut Session,
    status: u16,
    body: &Value,
    corr_id: &str,
    extra: &[(&'static str, String)],
) -> Result<()> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()));
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", bytes.len().to_string())?;
    resp.insert_header("x-correlation-id", corr_id)?;
    resp.insert_header("cache-control", "no-store")?;
    for (k, v) in extra {
        resp.insert_header(*k, v.as_str())?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(bytes), true).await
}

/// Writes an empty response (e.g. 202 for notifications).
pub async fn empty(session: &mut Session, status: u16, corr_id: &str) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(2))?;
    resp.insert_header("content-length", "0")?;
    resp.insert_header("x-correlation-id", corr_id)?;
    session.write_response_header(Box::new(resp), true).await
}
