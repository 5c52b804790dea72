//! A created container's process under its crius-monitor: the runtime's `create`, which leaves
//! the init waiting for `start`. StartContainer does it, right before the runtime's `start`
//! (containerd makes its task there too): CreateContainer prepares the bundle and answers, so a
//! create costs no process, and a container created but never started holds none.
//!
//! A launch the daemon did not see finish (it was killed between the monitor's answer and the
//! record naming the process) is undone at start-up by [`undo_unrecorded`]: the container is
//! then created and not launched, as before that StartContainer.

use std::time::Duration;

use crate::engine::{Container, Engine, PodError};
use crate::monitor::{self, Launch};
use crate::proc_info;
use crate::store::ProcessRef;

/// How long undoing an unrecorded launch waits for it to settle (`monitor::settle_launch`);
/// RemoveContainer waits as long.
pub(super) const LAUNCH_SETTLE: Duration = Duration::from_secs(30);

/// Launches `container`'s monitor, whose runtime `create` makes the init; the caller holds the
/// container's `op` lock and records the process.
pub async fn launch(engine: &Engine, container: &Container) -> Result<ProcessRef, PodError> {
    let rec = container.record();
    let config = super::status::container_config(&rec)?;
    let id = &rec.id;
    let exit_file = engine.paths.exit_file(id);
    let attach = engine.paths.attach_socket(id);
    let control = engine.paths.control_socket(id);
    let monitor_log = engine.paths.monitor_log(id);
    let launched = monitor::launch_container(&Launch {
        monitor: &engine.paths.monitor,
        runtime: &rec.runtime,
        id,
        bundle: &engine.paths.container_run_dir(id),
        exit_file: &exit_file,
        log_path: Some(&rec.log_path),
        log_max_line: Some(engine.config.runtime.log_max_line),
        attach_socket: Some(&attach),
        control_socket: Some(&control),
        monitor_cgroup: &engine.config.runtime.monitor_cgroup,
        terminal: config.tty,
        stdin: config.stdin,
        stdin_once: config.stdin && config.stdin_once,
        stderr_log: Some(&monitor_log),
    })
    .await
    .map_err(|e| PodError::internal("creating the container", e))?;
    Ok(ProcessRef {
        pid: launched.pid,
        start_time: proc_info::start_time(launched.pid).unwrap_or(0),
        monitor_pid: launched.monitor_pid,
    })
}

/// Undoes whatever a launch of `container` left that its record does not name (a failed
/// launch, or one a crash interrupted): lets a runtime `create` still running settle, deletes
/// the container from the runtime (which kills a waiting init, and with it its monitor), and
/// removes the files the monitor made, so that a later launch starts clean and no exit file
/// says the container ran. Nothing there (the usual case) is a cheap no-op.
pub async fn undo_unrecorded(engine: &Engine, container: &Container) -> Result<(), PodError> {
    let rec = container.record();
    let id = &rec.id;
    let monitor = monitor::monitor_of(id);
    let known = matches!(rec.runtime.state(id).await, Ok(Some(_)));
    if monitor.is_none() && !known {
        remove_monitor_files(engine, id);
        return Ok(());
    }
    monitor::settle_launch(&rec.runtime, id, LAUNCH_SETTLE).await;
    rec.runtime
        .delete(id, true)
        .await
        .map_err(|e| PodError::internal("deleting an unfinished launch from the runtime", e))?;
    // Its monitor writes an exit file for the init the delete killed: wait for it to be gone
    // before removing what it made.
    if let Some(pid) = monitor {
        let deadline = tokio::time::Instant::now() + LAUNCH_SETTLE;
        while proc_info::is_named(pid, "crius-monitor") && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    remove_monitor_files(engine, id);
    Ok(())
}

fn remove_monitor_files(engine: &Engine, id: &str) {
    for path in [
        engine.paths.exit_file(id),
        engine.paths.attach_socket(id),
        engine.paths.control_socket(id),
    ] {
        let _ = std::fs::remove_file(path);
    }
}
