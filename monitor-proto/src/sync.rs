//! The sync message: the one JSON line a monitor writes on its sync descriptor once the runtime's
//! `create` (or `exec`) is done, or when it failed:
//!
//! ```json
//! {"monitor_pid":4240,"pid":4242}
//! {"error":"runtime create failed (Some(Exited(1))): …","monitor_pid":4240}
//! ```
//!
//! Keys in alphabetical order, the bytes earlier monitors wrote (`serde_json::json!` sorts);
//! the reader goes by key. Exec-sync's failure line is this same `error` form.

use serde::Serialize;

use crate::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage {
    /// The process runs (created, for a container): its pid in the host pid namespace.
    Started { pid: i32, monitor_pid: i32 },
    /// The monitor could not start it; for a failed runtime call the text is
    /// `runtime <verb> failed (<status>): <runtime stderr>`. The monitor exits right after.
    Failed {
        error: String,
        monitor_pid: Option<i32>,
    },
}

#[derive(Serialize)]
struct StartedWire {
    monitor_pid: i32,
    pid: i32,
}

#[derive(Serialize)]
struct FailedWire<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    monitor_pid: Option<i32>,
}

impl SyncMessage {
    /// The line, newline included.
    pub fn encode(&self) -> String {
        let json = match self {
            SyncMessage::Started { pid, monitor_pid } => serde_json::to_string(&StartedWire {
                monitor_pid: *monitor_pid,
                pid: *pid,
            }),
            SyncMessage::Failed { error, monitor_pid } => serde_json::to_string(&FailedWire {
                error,
                monitor_pid: *monitor_pid,
            }),
        };
        // Serializing numbers and a string cannot fail.
        let mut line = json.unwrap_or_default();
        line.push('\n');
        line
    }

    /// Parses a line (surrounding white space ignored). A line with `error` is a failure
    /// whatever else it holds; a start needs both pids, positive.
    pub fn decode(line: &str) -> Result<SyncMessage, DecodeError> {
        let bad = |reason: &str| DecodeError::new("sync message", reason);
        let value: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(|e| DecodeError::new("sync message", e))?;
        let pid = |key: &str| {
            value
                .get(key)?
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 0)
        };
        if let Some(error) = value.get("error") {
            let error = error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_string);
            return Ok(SyncMessage::Failed {
                error,
                monitor_pid: pid("monitor_pid"),
            });
        }
        Ok(SyncMessage::Started {
            pid: pid("pid").ok_or_else(|| bad("no pid"))?,
            monitor_pid: pid("monitor_pid").ok_or_else(|| bad("no monitor_pid"))?,
        })
    }

    /// This process (the monitor) started `pid`.
    pub fn started(pid: i32) -> SyncMessage {
        SyncMessage::Started {
            pid,
            monitor_pid: own_pid(),
        }
    }

    /// A failure of this process (the monitor) with `error`.
    pub fn failed(error: impl Into<String>) -> SyncMessage {
        SyncMessage::Failed {
            error: error.into(),
            monitor_pid: Some(own_pid()),
        }
    }
}

/// Pids fit an `i32` (the kernel's `pid_max` is at most 2^22).
fn own_pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What crius-monitor wrote before this crate existed.
    const STARTED_V0: &str = "{\"monitor_pid\":4240,\"pid\":4242}\n";
    const FAILED_V0: &str =
        "{\"error\":\"runtime create failed (Some(Exited(1))): boom\\n\",\"monitor_pid\":7}\n";

    #[test]
    fn writes_the_bytes_earlier_monitors_wrote() {
        let started = SyncMessage::Started {
            pid: 4242,
            monitor_pid: 4240,
        };
        assert_eq!(started.encode(), STARTED_V0);
        let failed = SyncMessage::Failed {
            error: "runtime create failed (Some(Exited(1))): boom\n".into(),
            monitor_pid: Some(7),
        };
        assert_eq!(failed.encode(), FAILED_V0);
        assert_eq!(SyncMessage::decode(STARTED_V0), Ok(started));
        assert_eq!(SyncMessage::decode(FAILED_V0), Ok(failed));
    }

    #[test]
    fn round_trips() {
        for message in [
            SyncMessage::Started {
                pid: 1,
                monitor_pid: i32::MAX,
            },
            SyncMessage::Failed {
                error: "line one\nline \"two\" \u{1f600}".into(),
                monitor_pid: None,
            },
            SyncMessage::failed("bad arguments"),
        ] {
            let line = message.encode();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(SyncMessage::decode(&line), Ok(message));
        }
    }

    #[test]
    fn reads_by_key() {
        assert_eq!(
            SyncMessage::decode(r#"{"pid":4242,"monitor_pid":4240}"#),
            Ok(SyncMessage::Started {
                pid: 4242,
                monitor_pid: 4240
            })
        );
        // A non-string error is still an error, in its JSON form.
        assert_eq!(
            SyncMessage::decode(r#"{"error":{"code":1}}"#),
            Ok(SyncMessage::Failed {
                error: r#"{"code":1}"#.into(),
                monitor_pid: None
            })
        );
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        for bad in [
            "",
            "pid 5",
            r#"{"pid":0,"monitor_pid":1}"#,
            r#"{"monitor_pid":1}"#,
            r#"{"pid":5}"#,
            r#"{"pid":5000000000,"monitor_pid":1}"#,
        ] {
            assert!(SyncMessage::decode(bad).is_err(), "{bad}");
        }
    }
}
