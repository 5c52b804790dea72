//! The exit file a monitor writes (atomically) when its container or exec'd process is gone
//! (its form: `crius_monitor_proto::exit`). Its existence is the daemon's signal that the
//! process has exited.

use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use super::MonitorError;

/// Shortest and longest pause between looks at a missing exit file.
const FIRST_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(100);

pub use crius_monitor_proto::ExitStatus;

/// The exit file's status, or `None` when it is absent (the process has not exited, or its
/// monitor died before writing it).
pub fn read_exit_file(path: &Path) -> Result<Option<ExitStatus>, MonitorError> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MonitorError::ExitFile {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    ExitStatus::decode(&data)
        .map(Some)
        .map_err(|source| MonitorError::BadExitFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Waits up to `timeout` for the exit file, looking every 10 ms at first and every 100 ms later
/// on; `None` at the timeout.
pub async fn wait_exit_file(
    path: &Path,
    timeout: Duration,
) -> Result<Option<ExitStatus>, MonitorError> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    loop {
        if let Some(status) = read_exit_file(path)? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 3 / 2).min(MAX_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILLED: &str = r#"{"exit_code":137,"signal":9,"oom_killed":true,"finished_at":"2026-05-01T12:00:03.000000001Z","finished_at_unix_nano":1777636803000000001}"#;

    #[test]
    fn parses_what_the_monitor_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit");
        assert_eq!(read_exit_file(&path).unwrap(), None);
        std::fs::write(&path, format!("{KILLED}\n")).unwrap();
        assert_eq!(
            read_exit_file(&path).unwrap(),
            Some(ExitStatus {
                exit_code: 137,
                signal: Some(9),
                oom_killed: true,
                finished_at_unix_nano: 1_777_636_803_000_000_001,
            })
        );
        std::fs::write(
            &path,
            r#"{"exit_code":3,"signal":null,"oom_killed":false,"finished_at":"x","finished_at_unix_nano":5}"#,
        )
        .unwrap();
        let status = read_exit_file(&path).unwrap().unwrap();
        assert_eq!((status.exit_code, status.signal), (3, None));
    }

    #[test]
    fn damaged_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit");
        std::fs::write(&path, r#"{"exit_code":3"#).unwrap();
        assert!(matches!(
            read_exit_file(&path),
            Err(MonitorError::BadExitFile { .. })
        ));
        std::fs::write(&path, r#"{"exit_code":"3"}"#).unwrap();
        assert!(read_exit_file(&path).is_err());
        // A directory where the file should be.
        assert!(matches!(
            read_exit_file(dir.path()),
            Err(MonitorError::ExitFile { .. })
        ));
    }

    #[tokio::test]
    async fn waits_for_the_file_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit");
        let started = Instant::now();
        assert_eq!(
            wait_exit_file(&path, Duration::from_millis(150))
                .await
                .unwrap(),
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(150));

        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                std::fs::write(&path, KILLED).unwrap();
            })
        };
        let status = wait_exit_file(&path, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(status.map(|s| s.exit_code), Some(137));
        writer.await.unwrap();
    }
}
