//! RemoveContainer: kill if running; delete from the runtime, unmount the image volumes and the
//! rootfs and end the hold on their image layers (unless done at its exit: `release`); delete
//! the container's files — all but its log, which the kubelet manages. Idempotent; also undoes a failed CreateContainer and finishes
//! removals a crash interrupted. A removal that fails leaves the container listed and removable
//! ([`keep_failed`]); the next call, or the next start-up, tries again.

use std::sync::Arc;
use std::time::Duration;

use super::{events, launch, release, stop};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine, PodError};
use crate::layers;
use crate::phases;
use crate::store::{ContainerPhase, ContainerRecord, Kind};

pub async fn remove(engine: &Arc<Engine>, container: &Container) -> Result<(), PodError> {
    let _op = container.op.lock().await;
    // Removed while this call waited for the lock (a concurrent RemoveContainer or
    // RemovePodSandbox): done, and nothing of it may be written again.
    if engine.container(&container.id).is_err() {
        return Ok(());
    }
    let result = remove_held(engine, container).await;
    match &result {
        Ok(()) => {
            events::container_event(engine, container, ContainerEventType::ContainerDeletedEvent)
        }
        Err(e) => keep_failed(engine, container, format!("removing it failed: {e}")).await,
    }
    result
}

/// [`remove`] with the container's `op` lock already held (a failed CreateContainer undoing
/// itself).
pub(super) async fn remove_held(
    engine: &Arc<Engine>,
    container: &Container,
) -> Result<(), PodError> {
    stop::stop_held(engine, container, Duration::ZERO).await?;
    let rec = container.record();
    // The mark comes first: a crash after it finishes the removal at start-up. Not synced: if a
    // power loss undoes it, the container is listed again and removed again (its runtime state
    // and mounts went with the boot anyway).
    let mut mark = (rec.phase != ContainerPhase::Removing).then(|| ContainerRecord {
        phase: ContainerPhase::Removing,
        ..rec.clone()
    });
    if !release::released(container) {
        if let Some(marked) = mark.take() {
            engine
                .save_container_volatile(container, |r| *r = marked)
                .await?;
            phases::lap("state");
        }
        if rec.process.is_none() {
            // A launch nobody saw finish (a crash in StartContainer's launch) must not create
            // the container after this delete.
            crate::monitor::settle_launch(&rec.runtime, &rec.id, launch::LAUNCH_SETTLE).await;
        }
        release::release(engine, &rec).await?;
    } else if let Some(marked) = &mark {
        engine.cache_container(container, |r| *r = marked.clone());
    }
    // Released (the usual case: at its exit): the mark, the files and the record's removal
    // on one blocking thread, in that order — under load each hand-off to a thread costs more
    // than the work.
    let run_dir = engine.paths.container_run_dir(&rec.id);
    let dir = engine.paths.container_dir(&rec.id);
    let sockets = [
        engine.paths.attach_socket(&rec.id),
        engine.paths.control_socket(&rec.id),
    ];
    let id = rec.id.clone();
    let blocking_engine = engine.clone();
    tokio::task::spawn_blocking(phases::carry_blocking(move || {
        let store = &blocking_engine.store;
        if let Some(marked) = mark {
            store.save_volatile_blocking(Kind::Container, &id, &marked)?;
            phases::lap("state");
        }
        layers::remove_tree(&run_dir)?;
        layers::remove_tree(&dir)?;
        for s in sockets {
            let _ = std::fs::remove_file(s);
        }
        phases::lap("files");
        // Not synced either, for the same reason.
        store.remove_volatile_blocking(Kind::Container, &id)?;
        phases::lap("state");
        Ok::<_, PodError>(())
    }))
    .await??;
    engine.forget_container(&rec.id);
    engine.release_name(&rec.name, &rec.id);
    Ok(())
}

/// A half-made or half-removed container (`Creating`, `Removing`) whose undo or removal failed:
/// records `why`, which makes it listed (EXITED, with the reason) and removable instead of
/// hidden, and lets go of its name, so a retry of its CreateContainer makes a new one.
pub async fn keep_failed(engine: &Engine, container: &Container, why: String) {
    let record = container.record();
    if !matches!(
        record.phase,
        ContainerPhase::Creating | ContainerPhase::Removing
    ) {
        return;
    }
    tracing::error!(container = %container.id, "kept, listed as exited, until a removal succeeds: {why}");
    if let Err(e) = engine
        .save_container(container, |r| r.failure = Some(why))
        .await
    {
        tracing::error!(container = %container.id, "recording the failure: {e}");
    }
    engine.release_name(&record.name, &container.id);
}
