//! The idempotency scripts (`src/idempotency/redis.rs`). `KEYS` = the record, the caller's
//! prefix (`{fastmcp:idem:<caller>}:`, one hash slot); the caller's accounting lives beside:
//! `exp` (record hash → expiry ms), `cost` (record hash → bytes), `bytes` (the sum).

use std::sync::LazyLock;

use redis::Script;

const HELPERS: &str = r#"
local P = KEYS[2]
local EXP, COST, BYTES = P .. 'exp', P .. 'cost', P .. 'bytes'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function unaccount(h)
  local c = tonumber(redis.call('HGET', COST, h) or '0')
  if c > 0 and redis.call('DECRBY', BYTES, c) <= 0 then redis.call('DEL', BYTES) end
  redis.call('HDEL', COST, h)
  redis.call('ZREM', EXP, h)
end
local function sweep(now)
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, 256)) do
    if redis.call('EXISTS', P .. 'r:' .. h) == 0 then unaccount(h) end
  end
end
"#;

/// `ARGV` = hash, payload hash, ttl ms, lease ms, caller's byte bound, record overhead.
/// Returns `{proceed}`, `{mismatch}`, `{inflight}`, `{replay, status, body}`,
/// `{dropped, status, why}` or `{full}`.
pub static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HELPERS}
local now = now_ms()
sweep(now)
local r = redis.call('HMGET', KEYS[1], 'p', 's', 'st', 'w', 'b')
if r[1] then
  if r[1] ~= ARGV[2] then return {{'mismatch'}} end
  if r[2] == 'f' then return {{'inflight'}} end
  if r[2] == 'd' then return {{'replay', r[3], r[5]}} end
  return {{'dropped', r[3], r[4]}}
end
local overhead = tonumber(ARGV[6])
if tonumber(redis.call('GET', BYTES) or '0') + overhead > tonumber(ARGV[5]) then return {{'full'}} end
redis.call('HSET', KEYS[1], 'p', ARGV[2], 's', 'f', 't', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', EXP, now + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', COST, ARGV[1], overhead)
redis.call('INCRBY', BYTES, overhead)
return {{'proceed'}}
"#
    ))
});

/// `ARGV` = hash, status, body, per-answer bound, caller's byte bound, record overhead.
/// Stores the answer of an in-flight claim (or a tombstone when it does not fit) for the
/// TTL given at `begin`. Returns 1 when the claim was in flight.
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HELPERS}
local r = redis.call('HMGET', KEYS[1], 's', 't')
if r[1] ~= 'f' then return 0 end
local now = now_ms()
local ttl = tonumber(r[2])
local overhead = tonumber(ARGV[6])
local old = tonumber(redis.call('HGET', COST, ARGV[1]) or '0')
local body = ARGV[3]
local cost = overhead + #body
local bytes = tonumber(redis.call('GET', BYTES) or '0')
if #body > tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 's', 'x', 'st', ARGV[2], 'w', 'large')
  cost = overhead
elseif bytes - old + cost > tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 's', 'x', 'st', ARGV[2], 'w', 'evicted')
  cost = overhead
else
  redis.call('HSET', KEYS[1], 's', 'd', 'st', ARGV[2], 'b', body)
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', EXP, now + ttl, ARGV[1])
redis.call('HSET', COST, ARGV[1], cost)
redis.call('INCRBY', BYTES, cost - old)
return 1
"#
    ))
});

/// `ARGV` = hash. Releases an in-flight claim (the call did nothing).
pub static ABANDON: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HELPERS}
if redis.call('HGET', KEYS[1], 's') ~= 'f' then return 0 end
redis.call('DEL', KEYS[1])
unaccount(ARGV[1])
return 1
"#
    ))
});
