//! Launching a container's monitor: `crius-monitor container …`. The launcher forks the monitor
//! and exits at once (exit 0: its sockets are listening); the monitor runs the runtime's `create`
//! and writes one line on its stdout, a `crius_monitor_proto::SyncMessage`:
//! `{"monitor_pid":…,"pid":…}` or `{"error":"…","monitor_pid":…}`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crius_monitor_proto::{LaunchOptions, Mode, SyncMessage};

use super::{MonitorError, monitor_runtime};
use crate::oci_runtime::OciRuntime;

/// How long the runtime's `create` may take (cri-o allows 4 minutes as well).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(240);
/// The sync message is one short line.
const SYNC_LIMIT: u64 = 64 * 1024;

pub struct Launch<'a> {
    pub monitor: &'a Path,
    pub runtime: &'a OciRuntime,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub exit_file: &'a Path,
    pub log_path: Option<&'a Path>,
    pub log_max_line: Option<usize>,
    pub attach_socket: Option<&'a Path>,
    pub control_socket: Option<&'a Path>,
    /// `[runtime] monitor_cgroup`: the monitor moves itself there once the container is
    /// created (crius-monitor's `own_cgroup`); empty: it stays where it starts.
    pub monitor_cgroup: &'a str,
    pub terminal: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// File the monitor's own stderr goes to (appended to), else /dev/null. Not a pipe: the
    /// monitor keeps its stderr for its whole life.
    pub stderr_log: Option<&'a Path>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    /// The container's init, in the host pid namespace.
    pub pid: i32,
    /// The detached monitor.
    pub monitor_pid: i32,
}

impl Launch<'_> {
    /// The arguments after the monitor's path.
    pub fn args(&self) -> Vec<OsString> {
        let mode = Mode::Container {
            bundle: self.bundle.to_path_buf(),
        };
        let opts = LaunchOptions {
            exit_file: Some(self.exit_file.to_path_buf()),
            log_path: self.log_path.map(Path::to_path_buf),
            log_max_line: self.log_max_line,
            attach_socket: self.attach_socket.map(Path::to_path_buf),
            control_socket: self.control_socket.map(Path::to_path_buf),
            cgroup: Some(self.monitor_cgroup)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            terminal: self.terminal,
            stdin: self.stdin,
            stdin_once: self.stdin_once,
            ..LaunchOptions::new(mode, self.id, monitor_runtime(self.runtime))
        };
        opts.to_args()
    }
}

/// Starts `crius-monitor container …`, waits for its launcher to exit and for the sync line,
/// and returns the container's pid, or the monitor's error text (the runtime's stderr when its
/// `create` failed).
pub async fn launch_container(l: &Launch<'_>) -> Result<Launched, MonitorError> {
    let _timer = crate::telemetry::monitor_launch_timer();
    let stderr = match l.stderr_log {
        Some(path) => Stdio::from(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| MonitorError::StderrLog {
                    path: path.to_path_buf(),
                    source,
                })?,
        ),
        None => Stdio::null(),
    };
    let mut child = tokio::process::Command::new(l.monitor)
        .args(l.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        // Only the launcher; the monitor it forks is in its own session and stays.
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| MonitorError::Spawn {
            path: l.monitor.to_path_buf(),
            source,
        })?;
    crate::phases::lap("monitor.spawn");
    let stdout = child.stdout.take();
    let outcome = tokio::time::timeout(LAUNCH_TIMEOUT, async {
        // The launcher exits right after forking; the monitor writes the line once `create` is
        // done and then lets the pipe go. Read the line first: a launcher that failed in setup
        // wrote its error line before exiting.
        let mut line = String::new();
        if let Some(stdout) = stdout {
            let _ = BufReader::new(stdout.take(SYNC_LIMIT))
                .read_line(&mut line)
                .await;
        }
        (line, child.wait().await)
    })
    .await;
    let (line, status) = outcome.map_err(|_| MonitorError::Timeout {
        what: "container create",
        timeout: LAUNCH_TIMEOUT,
    })?;
    // The monitor answers once the runtime's `create` is done.
    crate::phases::lap("runtime.create");
    let status = status.map_err(|source| MonitorError::Spawn {
        path: l.monitor.to_path_buf(),
        source,
    })?;
    match parse_sync(&line) {
        Some(Ok(launched)) if status.success() => Ok(launched),
        Some(Err((message, monitor_pid))) => Err(MonitorError::Monitor {
            message,
            monitor_pid,
        }),
        _ => Err(MonitorError::Failed {
            status: status.to_string(),
            message: no_sync_message(&line, l.stderr_log),
        }),
    }
}

/// The sync line: `Ok` with the pids, `Err` with the monitor's error and pid, `None` if it is
/// not one.
pub(super) fn parse_sync(line: &str) -> Option<Result<Launched, (String, Option<i32>)>> {
    match SyncMessage::decode(line).ok()? {
        SyncMessage::Started { pid, monitor_pid } => Some(Ok(Launched { pid, monitor_pid })),
        SyncMessage::Failed { error, monitor_pid } => {
            Some(Err((runtime_failure(error), monitor_pid)))
        }
    }
}

/// The monitor reports a failed runtime call as `runtime <verb> failed (<status>): <stderr>`;
/// that stderr is made readable and bounded as for the daemon's own runtime calls.
fn runtime_failure(message: String) -> String {
    match message.split_once("): ") {
        Some((head, stderr)) if head.starts_with("runtime ") => format!(
            "{head}): {}",
            crate::oci_runtime::error_message(stderr.as_bytes())
        ),
        _ => message,
    }
}

fn no_sync_message(line: &str, stderr_log: Option<&Path>) -> String {
    let what = if line.trim().is_empty() {
        "no sync message".to_string()
    } else {
        format!("unreadable sync message {:?}", line.trim())
    };
    match stderr_log {
        Some(path) => format!("{what}; see {}", PathBuf::from(path).display()),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_failure_reads_failures_first() {
        let sync = serde_json::json!({
            "error": "runtime create failed (Some(Exited(1))): time=\"t\" level=warning msg=\"cannot toggle freezer\"\ntime=\"t\" level=error msg=\"runc create failed: not a directory\"\n",
            "monitor_pid": 7,
        });
        assert_eq!(
            parse_sync(&sync.to_string()),
            Some(Err((
                "runtime create failed (Some(Exited(1))): runc create failed: not a directory (warning: cannot toggle freezer)".into(),
                Some(7)
            )))
        );
    }

    #[test]
    fn sync_messages() {
        assert_eq!(
            parse_sync("{\"pid\":4242,\"monitor_pid\":4240}\n"),
            Some(Ok(Launched {
                pid: 4242,
                monitor_pid: 4240
            }))
        );
        assert_eq!(
            parse_sync(
                r#"{"error":"runtime create failed (Some(Exited(1))): boom","monitor_pid":7}"#
            ),
            Some(Err((
                "runtime create failed (Some(Exited(1))): boom".into(),
                Some(7)
            )))
        );
        assert_eq!(parse_sync(""), None);
        assert_eq!(parse_sync("{\"pid\":0,\"monitor_pid\":1}"), None);
        assert_eq!(parse_sync("{\"monitor_pid\":1}"), None);
        assert_eq!(parse_sync("pid 5"), None);
    }

    #[test]
    fn command_line() {
        let rt = OciRuntime {
            name: "runc".into(),
            path: "/usr/sbin/runc".into(),
            args: vec![],
            root: "/run/runc".into(),
        };
        let launch = Launch {
            monitor: Path::new("/m"),
            runtime: &rt,
            id: "c1",
            bundle: Path::new("/b"),
            exit_file: Path::new("/e"),
            log_path: Some(Path::new("/l")),
            log_max_line: Some(100),
            attach_socket: None,
            control_socket: Some(Path::new("/c")),
            monitor_cgroup: "",
            terminal: false,
            stdin: true,
            stdin_once: true,
            stderr_log: None,
        };
        let args: Vec<String> = launch
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "container --id c1 --runtime /usr/sbin/runc --runtime-root /run/runc --bundle /b \
             --exit-file /e --log-path /l --control-socket /c --log-max-line 100 --stdin --stdin-once"
        );
    }

    #[tokio::test]
    async fn a_launcher_that_says_nothing_is_an_error() {
        let rt = OciRuntime {
            name: "runc".into(),
            path: "/usr/sbin/runc".into(),
            args: vec![],
            root: "/run/runc".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let stderr_log = dir.path().join("monitor.err");
        // `true` ignores its arguments: exit 0 without a sync line.
        let launch = Launch {
            monitor: Path::new("/bin/true"),
            runtime: &rt,
            id: "c1",
            bundle: Path::new("/b"),
            exit_file: Path::new("/e"),
            log_path: None,
            log_max_line: None,
            attach_socket: None,
            control_socket: None,
            monitor_cgroup: "",
            terminal: false,
            stdin: false,
            stdin_once: false,
            stderr_log: Some(&stderr_log),
        };
        match launch_container(&launch).await {
            Err(MonitorError::Failed { message, .. }) => {
                assert!(message.starts_with("no sync message; see "), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(stderr_log.exists());
        let missing = Launch {
            monitor: Path::new("/nonexistent/crius-monitor"),
            ..launch
        };
        assert!(matches!(
            launch_container(&missing).await,
            Err(MonitorError::Spawn { .. })
        ));
    }
}
