//! RemoveContainer: kill if running; delete from the runtime, unmount the image volumes and the
//! rootfs and end the hold on their image layers (unless done at its exit: `release`); delete
//! the container's files — all but its log, which the kubelet manages — before the answer or,
//! for the RPC, after it ([`Files`]). Idempotent; also undoes a failed CreateContainer and
//! finishes removals a crash interrupted. A removal that fails before its answer leaves the
//! container listed and removable ([`keep_failed`]); the next call, or the next start-up, tries
//! again.

use std::sync::Arc;
use std::time::Duration;

use super::{events, launch, release, stop};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine, PodError};
use crate::layers;
use crate::phases;
use crate::store::{ContainerPhase, Kind};

/// When a removal deletes the container's directories and record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Files {
    /// Before it returns: its failure keeps the container listed (recovery, a pod's removal,
    /// an undone CreateContainer).
    Now,
    /// After it returns, on a blocking thread (`Engine::deferred`): the RemoveContainer RPC,
    /// whose answer does not depend on them. A failure is logged, and the record, marked
    /// `Removing`, makes the next start-up try again.
    AfterReply,
}

pub async fn remove(
    engine: &Arc<Engine>,
    container: &Container,
    files: Files,
) -> Result<(), PodError> {
    let _op = container.op.lock().await;
    // Removed while this call waited for the lock (a concurrent RemoveContainer or
    // RemovePodSandbox): done, and nothing of it may be written again.
    if engine.container(&container.id).is_err() {
        return Ok(());
    }
    let result = remove_held(engine, container, files).await;
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
    files: Files,
) -> Result<(), PodError> {
    stop::stop_held(engine, container, Duration::ZERO).await?;
    let rec = container.record();
    // The mark comes first: a crash after it finishes the removal at start-up. Not synced: if a
    // power loss undoes it, the container is listed again and removed again (its runtime state
    // and mounts went with the boot anyway).
    if rec.phase != ContainerPhase::Removing {
        engine
            .save_container_volatile(container, |r| r.phase = ContainerPhase::Removing)
            .await?;
        phases::lap("state");
    }
    if !release::released(container) {
        if rec.process.is_none() {
            // A launch nobody saw finish (a crash in StartContainer's launch) must not create
            // the container after this delete.
            crate::monitor::settle_launch(&rec.runtime, &rec.id, launch::LAUNCH_SETTLE).await;
        }
        release::release(engine, &rec).await?;
    }
    let leftovers = Leftovers::of(engine, &rec.id);
    match files {
        Files::Now => {
            tokio::task::spawn_blocking(phases::carry_blocking(move || leftovers.delete()))
                .await??;
            phases::lap("files");
        }
        Files::AfterReply => engine.deferred.spawn(&rec.sandbox_id, move || {
            if let Err(e) = leftovers.delete() {
                tracing::error!(container = %leftovers.id, "removing its files after RemoveContainer (the next start-up tries again): {e}");
            }
        }),
    }
    engine.forget_container(&rec.id);
    engine.release_name(&rec.name, &rec.id);
    Ok(())
}

/// What is left of a removed container once released: its directories (writable layer,
/// bundle), its sockets and its record — all but its log, which the kubelet manages.
struct Leftovers {
    engine: Arc<Engine>,
    id: String,
}

impl Leftovers {
    fn of(engine: &Arc<Engine>, id: &str) -> Leftovers {
        Leftovers {
            engine: engine.clone(),
            id: id.to_owned(),
        }
    }

    /// Deletes them, the record last (blocking). Each step is idempotent.
    fn delete(&self) -> Result<(), PodError> {
        let paths = &self.engine.paths;
        layers::remove_tree(&paths.container_run_dir(&self.id))?;
        layers::remove_tree(&paths.container_dir(&self.id))?;
        for socket in [
            paths.attach_socket(&self.id),
            paths.control_socket(&self.id),
        ] {
            let _ = std::fs::remove_file(socket);
        }
        // Not synced either, for the same reason as the mark.
        self.engine
            .store
            .remove_volatile_blocking(Kind::Container, &self.id)?;
        Ok(())
    }
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
