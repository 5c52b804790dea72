//! Exec: the command runs under a `crius-monitor exec` whose attach socket we connect to; its
//! exit code comes back on the error stream as the kubelet writes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UnixStream;

use super::pump::{self, End};
use super::stdio::Stdio;
use crate::api;
use crate::container::status::state;
use crate::engine::{Engine, PodError, new_id};
use crate::monitor::{self, ExecLaunch, ExitStatus};
use crate::proc_info;

/// How long a terminal exec waits for the client's first size (kubelet's client sends it as
/// soon as its streams are open).
const FIRST_SIZE_TIMEOUT: Duration = Duration::from_millis(500);
/// The monitor writes the exit file within a second of closing its clients.
const EXIT_FILE_TIMEOUT: Duration = Duration::from_secs(10);

enum Outcome {
    Exited(ExitStatus),
    Failed(String),
    ClientGone,
}

/// The exec's private files, removed when it is over.
struct ExecDir(PathBuf);

impl Drop for ExecDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn run(engine: &Arc<Engine>, request: &api::ExecRequest, mut stdio: Stdio) {
    let outcome = match execute(engine, request, &mut stdio).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    let message = match outcome {
        Outcome::ClientGone => return,
        Outcome::Exited(status) => {
            status_message(stdio.version, &request.cmd, Ok(status.exit_code))
        }
        Outcome::Failed(error) => {
            tracing::info!(container = %request.container_id, "exec failed: {error}");
            status_message(stdio.version, &request.cmd, Err(error))
        }
    };
    for out in [&stdio.stdout, &stdio.stderr].into_iter().flatten() {
        out.close().await;
    }
    if let Some(error) = &stdio.error {
        if let Some(message) = message {
            error.write(Bytes::from(message)).await;
        }
        error.close().await;
    }
}

async fn execute(
    engine: &Arc<Engine>,
    request: &api::ExecRequest,
    stdio: &mut Stdio,
) -> Result<Outcome, PodError> {
    let container = engine.container(&request.container_id)?;
    if state(engine, &container).0 != api::ContainerState::ContainerRunning {
        return Err(PodError::FailedPrecondition(format!(
            "container {} is not running",
            container.id
        )));
    }
    let rec = container.record();
    let exec_id = new_id();
    let exec_id = &exec_id[..24];
    let dir = ExecDir(engine.paths.runroot.join("exec").join(exec_id));
    std::fs::create_dir_all(&dir.0)
        .map_err(|e| PodError::internal(format!("creating {}", dir.0.display()), e))?;
    let exit_file = dir.0.join("exit.json");
    let socket = dir.0.join("attach");
    let stderr_log = dir.0.join("monitor.log");
    // A terminal gets its first size from the start (`consoleSize` of a process.json made from
    // the container's own process), so even a command's first `stty size` sees it.
    let process_file = dir.0.join("process.json");
    let process = match first_size(stdio).await {
        Some(size) if request.tty => {
            let bundle = engine.paths.container_run_dir(&rec.id);
            write_process(&bundle, &request.cmd, size, &process_file)?;
            Some(process_file.as_path())
        }
        _ => None,
    };
    let launch = ExecLaunch {
        monitor: &engine.paths.monitor,
        runtime: &rec.runtime,
        id: &rec.id,
        exit_file: &exit_file,
        attach_socket: &socket,
        terminal: request.tty,
        stdin: request.stdin,
        cmd: &request.cmd,
        process,
        stderr_log: &stderr_log,
    };
    let pending = monitor::launch_exec(&launch)
        .await
        .map_err(|e| PodError::internal("exec", e))?;
    let connection = UnixStream::connect(&socket)
        .await
        .map_err(|e| PodError::internal(format!("connecting to {}", socket.display()), e))?;
    let launched = pending
        .started()
        .await
        .map_err(|e| PodError::internal("exec", e))?;
    let start_time = proc_info::start_time(launched.pid);
    tracing::debug!(container = %rec.id, pid = launched.pid, "exec started");
    match pump::run(connection, stdio).await {
        End::ClientGone => {
            // Nobody will read its output: the process goes too, as with the kubelet.
            if let Some(start) = start_time {
                let _ = proc_info::signal_if_same(launched.pid, start, libc::SIGKILL);
            }
            let _ = monitor::wait_exit_file(&exit_file, EXIT_FILE_TIMEOUT).await;
            Ok(Outcome::ClientGone)
        }
        End::MonitorClosed => match monitor::wait_exit_file(&exit_file, EXIT_FILE_TIMEOUT).await {
            Ok(Some(status)) => Ok(Outcome::Exited(status)),
            Ok(None) => Ok(Outcome::Failed(
                "the exec's monitor left no exit status".into(),
            )),
            Err(e) => Ok(Outcome::Failed(e.to_string())),
        },
    }
}

/// Waits briefly for the client's first terminal size.
async fn first_size(stdio: &mut Stdio) -> Option<(u16, u16)> {
    let resize = stdio.resize.as_mut()?;
    let data = tokio::time::timeout(FIRST_SIZE_TIMEOUT, resize.recv())
        .await
        .ok()??;
    pump::first_size(&data)
}

/// The container's process with `cmd`, a terminal of `size` (rows, cols), as process.json.
fn write_process(
    bundle: &Path,
    cmd: &[String],
    (rows, cols): (u16, u16),
    out: &Path,
) -> Result<(), PodError> {
    let config = bundle.join("config.json");
    let spec: serde_json::Value = std::fs::read(&config)
        .ok()
        .and_then(|data| serde_json::from_slice(&data).ok())
        .ok_or_else(|| PodError::Internal(format!("reading {}", config.display())))?;
    let mut process = spec
        .get("process")
        .cloned()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| PodError::Internal(format!("{} has no process", config.display())))?;
    process["args"] = serde_json::json!(cmd);
    process["terminal"] = serde_json::json!(true);
    process["consoleSize"] = serde_json::json!({"height": rows, "width": cols});
    let data = serde_json::to_vec(&process).map_err(|e| PodError::internal("process.json", e))?;
    std::fs::write(out, data)
        .map_err(|e| PodError::internal(format!("writing {}", out.display()), e))
}

/// What goes on the error stream: from v4 a JSON `Status` (always), before it plain text
/// (only on failure).
pub fn status_message(version: u8, cmd: &[String], result: Result<i32, String>) -> Option<String> {
    let failure = match &result {
        Ok(0) => None,
        Ok(code) => Some(format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            cmd.join(" ")
        )),
        Err(message) => Some(message.clone()),
    };
    if version < 4 {
        return failure;
    }
    let status = match (result, failure) {
        (Ok(code), Some(message)) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        (Err(_), Some(message)) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }),
        _ => serde_json::json!({"metadata": {}, "status": "Success"}),
    };
    Some(status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_the_kubelet_writes_them() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        assert_eq!(
            status_message(4, &cmd, Ok(0)).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let failure: serde_json::Value =
            serde_json::from_str(&status_message(5, &cmd, Ok(3)).unwrap()).unwrap();
        assert_eq!(failure["status"], "Failure");
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "3");
        assert_eq!(
            failure["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(status_message(2, &cmd, Ok(0)), None);
        assert!(
            status_message(2, &cmd, Ok(1))
                .unwrap()
                .contains("exit code 1")
        );
        assert_eq!(status_message(3, &cmd, Err("boom".into())).unwrap(), "boom");
    }

    #[test]
    fn process_json_takes_the_containers_process() {
        let dir = tempfile::tempdir().unwrap();
        let spec = serde_json::json!({"process": {"args": ["sleep"], "env": ["A=1"], "cwd": "/w"}});
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        let out = dir.path().join("p.json");
        write_process(dir.path(), &["sh".into()], (30, 100), &out).unwrap();
        let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"args": ["sh"], "env": ["A=1"], "cwd": "/w", "terminal": true,
                               "consoleSize": {"height": 30, "width": 100}})
        );
        assert!(write_process(&dir.path().join("none"), &[], (1, 1), &out).is_err());
    }
}
