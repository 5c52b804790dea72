//! The exit file: how the container (or exec'd process) ended, written once when it is gone.
//! The daemon treats its appearance as "exited", so it is written whole or not at all and only
//! after the last output reached the log. Its form is `ExitStatus` of
//! `crius_monitor_proto::exit`.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use crius_atomic_file::Durability;
use crius_monitor_proto::ExitStatus as ExitFile;

use crate::child_reaper::ExitStatus;

pub struct ExitInfo {
    pub status: ExitStatus,
    pub oom_killed: bool,
    pub finished_at: SystemTime,
}

impl ExitInfo {
    pub fn to_file(&self) -> ExitFile {
        ExitFile {
            exit_code: self.status.code(),
            signal: self.status.signal(),
            oom_killed: self.oom_killed,
            finished_at_unix_nano: ExitFile::unix_nanos(self.finished_at),
        }
    }

    /// Durable, although the file is usually on tmpfs: on a run directory placed on disk, a
    /// power loss must not leave an empty or torn exit file, which the daemon would read as an
    /// error for good rather than as "no exit recorded".
    pub fn write(&self, path: &Path) -> io::Result<()> {
        crius_atomic_file::write(
            path,
            self.to_file().encode().as_bytes(),
            Durability::Durable,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn exit_code_and_signal() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let exited = ExitInfo {
            status: ExitStatus::Exited(3),
            oom_killed: false,
            finished_at: at,
        };
        assert_eq!(
            exited.to_file(),
            ExitFile {
                exit_code: 3,
                signal: None,
                oom_killed: false,
                finished_at_unix_nano: 1_700_000_000_000_000_005,
            }
        );
        let killed = ExitInfo {
            status: ExitStatus::Signaled(9),
            oom_killed: true,
            finished_at: at,
        };
        let file = killed.to_file();
        assert_eq!(
            (file.exit_code, file.signal, file.oom_killed),
            (137, Some(9), true)
        );
    }

    #[test]
    fn written_whole_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit");
        let info = ExitInfo {
            status: ExitStatus::Exited(0),
            oom_killed: false,
            finished_at: SystemTime::now(),
        };
        info.write(&path).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(ExitFile::decode(&data), Ok(info.to_file()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
