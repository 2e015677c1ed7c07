//! MCP sessions in Redis: federated gateway sessions and `/mcp/{server}` sessions, so any
//! instance serves any session; and pending elicitations, so an answer POSTed to any instance
//! reaches the one waiting.
//!
//! Sessions of one kind live under `{fastmcp:sessions}:<kind>:` (one hash slot, so a create
//! sweeps idle ones and enforces the per-owner and total bounds atomically): `s:<member>` the
//! record (JSON, idle TTL kept by Redis), `lru` (member → last use), `o:<owner>` (the owner's
//! members by last use), `own` (member → owner). A record read from Redis is cached on this
//! instance for [`FRESH`] and its idle timer refreshed in the background at most every
//! [`TOUCH_EVERY`], so a request on a session costs no round trip in steady state; a session
//! ended on another instance may still be served here for up to [`FRESH`].
//!
//! A question waits under `{fastmcp:elicit:<hash>}:q` (the marker) and its answer arrives in
//! `…:a`: the waiting instance `BLPOP`s `a` on a connection of its own, bounded by the
//! elicitation timeout; the instance that receives the answer removes the marker and pushes
//! the answer in one script (an answer for a question nobody asked is refused).

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::Script;
use sha2::{Digest, Sha256};

use super::client::Redis;
use crate::state::StateError;

/// How long a record read from Redis serves requests on this instance without a read.
pub const FRESH: Duration = Duration::from_secs(1);
/// How often this instance refreshes a session's idle timer in Redis while it is used here.
pub const TOUCH_EVERY: Duration = Duration::from_secs(5);
/// Records cached per instance at most (the cache is cleared past it).
const CACHE_MAX: usize = 10_000;

const HELPERS: &str = r#"
local P = KEYS[2]
local LRU, OWN = P .. 'lru', P .. 'own'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function drop(m)
  local o = redis.call('HGET', OWN, m)
  if o then redis.call('ZREM', P .. 'o:' .. o, m) end
  redis.call('HDEL', OWN, m)
  redis.call('ZREM', LRU, m)
  redis.call('DEL', P .. 's:' .. m)
end
"#;

/// `ARGV` = member, record, ttl ms, owner, per-owner bound, total bound, evict (1: a full
/// table drops its least recently used; 0: refuses). Returns `{stored (1|0), ended...}`.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HELPERS}
local m, ttl, owner = ARGV[1], tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
local out = {{1}}
for _, old in ipairs(redis.call('ZRANGEBYSCORE', LRU, '-inf', now - ttl, 'LIMIT', 0, 256)) do
  drop(old)
  out[#out + 1] = old
end
local O = P .. 'o:' .. owner
while redis.call('ZCARD', O) >= tonumber(ARGV[5]) do
  local lru = redis.call('ZRANGE', O, 0, 0)
  if #lru == 0 then break end
  drop(lru[1])
  out[#out + 1] = lru[1]
end
while redis.call('ZCARD', LRU) >= tonumber(ARGV[6]) do
  if ARGV[7] ~= '1' then
    out[1] = 0
    return out
  end
  local lru = redis.call('ZRANGE', LRU, 0, 0)
  drop(lru[1])
  out[#out + 1] = lru[1]
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', LRU, now, m)
redis.call('ZADD', O, now, m)
redis.call('HSET', OWN, m, owner)
return out
"#
    ))
});

/// `ARGV` = member, ttl ms. Refreshes the idle timer of a live record.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HELPERS}
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  drop(ARGV[1])
  return 0
end
local now = now_ms()
redis.call('ZADD', LRU, now, ARGV[1])
local o = redis.call('HGET', OWN, ARGV[1])
if o then redis.call('ZADD', P .. 'o:' .. o, now, ARGV[1]) end
return 1
"#
    ))
});

/// `ARGV` = member. Removes a record and its index entries.
static DEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HELPERS}
drop(ARGV[1])
return 1
"#
    ))
});

/// `KEYS` = marker, answer; `ARGV` = answer JSON, ttl ms.
static DELIVER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"#,
    )
});

fn short_hash(parts: &[&str]) -> String {
    let mut d = Sha256::new();
    for p in parts {
        d.update((p.len() as u64).to_be_bytes());
        d.update(p.as_bytes());
    }
    hex::encode(&d.finalize()[..16])
}

/// The bounds of one kind of session record.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub ttl: Duration,
    pub per_owner: usize,
    pub total: usize,
    /// A full table forgets its least recently used record instead of refusing a new one.
    pub evict_when_full: bool,
}

struct Cached {
    record: String,
    fetched: Instant,
    touched: Instant,
}

/// Session records of one kind, with their owner.
pub struct Records {
    redis: Redis,
    prefix: String,
    bounds: Bounds,
    cache: Mutex<HashMap<String, Cached>>,
}

/// What storing a record did: stored or not (the table is full of live records), and the
/// members that were ended to make room or because they were idle.
pub struct Put {
    pub stored: bool,
    pub ended: Vec<String>,
}

impl Records {
    pub fn new(redis: Redis, kind: &str, bounds: Bounds) -> Records {
        Records { redis, prefix: format!("{{fastmcp:sessions}}:{kind}:"), bounds, cache: Mutex::new(HashMap::new()) }
    }

    /// The member name of a record id made of `parts` (hashed: ids may be upstream-chosen).
    pub fn member(parts: &[&str]) -> String {
        short_hash(parts)
    }

    /// The owner key of the indexes (hashed).
    pub fn owner(owner: &str) -> String {
        short_hash(&[owner])
    }

    fn key(&self, member: &str) -> String {
        format!("{}s:{member}", self.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        self.bounds.ttl.as_millis().max(1) as u64
    }

    /// Stores `record` under `member` for `owner`, within the bounds.
    pub async fn put(&self, member: &str, owner: &str, record: String) -> Result<Put, StateError> {
        let b = self.bounds;
        let (key, prefix, m, owner, ttl) =
            (self.key(member), self.prefix.clone(), member.to_string(), Records::owner(owner), self.ttl_ms());
        let out: Vec<redis::Value> = self
            .redis
            .run(move |mut c| async move {
                PUT.key(key)
                    .key(prefix)
                    .arg(m)
                    .arg(record)
                    .arg(ttl)
                    .arg(owner)
                    .arg(b.per_owner)
                    .arg(b.total)
                    .arg(if b.evict_when_full { "1" } else { "0" })
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let stored = matches!(out.first(), Some(redis::Value::Int(1)));
        let ended: Vec<String> = out
            .iter()
            .skip(1)
            .filter_map(|v| match v {
                redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect();
        let mut cache = self.cache.lock();
        for e in &ended {
            cache.remove(e);
        }
        Ok(Put { stored, ended })
    }

    /// The record under `member`, if it lives (from this instance's cache while fresh); its
    /// idle timer is refreshed in the background.
    pub async fn get(&self, member: &str) -> Result<Option<String>, StateError> {
        let now = Instant::now();
        let cached = self.cache.lock().get_mut(member).and_then(|c| {
            if now.duration_since(c.fetched) >= FRESH {
                return None;
            }
            let touch = now.duration_since(c.touched) >= TOUCH_EVERY;
            if touch {
                c.touched = now;
            }
            Some((c.record.clone(), touch))
        });
        if let Some((record, touch)) = cached {
            if touch {
                self.touch(member);
            }
            return Ok(Some(record));
        }
        let key = self.key(member);
        let found: Option<String> =
            self.redis.run(move |mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await }).await?;
        let mut cache = self.cache.lock();
        match &found {
            Some(record) => {
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                let touch = cache.get(member).is_none_or(|c| now.duration_since(c.touched) >= TOUCH_EVERY);
                let touched = if touch { now } else { cache.get(member).map_or(now, |c| c.touched) };
                cache.insert(member.to_string(), Cached { record: record.clone(), fetched: now, touched });
                drop(cache);
                if touch {
                    self.touch(member);
                }
            }
            None => {
                cache.remove(member);
            }
        }
        Ok(found)
    }

    fn touch(&self, member: &str) {
        let (key, prefix, m, ttl) = (self.key(member), self.prefix.clone(), member.to_string(), self.ttl_ms());
        self.redis.detach(move |mut c| async move {
            let _: i64 = TOUCH.key(key).key(prefix).arg(m).arg(ttl).invoke_async(&mut c).await?;
            Ok(())
        });
    }

    /// Removes the record under `member`.
    pub async fn remove(&self, member: &str) -> Result<(), StateError> {
        self.cache.lock().remove(member);
        let (key, prefix, m) = (self.key(member), self.prefix.clone(), member.to_string());
        let _: i64 = self
            .redis
            .run(move |mut c| async move { DEL.key(key).key(prefix).arg(m).invoke_async(&mut c).await })
            .await?;
        Ok(())
    }
}

/// Pending elicitations in Redis.
pub struct Questions {
    redis: Redis,
}

impl Questions {
    pub fn new(redis: Redis) -> Questions {
        Questions { redis }
    }

    fn keys(session: &str, id: &str) -> (String, String) {
        let tag = short_hash(&[session, id]);
        (format!("{{fastmcp:elicit:{tag}}}:q"), format!("{{fastmcp:elicit:{tag}}}:a"))
    }

    /// Registers question `id` on `session` for `wait` (plus a margin).
    pub async fn ask(&self, session: &str, id: &str, wait: Duration) -> Result<(), StateError> {
        let (q, _) = Questions::keys(session, id);
        let ttl = wait.as_millis() as u64 + 5000;
        let _: () =
            self.redis
                .run(move |mut c| async move {
                    redis::cmd("SET").arg(q).arg(1).arg("PX").arg(ttl).query_async(&mut c).await
                })
                .await?;
        Ok(())
    }

    /// Waits (a blocking pop on a connection of its own) for the answer, at most `wait`.
    pub async fn answer(&self, session: &str, id: &str, wait: Duration) -> Result<Option<String>, StateError> {
        let (q, a) = Questions::keys(session, id);
        let secs = wait.as_secs_f64().max(0.01);
        let popped: Option<(String, String)> = self
            .redis
            .run_blocking(wait, move |mut c| async move {
                let popped = redis::cmd("BLPOP").arg(&a).arg(secs).query_async(&mut c).await;
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&q).arg(&a).query_async(&mut c).await;
                popped
            })
            .await?;
        Ok(popped.map(|(_, v)| v))
    }

    /// Hands `answer` to the waiting question; false when nobody asked it (or it was answered).
    pub async fn deliver(&self, session: &str, id: &str, answer: String) -> Result<bool, StateError> {
        let (q, a) = Questions::keys(session, id);
        let n: i64 = self
            .redis
            .run(move |mut c| async move { DELIVER.key(q).key(a).arg(answer).arg(60_000).invoke_async(&mut c).await })
            .await?;
        Ok(n == 1)
    }

    /// Is the question waiting?
    pub async fn waits(&self, session: &str, id: &str) -> Result<bool, StateError> {
        let (q, _) = Questions::keys(session, id);
        self.redis.run(move |mut c| async move { redis::cmd("EXISTS").arg(q).query_async(&mut c).await }).await
    }

    /// Drops the question.
    pub async fn forget(&self, session: &str, id: &str) -> Result<(), StateError> {
        let (q, a) = Questions::keys(session, id);
        let _: i64 = self
            .redis
            .run(move |mut c| async move { redis::cmd("DEL").arg(q).arg(a).query_async(&mut c).await })
            .await?;
        Ok(())
    }
}
