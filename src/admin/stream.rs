//! `GET /admin/audit/stream`: Server-Sent Events of this instance's audit records as they
//! become durable, one event per record (`id:` = seq, `event: audit`, `data:` the record
//! as chained).
//!
//! - Filters (query string, each optional, exact match): `tenant`, `sub`, `tool`, `outcome`
//!   (`decision.result`). Anything else in the query is a 400.
//! - Resumption: `Last-Event-ID: <seq>` (or `?last_event_id=`) sends every matching record
//!   after that seq — from memory, or from the chain files for older ones — then live ones:
//!   no gap, no duplicate. Without it, only records made after the stream connected.
//! - A consumer that falls `audit.stream.queue` records behind, or whose socket takes
//!   longer than 5 s to accept an event, gets `event: dropped` and the connection ends; it
//!   can resume. The publisher never waits for a consumer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::sync::broadcast::error::RecvError;

use super::error::AdminError;
use crate::audit::{files, reader, AuditLog, Published};
use crate::metrics::METRICS;

/// Keep-alive comment interval (detects closed consumers; keeps proxies from timing out).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Longest one event may take to be written before the consumer counts as slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Records read from the files per round of a resumption.
const BACKFILL_CHUNK: u64 = 5000;

/// A stream request: its filters and resume point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamRequest {
    pub tenant: Option<String>,
    pub sub: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    /// Send records after this seq first.
    pub after: Option<u64>,
}

impl StreamRequest {
    /// From the query string and the `Last-Event-ID` header.
    pub fn parse(query: Option<&str>, last_event_id: Option<&[u8]>) -> Result<StreamRequest, AdminError> {
        let bad = |m: String| AdminError::BadRequest { message: m };
        let mut r = StreamRequest::default();
        let mut after_q = None;
        for (k, v) in url_pairs(query.unwrap_or_default()) {
            let slot = match k.as_str() {
                "tenant" => &mut r.tenant,
                "sub" => &mut r.sub,
                "tool" => &mut r.tool,
                "outcome" => &mut r.outcome,
                "last_event_id" => {
                    after_q = Some(v);
                    continue;
                }
                other => {
                    return Err(bad(format!(
                        "unknown stream parameter {other:?} (tenant, sub, tool, outcome, last_event_id)"
                    )))
                }
            };
            if slot.replace(v).is_some() {
                return Err(bad(format!("stream parameter {k:?} given twice")));
            }
        }
        let header = last_event_id.map(|h| std::str::from_utf8(h).map(|s| s.trim().to_string()));
        let after = match (header, after_q) {
            (Some(Ok(h)), _) => Some(h),
            (Some(Err(_)), _) => return Err(bad("Last-Event-ID is not text".into())),
            (None, q) => q,
        };
        r.after = match after {
            Some(s) => Some(s.parse().map_err(|_| bad(format!("Last-Event-ID must be a record seq, got {s:?}")))?),
            None => None,
        };
        Ok(r)
    }

    /// Confined to `tenant` (a tenant approver's stream): its records only; asking for
    /// another tenant's is 403.
    pub fn confined_to(mut self, tenant: Option<&str>) -> Result<StreamRequest, AdminError> {
        let Some(t) = tenant else { return Ok(self) };
        if self.tenant.as_deref().is_some_and(|asked| asked != t) {
            return Err(AdminError::Forbidden {
                message: "a tenant approver streams only its own tenant's records".into(),
                reasons: vec!["tenant_scope".into()],
            });
        }
        self.tenant = Some(t.to_string());
        Ok(self)
    }

    fn matches(&self, p: &Published) -> bool {
        let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        eq(&self.tenant, &p.tenant)
            && eq(&self.sub, &p.sub)
            && eq(&self.outcome, &p.outcome)
            && eq(&self.tool, p.tool.as_deref().unwrap_or(""))
    }
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().to_string();
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

fn event(p: &Published) -> Vec<u8> {
    let mut b = Vec::with_capacity(p.line.len() + 40);
    b.extend_from_slice(format!("id: {}\nevent: audit\ndata: ", p.seq).as_bytes());
    b.extend_from_slice(&p.line);
    b.extend_from_slice(b"\n\n");
    b
}

/// Why a stream ended.
enum End {
    Gone,
    Slow(u64),
}

/// Serves the stream on `http` until the consumer leaves, falls behind, or the server stops.
pub async fn serve(
    http: &mut ServerSession,
    audit: &AuditLog,
    req: StreamRequest,
    corr_id: &str,
    shutdown: &ShutdownWatch,
) {
    // Subscribe before answering: every record durable from now on is seen.
    let mut sub = audit.subscribe(req.after);
    if !super::reply::open_event_stream(http, corr_id).await {
        return;
    }
    // Without Last-Event-ID: records written before it connected are not sent, even when they
    // become durable (are published) only after.
    let mut last = req.after.unwrap_or_else(|| audit.last_written());
    let end = async {
        if send(http, b": fastmcp audit stream\n\n".to_vec()).await.is_err() {
            return End::Gone;
        }
        // Older records than memory holds: from the files, in chunks.
        if let (Some(after), Some(first)) = (req.after, sub.missing_before) {
            let mut from = after + 1;
            while from < first {
                let to = (first - 1).min(from + BACKFILL_CHUNK - 1);
                let (dir, instance) = (audit.dir().to_path_buf(), audit.instance().to_string());
                let chunk = tokio::task::spawn_blocking(move || {
                    let chain = files::chain_of(&dir, &instance)?;
                    reader::records_between(&chain, from, to)
                })
                .await;
                let Ok(Ok(chunk)) = chunk else { return End::Gone };
                for (seq, line) in chunk {
                    let p = Published::from_line(seq, line);
                    if req.matches(&p) && send(http, event(&p)).await.is_err() {
                        return End::Gone;
                    }
                    last = seq;
                }
                from = to + 1;
            }
        }
        for p in std::mem::take(&mut sub.backlog) {
            if p.seq > last && req.matches(&p) && send(http, event(&p)).await.is_err() {
                return End::Gone;
            }
            last = last.max(p.seq);
        }
        loop {
            let next = tokio::time::timeout(HEARTBEAT, sub.live.recv()).await;
            let p: Arc<Published> = match next {
                Err(_) => {
                    if send(http, b": keepalive\n\n".to_vec()).await.is_err() {
                        return End::Gone;
                    }
                    continue;
                }
                Ok(Err(RecvError::Lagged(_))) => return End::Slow(last),
                Ok(Err(RecvError::Closed)) => return End::Gone,
                Ok(Ok(p)) => p,
            };
            if p.seq <= last {
                continue;
            }
            last = p.seq;
            if req.matches(&p) {
                match tokio::time::timeout(WRITE_TIMEOUT, send(http, event(&p))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(())) => return End::Gone,
                    Err(_) => return End::Slow(last),
                }
            }
        }
    };
    let mut shutdown = shutdown.clone();
    let end = tokio::select! {
        e = end => e,
        _ = shutdown.changed() => End::Gone,
    };
    if let End::Slow(last) = end {
        METRICS.audit_stream_dropped.inc();
        tracing::warn!(corr_id, last_event_id = last, "audit stream consumer fell behind; dropped (it may resume)");
        let msg = format!("event: dropped\ndata: {{\"reason\":\"slow consumer\",\"last_event_id\":{last}}}\n\n");
        let _ = tokio::time::timeout(WRITE_TIMEOUT, send(http, msg.into_bytes())).await;
    }
    let _ = http.write_response_body(Bytes::new(), true).await;
}

async fn send(http: &mut ServerSession, bytes: Vec<u8>) -> Result<(), ()> {
    http.write_response_body(Bytes::from(bytes), false).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_resume_point_parse_strictly() {
        let r = StreamRequest::parse(Some("tool=mcp%3Ademo%3Aecho&sub=alice"), Some(b" 42 ")).unwrap();
        assert_eq!(r.tool.as_deref(), Some("mcp:demo:echo"));
        assert_eq!((r.sub.as_deref(), r.after), (Some("alice"), Some(42)));
        assert_eq!(StreamRequest::parse(Some("last_event_id=7"), None).unwrap().after, Some(7));
        for bad in ["x=1", "sub=a&sub=b", "last_event_id=abc"] {
            assert!(StreamRequest::parse(Some(bad), None).is_err(), "{bad}");
        }
        let p = Published::from_line(
            1,
            br#"{"tenant":"t","sub":"alice","toolId":"x","decision":{"result":"deny"}}"#.to_vec(),
        );
        assert!(
            StreamRequest { sub: Some("alice".into()), outcome: Some("deny".into()), ..Default::default() }.matches(&p)
        );
        assert!(!StreamRequest { tool: Some("y".into()), ..Default::default() }.matches(&p));
        let mine = StreamRequest::default().confined_to(Some("acme")).unwrap();
        assert_eq!(mine.tenant.as_deref(), Some("acme"));
        let other = StreamRequest { tenant: Some("globex".into()), ..Default::default() };
        assert_eq!(other.confined_to(Some("acme")).unwrap_err().status(), 403);
    }
}
