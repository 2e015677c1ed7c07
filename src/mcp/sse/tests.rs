use super::*;

const STREAM: &str =
    ": keep-alive\r\nid: 1\r\ndata: \r\n\r\nevent: message\nid: 2\ndata: {\"a\":\ndata: \"é\"}\nretry: 10\n\n\
                      data:no-space\r\rdata: last\n\n";

fn ev(event: &str, data: &str, id: Option<&str>) -> (String, String, Option<String>) {
    (event.into(), data.into(), id.map(String::from))
}

fn expected() -> Vec<(String, String, Option<String>)> {
    vec![
        ev("message", "{\"a\":\n\"é\"}", Some("2")),
        ev("message", "no-space", Some("2")),
        ev("message", "last", Some("2")),
    ]
}

/// Feeds `pieces`, then checks that the items and tail give back the input exactly and
/// returns the events (the lenient tail event included) without their raw bytes.
fn parse(pieces: &[&[u8]]) -> (Vec<(String, String, Option<String>)>, SseTail) {
    let mut p = SseParser::new();
    let mut bytes = Vec::new();
    let mut events = Vec::new();
    for piece in pieces {
        for item in p.feed(piece) {
            match item {
                SseItem::Event(e) => {
                    bytes.extend_from_slice(&e.raw);
                    events.push((e.event, e.data, e.id));
                }
                SseItem::Other(raw) => bytes.extend_from_slice(&raw),
            }
        }
    }
    let tail = p.finish();
    bytes.extend_from_slice(&tail.raw);
    assert_eq!(bytes, pieces.concat(), "items reproduce the input");
    if let Some(e) = tail.event.clone() {
        events.push((e.event, e.data, e.id));
    }
    (events, tail)
}

#[test]
fn whole_stream() {
    let (got, tail) = parse(&[STREAM.as_bytes()]);
    assert_eq!(got, expected());
    assert_eq!(tail, SseTail::default());
}

#[test]
fn split_at_every_byte_position() {
    let bytes = STREAM.as_bytes();
    for i in 0..=bytes.len() {
        for j in i..=bytes.len() {
            let (got, tail) = parse(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
            assert_eq!(got, expected(), "split at {i}/{j}");
            assert!(!tail.unterminated, "split at {i}/{j}");
        }
    }
}

#[test]
fn byte_by_byte() {
    let pieces: Vec<&[u8]> = STREAM.as_bytes().chunks(1).collect();
    assert_eq!(parse(&pieces).0, expected());
}

#[test]
fn event_raw_bytes_include_the_blank_line() {
    let mut p = SseParser::new();
    let items = p.feed(b": c\n\nid: 9\ndata: x\r\n\r\ndata: y\r\r");
    let raws: Vec<&[u8]> = items
        .iter()
        .map(|i| match i {
            SseItem::Event(e) => e.raw.as_slice(),
            SseItem::Other(raw) => raw.as_slice(),
        })
        .collect();
    assert_eq!(raws, [&b": c\n\n"[..], b"id: 9\ndata: x\r\n\r\n", b"data: y\r\r"]);
    assert!(matches!(&items[1], SseItem::Event(e) if e.id.as_deref() == Some("9") && e.data == "x"));
}

#[test]
fn a_crlf_split_after_the_blank_line_does_not_hold_the_event_back() {
    let mut p = SseParser::new();
    let items = p.feed(b"data: x\r\n\r");
    assert!(matches!(&items[..], [SseItem::Event(e)] if e.raw == b"data: x\r\n\r"));
    assert_eq!(p.feed(b"\ndata: y\n\n").first(), Some(&SseItem::Other(b"\n".to_vec())));
}

#[test]
fn unterminated_trailing_event_is_reported_with_its_event() {
    let mut p = SseParser::new();
    assert!(p.feed(b"data: {\"id\":1}").is_empty());
    let tail = p.finish();
    assert_eq!(tail.event.map(|e| e.data), Some("{\"id\":1}".to_string()));
    assert!(tail.unterminated);
    assert_eq!(tail.raw, b"data: {\"id\":1}");

    let mut p = SseParser::new();
    assert!(p.feed(b"data: a\n").is_empty());
    let tail = p.finish();
    assert_eq!(tail.event.map(|e| e.data), Some("a".to_string()));
    assert!(tail.unterminated, "a field line without its blank line is cut off");
}

#[test]
fn comment_lines_pass_without_waiting_for_a_blank_line() {
    let mut p = SseParser::new();
    assert_eq!(p.feed(b": ping\n: pi"), vec![SseItem::Other(b": ping\n".to_vec())]);
    assert_eq!(p.feed(b"ng\n"), vec![SseItem::Other(b": ping\n".to_vec())]);
    assert_eq!(p.finish(), SseTail::default());
    let mut p = SseParser::new();
    assert!(p.feed(b": ping").is_empty());
    assert!(p.finish().unterminated, "a partial line is cut off, even a comment");
}

#[test]
fn named_event_and_field_without_colon() {
    let (got, _) = parse(&[b"event: ping\ndata\ndata\n\n"]);
    assert_eq!(got, vec![ev("ping", "\n", None)]);
}

#[test]
fn a_leading_bom_is_dropped_even_when_split() {
    let stream = b"\xEF\xBB\xBFdata: x\n\n\xEF\xBB\xBFdata: y\n\n";
    for i in 0..=stream.len() {
        let (got, _) = parse(&[&stream[..i], &stream[i..]]);
        // Only the first BOM is special; the second makes an unknown field name.
        assert_eq!(got, vec![ev("message", "x", None)], "split at {i}");
    }
}

#[test]
fn ids_with_nul_are_ignored_and_empty_events_not_dispatched() {
    let (got, _) = parse(&[b"id: 1\n\nid: a\0b\ndata: x\n\nevent: e\n\ndata: y\n\n"]);
    assert_eq!(got, vec![ev("message", "x", Some("1")), ev("message", "y", Some("1"))]);
}

#[test]
fn invalid_utf8_is_replaced_as_clients_do() {
    let (got, _) = parse(&[b"data: \xE2\x82\n\n"]);
    assert_eq!(got, vec![ev("message", "\u{FFFD}", None)]);
}
