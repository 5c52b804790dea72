//! Exec-sync's reply: the request is a command line (`crius-monitor exec-sync …`,
//! [`crate::launch`]); the monitor answers with one JSON line on stdout and exits 0:
//!
//! ```json
//! {"exit_code":0,"signal":null,"stderr":"","stderr_truncated":false,"stdout":"aGkK","stdout_truncated":false,"timed_out":false}
//! ```
//!
//! or, when the runtime could not start the process, a [`crate::SyncMessage::Failed`] line
//! (`{"error":…,"monitor_pid":…}`) and exit status 1. Output is base64: it is bytes, not text.
//! Keys in alphabetical order, the bytes earlier monitors wrote.

use serde::{Deserialize, Serialize};

use crate::{DecodeError, SyncMessage, base64};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSyncOutput {
    /// The exit code, or 128 + the signal number when killed (137 after a timeout).
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// At most the output limit of each stream.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// More was written than the limit kept.
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecSyncReply {
    Done(ExecSyncOutput),
    Failed {
        error: String,
        monitor_pid: Option<i32>,
    },
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Present on a failure line, which [`SyncMessage::decode`] then reads.
    #[serde(default, skip_serializing)]
    error: Option<serde_json::Value>,
    exit_code: Option<i32>,
    #[serde(default)]
    signal: Option<i32>,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    stderr_truncated: bool,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stdout_truncated: bool,
    #[serde(default)]
    timed_out: bool,
}

impl ExecSyncReply {
    /// The line, newline included.
    pub fn encode(&self) -> String {
        let out = match self {
            ExecSyncReply::Failed { error, monitor_pid } => {
                return SyncMessage::Failed {
                    error: error.clone(),
                    monitor_pid: *monitor_pid,
                }
                .encode();
            }
            ExecSyncReply::Done(out) => out,
        };
        let wire = Wire {
            error: None,
            exit_code: Some(out.exit_code),
            signal: out.signal,
            stderr: base64::encode(&out.stderr),
            stderr_truncated: out.stderr_truncated,
            stdout: base64::encode(&out.stdout),
            stdout_truncated: out.stdout_truncated,
            timed_out: out.timed_out,
        };
        // Serializing numbers and strings cannot fail.
        let mut line = serde_json::to_string(&wire).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Parses the first line of the monitor's stdout.
    pub fn decode(stdout: &[u8]) -> Result<ExecSyncReply, DecodeError> {
        let bad = |reason: &str| DecodeError::new("exec-sync reply", reason);
        let text = String::from_utf8_lossy(stdout);
        let line = text.lines().next().ok_or_else(|| bad("no line"))?;
        let wire: Wire = serde_json::from_str(line.trim())
            .map_err(|e| DecodeError::new("exec-sync reply", e))?;
        if wire.error.is_some() {
            return match SyncMessage::decode(line)? {
                SyncMessage::Failed { error, monitor_pid } => {
                    Ok(ExecSyncReply::Failed { error, monitor_pid })
                }
                SyncMessage::Started { .. } => Err(bad("no error")),
            };
        }
        Ok(ExecSyncReply::Done(ExecSyncOutput {
            exit_code: wire.exit_code.ok_or_else(|| bad("no exit_code"))?,
            signal: wire.signal,
            timed_out: wire.timed_out,
            stdout: base64::decode(&wire.stdout).ok_or_else(|| bad("stdout is not base64"))?,
            stderr: base64::decode(&wire.stderr).ok_or_else(|| bad("stderr is not base64"))?,
            stdout_truncated: wire.stdout_truncated,
            stderr_truncated: wire.stderr_truncated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What crius-monitor wrote before this crate existed.
    const OK_V0: &str = "{\"exit_code\":0,\"signal\":null,\"stderr\":\"\",\"stderr_truncated\":false,\"stdout\":\"aGkK\",\"stdout_truncated\":false,\"timed_out\":false}\n";
    const KILLED_V0: &str = "{\"exit_code\":137,\"signal\":9,\"stderr\":\"b29wcw==\",\"stderr_truncated\":false,\"stdout\":\"//4A\",\"stdout_truncated\":true,\"timed_out\":true}\n";
    const FAILED_V0: &str = "{\"error\":\"runtime exec failed (Some(Exited(1))): container not running\",\"monitor_pid\":9}\n";

    fn killed() -> ExecSyncOutput {
        ExecSyncOutput {
            exit_code: 137,
            signal: Some(9),
            timed_out: true,
            stdout: vec![0xff, 0xfe, 0x00],
            stderr: b"oops".to_vec(),
            stdout_truncated: true,
            stderr_truncated: false,
        }
    }

    #[test]
    fn the_bytes_earlier_monitors_wrote() {
        let ok = ExecSyncReply::Done(ExecSyncOutput {
            stdout: b"hi\n".to_vec(),
            ..Default::default()
        });
        assert_eq!(ok.encode(), OK_V0);
        assert_eq!(ExecSyncReply::decode(OK_V0.as_bytes()), Ok(ok));
        let killed = ExecSyncReply::Done(killed());
        assert_eq!(killed.encode(), KILLED_V0);
        assert_eq!(ExecSyncReply::decode(KILLED_V0.as_bytes()), Ok(killed));
        let failed = ExecSyncReply::Failed {
            error: "runtime exec failed (Some(Exited(1))): container not running".into(),
            monitor_pid: Some(9),
        };
        assert_eq!(failed.encode(), FAILED_V0);
        assert_eq!(ExecSyncReply::decode(FAILED_V0.as_bytes()), Ok(failed));
    }

    #[test]
    fn round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for reply in [
            ExecSyncReply::Done(killed()),
            ExecSyncReply::Done(ExecSyncOutput {
                exit_code: -1,
                stdout: all.clone(),
                stderr: all,
                ..Default::default()
            }),
            ExecSyncReply::Failed {
                error: "x\ny".into(),
                monitor_pid: None,
            },
        ] {
            assert_eq!(ExecSyncReply::decode(reply.encode().as_bytes()), Ok(reply));
        }
    }

    #[test]
    fn rejects_what_is_not_a_reply() {
        for bad in [
            "",
            "hello",
            r#"{"stdout":""}"#,
            r#"{"exit_code":0,"stdout":"not base64!","stderr":""}"#,
        ] {
            assert!(ExecSyncReply::decode(bad.as_bytes()).is_err(), "{bad}");
        }
        // Only the first line counts.
        let two = format!("{OK_V0}garbage\n");
        assert!(ExecSyncReply::decode(two.as_bytes()).is_ok());
    }
}
