//! Opening the audit trail from configuration: the chain, its checkpoint key, its sinks and
//! retention. (`server.rs` calls [`open`]; the CLI uses the paths.)

use std::path::PathBuf;
use std::time::Duration;

use super::checkpoint::Signer;
use super::sinks::{self, redis::RedisSink, stdout::StdoutSink};
use super::{index, retention, AuditLog, CheckpointOptions, Options};
use crate::config::Config;

/// This gateway's instance id: `audit.instance`, else the host name.
pub fn instance(cfg: &Config) -> String {
    if !cfg.audit.instance.is_empty() {
        return cfg.audit.instance.clone();
    }
    let host = std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
    if super::files::valid_instance(&host) {
        host
    } else {
        "fastmcp".into()
    }
}

/// The checkpoint signing key's path.
pub fn key_path(cfg: &Config) -> PathBuf {
    if cfg.audit.checkpoint.key_file.is_empty() {
        cfg.data_dir.join("audit-checkpoint.key")
    } else {
        PathBuf::from(&cfg.audit.checkpoint.key_file)
    }
}

/// The directory of the checkpoint files.
pub fn checkpoint_dir(cfg: &Config) -> PathBuf {
    if cfg.audit.checkpoint.dir.is_empty() {
        cfg.audit.dir.clone()
    } else {
        PathBuf::from(&cfg.audit.checkpoint.dir)
    }
}

/// Opens the trail and starts its sinks and retention. Errors are startup failures; a
/// directory that cannot be written is not one (the trail then fails closed).
pub fn open(cfg: &Config) -> Result<AuditLog, String> {
    let a = &cfg.audit;
    let checkpoints = if a.checkpoint.enabled {
        let signer = Signer::load_or_create(&key_path(cfg)).map_err(|e| format!("audit.checkpoint.key_file: {e}"))?;
        let file_dir = checkpoint_dir(cfg);
        std::fs::create_dir_all(&file_dir).ok();
        Some(CheckpointOptions {
            signer,
            every_records: a.checkpoint.every_records,
            every: Duration::from_secs(a.checkpoint.every_seconds),
            file_dir,
        })
    } else {
        None
    };
    let opts = Options {
        window: Duration::from_micros(a.group_commit_us),
        on_error: a.on_error,
        checkpoints,
        ring: a.stream.buffer,
        live_queue: a.stream.queue,
        ..Options::new(instance(cfg))
    };
    let log = AuditLog::open_with(&a.dir, opts).map_err(|e| format!("audit.dir: {e}"))?;
    if a.index {
        sinks::spawn(&log, Box::new(index::IndexSink::new(&a.dir))).map_err(|e| e.to_string())?;
    }
    if a.stdout {
        sinks::spawn(&log, Box::new(StdoutSink::new(log.last_published()))).map_err(|e| e.to_string())?;
    }
    if a.redis.enabled && !cfg.state.redis_url.0.is_empty() && cfg.state.redis.cluster {
        // The sink is one plain connection to the URL's node; a cluster may keep the stream's
        // slot elsewhere. Said once, never silently half-working.
        tracing::warn!("audit Redis Stream sink not started: not supported on Redis Cluster (state.redis.cluster)");
    } else if a.redis.enabled && !cfg.state.redis_url.0.is_empty() {
        let timeout = Duration::from_millis(a.redis.timeout_ms);
        let sink = RedisSink::new(&cfg.state.redis_url.0, &a.redis.stream_key, a.redis.maxlen, timeout)?;
        sinks::spawn(&log, Box::new(sink)).map_err(|e| e.to_string())?;
        tracing::info!(stream = %a.redis.stream_key, "audit records go to the Redis Stream too");
    }
    if a.retention_days > 0 {
        retention::start(log.clone(), a.retention_days, a.retention_action, checkpoint_dir(cfg))?;
    }
    tracing::info!(dir = %a.dir.display(), instance = %log.instance(), healthy = log.healthy(), "audit trail open");
    Ok(log)
}
