//! What an exited container no longer needs — its runtime state and cgroup (the runtime's
//! `delete`), its rootfs and image-volume mounts and its hold on their image layers — released
//! as soon as its exit is seen, by StopContainer or by the exit watcher, not by
//! RemoveContainer: containerd deletes its task (runc delete, unmount) at the exit too. The
//! container's files (writable layer, bundle, log) and its record stay until RemoveContainer,
//! which does the release itself when it did not happen (it failed, or the daemon restarted
//! since: the mark is in memory only, and every step is idempotent).

use std::sync::atomic::Ordering;

use crate::engine::{Container, Engine, PodError};
use crate::layers;
use crate::phases;
use crate::store::ContainerRecord;

/// Releases what `container`, which has exited, no longer needs, once. The caller holds its
/// `op` lock. A failure is logged and left to RemoveContainer.
pub async fn after_exit(engine: &Engine, container: &Container) {
    if container.released.load(Ordering::Acquire) {
        return;
    }
    match release(engine, &container.record()).await {
        Ok(()) => container.released.store(true, Ordering::Release),
        Err(e) => {
            tracing::warn!(container = %container.id, "releasing it after its exit (RemoveContainer retries): {e}")
        }
    }
}

/// Whether [`after_exit`] has released `container`.
pub fn released(container: &Container) -> bool {
    container.released.load(Ordering::Acquire)
}

/// Deletes the container from its runtime (a forced delete: whatever is left of it in its
/// cgroup is killed), unmounts its image volumes and rootfs, and ends its hold on their layers.
pub async fn release(engine: &Engine, rec: &ContainerRecord) -> Result<(), PodError> {
    rec.runtime
        .delete(&rec.id, true)
        .await
        .map_err(|e| PodError::internal("deleting the container from the runtime", e))?;
    phases::lap("runtime.delete");
    let run_dir = engine.paths.container_run_dir(&rec.id);
    let images = engine.images.clone();
    let id = rec.id.clone();
    tokio::task::spawn_blocking(phases::carry_blocking(move || {
        layers::unmount(&run_dir.join("rootfs"), Some(&run_dir))?;
        phases::lap("unmount");
        // Nothing mounts its layers now, and an exited container is never mounted again.
        layers::release(&images, &id)
    }))
    .await??;
    phases::lap("layers");
    Ok(())
}
