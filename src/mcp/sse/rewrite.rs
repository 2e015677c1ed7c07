//! Rewriting an event stream event by event, strictly: every event is shown to a transform
//! as soon as it completes, untouched events leave byte-identical, and a stream that ends
//! inside an event is an error rather than a tail passed on unchecked.

use super::{SseEvent, SseItem, SseParser};

/// Splits a byte stream into events and rewrites each one's `data`.
#[derive(Debug, Default)]
pub struct SseRewriter {
    parser: SseParser,
    /// The last event was replaced and its raw bytes ended with a CR: the LF that may follow
    /// belonged to it, and the replacement already ends its own blank line.
    replaced_cr: bool,
}

/// What a transform decides for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventEdit {
    /// Pass it on byte for byte.
    Keep,
    /// Replace its data (its other fields stay).
    Replace(Vec<u8>),
    /// Leave it out of the stream entirely.
    Drop,
}

/// A transform's answer for one event: `Err(reason)` stops the stream.
pub type EventRewrite = Result<EventEdit, String>;

impl SseRewriter {
    /// Feeds a chunk and appends the bytes ready to send to `out`. `transform` gets each
    /// complete event and keeps, replaces or drops it, or returns `Err(reason)` to stop: then
    /// `out` holds what was checked before that event, and the rest of the chunk is dropped.
    pub fn push(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<u8>,
        transform: &mut dyn FnMut(&SseEvent) -> EventRewrite,
    ) -> Result<(), String> {
        for item in self.parser.feed(chunk) {
            let replaced_cr = std::mem::take(&mut self.replaced_cr);
            match item {
                SseItem::Other(raw) if replaced_cr && raw == b"\n" => {}
                SseItem::Other(raw) => out.extend_from_slice(&raw),
                SseItem::Event(ev) => match transform(&ev)? {
                    EventEdit::Keep => out.extend_from_slice(&ev.raw),
                    EventEdit::Replace(data) => {
                        out.extend_from_slice(&replaced(&ev.raw, &data));
                        self.replaced_cr = ev.raw.ends_with(b"\r");
                    }
                    EventEdit::Drop => self.replaced_cr = ev.raw.ends_with(b"\r"),
                },
            }
        }
        Ok(())
    }

    /// Bytes held back waiting for the end of an event.
    pub fn pending_len(&self) -> usize {
        self.parser.pending_len()
    }

    /// End of stream: a tail of complete comment lines is passed on; a cut-off event is
    /// `Err` (its data may be only part of a message, so it cannot be checked).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let tail = self.parser.finish();
        if tail.unterminated {
            return Err("the event stream ended inside an event".into());
        }
        out.extend_from_slice(&tail.raw);
        Ok(())
    }
}

/// The event `raw` with its `data` lines replaced by `data`: the other lines (`event`, `id`,
/// `retry`, comments) stay as they were, the new data lines follow them, then a blank line.
fn replaced(raw: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + data.len());
    for line in lines(raw) {
        let is_data = line.strip_prefix(b"data").is_some_and(|rest| rest.is_empty() || rest[0] == b':');
        if !line.is_empty() && !is_data {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    for line in lines(data) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// The lines of `raw` without their terminators (LF, CR or CRLF); the text after the last
/// terminator is a line too, even when empty (so `"a\n"` is `["a", ""]`).
fn lines(raw: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(p) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        out.push(&rest[..p]);
        let skip = if rest[p] == b'\r' && rest.get(p + 1) == Some(&b'\n') { 2 } else { 1 };
        rest = &rest[p + skip..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(_: &SseEvent) -> EventRewrite {
        Ok(EventEdit::Keep)
    }

    fn run(stream: &[u8], chunk: usize, transform: &mut dyn FnMut(&SseEvent) -> EventRewrite) -> Vec<u8> {
        let mut r = SseRewriter::default();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            r.push(piece, &mut out, transform).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn events_split_across_chunks_are_rewritten_whole() {
        let mut f = |ev: &SseEvent| {
            Ok(if ev.data.contains("tools") { EventEdit::Replace(b"{\"x\":1}".to_vec()) } else { EventEdit::Keep })
        };
        let stream = b"event: message\nid: 7\ndata: {\"tools\":\ndata: []}\n\ndata: ping\n\n: comment\n\n";
        for chunk in 1..=stream.len() {
            assert_eq!(
                String::from_utf8(run(stream, chunk, &mut f)).unwrap(),
                "event: message\nid: 7\ndata: {\"x\":1}\n\ndata: ping\n\n: comment\n\n",
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn untouched_streams_are_byte_identical_at_every_split() {
        let stream = b"\xEF\xBB\xBF: hi\r\nid: 1\r\ndata:\r\n\r\nevent: x\rdata:  a \r\rretry: 5\ndata\n\n: tail\n";
        for i in 0..=stream.len() {
            let mut r = SseRewriter::default();
            let mut out = Vec::new();
            r.push(&stream[..i], &mut out, &mut keep).unwrap();
            r.push(&stream[i..], &mut out, &mut keep).unwrap();
            r.finish(&mut out).unwrap();
            assert_eq!(out, stream, "split at {i}");
        }
    }

    #[test]
    fn complete_events_leave_immediately_and_a_cut_off_event_fails() {
        let mut r = SseRewriter::default();
        let mut out = Vec::new();
        r.push(b"data: a\n\ndata: b", &mut out, &mut keep).unwrap();
        assert_eq!(out, b"data: a\n\n");
        assert!(r.finish(&mut out).is_err());
        assert_eq!(out, b"data: a\n\n");
    }

    #[test]
    fn a_refused_event_stops_the_stream_after_the_checked_ones() {
        let mut r = SseRewriter::default();
        let mut out = Vec::new();
        let mut f = |ev: &SseEvent| if ev.data == "bad" { Err("no".to_string()) } else { Ok(EventEdit::Keep) };
        assert_eq!(r.push(b": k\n\ndata: ok\n\ndata: bad\n\ndata: late\n\n", &mut out, &mut f), Err("no".into()));
        assert_eq!(out, b": k\n\ndata: ok\n\n");
    }

    #[test]
    fn a_dropped_event_leaves_nothing_even_split_inside_its_last_crlf() {
        let mut f = |ev: &SseEvent| Ok(if ev.data == "gone" { EventEdit::Drop } else { EventEdit::Keep });
        let stream = b"data: a\n\nid: 3\r\ndata: gone\r\n\r\ndata: b\n\n";
        for chunk in 1..=stream.len() {
            assert_eq!(run(stream, chunk, &mut f), b"data: a\n\ndata: b\n\n", "chunk {chunk}");
        }
    }

    #[test]
    fn a_replaced_event_split_inside_its_last_crlf_gets_no_extra_blank_line() {
        let mut f = |_: &SseEvent| Ok(EventEdit::Replace(b"new".to_vec()));
        let mut r = SseRewriter::default();
        let mut out = Vec::new();
        r.push(b"data: old\r\n\r", &mut out, &mut f).unwrap();
        r.push(b"\n: c\r\n", &mut out, &mut f).unwrap();
        r.finish(&mut out).unwrap();
        assert_eq!(out, b"data: new\n\n: c\r\n");
    }

    #[test]
    fn replacement_keeps_other_fields_and_splits_new_lines() {
        let raw = b": note\r\nevent: message\r\ndata: {\r\nid: 4\r\ndata: }\r\nretry: 9\r\n\r\n";
        assert_eq!(
            String::from_utf8(replaced(raw, b"{\n\"a\":1\r\n}")).unwrap(),
            ": note\nevent: message\nid: 4\nretry: 9\ndata: {\ndata: \"a\":1\ndata: }\n\n"
        );
        // `datax:` is another field, not data.
        assert_eq!(replaced(b"datax: 1\ndata: 2\n\n", b"3"), b"datax: 1\ndata: 3\n\n");
        // A trailing newline in the new data is kept (as an empty last data line).
        assert_eq!(replaced(b"data: 2\n\n", b"3\n"), b"data: 3\ndata: \n\n");
    }
}
