//! The daemon's side of crius-monitor (crate `conmon/`, docs/monitor.md): launching a container's
//! monitor and reading its sync message, reading the exit file it leaves, its control socket, and
//! exec-sync. What goes over the wire (argument vectors, lines, the exit file) is defined once,
//! for both sides, in `crius_monitor_proto`; this module does the I/O around it.

mod control;
mod exec;
mod exec_sync;
mod exit_file;
mod exit_watch;
mod launch;
mod unfinished;

use std::path::PathBuf;
use std::time::Duration;

pub use control::{monitor_alive, reopen_log, resize};
pub use exec::{ExecLaunch, PendingExec, launch_exec};
pub use exec_sync::{ExecSyncResult, exec_sync};
pub use exit_file::{ExitStatus, read_exit_file, wait_exit_file};
pub use exit_watch::MonitorExit;
pub use launch::{Launch, Launched, launch_container};
pub use unfinished::{monitor_of, settle_launch};

use crate::oci_runtime::OciRuntime;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("starting crius-monitor {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the monitor's stderr log {path}: {source}")]
    StderrLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The monitor reported an error (bad arguments, the runtime's create or exec failed).
    /// `monitor_pid` is the detached monitor that said so (it exits right after).
    #[error("crius-monitor: {message}")]
    Monitor {
        message: String,
        monitor_pid: Option<i32>,
    },
    /// The monitor ended without saying anything usable.
    #[error("crius-monitor failed ({status}): {message}")]
    Failed { status: String, message: String },
    #[error("crius-monitor {what} timed out after {timeout:?}")]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
    #[error("reading exit file {path}: {source}")]
    ExitFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    BadExitFile {
        path: PathBuf,
        #[source]
        source: crius_monitor_proto::DecodeError,
    },
    #[error("monitor control socket {path}: {source}")]
    Control {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The monitor answered `error <reason>` on its control socket.
    #[error("monitor control socket {path}: {reason}")]
    Rejected { path: PathBuf, reason: String },
}

/// The monitor's runtime: the daemon's own, always spelled out on the command line (without
/// `--runtime` the monitor would run `crius oci` from `$PATH`).
fn monitor_runtime(runtime: &OciRuntime) -> crius_monitor_proto::Runtime {
    crius_monitor_proto::Runtime {
        path: runtime.path.clone(),
        args: runtime.args.iter().map(Into::into).collect(),
        root: Some(runtime.root.clone()),
    }
}

/// The monitor's stderr, trimmed to its last line, for an error message.
fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_options_name_path_args_and_root() {
        let rt = OciRuntime {
            name: "crius".into(),
            path: "/usr/bin/crius".into(),
            args: vec!["oci".into(), "--log-format=json".into()],
            root: "/run/crius-oci".into(),
        };
        let opts = crius_monitor_proto::LaunchOptions::new(
            crius_monitor_proto::Mode::Container {
                bundle: "/b".into(),
            },
            "c1",
            monitor_runtime(&rt),
        );
        let args: Vec<_> = opts
            .to_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "container --id c1 --runtime /usr/bin/crius --runtime-arg oci \
             --runtime-arg --log-format=json --runtime-root /run/crius-oci --bundle /b"
        );
    }

    #[test]
    fn last_line_of_stderr() {
        assert_eq!(last_line(b"a\nb\n\n"), "b");
        assert_eq!(last_line(b""), "no output");
    }
}
