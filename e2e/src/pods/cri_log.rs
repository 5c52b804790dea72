//! Reading CRI container logs: one entry a line, `<RFC3339Nano> <stdout|stderr> <P|F> <text>`;
//! `P` marks a partial line continued by the next entry of the same stream.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// `P` (partial) or `F` (full).
    pub tag: String,
    pub text: String,
}

/// Reads and parses the CRI log at `path`.
pub fn read_cri_log(path: &Path) -> Result<Vec<LogEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_cri_log(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `(stream, tag, text)` of each entry of the log at `path`.
pub fn read_cri_log_tuples(path: &Path) -> Result<Vec<(String, String, String)>> {
    Ok(read_cri_log(path)?
        .into_iter()
        .map(|e| (e.stream, e.tag, e.text))
        .collect())
}

/// Parses CRI log text; any malformed line is an error naming it.
pub fn parse_cri_log(text: &str) -> Result<Vec<LogEntry>> {
    text.lines()
        .enumerate()
        .map(|(i, line)| parse_line(line).with_context(|| format!("line {}: {line:?}", i + 1)))
        .collect()
}

fn parse_line(line: &str) -> Result<LogEntry> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next().unwrap_or_default();
    let stream = parts.next().context("no stream")?;
    let tag = parts.next().context("no tag")?;
    // The text may be empty ("<time> stdout F " or even without the last space).
    let text = parts.next().unwrap_or_default();
    if !is_rfc3339(time) {
        bail!("bad timestamp {time:?}");
    }
    if stream != "stdout" && stream != "stderr" {
        bail!("bad stream {stream:?}");
    }
    if tag != "P" && tag != "F" {
        bail!("bad tag {tag:?}");
    }
    Ok(LogEntry {
        time: time.to_string(),
        stream: stream.to_string(),
        tag: tag.to_string(),
        text: text.to_string(),
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, checked by shape.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &frac[n..];
    }
    if rest == "Z" {
        return true;
    }
    let zone = rest.as_bytes();
    zone.len() == 6
        && (zone[0] == b'+' || zone[0] == b'-')
        && zone[1..3].iter().all(u8::is_ascii_digit)
        && zone[3] == b':'
        && zone[4..6].iter().all(u8::is_ascii_digit)
}

/// The lines written to `stream`, partial entries joined to the entry that completes them.
pub fn stream_lines(entries: &[LogEntry], stream: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for e in entries.iter().filter(|e| e.stream == stream) {
        pending.push_str(&e.text);
        if e.tag == "F" {
            lines.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-11-23T20:15:00.123456789Z stdout F hello world\n\
                       2026-11-23T20:15:00.2Z stderr P par\n\
                       2026-11-23T20:15:00.3+01:00 stdout F  two  spaces \n\
                       2026-11-23T20:15:00Z stderr F tial\n\
                       2026-11-23T20:15:01.000000001Z stdout F \n";

    #[test]
    fn entries_parse() {
        let e = parse_cri_log(LOG).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].time, "2026-11-23T20:15:00.123456789Z");
        assert_eq!((e[0].stream.as_str(), e[0].tag.as_str()), ("stdout", "F"));
        assert_eq!(e[0].text, "hello world");
        assert_eq!(e[2].text, " two  spaces ");
        assert_eq!(e[4].text, "");
        assert_eq!(stream_lines(&e, "stderr"), ["partial"]);
        assert_eq!(
            stream_lines(&e, "stdout"),
            ["hello world", " two  spaces ", ""]
        );
    }

    #[test]
    fn tuples_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, LOG).unwrap();
        let t = read_cri_log_tuples(&path).unwrap();
        assert_eq!(t[1], ("stderr".into(), "P".into(), "par".into()));
    }

    #[test]
    fn malformed_lines_fail() {
        for bad in [
            "hello",
            "2026-11-23 20:15:00Z stdout F x",
            "2026-11-23T20:15:00Z stdin F x",
            "2026-11-23T20:15:00Z stdout X x",
            "2026-11-23T20:15:00.Z stdout F x",
            "2026-11-23T20:15:00.1234567890Z stdout F x",
            "2026-11-23T20:15:00+0100 stdout F x",
            "2026-11-23T20:15:00Z stdout",
        ] {
            assert!(parse_cri_log(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_cri_log("").unwrap().is_empty());
    }
}
