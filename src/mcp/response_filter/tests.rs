use super::*;
use crate::mcp::tools_list;

const CAP: usize = 1 << 20;
const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

/// The tools list of the tests: `secret` must never reach the caller.
const LIST: &str = "{\"jsonrpc\":\"2.0\", \"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"z\":{},\"a\":{}}}},\n {\"name\":\"secret\"}]}}";
const FILTERED: &str = "{\"jsonrpc\":\"2.0\", \"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"z\":{},\"a\":{}}}}]}}";

fn filter(status: u16, content_type: Option<&str>, content_encoding: Option<&str>, cap: usize) -> ResponseFilter {
    ResponseFilter::new(Value::from(1), "corr-1", UpstreamHead { status, content_type, content_encoding }, cap)
}

/// The gateway's rewrite for a `tools/list` call: hide `secret`.
fn hide_secret(msg: &[u8]) -> Rewrite {
    match tools_list::filter_raw(msg, &mut |t| t["name"] != "secret") {
        Ok(Some(bytes)) => Rewrite::Replace(bytes),
        Ok(None) => Rewrite::Keep,
        Err(_) => Rewrite::Fail,
    }
}

/// Runs `body` through `f` in the given pieces (the last one is `end`).
fn run(mut f: ResponseFilter, pieces: &[&[u8]]) -> (String, Option<String>) {
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(f.push(piece, i + 1 == pieces.len(), &mut hide_secret));
    }
    (String::from_utf8(out).unwrap(), f.take_failure())
}

fn whole(f: ResponseFilter, body: &str) -> (String, Option<String>) {
    run(f, &[body.as_bytes()])
}

/// The error answer, checked for its shape; returns `data.message`.
fn error_reason(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 1);
    assert_eq!(v["error"]["code"], -32603);
    assert_eq!(v["error"]["message"], FAILURE_MESSAGE);
    assert_eq!(v["error"]["data"]["code"], "PROVIDER_ERROR");
    assert_eq!(v["error"]["data"]["corr_id"], "corr-1");
    v["error"]["data"]["message"].as_str().unwrap().to_string()
}

fn sse_error_reason(body: &str) -> String {
    let data = body.strip_prefix("event: message\ndata: ").and_then(|d| d.strip_suffix("\n\n"));
    error_reason(data.unwrap_or_else(|| panic!("not one SSE error event: {body:?}")))
}

#[test]
fn json_lists_are_filtered_byte_faithfully_at_every_split() {
    let bytes = LIST.as_bytes();
    for i in 0..=bytes.len() {
        let (out, failure) = run(filter(200, Some(JSON), None, CAP), &[&bytes[..i], &bytes[i..]]);
        assert_eq!(out, FILTERED, "split at {i}");
        assert_eq!(failure, None);
    }
    let pieces: Vec<&[u8]> = bytes.chunks(1).chain([&b""[..]]).collect();
    assert_eq!(run(filter(200, Some("Application/JSON; charset=utf-8"), Some("identity"), CAP), &pieces).0, FILTERED);
}

#[test]
fn json_bodies_are_held_until_the_end() {
    let mut f = filter(200, Some(JSON), None, CAP);
    assert!(f.push(&LIST.as_bytes()[..10], false, &mut hide_secret).is_empty());
    assert_eq!(f.push(&LIST.as_bytes()[10..], true, &mut hide_secret), FILTERED.as_bytes());
    assert!(f.push(b"more", true, &mut hide_secret).is_empty(), "nothing after the end");
}

/// A stream with a priming event, a comment, a notification, the list in CRLF lines and an
/// unnamed-event response after it.
fn sse_stream() -> (String, String) {
    let note = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"b\":1,\"a\":2}}";
    let head = format!("id: 0\ndata:\n\n: keep-alive\n\nevent: message\nid: 1\ndata: {note}\n\n");
    let list = LIST.replace('\n', "\r\ndata: ");
    let input = format!("{head}event: message\r\nid: 2\r\ndata: {list}\r\n\r\ndata: {{\"id\":9,\"result\":{{}}}}\n\n");
    let expected = format!("{head}event: message\nid: 2\ndata: {FILTERED}\n\ndata: {{\"id\":9,\"result\":{{}}}}\n\n");
    (input, expected)
}

#[test]
fn sse_lists_are_filtered_and_other_events_pass_unchanged_at_every_split() {
    let (input, expected) = sse_stream();
    let bytes = input.as_bytes();
    for i in 0..=bytes.len() {
        for j in (i..=bytes.len()).step_by(7) {
            let (out, failure) = run(filter(200, Some(SSE), None, CAP), &[&bytes[..i], &bytes[i..j], &bytes[j..]]);
            assert_eq!(out, expected, "split at {i}/{j}");
            assert_eq!(failure, None);
        }
    }
    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run(filter(200, Some(SSE), None, CAP), &pieces).0, expected);
}

#[test]
fn sse_events_leave_as_they_complete() {
    let mut f = filter(200, Some(SSE), None, CAP);
    let note = "data: {\"method\":\"notifications/message\"}\n\n";
    assert_eq!(f.push(format!("{note}data: {{\"id\":1,").as_bytes(), false, &mut hide_secret), note.as_bytes());
    assert_eq!(f.push(b"\"result\":{}}\n\n", false, &mut hide_secret), b"data: {\"id\":1,\"result\":{}}\n\n");
    assert!(f.push(b"", true, &mut hide_secret).is_empty());
}

#[test]
fn compressed_bodies_are_replaced_by_an_error() {
    let (out, failure) = whole(filter(200, Some(JSON), Some("gzip"), CAP), "\x1f\u{8b}\u{8}");
    assert!(error_reason(&out).contains("gzip"));
    assert!(failure.is_some());
    let (out, _) = whole(filter(200, Some(SSE), Some("identity, br"), CAP), "data: {}\n\n");
    assert!(sse_error_reason(&out).contains("br"));
    assert_eq!(filter(200, Some(JSON), Some("gzip"), CAP).content_type(), None);
}

#[test]
fn unknown_content_types_with_a_body_are_replaced_by_a_json_error() {
    for ct in [Some("text/plain"), None, Some("application/json-seq"), Some("application/json, text/html")] {
        let f = filter(200, ct, None, CAP);
        assert_eq!(f.content_type(), Some("application/json"), "{ct:?}");
        let (out, _) = whole(f, LIST);
        assert!(error_reason(&out).contains("content type"), "{ct:?}");
        let (out, failure) = run(filter(202, ct, None, CAP), &[b"", b""]);
        assert_eq!((out.as_str(), failure), ("", None), "an empty body stays empty ({ct:?})");
    }
}

#[test]
fn a_stream_ending_inside_an_event_keeps_the_checked_events_then_errs() {
    let note = "data: {\"method\":\"notifications/progress\"}\n\n";
    for tail in
        ["data: {\"id\":1,\"result\":{\"tools\":[]}}", "data: {\"id\":1,\"result\":{\"tools\":[]}}\n", "event: x"]
    {
        let (out, failure) = whole(filter(200, Some(SSE), None, CAP), &format!("{note}{tail}"));
        let rest = out.strip_prefix(note).unwrap_or_else(|| panic!("{out}"));
        assert!(sse_error_reason(rest).contains("ended inside an event"), "{tail:?}");
        assert!(failure.is_some());
    }
}

#[test]
fn invalid_json_is_replaced_by_an_error() {
    for body in ["{\"result\":{\"tools\":[{\"name\":\"secret\"}]", "not json", "{\"a\":1} {\"b\":2}"] {
        let (out, _) = whole(filter(200, Some(JSON), None, CAP), body);
        assert!(error_reason(&out).contains("not valid JSON"), "{body}");
    }
    let (out, _) = whole(filter(200, Some(SSE), None, CAP), "data: ok\n\n");
    assert!(sse_error_reason(&out).contains("not valid JSON"));
    // Valid JSON the rewrite cannot handle (a batch, a duplicated result) fails too.
    let dup = "{\"result\":{\"tools\":[]},\"result\":{\"tools\":[{\"name\":\"secret\"}]}}";
    for body in [format!("[{LIST}]"), dup.to_string()] {
        let (out, _) = whole(filter(200, Some(JSON), None, CAP), &body);
        assert!(error_reason(&out).contains("can rewrite"), "{out}");
        let (out, _) = whole(filter(200, Some(SSE), None, CAP), &format!("data: {}\n\n", body.replace('\n', " ")));
        assert!(sse_error_reason(&out).contains("can rewrite"), "{out}");
    }
}

#[test]
fn bodies_over_the_cap_are_cut_off_with_an_error() {
    let cap = LIST.len() - 1;
    let mut f = filter(200, Some(JSON), None, cap);
    assert!(f.push(&LIST.as_bytes()[..cap], false, &mut hide_secret).is_empty());
    let out = f.push(&LIST.as_bytes()[cap..], false, &mut hide_secret);
    assert!(error_reason(std::str::from_utf8(&out).unwrap()).contains("larger than"));
    assert!(f.push(b"more", true, &mut hide_secret).is_empty(), "the rest is dropped, not held");

    let note = "data: {\"method\":\"notifications/progress\"}\n\n";
    let mut f = filter(200, Some(SSE), None, 64);
    let out = f.push(format!("{note}data: {}", "x".repeat(100)).as_bytes(), false, &mut hide_secret);
    let out = String::from_utf8(out).unwrap();
    assert!(sse_error_reason(out.strip_prefix(note).unwrap()).contains("larger than"));
    assert!(f.push(b"\n\n", true, &mut hide_secret).is_empty());
    // Many small events pass a small cap: only one event is ever held.
    let stream = note.repeat(100);
    assert_eq!(whole(filter(200, Some(SSE), None, 64), &stream).0, stream);
}

#[test]
fn error_statuses_with_a_jsonrpc_error_pass_unchanged() {
    let body = "{\"jsonrpc\":\"2.0\", \"id\":1,\"error\":{\"code\":-32601,\"message\":\"no such method\"}}";
    assert_eq!(whole(filter(404, Some(JSON), None, CAP), body), (body.to_string(), None));
    let ev = format!("data: {body}\n\n");
    assert_eq!(whole(filter(500, Some(SSE), None, CAP), &ev), (ev.clone(), None));
}

#[test]
fn a_failing_rewrite_is_replaced_by_an_error() {
    let mut f = filter(200, Some(JSON), None, CAP);
    let out = f.push(b"{\"id\":1}", true, &mut |_| Rewrite::Fail);
    assert!(error_reason(std::str::from_utf8(&out).unwrap()).contains("can rewrite"));
}

#[test]
fn bodiless_statuses_are_left_alone() {
    let mut f = filter(204, Some(JSON), Some("gzip"), CAP);
    assert!(!f.reads_body());
    assert_eq!(f.content_type(), None);
    assert!(f.push(b"", true, &mut |_| Rewrite::Fail).is_empty());
    assert!(filter(200, Some(JSON), None, CAP).reads_body());
}

#[test]
fn a_dropped_message_leaves_an_event_stream_but_fails_a_json_body() {
    let drop_requests = |msg: &[u8]| {
        if serde_json::from_slice::<Value>(msg).is_ok_and(|v| v.get("method").is_some()) {
            Rewrite::Drop
        } else {
            Rewrite::Keep
        }
    };
    let stream = "data: {\"method\":\"sampling/createMessage\",\"id\":0}\n\ndata: {\"id\":1,\"result\":{}}\n\n";
    let mut f = filter(200, Some(SSE), None, CAP);
    let out = f.push(stream.as_bytes(), true, &mut { drop_requests });
    assert_eq!(String::from_utf8(out).unwrap(), "data: {\"id\":1,\"result\":{}}\n\n");
    assert_eq!(f.take_failure(), None);
    let mut f = filter(200, Some(JSON), None, CAP);
    let out = f.push(b"{\"method\":\"roots/list\",\"id\":0}", true, &mut { drop_requests });
    let out = String::from_utf8(out).unwrap();
    assert!(error_reason(&out).contains("not a JSON-RPC message"), "{out}");
}
