//! Reading an admin request's body: bounded, refused by its `Content-Length` before a byte is
//! read when that already says too much.

use pingora::protocols::http::ServerSession;

use super::error::AdminError;

/// The request body, refused past `limit` bytes (by its `Content-Length` before reading).
pub(super) async fn read_bounded(http: &mut ServerSession, limit: usize) -> Result<Vec<u8>, AdminError> {
    let announced = crate::proxy::headers::declared_length(&http.req_header().headers);
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(AdminError::PayloadTooLarge { limit });
    }
    let mut body = Vec::new();
    loop {
        match http.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(AdminError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(AdminError::BadRequest { message: format!("the body could not be read: {e}") }),
        }
    }
}
