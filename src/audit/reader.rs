//! Reading chain files line by line with byte offsets, plain or gzip, telling complete lines
//! from a torn tail (bytes after the last newline: a record cut short by a crash).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;

use super::files::ChainFile;

/// One item of a chain file.
#[derive(Debug)]
pub enum Item {
    /// A complete line (without its newline), its 1-based number and starting byte offset.
    Line { no: usize, offset: u64, text: Vec<u8> },
    /// Bytes after the last newline, `offset..offset + bytes.len()`.
    Torn { no: usize, offset: u64, bytes: Vec<u8> },
}

/// Opens `f` for reading, decompressing an archived file.
pub fn open(f: &ChainFile) -> std::io::Result<Box<dyn BufRead>> {
    open_path(&f.path, f.compressed)
}

pub fn open_path(path: &Path, compressed: bool) -> std::io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    Ok(if compressed {
        Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
    } else {
        Box::new(BufReader::with_capacity(256 << 10, file))
    })
}

/// Calls `each` for every item of `r` until it returns `false`.
pub fn scan(mut r: impl BufRead, mut each: impl FnMut(Item) -> bool) -> std::io::Result<()> {
    let mut offset = 0u64;
    let mut no = 0usize;
    loop {
        let mut buf = Vec::new();
        let n = r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        no += 1;
        let item = if buf.last() == Some(&b'\n') {
            buf.pop();
            Item::Line { no, offset, text: buf }
        } else {
            Item::Torn { no, offset, bytes: buf }
        };
        offset += n as u64;
        if !each(item) {
            return Ok(());
        }
    }
}

/// The `seq` of a record line. The top-level `seq` is the last `"seq":` in the line: it
/// follows every nested object, and a quote inside a JSON string is escaped, so no string
/// value can contain the pattern. A line without one is parsed in full.
pub fn seq_of(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"seq\":";
    if let Some(at) = line.windows(KEY.len()).rposition(|w| w == KEY) {
        let digits: Vec<u8> = line[at + KEY.len()..].iter().copied().take_while(u8::is_ascii_digit).collect();
        if let Some(n) = std::str::from_utf8(&digits).ok().and_then(|d| d.parse().ok()) {
            return Some(n);
        }
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    v.get("seq").and_then(Value::as_u64)
}

/// Reads every complete record line of `files` with `from <= seq <= to`, in order.
pub fn records_between(files: &[ChainFile], from: u64, to: u64) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for f in files {
        let mut past = false;
        scan(open(f)?, |item| {
            if let Item::Line { text, .. } = item {
                if let Some(seq) = seq_of(&text) {
                    if seq > to {
                        past = true;
                        return false;
                    }
                    if seq >= from {
                        out.push((seq, text));
                    }
                }
            }
            true
        })?;
        if past {
            break;
        }
    }
    Ok(out)
}

/// Reads all of `path` (for small files such as checkpoint files).
pub fn read_all(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    File::open(path)?.read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_offsets_and_torn_tail() {
        let data = b"{\"a\":1}\n{\"b\":2}\n{\"c\"";
        let mut items = Vec::new();
        scan(&data[..], |i| {
            items.push(i);
            true
        })
        .unwrap();
        assert!(matches!(&items[1], Item::Line { no: 2, offset: 8, text } if text == b"{\"b\":2}"));
        assert!(matches!(&items[2], Item::Torn { no: 3, offset: 16, bytes } if bytes == b"{\"c\""));
    }
}
