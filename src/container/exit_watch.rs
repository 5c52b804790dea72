//! Notices a container's exit when it happens, not when someone next asks: one task per
//! container waits on a pidfd of its crius-monitor (readable once the monitor has exited,
//! which it does right after writing the exit file), then reads the exit file and publishes
//! CONTAINER_STOPPED. No polling: an idle watcher is a parked task and one file descriptor.
//!
//! Started when CreateContainer has launched the monitor (so a created container killed before
//! it starts is noticed too) and, at start-up, for every container whose monitor still runs.
//! Exits while the daemon was down produce no event: the kubelet relists when it reconnects.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::{events, status};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine};
use crate::proc_info;

/// Watches `container`'s monitor until it exits, then publishes STOPPED. Nothing to watch
/// (no monitor, or already exited with its status known) is nothing to do.
pub fn watch(engine: &Arc<Engine>, container: Arc<Container>) {
    let Some(process) = container.record().process else {
        return;
    };
    if container.record().exit.is_some() {
        return;
    }
    let pidfd = match pidfd_open(process.monitor_pid) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(container = %container.id, "monitor {} gone: {e}", process.monitor_pid);
            return;
        }
    };
    // Opened before this check, so a pid reused since would fail it rather than be watched.
    if !proc_info::is_named(process.monitor_pid, "crius-monitor") {
        return;
    }
    let engine = engine.clone();
    tokio::spawn(async move {
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until dropped.
        match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
            Ok(fd) => {
                if let Err(e) = fd.readable().await {
                    tracing::warn!(container = %container.id, "watching the monitor: {e}");
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(container = %container.id, "watching the monitor: {e}");
                return;
            }
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

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(std::io::Error::other)?;
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
