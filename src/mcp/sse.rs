//! Incremental Server-Sent Events rewriting. Upstream chunks can split events anywhere; the
//! rewriter holds back only the unfinished tail and hands every complete event to a
//! transform at once, so a stream is never buffered beyond one event.

/// Splits a byte stream into SSE events and rewrites each one's `data`.
#[derive(Default)]
pub struct SseRewriter {
    pending: Vec<u8>,
}

impl SseRewriter {
    /// Feeds a chunk; returns the bytes ready to send. `transform` gets each complete event's
    /// joined `data` and returns a replacement, or `None` to keep the event unchanged.
    pub fn push(&mut self, chunk: &[u8], transform: &mut dyn FnMut(&str) -> Option<String>) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some((end, sep)) = find_event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + sep).collect();
            out.extend_from_slice(&rewrite_event(&event[..end], &event[end..], transform));
        }
        out
    }

    /// Bytes held back waiting for the end of an event.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The unfinished tail at end of stream, unchanged.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// Position of the first blank line ending an event, and the separator's length.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

fn rewrite_event(event: &[u8], sep: &[u8], transform: &mut dyn FnMut(&str) -> Option<String>) -> Vec<u8> {
    let keep = || [event, sep].concat();
    let Ok(text) = std::str::from_utf8(event) else {
        return keep();
    };
    let mut other = Vec::new();
    let mut data = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("data:") {
            Some(d) => data.push(d.strip_prefix(' ').unwrap_or(d)),
            None => other.push(line),
        }
    }
    if data.is_empty() {
        return keep();
    }
    let Some(new_data) = transform(&data.join("\n")) else {
        return keep();
    };
    let mut out = String::with_capacity(event.len());
    for line in other {
        out.push_str(line);
        out.push('\n');
    }
    for line in new_data.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_rewritten_whole() {
        let mut r = SseRewriter::default();
        let mut f = |d: &str| {
            if d.contains("tools") {
                Some("{\"x\":1}".to_string())
            } else {
                None
            }
        };
        let stream = b"event: message\nid: 7\ndata: {\"tools\":\ndata: []}\n\ndata: ping\n\n: comment\n\n";
        let mut out = Vec::new();
        for chunk in stream.chunks(5) {
            out.extend(r.push(chunk, &mut f));
        }
        out.extend(r.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: message\nid: 7\ndata: {\"x\":1}\n\ndata: ping\n\n: comment\n\n"
        );
    }

    #[test]
    fn complete_events_leave_immediately() {
        let mut r = SseRewriter::default();
        let mut f = |_: &str| None;
        assert_eq!(r.push(b"data: a\n\ndata: b", &mut f), b"data: a\n\n");
        assert_eq!(r.finish(), b"data: b");
    }
}
