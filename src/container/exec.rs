//! ExecSync, ReopenContainerLog and UpdateContainerResources: things done to a running
//! container through its monitor or its runtime.

use std::sync::Arc;
use std::time::Duration;

use super::status::state;
use crate::api;
use crate::engine::{Container, Engine, PodError};
use crate::monitor;

/// Most bytes of stdout, and of stderr, an ExecSync answer carries (cri-o's limit).
const EXEC_SYNC_OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

pub fn require_running(engine: &Engine, container: &Container) -> Result<(), PodError> {
    match state(engine, container).0 {
        api::ContainerState::ContainerRunning => Ok(()),
        other => Err(PodError::FailedPrecondition(format!(
            "container {} is not running ({})",
            container.id,
            other.as_str_name()
        ))),
    }
}

pub async fn exec_sync(
    engine: &Arc<Engine>,
    container: &Container,
    cmd: Vec<String>,
    timeout_secs: i64,
) -> Result<api::ExecSyncResponse, PodError> {
    if cmd.is_empty() {
        return Err(PodError::InvalidArgument("exec command is empty".into()));
    }
    if timeout_secs < 0 {
        return Err(PodError::InvalidArgument("exec timeout is negative".into()));
    }
    require_running(engine, container)?;
    let rec = container.record();
    let timeout = (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs.unsigned_abs()));
    let result = monitor::exec_sync(
        &engine.paths.monitor,
        &rec.runtime,
        &rec.id,
        &cmd,
        timeout,
        EXEC_SYNC_OUTPUT_LIMIT,
    )
    .await
    .map_err(|e| exec_error(e, &cmd, timeout_secs))?;
    if result.timed_out {
        return Err(PodError::DeadlineExceeded(format!(
            "command {cmd:?} timed out after {timeout_secs}s"
        )));
    }
    Ok(api::ExecSyncResponse {
        stdout: result.stdout,
        stderr: result.stderr,
        exit_code: result.exit_code,
    })
}

/// A failed ExecSync: DeadlineExceeded when the deadline passed before the process even ran (a
/// runtime `exec` still setting up, killed by the monitor at the deadline), as when the process
/// itself overran it; otherwise an internal error.
fn exec_error(e: monitor::MonitorError, cmd: &[String], timeout_secs: i64) -> PodError {
    match &e {
        monitor::MonitorError::Monitor { message, .. } if message.starts_with("timed out; ") => {
            PodError::DeadlineExceeded(format!(
                "command {cmd:?} timed out after {timeout_secs}s (before it started: {message})"
            ))
        }
        monitor::MonitorError::Timeout { .. } => PodError::DeadlineExceeded(format!(
            "command {cmd:?} timed out after {timeout_secs}s: {e}"
        )),
        _ => PodError::internal("exec", e),
    }
}

pub async fn reopen_log(engine: &Arc<Engine>, container: &Container) -> Result<(), PodError> {
    require_running(engine, container)?;
    monitor::reopen_log(&engine.paths.control_socket(&container.id))
        .await
        .map_err(|e| PodError::internal("reopening the container log", e))
}

pub async fn update_resources(
    engine: &Arc<Engine>,
    container: &Container,
    resources: &api::LinuxContainerResources,
) -> Result<(), PodError> {
    let _op = container.op.lock().await;
    match state(engine, container).0 {
        api::ContainerState::ContainerRunning | api::ContainerState::ContainerCreated => {}
        other => {
            return Err(PodError::FailedPrecondition(format!(
                "container {} is not running ({})",
                container.id,
                other.as_str_name()
            )));
        }
    }
    let oci = crate::oci::linux_resources(resources, engine.runtimes.spec_options())?;
    let rec = container.record();
    if rec.process.is_some() {
        rec.runtime
            .update(&rec.id, &oci)
            .await
            .map_err(|e| PodError::internal("updating the container's resources", e))?;
    } else {
        // Not launched yet: its launch applies them.
        let bundle = engine.paths.container_run_dir(&rec.id);
        tokio::task::spawn_blocking(move || crate::pod::update_spec_resources(&bundle, &oci))
            .await??;
    }
    // Status reports what was last asked for.
    let mut config = super::status::container_config(&rec)?;
    config.linux.get_or_insert_with(Default::default).resources = Some(resources.clone());
    let encoded = prost::Message::encode_to_vec(&config);
    engine
        .save_container(container, |r| r.config = encoded)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_cut_at_its_deadline_before_it_ran_is_deadline_exceeded() {
        let cmd = vec!["cat".to_string()];
        let cut = monitor::MonitorError::Monitor {
            message: "timed out; runtime exec failed (Signaled(9)): ".into(),
            monitor_pid: None,
        };
        assert!(matches!(
            exec_error(cut, &cmd, 1),
            PodError::DeadlineExceeded(_)
        ));
        let failed = monitor::MonitorError::Monitor {
            message: "runtime exec failed (Exited(1)): no such container".into(),
            monitor_pid: None,
        };
        assert!(matches!(exec_error(failed, &cmd, 1), PodError::Internal(_)));
    }
}
