//! Writing an SSE reply the core produces ([`crate::mcp::federation::stream`]): the response
//! head, then every event through an [`EventSink`] over the pingora session.

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::Result;
use serde_json::Value;

use super::{Ctx, GatewayProxy};
use crate::mcp::federation::stream::{EventSink, Stream};

impl GatewayProxy {
    /// Opens the SSE response, lets the core write `stream`, and ends the response.
    pub(super) async fn stream(&self, session: &mut Session, ctx: &mut Ctx, stream: Stream<'_>) -> Result<bool> {
        let mut resp = ResponseHeader::build(200, None)?;
        resp.insert_header("content-type", "text/event-stream")?;
        resp.insert_header("cache-control", "no-cache")?;
        resp.insert_header("x-correlation-id", ctx.corr_id.as_str())?;
        session.write_response_header(Box::new(resp), false).await?;
        let corr_id = ctx.corr_id.clone();
        let end = {
            let mut sink = SessionSink { session };
            self.gw.run_stream(stream, &corr_id, &mut sink).await
        };
        ctx.outcome = Some(end.outcome);
        ctx.upstream_status = end.upstream_status;
        ctx.answered = Some((200, None));
        session.write_response_body(None, true).await?;
        Ok(true)
    }
}

/// The response body of an SSE reply, as the core's [`EventSink`].
struct SessionSink<'s> {
    session: &'s mut Session,
}

#[async_trait]
impl EventSink for SessionSink<'_> {
    async fn event(&mut self, message: &Value) -> std::result::Result<(), ()> {
        let frame = format!("event: message\ndata: {message}\n\n");
        self.session.write_response_body(Some(Bytes::from(frame)), false).await.map_err(|_| ())
    }

    async fn comment(&mut self, text: &str) -> std::result::Result<(), ()> {
        let frame = format!(": {text}\n\n");
        self.session.write_response_body(Some(Bytes::from(frame)), false).await.map_err(|_| ())
    }

    async fn frame(&mut self, id: &str, data: &str) -> std::result::Result<(), ()> {
        // A priming event has no type: it only hands the client an id to resume from.
        let frame = if data.is_empty() {
            format!("id: {id}\ndata: \n\n")
        } else {
            format!("id: {id}\nevent: message\ndata: {data}\n\n")
        };
        self.session.write_response_body(Some(Bytes::from(frame)), false).await.map_err(|_| ())
    }
}
