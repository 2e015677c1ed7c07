//! Response-side rewriting of JSON-RPC messages, for both response encodings of Streamable
//! HTTP: `tools/list` filtering, and results from a 2025-11-25 upstream given the
//! `resultType` a 2026-07-28 client requires.

use serde_json::Value;

use crate::mcp::sse::SseRewriter;

/// Largest `tools/list` response (or single SSE event) the filter holds. Past it the response
/// is cut off rather than passed unfiltered (fail closed).
pub const MAX_HELD_BYTES: usize = 16 << 20;

/// The rewriter for one response.
pub enum ToolsListFilter {
    /// Request was `tools/list`; the response encoding is not known yet.
    Pending,
    /// `application/json`: buffer the one message, filter at the end.
    Json(Vec<u8>),
    /// `text/event-stream`: filter each complete event as it passes.
    Sse(SseRewriter),
}

impl ToolsListFilter {
    pub fn pending() -> Self {
        ToolsListFilter::Pending
    }

    /// The filter for a response, or `None` when it carries no `tools/list` result.
    pub fn for_response(status: u16, content_type: &str) -> Option<Self> {
        if status != 200 {
            return None;
        }
        let ct = content_type.to_ascii_lowercase();
        if ct.starts_with("text/event-stream") {
            Some(ToolsListFilter::Sse(SseRewriter::default()))
        } else if ct.starts_with("application/json") {
            Some(ToolsListFilter::Json(Vec::new()))
        } else {
            None
        }
    }

    /// Feeds a body chunk; `rewrite` returns a replacement for a message (or `None` to keep
    /// it). Returns what to send now, or `Err` when the response is too large to rewrite.
    pub fn push(
        &mut self,
        chunk: &[u8],
        end: bool,
        rewrite: &mut dyn FnMut(&Value) -> Option<Value>,
    ) -> Result<Vec<u8>, String> {
        let held = match self {
            ToolsListFilter::Pending => 0,
            ToolsListFilter::Json(buf) => buf.len(),
            ToolsListFilter::Sse(r) => r.pending_len(),
        };
        if held + chunk.len() > MAX_HELD_BYTES {
            return Err(format!("tools/list response over {MAX_HELD_BYTES} bytes cannot be filtered"));
        }
        Ok(self.push_unchecked(chunk, end, rewrite))
    }

    fn push_unchecked(&mut self, chunk: &[u8], end: bool, rewrite: &mut dyn FnMut(&Value) -> Option<Value>) -> Vec<u8> {
        match self {
            ToolsListFilter::Pending => chunk.to_vec(),
            ToolsListFilter::Json(buf) => {
                buf.extend_from_slice(chunk);
                if !end {
                    return Vec::new();
                }
                let whole = std::mem::take(buf);
                match serde_json::from_slice::<Value>(&whole).ok().and_then(|m| rewrite(&m)) {
                    Some(filtered) => serde_json::to_vec(&filtered).unwrap_or(whole),
                    None => whole,
                }
            }
            ToolsListFilter::Sse(r) => {
                let mut transform = |data: &str| {
                    let msg: Value = serde_json::from_str(data).ok()?;
                    rewrite(&msg).map(|m| m.to_string())
                };
                let mut out = r.push(chunk, &mut transform);
                if end {
                    out.extend(r.finish());
                }
                out
            }
        }
    }
}
