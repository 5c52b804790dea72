//! The daemon's side of crius-monitor (crate `conmon/`, docs/monitor.md): launching a container's
//! monitor and reading its sync message, reading the exit file it leaves, its control socket, and
//! exec-sync.

pub mod cgroup;
mod control;
mod exec;
mod exec_sync;
mod exit_file;
mod launch;

use std::path::PathBuf;
use std::time::Duration;

pub use control::{monitor_alive, reopen_log, resize};
pub use exec::{ExecLaunch, PendingExec, launch_exec};
pub use exec_sync::{ExecSyncResult, exec_sync};
pub use exit_file::{ExitStatus, read_exit_file, wait_exit_file};
pub use launch::{Launch, Launched, launch_container};

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
    #[error("bad exit file {path}: {source}")]
    BadExitFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
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

/// The monitor's runtime options for `runtime`: always explicit, since without `--runtime` the
/// monitor runs `crius oci` from `$PATH`.
fn runtime_args(runtime: &OciRuntime) -> Vec<std::ffi::OsString> {
    let mut args = vec!["--runtime".into(), runtime.path.clone().into_os_string()];
    for arg in &runtime.args {
        args.push("--runtime-arg".into());
        args.push(arg.into());
    }
    args.push("--runtime-root".into());
    args.push(runtime.root.clone().into_os_string());
    args
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
        let args: Vec<_> = runtime_args(&rt)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "--runtime /usr/bin/crius --runtime-arg oci --runtime-arg --log-format=json \
             --runtime-root /run/crius-oci"
        );
    }

    #[test]
    fn last_line_of_stderr() {
        assert_eq!(last_line(b"a\nb\n\n"), "b");
        assert_eq!(last_line(b""), "no output");
    }
}
