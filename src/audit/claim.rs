//! One writer per chain. A process claims its instance's chain with an exclusive lock on
//! `.lock-<instance>` in the audit directory, held for its lifetime. When another live process
//! holds it — during `serve --upgrade` the old gateway drains while the new one serves, both
//! with the same instance name — the newcomer takes `<instance>.1` (then `.2`, …): two
//! processes never extend, and so never fork, one chain. A later start takes the plain name
//! again once it is free; each name's chain continues from its own tail.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::AuditError;

/// Alternative names tried past the plain one.
const MAX_SUFFIX: u32 = 16;

/// The instance name this process writes as, and the lock that keeps it (`None` when the
/// directory cannot hold a lock file now: a read-only or full disk is the trail's health to
/// report, not a reason not to start).
pub(super) fn claim(dir: &Path, instance: &str) -> Result<(String, Option<File>), AuditError> {
    for n in 0..=MAX_SUFFIX {
        let name = if n == 0 { instance.to_string() } else { format!("{instance}.{n}") };
        let path = dir.join(format!(".lock-{name}"));
        let file = match OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "audit chain lock not taken");
                return Ok((name, None));
            }
        };
        match file.try_lock() {
            Ok(()) => {
                if n > 0 {
                    tracing::warn!(instance, writing_as = %name, "audit chain held by another live process (an upgrade?): writing a chain of its own");
                }
                return Ok((name, Some(file)));
            }
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => {
                return Err(AuditError::Config(format!("{}: cannot lock the audit chain: {e}", path.display())))
            }
        }
    }
    Err(AuditError::Config(format!("audit.instance {instance:?}: {MAX_SUFFIX} other processes hold its chains")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_live_writer_gets_a_chain_of_its_own_and_the_name_comes_back() {
        let dir = std::env::temp_dir().join(format!("fastmcp-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, held) = claim(&dir, "gw").unwrap();
        let (second, _also) = claim(&dir, "gw").unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("gw", "gw.1"));
        drop(held);
        assert_eq!(claim(&dir, "gw").unwrap().0, "gw", "free again once the first writer is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
