//! The container log in the CRI format the kubelet reads:
//! `<RFC3339Nano timestamp> <stdout|stderr> <P|F> <content>\n`.
//!
//! This matches conmon and conmon-rs byte for byte in what they write: every read chunk is cut at
//! newlines; a piece ending in `\n` is a full entry (`F`), a piece the chunk ends in the middle of
//! is a partial entry (`P`) and gets a `\n` added so the file stays line-oriented. Partial pieces
//! are not held back waiting for the rest of the line (a prompt without a newline shows up at
//! once), so output still unterminated at exit stays a `P` entry, as with cri-o; the kubelet prints
//! a trailing `P` entry's content without a newline. Bytes are copied as they are: a `\r` before
//! the `\n` stays in the content. On top of that, no entry carries more than `max_line` bytes of
//! content: a longer line becomes `P` entries of `max_line` bytes followed by the `F` remainder.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use crius_monitor_proto::time::rfc3339_nano;

/// Default content bytes per entry, the 16 KiB cri-o and docker use.
pub const DEFAULT_MAX_LINE: usize = crius_monitor_proto::launch::DEFAULT_LOG_MAX_LINE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// An open container log file; entries are appended, one write per chunk of output.
pub struct CriLog {
    path: PathBuf,
    file: File,
    max_line: usize,
    buf: Vec<u8>,
}

impl CriLog {
    pub fn open(path: &Path, max_line: usize) -> io::Result<Self> {
        Ok(CriLog {
            path: path.to_path_buf(),
            file: open_append(path)?,
            max_line: max_line.max(1),
            buf: Vec::new(),
        })
    }

    /// Appends `data` read from `stream` at time `now` (the caller's clock, so tests can fix it).
    pub fn write(&mut self, stream: Stream, data: &[u8], now: SystemTime) -> io::Result<()> {
        self.buf.clear();
        encode(
            &mut self.buf,
            stream,
            data,
            self.max_line,
            &rfc3339_nano(now),
        );
        self.file.write_all(&self.buf)?;
        // Keep the buffer from pinning memory after one burst of long output.
        if self.buf.capacity() > 4 * DEFAULT_MAX_LINE {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Opens the path again: after the kubelet renamed the file away for rotation, new entries go
    /// to a fresh file under the original name.
    pub fn reopen(&mut self) -> io::Result<()> {
        let _ = self.file.sync_data();
        self.file = open_append(&self.path)?;
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Append, never truncate: if the file is still there (no rotation happened), nothing is lost.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Appends the log entries for one chunk of output to `out`.
pub fn encode(out: &mut Vec<u8>, stream: Stream, data: &[u8], max_line: usize, timestamp: &str) {
    let max_line = max_line.max(1);
    let mut rest = data;
    while !rest.is_empty() {
        // A newline right after `max_line` content bytes still ends a full entry.
        let window = &rest[..rest.len().min(max_line + 1)];
        let (content, tag, used) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], b'F', i + 1),
            None => {
                let n = rest.len().min(max_line);
                (&rest[..n], b'P', n)
            }
        };
        out.extend_from_slice(timestamp.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.name().as_bytes());
        out.push(b' ');
        out.push(tag);
        out.push(b' ');
        out.extend_from_slice(content);
        out.push(b'\n');
        rest = &rest[used..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const TS: &str = "2023-11-14T22:13:20.123456789Z";

    fn enc(stream: Stream, data: &[u8], max_line: usize) -> String {
        let mut out = Vec::new();
        encode(&mut out, stream, data, max_line, TS);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn full_lines() {
        assert_eq!(
            enc(Stream::Stdout, b"hello\nworld\n", 16),
            format!("{TS} stdout F hello\n{TS} stdout F world\n")
        );
    }

    #[test]
    fn partial_line_at_end_of_chunk_is_p() {
        assert_eq!(
            enc(Stream::Stdout, b"one\ntw", 16),
            format!("{TS} stdout F one\n{TS} stdout P tw\n")
        );
        assert_eq!(
            enc(Stream::Stdout, b"o\n", 16),
            format!("{TS} stdout F o\n")
        );
    }

    #[test]
    fn stderr_is_named() {
        assert_eq!(
            enc(Stream::Stderr, b"oops\n", 16),
            format!("{TS} stderr F oops\n")
        );
    }

    #[test]
    fn long_line_split_into_p_chunks_then_f() {
        assert_eq!(
            enc(Stream::Stdout, b"abcdefghij\n", 4),
            format!("{TS} stdout P abcd\n{TS} stdout P efgh\n{TS} stdout F ij\n")
        );
        // Exactly max_line bytes before the newline: one full entry.
        assert_eq!(
            enc(Stream::Stdout, b"abcd\n", 4),
            format!("{TS} stdout F abcd\n")
        );
        // One more byte: a full-size partial entry, then a full one-byte entry.
        assert_eq!(
            enc(Stream::Stdout, b"abcde\n", 4),
            format!("{TS} stdout P abcd\n{TS} stdout F e\n")
        );
        // Unterminated and longer than max_line: partial entries only.
        assert_eq!(
            enc(Stream::Stdout, b"abcdef", 4),
            format!("{TS} stdout P abcd\n{TS} stdout P ef\n")
        );
    }

    #[test]
    fn crlf_kept_in_content() {
        assert_eq!(
            enc(Stream::Stdout, b"dos\r\nline\r\n", 16),
            format!("{TS} stdout F dos\r\n{TS} stdout F line\r\n")
        );
    }

    #[test]
    fn empty_lines() {
        assert_eq!(
            enc(Stream::Stdout, b"\n\na\n", 16),
            format!("{TS} stdout F \n{TS} stdout F \n{TS} stdout F a\n")
        );
        assert_eq!(enc(Stream::Stdout, b"", 16), "");
    }

    #[test]
    fn timestamp_format() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339_nano(t), TS);
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        // Leap day, and the last nanosecond of a year.
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 5);
        assert_eq!(rfc3339_nano(leap), "2000-02-29T00:00:00.000000005Z");
        let eoy = UNIX_EPOCH + Duration::new(1_735_689_599, 999_999_999);
        assert_eq!(rfc3339_nano(eoy), "2024-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn file_write_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let mut log = CriLog::open(&path, DEFAULT_MAX_LINE).unwrap();
        log.write(Stream::Stdout, b"before\n", t).unwrap();
        std::fs::rename(&path, dir.path().join("ctr.log.1")).unwrap();
        log.write(Stream::Stdout, b"still old\n", t).unwrap();
        log.reopen().unwrap();
        log.write(Stream::Stderr, b"after\n", t).unwrap();
        let old = std::fs::read_to_string(dir.path().join("ctr.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            old,
            format!("{TS} stdout F before\n{TS} stdout F still old\n")
        );
        assert_eq!(new, format!("{TS} stderr F after\n"));
    }
}
