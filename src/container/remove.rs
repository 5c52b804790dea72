//! RemoveContainer: kill if running, delete from the runtime, unmount the image volumes and the
//! rootfs, delete the container's files and release its hold on image layers — all but its log, which the kubelet manages. Idempotent; also undoes a
//! failed CreateContainer and finishes removals a crash interrupted.

use std::sync::Arc;
use std::time::Duration;

use super::stop;
use crate::engine::{Container, Engine, PodError};
use crate::layers;
use crate::store::{ContainerPhase, Kind};

pub async fn remove(engine: &Arc<Engine>, container: &Container) -> Result<(), PodError> {
    stop::stop(engine, container, Duration::ZERO).await?;
    let rec = container.record();
    if rec.phase != ContainerPhase::Removing {
        engine.save_container(container, |r| r.phase = ContainerPhase::Removing)?;
    }
    rec.runtime
        .delete(&rec.id, true)
        .await
        .map_err(|e| PodError::internal("deleting the container from the runtime", e))?;
    let run_dir = engine.paths.container_run_dir(&rec.id);
    let dir = engine.paths.container_dir(&rec.id);
    let sockets = [
        engine.paths.attach_socket(&rec.id),
        engine.paths.control_socket(&rec.id),
    ];
    let images = engine.images.clone();
    let id = rec.id.clone();
    tokio::task::spawn_blocking(move || {
        layers::unmount(&run_dir.join("rootfs"), Some(&run_dir))?;
        layers::remove_tree(&run_dir)?;
        layers::remove_tree(&dir)?;
        for s in sockets {
            let _ = std::fs::remove_file(s);
        }
        // Last: the layers may go once nothing of the container mounts them.
        layers::release(&images, &id)
    })
    .await??;
    engine.store.remove(Kind::Container, &rec.id)?;
    engine.forget_container(&rec.id);
    engine.release_name(&rec.name, &rec.id);
    Ok(())
}
