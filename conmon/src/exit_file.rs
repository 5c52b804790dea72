//! The exit file: how the container (or exec'd process) ended, written once when it is gone.
//! The daemon treats its appearance as "exited", so it is written whole or not at all (temporary
//! file, fsync, rename) and only after the last output reached the log.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::child_reaper::ExitStatus;
use crate::cri_log::rfc3339_nano;

pub struct ExitInfo {
    pub status: ExitStatus,
    pub oom_killed: bool,
    pub finished_at: SystemTime,
}

impl ExitInfo {
    /// `{"exit_code":137,"signal":9,"oom_killed":true,"finished_at":"…Z","finished_at_unix_nano":…}`
    pub fn to_json(&self) -> String {
        let nanos = self
            .finished_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        serde_json::json!({
            "exit_code": self.status.code(),
            "signal": self.status.signal(),
            "oom_killed": self.oom_killed,
            "finished_at": rfc3339_nano(self.finished_at),
            "finished_at_unix_nano": u64::try_from(nanos).unwrap_or(u64::MAX),
        })
        .to_string()
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, format!("{}\n", self.to_json()).as_bytes())
    }
}

/// Replaces `path` with `contents` so that readers see the old file, or the new one complete.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut file = File::create(tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(tmp, path)?;
    // Make the rename itself durable.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_for_exit_code_and_signal() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let exited = ExitInfo {
            status: ExitStatus::Exited(3),
            oom_killed: false,
            finished_at: at,
        };
        let v: serde_json::Value = serde_json::from_str(&exited.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "exit_code": 3,
                "signal": null,
                "oom_killed": false,
                "finished_at": "2023-11-14T22:13:20.000000005Z",
                "finished_at_unix_nano": 1_700_000_000_000_000_005u64,
            })
        );
        let killed = ExitInfo {
            status: ExitStatus::Signaled(9),
            oom_killed: true,
            finished_at: at,
        };
        let v: serde_json::Value = serde_json::from_str(&killed.to_json()).unwrap();
        assert_eq!(v["exit_code"], 137);
        assert_eq!(v["signal"], 9);
        assert_eq!(v["oom_killed"], true);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["exit"]);
    }
}
