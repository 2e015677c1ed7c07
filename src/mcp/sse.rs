//! The one incremental parser for `text/event-stream` bodies, shared by the upstream MCP
//! client (which reads events) and the response filter (which must re-emit untouched events
//! byte for byte).
//!
//! Network reads split a stream anywhere: inside a line, a UTF-8 sequence or a `\r\n` pair.
//! The parser keeps the bytes of the unfinished block and decodes only complete lines. It
//! follows the WHATWG event-stream rules: a leading BOM is dropped; lines end with LF, CR or
//! CRLF; `data:` lines are joined with `\n`; comments (`:`) and `retry` are ignored; an `id`
//! containing NUL is ignored; an event whose data is empty is not dispatched (SDK servers
//! send an empty "priming" event carrying only an id). Parsing exactly like a browser or SDK
//! client matters for the filter: any disagreement (a BOM, a bare CR) would let an event the
//! gateway did not see reach the client.
//!
//! Every input byte ends up in exactly one [`SseItem`] or in the [`SseTail`], in order, so a
//! rewriter that emits the items it keeps reproduces the stream exactly.

pub mod rewrite;
#[cfg(test)]
mod tests;

pub use rewrite::{EventEdit, SseRewriter};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `"message"` when the server did not name one.
    pub event: String,
    /// All `data:` lines of the event joined with `\n` (invalid UTF-8 replaced, as clients do).
    pub data: String,
    /// The last `id:` seen on the stream (kept for diagnostics / resumption).
    pub id: Option<String>,
    /// The event's exact bytes, through its terminating blank line. When that line ends with
    /// a CR that was the last byte of a chunk, a following LF arrives later as its own
    /// [`SseItem::Other`] (the event is not held back waiting for it).
    pub raw: Vec<u8>,
}

/// A finished piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event(SseEvent),
    /// Bytes that dispatch nothing: comment lines, a block without data (a priming event),
    /// a stray blank line, the LF of a CRLF split across chunks.
    Other(Vec<u8>),
}

impl SseItem {
    /// The event, for readers that only care about dispatched events.
    pub fn into_event(self) -> Option<SseEvent> {
        match self {
            SseItem::Event(ev) => Some(ev),
            SseItem::Other(_) => None,
        }
    }
}

/// What was left when the stream ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SseTail {
    /// The bytes after the last finished item (empty when the stream ended on a boundary).
    pub raw: Vec<u8>,
    /// The event a blank line would have dispatched. Some servers close right after the last
    /// `data:` line, so a lenient reader (the upstream client) still delivers it.
    pub event: Option<SseEvent>,
    /// The tail holds a partial line or a field line: an event was cut off. A strict reader
    /// (the response filter) must not pass it on.
    pub unterminated: bool,
}

/// Byte-oriented incremental SSE parser; feed it chunks as they arrive.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the block being built (lines and their terminators).
    raw: Vec<u8>,
    /// Where the current, not yet terminated line starts in `raw`.
    line_start: usize,
    /// The last chunk ended with a CR: a leading LF in the next one completes that CRLF.
    after_cr: bool,
    /// No line processed yet (a BOM may start the first one).
    at_start: bool,
    /// The block has a line other than a comment.
    fields: bool,
    /// Accumulated `data` of the event being built.
    data: String,
    /// Whether any `data:` line was seen for the event being built (data may be empty).
    has_data: bool,
    /// The `event:` field of the event being built.
    event: Option<String>,
    /// Last event id (persists across events, as the spec says).
    last_id: Option<String>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        SseParser {
            raw: Vec::new(),
            line_start: 0,
            after_cr: false,
            at_start: true,
            fields: false,
            data: String::new(),
            has_data: false,
            event: None,
            last_id: None,
        }
    }

    /// Feeds the next chunk of the body and returns every item it finished.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        let mut i = 0;
        if self.after_cr && chunk.first() == Some(&b'\n') {
            // The second half of a CRLF split across chunks.
            i = 1;
            if self.raw.is_empty() {
                out.push(SseItem::Other(vec![b'\n']));
            } else {
                self.raw.push(b'\n');
                self.line_start = self.raw.len();
            }
        }
        if !chunk.is_empty() {
            self.after_cr = false;
        }
        while i < chunk.len() {
            let rest = &chunk[i..];
            let Some(p) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.raw.extend_from_slice(rest);
                break;
            };
            self.raw.extend_from_slice(&rest[..p]);
            let line_end = self.raw.len();
            self.raw.push(rest[p]);
            i += p + 1;
            if rest[p] == b'\r' {
                match chunk.get(i) {
                    Some(b'\n') => {
                        self.raw.push(b'\n');
                        i += 1;
                    }
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let start = std::mem::replace(&mut self.line_start, self.raw.len());
            if let Some(item) = self.end_line(start, line_end) {
                out.push(item);
            }
        }
        // Complete comment lines need no blank line to be final: pass keep-alives on now.
        if !self.fields && self.line_start > 0 {
            let partial = self.raw.split_off(self.line_start);
            self.line_start = 0;
            out.push(SseItem::Other(std::mem::replace(&mut self.raw, partial)));
        }
        out
    }

    /// Bytes held back waiting for the end of a block.
    pub fn pending_len(&self) -> usize {
        self.raw.len()
    }

    /// Signals end of stream and returns what was left; the parser starts over afterwards.
    pub fn finish(&mut self) -> SseTail {
        let (start, end) = (self.line_start, self.raw.len());
        let unterminated = self.fields || start < end;
        if start < end {
            let start = self.skip_bom(start, end);
            if start < end {
                self.field_line(start, end);
            }
        }
        let raw = std::mem::take(&mut self.raw);
        let event = self.take_event(raw.clone());
        *self = SseParser::new();
        SseTail { raw, event, unterminated }
    }

    /// Processes the line `raw[start..end]` (without its terminator).
    fn end_line(&mut self, start: usize, end: usize) -> Option<SseItem> {
        let start = self.skip_bom(start, end);
        if start == end {
            return Some(self.dispatch());
        }
        self.field_line(start, end);
        None
    }

    /// Where the line really starts: after a BOM when it is the stream's first line.
    fn skip_bom(&mut self, start: usize, end: usize) -> usize {
        if std::mem::replace(&mut self.at_start, false) && self.raw[start..end].starts_with(BOM) {
            start + BOM.len()
        } else {
            start
        }
    }

    /// A non-blank line: a comment, or a field of the event being built.
    fn field_line(&mut self, start: usize, end: usize) {
        let line = &self.raw[start..end];
        if line.first() == Some(&b':') {
            return; // comment / keep-alive
        }
        self.fields = true;
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // An id containing NUL must be ignored per the spec.
            b"id" if !value.contains(&0) => self.last_id = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // `retry` and unknown fields: nothing to do for a request/response reader
        }
    }

    /// A blank line: the block is finished.
    fn dispatch(&mut self) -> SseItem {
        let raw = std::mem::take(&mut self.raw);
        self.line_start = 0;
        self.fields = false;
        match self.take_event(Vec::new()) {
            Some(ev) => SseItem::Event(SseEvent { raw, ..ev }),
            None => SseItem::Other(raw),
        }
    }

    /// The event built so far, if it has data; resets the per-event fields either way.
    fn take_event(&mut self, raw: Vec<u8>) -> Option<SseEvent> {
        let event = self.event.take();
        let had_data = std::mem::replace(&mut self.has_data, false);
        let data = std::mem::take(&mut self.data);
        // Spec: an event whose data buffer is empty is not dispatched (SDK "priming" events).
        if !had_data || data.is_empty() {
            return None;
        }
        Some(SseEvent {
            event: event.filter(|e| !e.is_empty()).unwrap_or_else(|| "message".to_string()),
            data,
            id: self.last_id.clone(),
            raw,
        })
    }
}
