//! The replay window of one federated session's SSE events (2025-11-25 "Resumability and
//! Redelivery").
//!
//! Every event the gateway writes on a session's streams — its standalone GET stream and the
//! SSE replies of its POSTs — gets an id `<stream>-<seq>`: `stream` is a random 64-bit name
//! (hex) of that stream, `seq` counts the session's events, so ids are unique across the
//! session's streams and only this session's streams can ever match one. Events are kept in
//! a window bounded in events and bytes per session and in bytes across all sessions (the
//! oldest go first, and only the appending session's own: another session's window is never
//! touched). A GET with `Last-Event-ID` attaches to the stream that id names and gets that
//! stream's events after it, then the live ones, with no gap and no duplicate (the snapshot
//! and the attachment are one step under the session's lock). An id this session does not
//! know, or one whose successors left the window, cannot be honoured: the caller starts a
//! fresh standalone stream ([`Resume::Lost`]).
//!
//! One connection per stream: a newer attachment takes the stream over and the older one is
//! ended (its receiver closes), so no event is delivered on two connections.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

/// Bookkeeping bytes counted per retained event besides its data.
const EVENT_OVERHEAD: usize = 64;
/// Live events waiting for a slow connection; past it the connection is ended (the client
/// resumes from its last id, within the window).
const LIVE_QUEUE: usize = 64;

/// How much one session keeps (`mcp.replay.max_events_per_session`, `max_bytes_per_session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// Bytes retained across all sessions (`mcp.replay.max_bytes_total`).
#[derive(Debug)]
pub struct ReplayBudget {
    used: AtomicUsize,
    max: usize,
}

impl ReplayBudget {
    pub fn new(max: usize) -> ReplayBudget {
        ReplayBudget { used: AtomicUsize::new(0), max }
    }

    /// Bytes retained now, across sessions.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn over(&self) -> bool {
        self.used() > self.max
    }
}

/// A stream's name inside its session.
pub type StreamId = u64;

/// One event as written: its SSE `id` and `data` (a JSON-RPC message; empty for a priming
/// event, which only hands the client an id to resume from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub id: String,
    pub data: Arc<str>,
}

/// What became of a `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// None was given: a fresh standalone stream.
    Fresh,
    /// The named stream continues after the id.
    Resumed,
    /// One was given but cannot be honoured (not this session's, malformed, or its
    /// successors left the window): a fresh standalone stream.
    Lost,
}

/// A connection attached to a stream.
pub struct Attached {
    /// A priming event to write first (fresh standalone streams of 2025-11-25 sessions).
    pub prime: Option<Frame>,
    /// Retained events after the `Last-Event-ID`, oldest first.
    pub replay: Vec<Frame>,
    /// Live events; `None` when the resumed stream has already ended (write the replay and
    /// end). Closes when the stream ends or a newer connection takes it over.
    pub live: Option<mpsc::Receiver<Frame>>,
    pub resume: Resume,
    /// The session's standalone stream (not a POST's reply).
    pub standalone: bool,
}

/// An event recorded on a stream.
pub struct Recorded {
    pub id: String,
    /// The connection that opened the stream still owns it (no resumption took it over).
    pub to_opener: bool,
}

struct Retained {
    stream: StreamId,
    seq: u64,
    data: Arc<str>,
    size: usize,
}

#[derive(Default)]
struct StreamState {
    /// The highest seq of this stream that is not retained (evicted or never kept).
    lost: u64,
    retained: usize,
    /// A POST's reply that has written its response (the standalone stream never ends).
    done: bool,
    /// 0 while the opener writes a POST's reply; +1 per attachment.
    generation: u64,
    live: Option<mpsc::Sender<Frame>>,
}

#[derive(Default)]
struct State {
    seq: u64,
    events: VecDeque<Retained>,
    bytes: usize,
    streams: HashMap<StreamId, StreamState>,
    standalone: Option<StreamId>,
    closed: bool,
}

/// One session's streams and their replay window.
pub struct Outbox {
    state: Mutex<State>,
    limits: ReplayLimits,
    budget: Arc<ReplayBudget>,
    /// Priming events (empty data) are a 2025-11-25 addition; older clients get none.
    priming: bool,
}

/// The SSE id of event `seq` on `stream`.
pub fn event_id(stream: StreamId, seq: u64) -> String {
    format!("{stream:016x}-{seq}")
}

/// `<stream>-<seq>` back into its parts.
pub fn parse_id(id: &str) -> Option<(StreamId, u64)> {
    let (stream, seq) = id.trim().split_once('-')?;
    if stream.len() != 16 {
        return None;
    }
    Some((StreamId::from_str_radix(stream, 16).ok()?, seq.parse().ok()?))
}

impl Outbox {
    pub fn new(limits: ReplayLimits, budget: Arc<ReplayBudget>, priming: bool) -> Outbox {
        Outbox { state: Mutex::new(State::default()), limits, budget, priming }
    }

    /// Opens the stream of a POST's SSE reply (written by its opener until resumed).
    pub fn open_stream(&self) -> StreamId {
        let mut st = self.state.lock();
        new_stream(&mut st)
    }

    /// A priming id for `stream` (`None` for clients older than 2025-11-25).
    pub fn prime(&self, stream: StreamId) -> Option<String> {
        if !self.priming {
            return None;
        }
        let mut st = self.state.lock();
        st.seq += 1;
        Some(event_id(stream, st.seq))
    }

    /// Records `data` on `stream`: an id, retention within the window, and delivery to the
    /// connection attached to it (if a resumption took it over).
    pub fn record(&self, stream: StreamId, data: &str) -> Recorded {
        let mut st = self.state.lock();
        st.seq += 1;
        let seq = st.seq;
        let id = event_id(stream, seq);
        let data: Arc<str> = Arc::from(data);
        let Some(s) = st.streams.get_mut(&stream) else {
            return Recorded { id, to_opener: true };
        };
        let to_opener = s.generation == 0;
        if let Some(tx) = &s.live {
            if tx.try_send(Frame { id: id.clone(), data: data.clone() }).is_err() {
                // Gone or too slow: ending it lets the client resume from its last id.
                s.live = None;
            }
        }
        if !st.closed {
            self.retain(&mut st, stream, seq, data);
        }
        Recorded { id, to_opener }
    }

    /// Records `data` on the standalone stream, if the session ever opened one.
    pub fn record_standalone(&self, data: &str) -> Option<String> {
        let stream = self.state.lock().standalone?;
        Some(self.record(stream, data).id)
    }

    /// A POST's reply has written its response: a resumption replays and then ends.
    pub fn finish(&self, stream: StreamId) {
        let mut st = self.state.lock();
        if let Some(s) = st.streams.get_mut(&stream) {
            s.done = true;
            s.live = None;
            if s.retained == 0 {
                st.streams.remove(&stream);
            }
        }
    }

    /// Attaches a connection: to the stream `last_event_id` names (its events after that
    /// id, then live), or to the standalone stream from now on.
    pub fn attach(&self, last_event_id: Option<&str>) -> Attached {
        let mut st = self.state.lock();
        if st.closed {
            let resume = if last_event_id.is_some() { Resume::Lost } else { Resume::Fresh };
            return Attached { prime: None, replay: vec![], live: None, resume, standalone: true };
        }
        let named = last_event_id.and_then(parse_id);
        if let Some((stream, after)) = named {
            let last = st.seq;
            let resumable = st.streams.get(&stream).is_some_and(|s| s.lost <= after && after <= last);
            if resumable {
                let replay: Vec<Frame> = st
                    .events
                    .iter()
                    .filter(|e| e.stream == stream && e.seq > after)
                    .map(|e| Frame { id: event_id(e.stream, e.seq), data: e.data.clone() })
                    .collect();
                let standalone = st.standalone == Some(stream);
                if let Some(s) = st.streams.get_mut(&stream) {
                    s.generation += 1;
                    let live = if s.done {
                        None
                    } else {
                        let (tx, rx) = mpsc::channel(LIVE_QUEUE);
                        s.live = Some(tx);
                        Some(rx)
                    };
                    return Attached { prime: None, replay, live, resume: Resume::Resumed, standalone };
                }
            }
        }
        let resume = if last_event_id.is_some() { Resume::Lost } else { Resume::Fresh };
        let stream = match st.standalone {
            Some(s) => s,
            None => {
                let s = new_stream(&mut st);
                st.standalone = Some(s);
                s
            }
        };
        let prime = self.priming.then(|| {
            st.seq += 1;
            Frame { id: event_id(stream, st.seq), data: Arc::from("") }
        });
        let (tx, rx) = mpsc::channel(LIVE_QUEUE);
        if let Some(s) = st.streams.get_mut(&stream) {
            s.generation += 1;
            s.live = Some(tx);
        }
        Attached { prime, replay: vec![], live: Some(rx), resume, standalone: true }
    }

    /// The session ended: connections end, the window is emptied.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        for s in st.streams.values_mut() {
            s.live = None;
        }
        while self.evict_oldest(&mut st) {}
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Events and bytes retained now.
    pub fn retained(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.events.len(), st.bytes)
    }

    fn retain(&self, st: &mut State, stream: StreamId, seq: u64, data: Arc<str>) {
        let size = data.len() + EVENT_OVERHEAD;
        if self.limits.max_events == 0 || size > self.limits.max_bytes {
            if let Some(s) = st.streams.get_mut(&stream) {
                s.lost = s.lost.max(seq);
            }
            return;
        }
        st.events.push_back(Retained { stream, seq, data, size });
        st.bytes += size;
        self.budget.used.fetch_add(size, Ordering::Relaxed);
        if let Some(s) = st.streams.get_mut(&stream) {
            s.retained += 1;
        }
        while st.events.len() > self.limits.max_events || st.bytes > self.limits.max_bytes {
            self.evict_oldest(st);
        }
        // Past the total, this session gives up its own oldest events, never another's.
        while self.budget.over() && self.evict_oldest(st) {}
    }

    fn evict_oldest(&self, st: &mut State) -> bool {
        let Some(e) = st.events.pop_front() else { return false };
        st.bytes -= e.size;
        self.budget.used.fetch_sub(e.size, Ordering::Relaxed);
        let forget = match st.streams.get_mut(&e.stream) {
            Some(s) => {
                s.lost = s.lost.max(e.seq);
                s.retained -= 1;
                s.done && s.retained == 0
            }
            None => false,
        };
        if forget {
            st.streams.remove(&e.stream);
        }
        true
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (events, bytes) = self.retained();
        f.debug_struct("Outbox").field("events", &events).field("bytes", &bytes).finish()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let bytes = self.state.get_mut().bytes;
        self.budget.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

fn new_stream(st: &mut State) -> StreamId {
    loop {
        let id: StreamId = rand::random();
        if id != 0 && !st.streams.contains_key(&id) {
            st.streams.insert(id, StreamState::default());
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(max_events: usize, max_bytes: usize, total: usize) -> (Outbox, Arc<ReplayBudget>) {
        let budget = Arc::new(ReplayBudget::new(total));
        (Outbox::new(ReplayLimits { max_events, max_bytes }, budget.clone(), true), budget)
    }

    fn drain(rx: &mut mpsc::Receiver<Frame>) -> Vec<Frame> {
        let mut out = vec![];
        while let Ok(f) = rx.try_recv() {
            out.push(f);
        }
        out
    }

    #[test]
    fn ids_round_trip_and_foreign_ids_do_not_parse() {
        let id = event_id(0xabc, 7);
        assert_eq!(id, "0000000000000abc-7");
        assert_eq!(parse_id(&id), Some((0xabc, 7)));
        for bad in ["", "7", "abc-7", "0000000000000abc-", "0000000000000abc-x", "zzzzzzzzzzzzzzzz-1"] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_resumed_standalone_stream_gets_exactly_the_missed_events_then_live_ones() {
        let (o, _) = outbox(16, 1 << 20, 1 << 20);
        assert_eq!(o.record_standalone("{}"), None, "no standalone stream before the first GET");
        let mut first = o.attach(None);
        let prime = first.prime.clone().expect("priming event");
        assert!(prime.data.is_empty());
        let a = o.record_standalone(r#"{"n":1}"#).unwrap();
        let rx = first.live.as_mut().unwrap();
        assert_eq!(drain(rx).iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), [a.as_str()]);
        drop(first); // the connection drops after the first event
        let b = o.record_standalone(r#"{"n":2}"#).unwrap();
        let c = o.record_standalone(r#"{"n":3}"#).unwrap();
        let mut again = o.attach(Some(&a));
        assert_eq!(again.resume, Resume::Resumed);
        assert!(again.prime.is_none() && again.standalone);
        let ids: Vec<String> = again.replay.iter().map(|f| f.id.clone()).collect();
        assert_eq!(ids, [b, c.clone()]);
        assert_eq!(&*again.replay[1].data, r#"{"n":3}"#);
        let rx = again.live.as_mut().unwrap();
        assert!(drain(rx).is_empty(), "nothing twice");
        let d = o.record_standalone(r#"{"n":4}"#).unwrap();
        assert_eq!(drain(rx).iter().map(|f| f.id.clone()).collect::<Vec<_>>(), [d]);
        // Resuming from the priming id replays everything after it.
        let from_prime = o.attach(Some(&prime.id));
        assert_eq!(from_prime.replay.len(), 4);
        assert!(parse_id(&c).unwrap().1 > parse_id(&a).unwrap().1, "monotonic");
    }

    #[test]
    fn a_newer_connection_takes_the_stream_over() {
        let (o, _) = outbox(16, 1 << 20, 1 << 20);
        let mut old = o.attach(None);
        let mut new = o.attach(None);
        o.record_standalone("{}").unwrap();
        let old_rx = old.live.as_mut().unwrap();
        assert!(matches!(old_rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)), "the old one ends");
        assert_eq!(drain(new.live.as_mut().unwrap()).len(), 1);
    }

    #[test]
    fn ids_outside_the_window_or_of_other_sessions_start_fresh() {
        let (o, _) = outbox(2, 1 << 20, 1 << 20);
        let first = o.attach(None);
        let a = o.record_standalone("{}").unwrap();
        drop(first);
        for _ in 0..3 {
            o.record_standalone("{}");
        }
        let late = o.attach(Some(&a));
        assert_eq!(late.resume, Resume::Lost, "the events after it were evicted");
        assert!(late.replay.is_empty() && late.prime.is_some());
        let (other, _) = outbox(16, 1 << 20, 1 << 20);
        let theirs = other.attach(None);
        let foreign = other.record_standalone("{}").unwrap();
        drop(theirs);
        let r = o.attach(Some(&foreign));
        assert_eq!(r.resume, Resume::Lost, "another session's id matches nothing here");
        assert!(r.replay.is_empty());
        let future = event_id(parse_id(&a).unwrap().0, 10_000);
        assert_eq!(o.attach(Some(&future)).resume, Resume::Lost, "an id never issued");
        assert_eq!(o.attach(Some("garbage")).resume, Resume::Lost);
    }

    #[test]
    fn a_post_reply_resumes_on_its_own_stream_and_ends_with_it() {
        let (o, _) = outbox(16, 1 << 20, 1 << 20);
        let standalone = o.attach(None);
        let post = o.open_stream();
        let prime = o.prime(post).unwrap();
        let q = o.record(post, r#"{"q":1}"#);
        assert!(q.to_opener);
        o.record_standalone(r#"{"other":1}"#);
        // The client lost the POST's connection and resumes it.
        let mut resumed = o.attach(Some(&prime));
        assert!(!resumed.standalone);
        assert_eq!(resumed.replay.iter().map(|f| f.id.clone()).collect::<Vec<_>>(), [q.id]);
        let r = o.record(post, r#"{"result":1}"#);
        assert!(!r.to_opener, "the opener no longer writes it");
        o.finish(post);
        let rx = resumed.live.as_mut().unwrap();
        assert_eq!(drain(rx).len(), 1);
        assert!(matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)), "ends with the reply");
        // Resuming an ended reply replays what is left and ends at once.
        let late = o.attach(Some(&prime));
        assert_eq!(late.replay.len(), 2);
        assert!(late.live.is_none());
        drop(standalone);
    }

    #[test]
    fn the_window_is_bounded_in_events_bytes_and_in_total() {
        let (o, budget) = outbox(3, 400, 1 << 20);
        let _s = o.attach(None);
        for _ in 0..10 {
            o.record_standalone("{}");
        }
        assert_eq!(o.retained().0, 3);
        let big = "x".repeat(300);
        o.record_standalone(&big);
        assert_eq!(o.retained(), (1, 300 + EVENT_OVERHEAD), "bytes evict the older ones");
        o.record_standalone(&"y".repeat(1000));
        assert_eq!(o.retained().0, 1, "an event over the session's bytes is not kept");
        assert_eq!(budget.used(), 300 + EVENT_OVERHEAD);
        // The total: a second session past it gives up its own events, not the first's.
        let total = Arc::new(ReplayBudget::new(500));
        let limits = ReplayLimits { max_events: 100, max_bytes: 10_000 };
        let a = Outbox::new(limits, total.clone(), false);
        let b = Outbox::new(limits, total.clone(), false);
        let (_x, _y) = (a.attach(None), b.attach(None));
        a.record_standalone(&"a".repeat(300));
        b.record_standalone(&"b".repeat(50));
        b.record_standalone(&"b".repeat(50));
        assert_eq!(a.retained().0, 1, "the first session keeps its event");
        assert_eq!(b.retained().0, 1, "the second dropped its own oldest");
        assert!(total.used() <= 500);
        drop(b);
        assert_eq!(total.used(), 300 + EVENT_OVERHEAD, "a dropped session releases its bytes");
        a.close();
        assert_eq!(total.used(), 0);
        assert!(a.attach(None).live.is_none(), "a closed session streams nothing");
        drop(o);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn sessions_older_than_2025_11_25_get_ids_but_no_priming() {
        let o =
            Outbox::new(ReplayLimits { max_events: 4, max_bytes: 4096 }, Arc::new(ReplayBudget::new(1 << 20)), false);
        let s = o.attach(None);
        assert!(s.prime.is_none());
        assert!(o.prime(o.open_stream()).is_none());
        assert!(o.record_standalone("{}").is_some());
    }
}
