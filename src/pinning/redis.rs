//! Pins shared through Redis: one hash per server, `fastmcp:pins:<server>`, field = tool
//! name, value = the [`Pin`] as JSON, plus the empty field `""` marking that the server was
//! pinned (a server may be pinned with no tools; a tool name is never empty). Trust on
//! first use is one script: the first instance to discover a server pins it, every other
//! instance gets those pins back.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

use super::store::{Pin, PinStore, ServerPins};
use crate::state::redis::Redis;
use crate::state::StateError;

/// The key prefix of every pin hash.
pub const PREFIX: &str = "fastmcp:pins:";

/// `KEYS[1]` = the server's hash; `ARGV` = field, value, … of the first pins. Returns the
/// hash's fields after the step (HGETALL).
static PIN_FIRST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], '', '1')
  for i = 1, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return redis.call('HGETALL', KEYS[1])
"#,
    )
});

/// The Redis pin store.
pub struct RedisPins {
    redis: Redis,
}

impl RedisPins {
    pub fn new(redis: Redis) -> RedisPins {
        RedisPins { redis }
    }
}

fn key(server: &str) -> String {
    format!("{PREFIX}{server}")
}

/// The pins of a hash's fields (`None`: no marker, never pinned). An unreadable value is an
/// error: a pin the gateway cannot read must not turn into "no pin" silently.
fn decode(fields: HashMap<String, String>) -> Result<Option<ServerPins>, StateError> {
    if !fields.contains_key("") {
        return Ok(None);
    }
    let mut out = ServerPins::new();
    for (tool, raw) in fields.into_iter().filter(|(t, _)| !t.is_empty()) {
        let pin: Pin = serde_json::from_str(&raw).map_err(|e| StateError(format!("stored pin unreadable: {e}")))?;
        out.insert(tool, pin);
    }
    Ok(Some(out))
}

fn encode(pin: &Pin) -> Result<String, StateError> {
    serde_json::to_string(pin).map_err(|e| StateError(format!("pin not encodable: {e}")))
}

impl PinStore for RedisPins {
    fn load(&self, server: &str) -> Result<Option<ServerPins>, StateError> {
        let k = key(server);
        let fields: HashMap<String, String> =
            self.redis.block_on(move |mut c| async move { redis::cmd("HGETALL").arg(k).query_async(&mut c).await })?;
        decode(fields)
    }

    fn pin_first(&self, server: &str, first: ServerPins) -> Result<ServerPins, StateError> {
        let k = key(server);
        let mut args = Vec::with_capacity(first.len() * 2);
        for (tool, pin) in &first {
            args.push(tool.clone());
            args.push(encode(pin)?);
        }
        let fields: HashMap<String, String> = self.redis.block_on(move |mut c| async move {
            let mut inv = PIN_FIRST.key(k);
            for a in &args {
                inv.arg(a);
            }
            inv.invoke_async(&mut c).await
        })?;
        Ok(decode(fields)?.unwrap_or_default())
    }

    fn approve(&self, server: &str, tool: &str, pin: &Pin) -> Result<(), StateError> {
        let (k, t, v) = (key(server), tool.to_string(), encode(pin)?);
        self.redis.block_on(move |mut c| async move {
            redis::pipe().atomic().hset(&k, "", "1").ignore().hset(&k, t, v).ignore().query_async(&mut c).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_without_the_marker_was_never_pinned() {
        assert_eq!(decode(HashMap::new()).unwrap(), None);
        let pin = Pin {
            hash: "h".into(),
            definition: serde_json::json!({"name": "x"}),
            approved_by: "first_use".into(),
            approved_at: "t".into(),
        };
        let fields = HashMap::from([("".to_string(), "1".to_string()), ("x".to_string(), encode(&pin).unwrap())]);
        assert_eq!(decode(fields).unwrap().unwrap()["x"], pin);
        let bad = HashMap::from([("".to_string(), "1".to_string()), ("x".to_string(), "{".to_string())]);
        assert!(decode(bad).is_err());
    }
}
