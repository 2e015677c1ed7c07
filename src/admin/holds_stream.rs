//! `GET /admin/holds/stream`: Server-Sent Events of the pending holds an operator may see
//! (a tenant approver: its tenant's only), for the approvals console.
//!
//! - `event: snapshot`, `data: {"now", "holds": [...]}` first (the same hold JSON as
//!   `GET /admin/holds`), then one event per change: `created` and `updated` (the hold),
//!   `removed` (`{"id", "why": "expired" | "resolved"}`: resolved is approved-and-confirmed,
//!   confirmed, declined or denied — the audit stream says which).
//! - Changes are found by re-listing the state store (both backends alike): at once when a
//!   hold is made, decided or redeemed on this instance ([`crate::holds::HoldEvents`]; at
//!   most one list per 200 ms per stream), and every `admin.console.relist_ms` for changes
//!   made by other instances sharing Redis.
//! - Bounded: at most `admin.console.max_streams` streams at once (one more is 503); each
//!   keeps only the ids and JSON of the holds it showed (bounded by the hold store's own
//!   bounds); a consumer whose socket takes over 5 s to take an event is dropped (it may
//!   reconnect and gets a fresh snapshot).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use serde_json::{json, Value};

use super::auth::Actor;
use super::error::AdminError;
use super::holds::{hold_json, visible};
use crate::holds::HoldEvents;
use crate::state::{Hold, StateStore};

/// Longest one event may take to be written before the consumer counts as slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive comment interval.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Shortest time between two re-lists of one stream: a burst of hold changes costs each
/// stream at most one list per this interval.
const MIN_GAP: Duration = Duration::from_millis(200);

/// The number of open hold streams, shared by the listener.
#[derive(Debug, Default, Clone)]
pub struct StreamSlots(Arc<AtomicUsize>);

/// One taken slot; given back when dropped (the stream ended).
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl StreamSlots {
    /// A slot, unless `max` streams are open.
    pub fn take(&self, max: usize) -> Result<Slot, AdminError> {
        let taken = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        match taken {
            Ok(_) => Ok(Slot(self.0.clone())),
            Err(_) => Err(AdminError::Unavailable {
                message: "too many open hold streams (admin.console.max_streams)".into(),
            }),
        }
    }
}

/// An accepted hold stream: who watches, and its slot.
#[derive(Debug)]
pub struct HoldsStreamRequest {
    pub actor: Actor,
    pub slot: Slot,
}

/// What a stream needs from the gateway.
pub struct Source<'a> {
    pub state: &'a dyn StateStore,
    pub events: &'a HoldEvents,
    pub relist: Duration,
}

/// The changes from `known` to `now` (updating `known`): `(event, data)` pairs.
fn diff(known: &mut HashMap<String, (Value, i64)>, list: &[Hold], now: i64) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for h in list {
        seen.insert(h.id.clone());
        let j = hold_json(h);
        match known.get(&h.id) {
            None => out.push(("created", j.clone())),
            Some((old, _)) if *old != j => out.push(("updated", j.clone())),
            Some(_) => continue,
        }
        known.insert(h.id.clone(), (j, h.expires_at));
    }
    let gone: Vec<String> = known.keys().filter(|id| !seen.contains(*id)).cloned().collect();
    for id in gone {
        let expired = known.remove(&id).is_some_and(|(_, exp)| exp <= now);
        out.push(("removed", json!({"id": id, "why": if expired { "expired" } else { "resolved" }})));
    }
    out
}

fn event(name: &str, data: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// Serves the stream on `http` until the consumer leaves, is slow, the store fails, or the
/// server stops.
pub async fn serve(
    http: &mut ServerSession,
    src: Source<'_>,
    req: HoldsStreamRequest,
    corr_id: &str,
    shutdown: &ShutdownWatch,
) {
    let HoldsStreamRequest { actor, slot } = req;
    // Subscribe before the first list: a change after it is never missed.
    let mut changes = src.events.subscribe();
    if !super::reply::open_event_stream(http, corr_id).await {
        return;
    }
    let run = async {
        let mut known: HashMap<String, (Value, i64)> = HashMap::new();
        let mut first = true;
        let mut quiet = tokio::time::Instant::now();
        loop {
            let listed = tokio::time::Instant::now();
            let list = match src.state.list_holds().await {
                Ok(l) => visible(Some(&actor), l),
                Err(e) => {
                    tracing::warn!(corr_id, error = %e, "hold stream: the state store cannot list holds");
                    let _ = send(http, event("error", &json!({"message": "the hold store is unavailable"}))).await;
                    return;
                }
            };
            let now = chrono::Utc::now().timestamp();
            let changes_now = diff(&mut known, &list, now);
            if first {
                let holds: Vec<Value> = list.iter().map(hold_json).collect();
                if send(http, event("snapshot", &json!({"now": now, "holds": holds}))).await.is_err() {
                    return;
                }
                first = false;
                quiet = tokio::time::Instant::now();
            } else {
                for (name, data) in changes_now {
                    if send(http, event(name, &data)).await.is_err() {
                        return;
                    }
                    quiet = tokio::time::Instant::now();
                }
            }
            if quiet.elapsed() >= HEARTBEAT {
                if send(http, b": keepalive\n\n".to_vec()).await.is_err() {
                    return;
                }
                quiet = tokio::time::Instant::now();
            }
            tokio::select! {
                r = changes.changed() => {
                    // The gateway is going away: the periodic re-list still works.
                    if r.is_err() {
                        tokio::time::sleep(src.relist).await;
                    }
                }
                _ = tokio::time::sleep(src.relist) => {}
            }
            tokio::time::sleep_until(listed + MIN_GAP).await;
        }
    };
    let mut shutdown = shutdown.clone();
    tokio::select! {
        _ = run => {}
        _ = shutdown.changed() => {}
    }
    let _ = http.write_response_body(Bytes::new(), true).await;
    // The slot is given back only now: the stream counted until its last byte.
    drop(slot);
}

/// One event, or the consumer is gone or too slow.
async fn send(http: &mut ServerSession, bytes: Vec<u8>) -> Result<(), ()> {
    match tokio::time::timeout(WRITE_TIMEOUT, http.write_response_body(Bytes::from(bytes), false)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(id: &str, exp: i64) -> Hold {
        Hold {
            id: id.into(),
            sub: "alice".into(),
            tenant: "acme".into(),
            tool_id: "t".into(),
            args_hash: "h".into(),
            binding: String::new(),
            expires_at: exp,
            input: None,
            needs_approval: true,
            approved_by: None,
            view: Default::default(),
        }
    }

    #[test]
    fn changes_are_created_updated_and_removed() {
        let mut known = HashMap::new();
        let names = |v: Vec<(&'static str, Value)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(diff(&mut known, &[hold("a", 100), hold("b", 10)], 5)), ["created", "created"]);
        assert!(diff(&mut known, &[hold("a", 100), hold("b", 10)], 5).is_empty(), "no change, no event");
        let approved = Hold { approved_by: Some("jwt:bob".into()), ..hold("a", 100) };
        let d = diff(&mut known, &[approved], 20);
        assert_eq!(names(d.clone()), ["updated", "removed"]);
        assert_eq!(d[1].1, json!({"id": "b", "why": "expired"}));
        assert_eq!(diff(&mut known, &[], 20)[0].1, json!({"id": "a", "why": "resolved"}));
    }

    #[test]
    fn streams_are_bounded() {
        let slots = StreamSlots::default();
        let a = slots.take(2).unwrap();
        let _b = slots.take(2).unwrap();
        assert_eq!(slots.take(2).unwrap_err().status(), 503);
        drop(a);
        assert!(slots.take(2).is_ok(), "a closed stream frees its slot");
    }
}
