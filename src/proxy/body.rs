//! Reading a request body completely, within the configured limit, before deciding.

use bytes::{Bytes, BytesMut};
use pingora::prelude::*;

use crate::error::GatewayError;

/// Reads the whole body. Refuses with 413 as soon as the declared or received size passes
/// `limit`, without reading the rest.
pub async fn read_all(session: &mut Session, limit: usize) -> std::result::Result<Bytes, GatewayError> {
    let declared = super::headers::declared_length(&session.req_header().headers);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(GatewayError::PayloadTooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => {
                return Err(GatewayError::bad_request(format!(
                    "could not read the request body: {}",
                    e.etype().as_str()
                )));
            }
        }
    }
}
