//! StartContainer: the container's monitor and the runtime's `create` (`launch`), then the
//! runtime's `start`, which lets the process run its command. A launch that fails leaves the
//! container exited with the reason (`StartError`, as containerd reports it), to be removed.

use std::sync::Arc;

use super::status::exit_status;
use super::{events, exit_watch, launch};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine, PodError};
use crate::phases;
use crate::store::{ContainerPhase, SandboxPhase, now_nanos};

pub async fn start(engine: &Arc<Engine>, container: &Arc<Container>) -> Result<(), PodError> {
    let sandbox = engine.sandbox(&container.record().sandbox_id)?;
    // Held while the process is made: a StopPodSandbox meanwhile would miss it.
    let _pod_op = sandbox.op.lock().await;
    let _op = container.op.lock().await;
    // Removed while this call waited for the lock.
    engine.container(&container.id)?;
    let rec = container.record();
    if let Some(why) = &rec.failure {
        return Err(PodError::FailedPrecondition(format!(
            "container {} failed to start before: {why}",
            rec.id
        )));
    }
    match rec.phase {
        ContainerPhase::Created => {}
        ContainerPhase::Started => {
            return Err(PodError::FailedPrecondition(format!(
                "container {} was already started",
                rec.id
            )));
        }
        ContainerPhase::Creating | ContainerPhase::Removing => {
            return Err(PodError::FailedPrecondition(format!(
                "container {} is not in the created state",
                rec.id
            )));
        }
    }
    if exit_status(engine, container).is_some() {
        return Err(PodError::FailedPrecondition(format!(
            "container {} has exited (it was stopped before it was started)",
            rec.id
        )));
    }
    // A record from before launches moved here names the process CreateContainer made.
    let process = match rec.process {
        Some(process) => process,
        None => {
            if sandbox.record().phase != SandboxPhase::Ready {
                return Err(PodError::FailedPrecondition(format!(
                    "pod sandbox {} of container {} is not ready",
                    sandbox.id, rec.id
                )));
            }
            match launch::launch(engine, container).await {
                Ok(process) => process,
                Err(e) => return Err(failed(engine, container, e).await),
            }
        }
    };
    engine.cache_container(container, |r| r.process = Some(process));
    // Taken before the process is let go: a command that exits at once is reaped (and its
    // finish time recorded by the monitor) before `start` returns, and must not look as if it
    // finished before it started.
    let started_at = now_nanos();
    let started = rec
        .runtime
        .start(&rec.id)
        .await
        .map_err(|e| PodError::internal("starting the container", e));
    phases::lap("runtime.start");
    // Not synced: a power loss that undoes it also ended the process, and a restart reads the
    // container as created (its launch undone) or exited; a daemon crash keeps it (page cache).
    engine
        .save_container_volatile(container, |r| {
            if started.is_ok() {
                r.phase = ContainerPhase::Started;
                r.started_at = started_at;
            }
        })
        .await?;
    phases::lap("state");
    // Its exit, or that of the init a failed start left, is an event.
    exit_watch::watch(engine, container.clone());
    started?;
    events::container_event(engine, container, ContainerEventType::ContainerStartedEvent);
    Ok(())
}

/// A launch that failed: undoes what it left, and records why, which makes the container
/// exited (`StartError`) and removable; a CONTAINER_STOPPED event says so.
async fn failed(engine: &Arc<Engine>, container: &Container, error: PodError) -> PodError {
    tracing::warn!(container = %container.id, "StartContainer failed to launch it: {error}");
    if let Err(e) = launch::undo_unrecorded(engine, container).await {
        tracing::warn!(container = %container.id, "undoing the failed launch: {e}");
    }
    let why = error.to_string();
    if let Err(e) = engine
        .save_container(container, |r| r.failure = Some(why))
        .await
    {
        tracing::error!(container = %container.id, "recording the failed start: {e}");
    }
    events::container_event(engine, container, ContainerEventType::ContainerStoppedEvent);
    error
}
