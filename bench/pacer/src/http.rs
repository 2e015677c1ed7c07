//! HTTP/1.1 response framing over a byte buffer: enough to find where one response ends on a
//! keep-alive connection (Content-Length, chunked with trailers, or read-until-close) and the
//! few headers the benchmark reads. The parser is re-run on the whole buffer as bytes arrive;
//! responses here are small, so that costs nothing worth optimising.

/// Largest response head (status line + headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (1xx, 204, 304, or `Content-Length: 0`-like statuses).
    Empty,
    Length(usize),
    Chunked,
    /// Neither length nor chunked: the body runs until the server closes.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub framing: Framing,
    /// The server will close the connection after this response.
    pub close: bool,
    /// `Mcp-Session-Id`, if any.
    pub session_id: Option<String>,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// A complete final (non-1xx) response at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub head: Head,
    /// Bytes of the whole response, any skipped 1xx interim responses included.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses the head at the start of `buf`. `Ok(None)`: not all of it has arrived yet.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ParseError> {
    let Some(end) = find(&buf[..buf.len().min(MAX_HEAD)], b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD { Err(ParseError("response head too large")) } else { Ok(None) };
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ParseError("not an HTTP/1.x status line"));
    }
    let status: u16 =
        parts.next().filter(|s| s.len() == 3).and_then(|s| s.parse().ok()).ok_or(ParseError("bad status code"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    let mut session_id = None;
    let mut content_type = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError("header line without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| ParseError("bad content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ParseError("conflicting content-length"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.rsplit(',').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("mcp-session-id") {
            session_id = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_string());
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3).
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        close = true;
    }
    Ok(Some(Head { status, len: end + 4, framing, close, session_id, content_type }))
}

/// Length of the chunked body at the start of `buf` (trailers included). `Ok(None)`: incomplete.
pub fn chunked_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else {
            return if buf.len() - pos > 1024 { Err(ParseError("chunk size line too long")) } else { Ok(None) };
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).map_err(|_| ParseError("bad chunk size line"))?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| ParseError("bad chunk size"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers: header lines up to an empty line.
            loop {
                let Some(eol) = find(&buf[pos..], b"\r\n") else { return Ok(None) };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let need = pos.checked_add(size).and_then(|n| n.checked_add(2)).ok_or(ParseError("chunk too large"))?;
        if buf.len() < need {
            return Ok(None);
        }
        if &buf[need - 2..need] != b"\r\n" {
            return Err(ParseError("chunk not followed by CRLF"));
        }
        pos = need;
    }
}

/// Parses one complete final response at the start of `buf`, skipping 1xx interim responses.
/// `eof`: the peer has closed, which completes a read-until-close body. `Ok(None)`: more
/// bytes are needed.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Response>, ParseError> {
    let mut start = 0;
    loop {
        let Some(head) = parse_head(&buf[start..])? else { return Ok(None) };
        let body = start + head.len;
        if (100..200).contains(&head.status) && head.status != 101 {
            start = body;
            continue;
        }
        let end = match head.framing {
            Framing::Empty => Some(body),
            Framing::Length(n) => Some(body + n).filter(|&e| e <= buf.len()),
            Framing::Chunked => chunked_len(&buf[body..])?.map(|n| body + n),
            Framing::UntilClose => eof.then_some(buf.len()),
        };
        return Ok(end.map(|len| Response { head, len }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\nhello";

    #[test]
    fn content_length_response_is_complete_only_with_its_whole_body() {
        for cut in 0..OK.len() {
            assert_eq!(parse_response(&OK[..cut], false), Ok(None), "cut at {cut}");
        }
        let r = parse_response(OK, false).unwrap().unwrap();
        assert_eq!((r.head.status, r.len, r.head.close), (200, OK.len(), false));
        assert_eq!(r.head.content_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn pipelined_bytes_after_a_response_are_not_consumed() {
        let mut two = OK.to_vec();
        two.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let r = parse_response(&two, false).unwrap().unwrap();
        assert_eq!(r.len, OK.len());
        let r2 = parse_response(&two[r.len..], false).unwrap().unwrap();
        assert_eq!((r2.head.status, r2.len), (404, two.len() - OK.len()));
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let msg =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nx-t: 1\r\n\r\n";
        for cut in 0..msg.len() {
            assert_eq!(parse_response(&msg[..cut], false), Ok(None), "cut at {cut}");
        }
        let r = parse_response(msg, false).unwrap().unwrap();
        assert_eq!((r.head.framing, r.len), (Framing::Chunked, msg.len()));
        let plain = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(parse_response(plain, false).unwrap().unwrap().len, plain.len());
    }

    #[test]
    fn chunked_wins_over_content_length() {
        let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(parse_response(msg, false).unwrap().unwrap().len, msg.len());
    }

    #[test]
    fn bad_chunk_framing_is_an_error() {
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n";
        assert!(parse_response(msg, false).is_err());
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_response(msg, false).is_err());
    }

    #[test]
    fn interim_responses_are_skipped_and_counted_in_the_length() {
        let msg = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
        let r = parse_response(msg, false).unwrap().unwrap();
        assert_eq!((r.head.status, r.len), (202, msg.len()));
    }

    #[test]
    fn no_framing_reads_until_close() {
        let msg = b"HTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(parse_response(msg, false), Ok(None));
        let r = parse_response(msg, true).unwrap().unwrap();
        assert!(r.head.close);
        assert_eq!(r.len, msg.len());
        // 204 has no body whatever the headers say.
        let r = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(r.head.framing, Framing::Empty);
    }

    #[test]
    fn connection_close_http10_and_session_header() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(h.close);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(h.close);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(!h.close);
        let h =
            parse_head(b"HTTP/1.1 200 OK\r\nMcp-Session-Id:  abc-123 \r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.session_id.as_deref(), Some("abc-123"));
    }

    #[test]
    fn malformed_heads_are_errors() {
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD]).is_err());
    }
}
