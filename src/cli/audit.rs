//! `fastmcp audit verify|pubkey|reindex|query`.
//!
//! `verify` exit codes: 0 every chain intact; 1 tampering or truncation (the first break is
//! named `file:line`); 3 intact except a torn tail not yet moved aside (a crash; the next
//! start quarantines it); 2 usage, configuration or I/O errors.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::audit::checkpoint::{Signer, TrustedKeys};
use crate::audit::index::{self, Index, Query};
use crate::audit::setup;
use crate::audit::verify::{self, VerifyOptions};

/// Exit code of `audit verify` for a chain that is intact but ends in a torn tail.
pub const EXIT_TORN: i32 = 3;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every instance's hash chain in the directory; exit 1 naming the first bad
    /// record (file:line), 3 when the only finding is a torn tail left by a crash.
    Verify {
        /// Audit directory (default: the configured audit.dir).
        dir: Option<PathBuf>,
        /// Trusted checkpoint public keys (one base64 key per line, from `fastmcp audit
        /// pubkey`): checkpoints are then required and prove no record was dropped up to the
        /// last one and no file was rewritten.
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// Directory of the checkpoint files (default: audit.checkpoint.dir, else the audit dir).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the checkpoint signing key's public key (base64), creating the key if absent.
    Pubkey {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rebuild the SQLite index (<dir>/index.sqlite) from the chain files.
    Reindex {
        dir: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the records matching every given filter, oldest first (the index is brought up
    /// to date from the chain files first).
    Query {
        /// Audit directory (default: the configured audit.dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Tool id (`mcp:{server}:{tool}` or a REST tool id).
        #[arg(long)]
        tool: Option<String>,
        /// Subject (`sub`).
        #[arg(long)]
        sub: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        /// `decision.result`: allow, deny, hold, confirmed, rate_limited, unauthenticated, …
        #[arg(long)]
        outcome: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        /// From (inclusive): RFC 3339, YYYY-MM-DD, or an age such as 2h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Until (exclusive), same forms.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<u64>,
        /// Print the records as JSON lines (as chained) instead of a summary line each.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(cmd: AuditCommand) -> i32 {
    match cmd {
        AuditCommand::Verify { dir, pubkey, checkpoints, config } => super::with_config(config, |cfg| {
            let dir = dir.unwrap_or_else(|| cfg.audit.dir.clone());
            let checkpoints = checkpoints
                .or_else(|| (!cfg.audit.checkpoint.dir.is_empty()).then(|| PathBuf::from(&cfg.audit.checkpoint.dir)));
            run_verify(&dir, pubkey.as_deref(), checkpoints, cfg.audit.checkpoint.every_records)
        }),
        AuditCommand::Pubkey { config } => {
            super::with_config(config, |cfg| match Signer::load_or_create(&setup::key_path(&cfg)) {
                Ok(s) => {
                    println!("{}", s.public_b64());
                    eprintln!("key id {} ({})", s.key_id(), setup::key_path(&cfg).display());
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            })
        }
        AuditCommand::Reindex { dir, config } => super::with_config(config, |cfg| {
            let dir = dir.unwrap_or(cfg.audit.dir);
            match Index::rebuild(&dir) {
                Ok((_, n)) => {
                    println!("index rebuilt: {n} records in {}", index::path(&dir).display());
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    2
                }
            }
        }),
        AuditCommand::Query { dir, tool, sub, tenant, outcome, instance, since, until, limit, json, config } => {
            super::with_config(config, |cfg| {
                let dir = dir.unwrap_or(cfg.audit.dir);
                let now = chrono::Utc::now();
                let time = |s: Option<String>| s.map(|s| index::parse_time(&s, now)).transpose();
                let (since, until) = match (time(since), time(until)) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => {
                        eprintln!("{e}");
                        return 2;
                    }
                };
                let q = Query { tool, sub, tenant, outcome, instance, since, until, limit };
                query(&dir, &q, json)
            })
        }
    }
}

fn run_verify(dir: &Path, pubkey: Option<&Path>, checkpoint_dir: Option<PathBuf>, every: u64) -> i32 {
    let keys = match pubkey.map(TrustedKeys::load).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let opts = VerifyOptions { keys, checkpoint_dir, max_unsigned: every };
    match verify::verify(dir, &opts) {
        Ok(chains) => {
            let total: u64 = chains.iter().map(|c| c.records).sum();
            let mut torn = false;
            for c in &chains {
                let name = if c.instance.is_empty() { "(unnamed, audit-YYYYMMDD.jsonl)" } else { c.instance.as_str() };
                let signed = if opts.keys.is_some() {
                    format!(", {} checkpoints verified", c.checkpoints)
                } else {
                    String::new()
                };
                println!("chain {name}: {} records (seq {}..{}){signed}", c.records, c.first_seq, c.last_seq);
                for r in &c.recoveries {
                    println!("  recovered after a crash: {r}");
                }
                for w in &c.warnings {
                    println!("  warning: {w}");
                }
                if let Some(t) = &c.torn {
                    torn = true;
                    println!("  WARNING: torn tail at {t}");
                }
            }
            if torn {
                println!("audit chain intact but for a torn tail: {total} records in {}", dir.display());
                EXIT_TORN
            } else {
                println!("audit chain intact: {total} records in {}", dir.display());
                0
            }
        }
        Err(b) => {
            println!("audit chain BROKEN at {b}");
            1
        }
    }
}

fn query(dir: &Path, q: &Query, json: bool) -> i32 {
    let idx = match Index::open(&index::path(dir)) {
        Ok(mut i) => match i.catch_up(dir) {
            Ok(_) => i,
            Err(e) => {
                eprintln!("index catch-up failed ({e}); answering from what is indexed");
                i
            }
        },
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let rows = match idx.query(q) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    for line in &rows {
        if json {
            println!("{line}");
        } else {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            let s = |p: &str| {
                v.pointer(p).map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string())).unwrap_or_default()
            };
            println!(
                "{} {}#{} {} {}/{} {} {} {}",
                s("/ts"),
                s("/instance"),
                s("/seq"),
                s("/action"),
                s("/tenant"),
                s("/sub"),
                s("/toolId"),
                s("/decision/result"),
                s("/corr_id")
            );
        }
    }
    eprintln!("{} records", rows.len());
    0
}
