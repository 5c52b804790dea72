//! Exec-sync: `crius-monitor exec-sync …` runs a process in a running container, waits for it
//! (killing it at the timeout) and prints one JSON line, a `crius_monitor_proto::ExecSyncReply`:
//! the exit and the output, or the error (exit status 1) when the runtime could not start the
//! process.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crius_monitor_proto::launch::whole_seconds;
use crius_monitor_proto::{ExecProcess, ExecSyncReply, LaunchOptions, Mode};

use super::{MonitorError, last_line, monitor_runtime};
use crate::oci_runtime::OciRuntime;

/// Time on top of the process's own timeout for the runtime's exec and the monitor's ending.
const GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSyncResult {
    /// The exit code, or 128 + the signal number when killed (137 after a timeout).
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// `crius-monitor exec-sync --id ID [--timeout T] --output-limit N <runtime options> -- cmd…`.
/// A timeout is rounded up to whole seconds; `None` or zero waits for as long as it takes.
pub async fn exec_sync(
    monitor: &Path,
    runtime: &OciRuntime,
    id: &str,
    cmd: &[String],
    timeout: Option<Duration>,
    output_limit: usize,
) -> Result<ExecSyncResult, MonitorError> {
    let timeout = timeout.filter(|t| !t.is_zero());
    let mode = Mode::ExecSync {
        process: ExecProcess::Args(cmd.iter().map(Into::into).collect()),
        timeout,
        output_limit,
    };
    let opts = LaunchOptions::new(mode, id, monitor_runtime(runtime));
    let mut command = tokio::process::Command::new(monitor);
    command
        .args(opts.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawn_error = |source| MonitorError::Spawn {
        path: monitor.to_path_buf(),
        source,
    };
    // The monitor gives the runtime and the process pipes of its own, so only the monitor holds
    // these and waiting for their end is waiting for the monitor.
    let run = command.output();
    let output = match timeout {
        Some(t) => {
            let limit = Duration::from_secs(whole_seconds(t)) + GRACE;
            tokio::time::timeout(limit, run)
                .await
                .map_err(|_| MonitorError::Timeout {
                    what: "exec-sync",
                    timeout: limit,
                })?
        }
        None => run.await,
    }
    .map_err(spawn_error)?;
    match parse_result(&output.stdout) {
        Some(Ok(result)) if output.status.success() => Ok(result),
        Some(Err(message)) => Err(MonitorError::Monitor {
            message,
            monitor_pid: None,
        }),
        _ => Err(MonitorError::Failed {
            status: output.status.to_string(),
            message: last_line(&output.stderr),
        }),
    }
}

/// The monitor's line: `Ok` with the result, `Err` with its error, `None` if it is not one.
pub(super) fn parse_result(stdout: &[u8]) -> Option<Result<ExecSyncResult, String>> {
    match ExecSyncReply::decode(stdout).ok()? {
        ExecSyncReply::Done(out) => Some(Ok(ExecSyncResult {
            exit_code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
            timed_out: out.timed_out,
        })),
        ExecSyncReply::Failed { error, .. } => Some(Err(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_and_errors() {
        let ok = br#"{"exit_code":0,"signal":null,"timed_out":false,"stdout":"aGkK","stderr":"","stdout_truncated":false,"stderr_truncated":false}
"#;
        assert_eq!(
            parse_result(ok),
            Some(Ok(ExecSyncResult {
                exit_code: 0,
                stdout: b"hi\n".to_vec(),
                stderr: Vec::new(),
                timed_out: false,
            }))
        );
        let killed = br#"{"exit_code":137,"signal":9,"timed_out":true,"stdout":"//4A","stderr":"b29wcw==","stdout_truncated":true,"stderr_truncated":false}"#;
        let result = parse_result(killed).unwrap().unwrap();
        assert_eq!(result.exit_code, 137);
        assert!(result.timed_out);
        assert_eq!(result.stdout, [0xff, 0xfe, 0x00]);
        assert_eq!(result.stderr, b"oops");
        assert_eq!(
            parse_result(br#"{"error":"runtime exec failed (Some(Exited(1))): container not running","monitor_pid":9}"#),
            Some(Err(
                "runtime exec failed (Some(Exited(1))): container not running".into()
            ))
        );
    }

    #[test]
    fn rejects_what_is_not_a_result() {
        assert_eq!(parse_result(b""), None);
        assert_eq!(parse_result(b"hello"), None);
        assert_eq!(parse_result(br#"{"stdout":""}"#), None);
        assert_eq!(
            parse_result(br#"{"exit_code":0,"stdout":"not base64!","stderr":""}"#),
            None
        );
    }
}
