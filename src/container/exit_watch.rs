//! Notices a container's exit when it happens, not when someone next asks: one task per
//! container waits for its crius-monitor to exit (`monitor::MonitorExit`, a pidfd), then reads
//! the exit file, releases what the exited container no longer needs (`release`) and publishes
//! CONTAINER_STOPPED.
//!
//! A monitor that is killed (no exit file) leaves its container running unwatched: no log is
//! written and no exit status will come. That container is killed here, so it is reported
//! exited — with the reason — and can be removed, as after any other exit; the same is done at
//! start-up for a container whose monitor died while the daemon was down.
//!
//! Started when CreateContainer has launched the monitor (so a created container killed before
//! it starts is noticed too) and, at start-up, for every container whose monitor still runs.
//! Exits while the daemon was down produce no event: the kubelet relists when it reconnects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{events, release, status};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine};
use crate::monitor::MonitorExit;
use crate::proc_info;

/// How long a container whose monitor is gone gets to die of SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Watches `container`'s monitor until it exits, then publishes STOPPED. Nothing to watch
/// (no monitor, or already exited with its status known) is nothing to do, unless the
/// container outlived its monitor.
pub fn watch(engine: &Arc<Engine>, container: Arc<Container>) {
    let record = container.record();
    let Some(process) = record.process else {
        return;
    };
    if record.exit.is_some() {
        return;
    }
    let exit = match MonitorExit::watch(process.monitor_pid) {
        Ok(exit) => exit,
        Err(e) => {
            tracing::warn!(container = %container.id, "watching the monitor: {e}");
            return;
        }
    };
    if exit.is_none() && !proc_info::is_alive(process.pid, process.start_time) {
        return;
    }
    let engine = engine.clone();
    tokio::spawn(async move {
        if let Some(exit) = exit
            && let Err(e) = exit.exited().await
        {
            tracing::warn!(container = %container.id, "watching the monitor: {e}");
            return;
        }
        let _op = container.op.lock().await;
        // Removed meanwhile (its removal killed it and is done): DELETED says it all.
        if engine.container(&container.id).is_err() {
            return;
        }
        // Reads and caches the exit status, so the event carries it.
        if status::exit_status(&engine, &container).is_none() {
            stop_unmonitored(&container).await;
        }
        release::after_exit(&engine, &container).await;
        events::container_event(
            &engine,
            &container,
            ContainerEventType::ContainerStoppedEvent,
        );
    });
}

/// The monitor is gone without an exit file: kills what still runs of the container.
async fn stop_unmonitored(container: &Container) {
    let record = container.record();
    let Some(process) = record.process else {
        return;
    };
    if !proc_info::is_alive(process.pid, process.start_time) {
        return;
    }
    tracing::warn!(
        container = %container.id,
        "its monitor ({}) is gone: killing the container, whose exit status is lost",
        process.monitor_pid
    );
    if let Err(e) = record
        .runtime
        .kill(&container.id, libc::SIGKILL, true)
        .await
    {
        tracing::warn!(container = %container.id, "killing it: {e}");
        let _ = proc_info::signal_if_same(process.pid, process.start_time, libc::SIGKILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    while proc_info::is_alive(process.pid, process.start_time) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
