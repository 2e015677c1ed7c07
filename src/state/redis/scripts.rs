//! The Lua scripts of the Redis backend. Each is one atomic step over keys of one hash slot
//! (Redis Cluster runs a script on the node of its keys). Times come from Redis `TIME`, so
//! instances with skewed clocks agree on buckets and expiries.

use std::sync::LazyLock;

use redis::Script;

/// Token bucket: `KEYS[1]` holds `tokens:last_us`; `ARGV` = rate (tokens/s), burst.
/// Returns `{allowed (0|1), tokens left (string)}`; the key expires once the bucket would be
/// full again.
pub static TAKE_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens, last = burst, now
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ':', 1, true)
  if sep then
    tokens = tonumber(string.sub(v, 1, sep - 1)) or burst
    last = tonumber(string.sub(v, sep + 1)) or now
  end
end
local elapsed = now - last
if elapsed < 0 then elapsed = 0 end
if rate > 0 then tokens = tokens + elapsed / 1000000 * rate end
if tokens > burst then tokens = burst end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local ttl = 86400000
if rate > 0 then ttl = math.ceil((burst - tokens) / rate * 1000) + 1000 end
local left = string.format('%.17g', tokens)
redis.call('SET', KEYS[1], left .. ':' .. string.format('%d', now), 'PX', ttl)
return {allowed, left}
"#,
    )
});

/// The hold keys a script names, in this order: the hold, then the indexes of
/// `{fastmcp:holds}` (see [`super::holds::HoldKeys`]).
const HOLD_HELPERS: &str = r#"
local P = KEYS[2]
local EXP, META, IDS, BYTES, TOTAL = P .. 'exp', P .. 'meta', P .. 'ids', P .. 'bytes', P .. 'total'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Removes hold `th` from every index and gives its bytes back.
local function drop(th)
  local m = redis.call('HGET', META, th)
  if m then
    local v = cjson.decode(m)
    if redis.call('HINCRBY', BYTES, v[2], -v[1]) <= 0 then redis.call('HDEL', BYTES, v[2]) end
    if redis.call('DECRBY', TOTAL, v[1]) <= 0 then redis.call('DEL', TOTAL) end
    if redis.call('HGET', IDS, v[3]) == th then redis.call('HDEL', IDS, v[3]) end
    redis.call('HDEL', META, th)
  end
  redis.call('ZREM', EXP, th)
  redis.call('DEL', P .. 'h:' .. th)
end
-- Drops holds past their expiry (their keys already expired in Redis).
local function sweep(now)
  local gone = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, 256)
  for _, th in ipairs(gone) do drop(th) end
end
"#;

/// Stores a hold within its quota. `KEYS` = hold, prefix; `ARGV` = token hash, hold JSON,
/// ttl ms, owner, cost, id, per-subject bytes, total bytes. Returns 0 stored, 1 the caller's
/// share is full, 2 the total is full.
pub static PUT_HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HOLD_HELPERS}
local th, ttl, owner, cost = ARGV[1], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local now = now_ms()
sweep(now)
if redis.call('EXISTS', KEYS[1]) == 1 then drop(th) end
local mine = tonumber(redis.call('HGET', BYTES, owner) or '0')
local total = tonumber(redis.call('GET', TOTAL) or '0')
if mine + cost > tonumber(ARGV[7]) then return 1 end
if total + cost > tonumber(ARGV[8]) then return 2 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', EXP, now + ttl, th)
redis.call('HSET', META, th, cjson.encode({{cost, owner, ARGV[6]}}))
redis.call('HSET', IDS, ARGV[6], th)
redis.call('HINCRBY', BYTES, owner, cost)
redis.call('INCRBY', TOTAL, cost)
return 0
"#
    ))
});

/// Compare-and-delete: removes the hold only if it is still exactly `ARGV[2]` (what the
/// caller read and judged). `KEYS` = hold, prefix; `ARGV` = token hash, expected JSON.
/// Returns 1 removed, 0 changed or gone (a lost race).
pub static TAKE_HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HOLD_HELPERS}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
drop(ARGV[1])
return 1
"#
    ))
});

/// Compare-and-set: replaces the hold (keeping its TTL) only if it is still `ARGV[2]`.
/// `KEYS` = hold, prefix; `ARGV` = token hash, expected JSON, new JSON, new cost.
pub static SWAP_HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HOLD_HELPERS}
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local m = redis.call('HGET', META, ARGV[1])
if not m then return 0 end
local v = cjson.decode(m)
local delta = tonumber(ARGV[4]) - v[1]
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
redis.call('HINCRBY', BYTES, v[2], delta)
redis.call('INCRBY', TOTAL, delta)
v[1] = tonumber(ARGV[4])
redis.call('HSET', META, ARGV[1], cjson.encode(v))
return 1
"#
    ))
});

/// Every pending hold, soonest expiry first. `KEYS` = a hold key (unused, names the slot),
/// prefix. Returns `{count}` when `ARGV[1]` is `count`, else the holds' JSON.
pub static LIST_HOLDS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{HOLD_HELPERS}
local now = now_ms()
if ARGV[1] == 'count' then return {{redis.call('ZCOUNT', EXP, '(' .. now, '+inf')}} end
local ths = redis.call('ZRANGEBYSCORE', EXP, '(' .. now, '+inf')
local out = {{}}
for i = 1, #ths, 500 do
  local keys = {{}}
  for j = i, math.min(i + 499, #ths) do keys[#keys + 1] = P .. 'h:' .. ths[j] end
  local vals = redis.call('MGET', unpack(keys))
  for _, v in ipairs(vals) do
    if v then out[#out + 1] = v end
  end
end
return out
"#
    ))
});
