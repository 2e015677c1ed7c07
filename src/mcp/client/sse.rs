//! Incremental parser for `text/event-stream` bodies.
//!
//! MCP servers answer POSTs (and the optional GET listening stream) with Server-Sent Events.
//! Network reads split the stream at arbitrary byte positions — in the middle of a line, a
//! UTF-8 sequence or a `\r\n` pair — so the parser buffers raw bytes and only decodes
//! complete lines. It follows the WHATWG event-stream rules that matter for MCP: `data:`
//! lines are joined with `\n`, comments (`:`) are ignored, `id`/`retry` are remembered or
//! ignored, and an event with empty data is not dispatched (SDK servers send an empty
//! "priming" event carrying only an id).

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `"message"` when the server did not name one.
    pub event: String,
    /// All `data:` lines of the event joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream (kept for diagnostics / resumption).
    pub id: Option<String>,
}

/// Byte-oriented incremental SSE parser; feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// A line just ended with `\r`; a following `\n` belongs to the same terminator.
    after_cr: bool,
    /// Accumulated `data` of the event being built.
    data: String,
    /// Whether any `data:` line was seen for the event being built (data may be empty).
    has_data: bool,
    /// The `event:` field of the event being built.
    event: Option<String>,
    /// Last event id (persists across events, as the spec says).
    last_id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the body and returns every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            match b {
                b'\n' if self.after_cr => {
                    // Second half of a `\r\n` split across (or within) chunks: already handled.
                    self.after_cr = false;
                }
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.process_line(&line) {
                        out.push(ev);
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
        out
    }

    /// Signals end of stream. Per the spec an unterminated trailing event is discarded, but
    /// some servers close right after the last `data:` line, so a pending event with data is
    /// still returned (a JSON-RPC response must not be lost to a missing blank line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if let Some(ev) = self.process_line(&line) {
                return Some(ev);
            }
        }
        self.dispatch()
    }

    fn process_line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None; // comment / keep-alive
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            // An id containing NUL must be ignored per the spec.
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields: nothing to do for a request/response client
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        // Spec: an event whose data buffer is empty is not dispatched (SDK "priming" events).
        let had_data = std::mem::replace(&mut self.has_data, false);
        if !had_data || self.data.is_empty() {
            self.data.clear();
            return None;
        }
        Some(SseEvent {
            event: event.filter(|e| !e.is_empty()).unwrap_or_else(|| "message".to_string()),
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str =
        ": keep-alive\r\nid: 1\r\ndata: \r\n\r\nevent: message\nid: 2\ndata: {\"a\":\ndata: \"é\"}\nretry: 10\n\n\
                          data:no-space\r\rdata: last\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent { event: "message".into(), data: "{\"a\":\n\"é\"}".into(), id: Some("2".into()) },
            SseEvent { event: "message".into(), data: "no-space".into(), id: Some("2".into()) },
            SseEvent { event: "message".into(), data: "last".into(), id: Some("2".into()) },
        ]
    }

    #[test]
    fn whole_stream() {
        let mut p = SseParser::new();
        let mut got = p.feed(STREAM.as_bytes());
        got.extend(p.finish());
        assert_eq!(got, expected());
    }

    #[test]
    fn split_at_every_byte_position() {
        let bytes = STREAM.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut p = SseParser::new();
                let mut got = p.feed(&bytes[..i]);
                got.extend(p.feed(&bytes[i..j]));
                got.extend(p.feed(&bytes[j..]));
                got.extend(p.finish());
                assert_eq!(got, expected(), "split at {i}/{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for b in STREAM.as_bytes() {
            got.extend(p.feed(std::slice::from_ref(b)));
        }
        got.extend(p.finish());
        assert_eq!(got, expected());
    }

    #[test]
    fn unterminated_trailing_event_is_delivered() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: {\"id\":1}").is_empty());
        let ev = p.finish();
        assert_eq!(ev.map(|e| e.data), Some("{\"id\":1}".to_string()));
    }

    #[test]
    fn named_event_and_field_without_colon() {
        let mut p = SseParser::new();
        let got = p.feed(b"event: ping\ndata\ndata\n\n");
        assert_eq!(got, vec![SseEvent { event: "ping".into(), data: "\n".into(), id: None }]);
    }
}
