//! StartContainer: the runtime's `start` lets the created process run its command.

use std::sync::Arc;

use super::events;
use super::status::exit_status;
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine, PodError};
use crate::phases;
use crate::store::{ContainerPhase, now_nanos};

pub async fn start(engine: &Arc<Engine>, container: &Container) -> Result<(), PodError> {
    let _op = container.op.lock().await;
    // Removed while this call waited for the lock.
    engine.container(&container.id)?;
    let rec = container.record();
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
    // Taken before the process is let go: a command that exits at once is reaped (and its
    // finish time recorded by the monitor) before `start` returns, and must not look as if it
    // finished before it started.
    let started_at = now_nanos();
    rec.runtime
        .start(&rec.id)
        .await
        .map_err(|e| PodError::internal("starting the container", e))?;
    phases::lap("runtime.start");
    // Not synced: a power loss that undoes it also ended the process, and a restart reads the
    // container as created-then-exited either way; a daemon crash keeps it (page cache).
    engine
        .save_container_volatile(container, |r| {
            r.phase = ContainerPhase::Started;
            r.started_at = started_at;
        })
        .await?;
    phases::lap("state");
    events::container_event(engine, container, ContainerEventType::ContainerStartedEvent);
    Ok(())
}
