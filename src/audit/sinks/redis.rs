//! The Redis Stream sink (with `REDIS_URL`): every durable record `XADD`ed to
//! `audit.redis.stream_key` (`MAXLEN ~ audit.redis.maxlen`), on this sink's own connection.
//!
//! Entry fields: `instance`, `seq`, `tenant`, `sub`, `tool`, `outcome`, `record` (the chained
//! JSON line, verifiable like the file). Entry ids are Redis's; a record is identified by
//! `(instance, seq)`. The hash `<stream_key>:pos` maps each instance to the last seq it
//! added, in the same `MULTI` as the entries, so a restart or reconnect continues exactly
//! there (the default key's `{…}` hash tag keeps both keys in one cluster slot).

use std::sync::Arc;
use std::time::Duration;

use super::Sink;
use crate::audit::hub::Published;

pub struct RedisSink {
    client: redis::Client,
    con: Option<redis::Connection>,
    key: String,
    pos_key: String,
    maxlen: u64,
    timeout: Duration,
}

impl RedisSink {
    pub fn new(url: &str, key: &str, maxlen: u64, timeout: Duration) -> Result<RedisSink, String> {
        // The URL may carry a password: never echo it.
        // TLS (`rediss://`) trusts the gateway's roots, as every other TLS client does.
        let roots = redis::TlsCertificates { client_tls: None, root_cert: Some(crate::upstream::tls::roots().pem()) };
        let client = if url.starts_with("rediss://") {
            redis::Client::build_with_tls(url, roots)
        } else {
            redis::Client::open(url)
        }
        .map_err(|e| format!("REDIS_URL: not a Redis URL ({:?})", e.kind()))?;
        Ok(RedisSink { client, con: None, key: key.to_string(), pos_key: format!("{key}:pos"), maxlen, timeout })
    }

    fn con(&mut self) -> Result<&mut redis::Connection, String> {
        if self.con.is_none() {
            let c = self.client.get_connection_with_timeout(self.timeout).map_err(|e| describe(&e))?;
            c.set_read_timeout(Some(self.timeout)).map_err(|e| describe(&e))?;
            c.set_write_timeout(Some(self.timeout)).map_err(|e| describe(&e))?;
            self.con = Some(c);
        }
        self.con.as_mut().ok_or_else(|| "no connection".to_string())
    }
}

fn describe(e: &redis::RedisError) -> String {
    // Not `Display`: it may quote the connection's address and user.
    format!("redis: {:?}{}", e.kind(), e.code().map(|c| format!(" {c}")).unwrap_or_default())
}

impl Sink for RedisSink {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn position(&mut self, instance: &str) -> Result<u64, String> {
        let pos_key = self.pos_key.clone();
        let r: Result<Option<u64>, _> = redis::cmd("HGET").arg(&pos_key).arg(instance).query(self.con()?);
        r.map(|p| p.unwrap_or(0)).map_err(|e| {
            self.con = None;
            describe(&e)
        })
    }

    /// A short wait gathers the fsync rounds of a busy instance into one pipeline.
    fn linger(&self) -> std::time::Duration {
        std::time::Duration::from_millis(20)
    }

    fn write(&mut self, instance: &str, records: &[Arc<Published>]) -> Result<(), String> {
        let Some(last) = records.last().map(|r| r.seq) else { return Ok(()) };
        let mut pipe = redis::pipe();
        pipe.atomic();
        for r in records {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.maxlen)
                .arg("*")
                .arg("instance")
                .arg(instance)
                .arg("seq")
                .arg(r.seq)
                .arg("tenant")
                .arg(&r.tenant)
                .arg("sub")
                .arg(&r.sub)
                .arg("tool")
                .arg(r.tool.as_deref().unwrap_or(""))
                .arg("outcome")
                .arg(&r.outcome)
                .arg("record")
                .arg(&r.line[..])
                .ignore();
        }
        pipe.cmd("HSET").arg(&self.pos_key).arg(instance).arg(last).ignore();
        let r: Result<(), _> = pipe.query(self.con()?);
        r.map_err(|e| {
            self.con = None;
            describe(&e)
        })
    }
}
