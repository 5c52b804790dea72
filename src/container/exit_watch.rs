//! Notices a container's exit when it happens, not when someone next asks: one task per
//! container waits for its crius-monitor to exit (`monitor::MonitorExit`, a pidfd), then reads
//! the exit file and publishes CONTAINER_STOPPED.
//!
//! Started when CreateContainer has launched the monitor (so a created container killed before
//! it starts is noticed too) and, at start-up, for every container whose monitor still runs.
//! Exits while the daemon was down produce no event: the kubelet relists when it reconnects.

use std::sync::Arc;

use super::{events, status};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine};
use crate::monitor::MonitorExit;

/// Watches `container`'s monitor until it exits, then publishes STOPPED. Nothing to watch
/// (no monitor, or already exited with its status known) is nothing to do.
pub fn watch(engine: &Arc<Engine>, container: Arc<Container>) {
    let Some(process) = container.record().process else {
        return;
    };
    if container.record().exit.is_some() {
        return;
    }
    let exit = match MonitorExit::watch(process.monitor_pid) {
        Ok(Some(exit)) => exit,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(container = %container.id, "watching the monitor: {e}");
            return;
        }
    };
    let engine = engine.clone();
    tokio::spawn(async move {
        if let Err(e) = exit.exited().await {
            tracing::warn!(container = %container.id, "watching the monitor: {e}");
            return;
        }
        // Removed meanwhile (its removal killed it and is done): DELETED says it all.
        if engine.container(&container.id).is_err() {
            return;
        }
        // Reads and caches the exit status, so the event carries it.
        let _ = status::exit_status(&engine, &container);
        events::container_event(
            &engine,
            &container,
            ContainerEventType::ContainerStoppedEvent,
        );
    });
}
