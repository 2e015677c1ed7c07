//! Records to stdout as JSON lines (`audit.stdout`), for log shippers. Starts with records
//! made after startup; lines are the records exactly as chained.

use std::io::Write;
use std::sync::Arc;

use super::Sink;
use crate::audit::hub::Published;

pub struct StdoutSink {
    pos: u64,
}

impl StdoutSink {
    /// Prints records after `start` (the chain's end at startup).
    pub fn new(start: u64) -> StdoutSink {
        StdoutSink { pos: start }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn position(&mut self, _instance: &str) -> Result<u64, String> {
        Ok(self.pos)
    }

    fn write(&mut self, _instance: &str, records: &[Arc<Published>]) -> Result<(), String> {
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.line.len() + 1).sum());
        for r in records {
            buf.extend_from_slice(&r.line);
            buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&buf).and_then(|_| out.flush()).map_err(|e| e.to_string())?;
        if let Some(r) = records.last() {
            self.pos = r.seq;
        }
        Ok(())
    }
}
