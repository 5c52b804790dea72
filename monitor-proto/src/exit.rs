//! The exit file: how the container (or exec'd process) ended, written once by its monitor when
//! it is gone, atomically and durably. Its appearance is the daemon's signal that the process
//! exited.
//!
//! ```json
//! {"exit_code":137,"finished_at":"2026-05-01T12:00:03.000000001Z","finished_at_unix_nano":1777636803000000001,"oom_killed":true,"signal":9}
//! ```
//!
//! The keys are in alphabetical order: earlier monitors built the line with `serde_json::json!`,
//! whose map sorts them, and this writes the same bytes. Readers go by key, not position.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::DecodeError;
use crate::time::rfc3339_nano;

/// How a process ended. The daemon also keeps this in its container records (serde, with these
/// field names), so renaming a field is a change of the record format too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number when killed (as cri-o reports).
    pub exit_code: i32,
    /// The signal that killed the process.
    pub signal: Option<i32>,
    /// The OOM killer acted in the container's memory cgroup.
    pub oom_killed: bool,
    /// When the monitor reaped the process, nanoseconds since the epoch.
    pub finished_at_unix_nano: i64,
}

/// The file's JSON, fields in the order the bytes have them.
#[derive(Serialize, Deserialize)]
struct Wire {
    exit_code: i32,
    /// Written for people and other tools; readers use the number.
    #[serde(default, skip_deserializing)]
    finished_at: String,
    finished_at_unix_nano: i64,
    oom_killed: bool,
    #[serde(default)]
    signal: Option<i32>,
}

impl ExitStatus {
    /// The file's contents: one JSON line.
    pub fn encode(&self) -> String {
        let at = u64::try_from(self.finished_at_unix_nano)
            .map(|n| UNIX_EPOCH + Duration::from_nanos(n))
            .unwrap_or(UNIX_EPOCH);
        let wire = Wire {
            exit_code: self.exit_code,
            finished_at: rfc3339_nano(at),
            finished_at_unix_nano: self.finished_at_unix_nano,
            oom_killed: self.oom_killed,
            signal: self.signal,
        };
        // Serializing a struct of numbers and strings cannot fail.
        let mut line = serde_json::to_string(&wire).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Parses the file's contents. A file that does not parse is an error, never "still
    /// running": it is written whole or not at all.
    pub fn decode(data: &[u8]) -> Result<ExitStatus, DecodeError> {
        let wire: Wire =
            serde_json::from_slice(data).map_err(|e| DecodeError::new("exit file", e))?;
        Ok(ExitStatus {
            exit_code: wire.exit_code,
            signal: wire.signal,
            oom_killed: wire.oom_killed,
            finished_at_unix_nano: wire.finished_at_unix_nano,
        })
    }

    /// `finished_at_unix_nano` of a time (clamped to the range of an `i64`).
    pub fn unix_nanos(t: SystemTime) -> i64 {
        t.duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What crius-monitor wrote before this crate existed (its `serde_json::json!` line).
    const KILLED_V0: &str = "{\"exit_code\":137,\"finished_at\":\"2026-05-01T12:00:03.000000001Z\",\"finished_at_unix_nano\":1777636803000000001,\"oom_killed\":true,\"signal\":9}\n";
    const EXITED_V0: &str = "{\"exit_code\":3,\"finished_at\":\"2023-11-14T22:13:20.000000005Z\",\"finished_at_unix_nano\":1700000000000000005,\"oom_killed\":false,\"signal\":null}\n";

    fn killed() -> ExitStatus {
        ExitStatus {
            exit_code: 137,
            signal: Some(9),
            oom_killed: true,
            finished_at_unix_nano: 1_777_636_803_000_000_001,
        }
    }

    #[test]
    fn writes_the_bytes_earlier_monitors_wrote() {
        assert_eq!(killed().encode(), KILLED_V0);
        let exited = ExitStatus {
            exit_code: 3,
            signal: None,
            oom_killed: false,
            finished_at_unix_nano: 1_700_000_000_000_000_005,
        };
        assert_eq!(exited.encode(), EXITED_V0);
    }

    #[test]
    fn reads_files_earlier_monitors_wrote() {
        assert_eq!(ExitStatus::decode(KILLED_V0.as_bytes()), Ok(killed()));
        let exited = ExitStatus::decode(EXITED_V0.as_bytes()).unwrap();
        assert_eq!((exited.exit_code, exited.signal), (3, None));
        // The key order and the free-form time do not matter to the reader.
        let reordered = r#"{"signal":9,"oom_killed":true,"finished_at":"x","finished_at_unix_nano":1777636803000000001,"exit_code":137}"#;
        assert_eq!(ExitStatus::decode(reordered.as_bytes()), Ok(killed()));
    }

    #[test]
    fn round_trips() {
        for status in [
            killed(),
            ExitStatus {
                exit_code: 0,
                signal: None,
                oom_killed: false,
                finished_at_unix_nano: 0,
            },
        ] {
            assert_eq!(ExitStatus::decode(status.encode().as_bytes()), Ok(status));
        }
    }

    #[test]
    fn damaged_files_are_errors() {
        for bad in [
            r#"{"exit_code":3"#,
            r#"{"exit_code":"3"}"#,
            r#"{"exit_code":3,"oom_killed":false}"#,
            "",
        ] {
            let err = ExitStatus::decode(bad.as_bytes()).unwrap_err();
            assert_eq!(err.what, "exit file");
        }
    }

    #[test]
    fn nanoseconds_of_a_time() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(ExitStatus::unix_nanos(at), 1_700_000_000_000_000_005);
        assert_eq!(ExitStatus::unix_nanos(UNIX_EPOCH), 0);
    }
}
