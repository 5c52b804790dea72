//! Streaming exec: `crius-monitor exec … --attach-socket S -- cmd…`. The launcher exits once the
//! monitor's attach socket listens; the monitor starts the process when the first attach client
//! connects and only then writes the sync line (pid or error), so the caller connects first and
//! reads the line after.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crius_monitor_proto::{ExecProcess, LaunchOptions, Mode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::ChildStdout;

use super::launch::parse_sync;
use super::{Launched, MonitorError, monitor_runtime};
use crate::oci_runtime::OciRuntime;

/// The runtime's exec, after the attach client connected.
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// The launcher only forks.
const LAUNCHER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ExecLaunch<'a> {
    pub monitor: &'a Path,
    pub runtime: &'a OciRuntime,
    /// The container's id.
    pub id: &'a str,
    pub exit_file: &'a Path,
    pub attach_socket: &'a Path,
    pub terminal: bool,
    pub stdin: bool,
    pub cmd: &'a [String],
    /// A process.json to run instead of `cmd` (to give a terminal its first size).
    pub process: Option<&'a Path>,
    /// The monitor's own stderr, appended to.
    pub stderr_log: &'a Path,
}

impl ExecLaunch<'_> {
    pub fn args(&self) -> Vec<OsString> {
        let process = match self.process {
            Some(process) => ExecProcess::Spec(process.to_path_buf()),
            None => ExecProcess::Args(self.cmd.iter().map(OsString::from).collect()),
        };
        let opts = LaunchOptions {
            exit_file: Some(self.exit_file.to_path_buf()),
            attach_socket: Some(self.attach_socket.to_path_buf()),
            terminal: self.terminal,
            // stdin-once: the client's end of input (CLOSE_STDIN) closes the process's stdin.
            stdin: self.stdin,
            stdin_once: self.stdin,
            ..LaunchOptions::new(
                Mode::Exec { process },
                self.id,
                monitor_runtime(self.runtime),
            )
        };
        opts.to_args()
    }
}

/// A monitor whose attach socket listens and which waits for its first client.
pub struct PendingExec {
    sync: ChildStdout,
}

/// Starts the monitor and waits until its attach socket listens.
pub async fn launch_exec(l: &ExecLaunch<'_>) -> Result<PendingExec, MonitorError> {
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(l.stderr_log)
        .map_err(|source| MonitorError::StderrLog {
            path: l.stderr_log.to_path_buf(),
            source,
        })?;
    let mut child = tokio::process::Command::new(l.monitor)
        .args(l.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| MonitorError::Spawn {
            path: l.monitor.to_path_buf(),
            source,
        })?;
    let stdout = child.stdout.take();
    let status = tokio::time::timeout(LAUNCHER_TIMEOUT, child.wait())
        .await
        .map_err(|_| MonitorError::Timeout {
            what: "exec launch",
            timeout: LAUNCHER_TIMEOUT,
        })?
        .map_err(|source| MonitorError::Spawn {
            path: l.monitor.to_path_buf(),
            source,
        })?;
    let Some(stdout) = stdout else {
        return Err(MonitorError::Failed {
            status: status.to_string(),
            message: "no sync pipe".into(),
        });
    };
    if status.success() {
        return Ok(PendingExec { sync: stdout });
    }
    // A setup error: the launcher wrote it before exiting.
    let line = read_line(stdout).await;
    Err(match parse_sync(&line) {
        Some(Err((message, monitor_pid))) => MonitorError::Monitor {
            message,
            monitor_pid,
        },
        _ => MonitorError::Failed {
            status: status.to_string(),
            message: format!("see {}", l.stderr_log.display()),
        },
    })
}

impl PendingExec {
    /// After connecting to the attach socket: the exec'd process's pid, or why it did not start.
    pub async fn started(self) -> Result<Launched, MonitorError> {
        let line = tokio::time::timeout(START_TIMEOUT, read_line(self.sync))
            .await
            .map_err(|_| MonitorError::Timeout {
                what: "exec start",
                timeout: START_TIMEOUT,
            })?;
        match parse_sync(&line) {
            Some(Ok(launched)) => Ok(launched),
            Some(Err((message, monitor_pid))) => Err(MonitorError::Monitor {
                message,
                monitor_pid,
            }),
            None => Err(MonitorError::Failed {
                status: "running".into(),
                message: format!("unreadable sync message {:?}", line.trim()),
            }),
        }
    }
}

async fn read_line(stdout: ChildStdout) -> String {
    let mut line = String::new();
    let _ = BufReader::new(stdout.take(64 * 1024))
        .read_line(&mut line)
        .await;
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let rt = OciRuntime {
            name: "runc".into(),
            path: "/usr/sbin/runc".into(),
            args: vec![],
            root: "/run/runc".into(),
        };
        let cmd = vec!["sh".to_string(), "-c".to_string(), "cat".to_string()];
        let launch = ExecLaunch {
            monitor: Path::new("/m"),
            runtime: &rt,
            id: "c1",
            exit_file: Path::new("/e"),
            attach_socket: Path::new("/a"),
            terminal: true,
            stdin: true,
            cmd: &cmd,
            process: None,
            stderr_log: Path::new("/l"),
        };
        let args: Vec<String> = launch
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "exec --id c1 --runtime /usr/sbin/runc --runtime-root /run/runc --exit-file /e \
             --attach-socket /a --terminal --stdin --stdin-once -- sh -c cat"
        );
        let with_file = ExecLaunch {
            process: Some(Path::new("/p.json")),
            ..launch
        };
        let args: Vec<String> = with_file
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(args.join(" ").ends_with("--stdin-once --process /p.json"));
    }
}
