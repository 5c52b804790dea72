//! Stopping and destroying sandboxes. Every step is idempotent and tolerates what is already
//! gone, so the same code undoes a failed RunPodSandbox, serves Stop/RemovePodSandbox, and
//! finishes whatever a crash interrupted. A teardown that fails leaves the sandbox listed and
//! removable, never hidden ([`keep_failed`]); the next Stop/Remove, or the next start-up, tries
//! again from the step that failed.

use std::fs;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::{files, namespaces, network, pause_process};
use crate::api::ContainerEventType;
use crate::container;
use crate::container::events::sandbox_event;
use crate::engine::{Engine, PodError, Sandbox};
use crate::layers;
use crate::phases;
use crate::pod::PodFiles;
use crate::store::{Kind, SandboxPhase};

/// How long a pod's containers get between their stop signal and SIGKILL when the pod is
/// stopped. The kubelet stops each container with its own grace period before it stops the pod,
/// so this only matters for containers it did not stop first.
const CONTAINER_GRACE: Duration = Duration::from_secs(2);

/// StopPodSandbox: containers, network, pause. The namespaces stay pinned until removal.
pub async fn stop(engine: &Arc<Engine>, sandbox: &Sandbox) -> Result<(), PodError> {
    let _op = sandbox.op.lock().await;
    // Removed while this call waited for the lock: no record may be written again.
    engine.sandbox(&sandbox.id)?;
    // A pause that died by itself was reported then (`pause_watch`), or while the daemon was
    // down, which the kubelet learns by relisting: STOPPED is sent once.
    let pause_was_alive =
        crate::pod::sandbox_state(&sandbox.record()) == crate::api::PodSandboxState::SandboxReady;
    let stops = engine
        .containers_of(&sandbox.id)
        .into_iter()
        // At once: their phases are this one lap.
        .map(|c| {
            phases::muted(async move { container::stop::stop(engine, &c, CONTAINER_GRACE).await })
        });
    for result in futures::future::join_all(stops).await {
        result?;
    }
    phases::lap("containers");
    network::detach(engine, sandbox).await?;
    phases::lap("net");
    pause_process::stop(engine, &sandbox.record()).await?;
    phases::lap("pause.stop");
    if sandbox.record().phase == SandboxPhase::Ready {
        let record = engine
            .save_sandbox(sandbox, |r| r.phase = SandboxPhase::Stopped)
            .await?;
        phases::lap("state");
        if pause_was_alive {
            sandbox_event(engine, &record, ContainerEventType::ContainerStoppedEvent);
        }
    }
    Ok(())
}

/// RemovePodSandbox (and recovery's removal of an unfinished sandbox): removes everything of
/// the sandbox and its record (and its containers, stopped first). When that fails half-way, the
/// sandbox stays listed with the reason ([`keep_failed`]) and the next call tries again.
pub async fn destroy(engine: &Arc<Engine>, sandbox: &Sandbox) -> Result<(), PodError> {
    let _op = sandbox.op.lock().await;
    // Removed while this call waited for the lock: done, and nothing of it may be written again.
    if engine.sandbox(&sandbox.id).is_err() {
        return Ok(());
    }
    let result = destroy_held(engine, sandbox).await;
    match &result {
        Ok(()) => sandbox_event(
            engine,
            &sandbox.record(),
            ContainerEventType::ContainerDeletedEvent,
        ),
        Err(e) => keep_failed(engine, sandbox, format!("removing it failed: {e}")).await,
    }
    result
}

/// [`destroy`] with the sandbox's `op` lock already held (a failed RunPodSandbox undoing itself).
pub(super) async fn destroy_held(engine: &Arc<Engine>, sandbox: &Sandbox) -> Result<(), PodError> {
    // The containers' own phases are this one lap.
    phases::muted(async {
        for c in engine.containers_of(&sandbox.id) {
            container::remove::remove(engine, &c, container::remove::Files::Now).await?;
        }
        // And those of its containers removed before it (RemoveContainer's answer came first).
        engine.deferred.finish(Some(&sandbox.id)).await;
        Ok::<_, PodError>(())
    })
    .await?;
    phases::lap("containers");
    network::detach(engine, sandbox).await?;
    phases::lap("net");
    let record = sandbox.record();
    pause_process::stop(engine, &record).await?;
    phases::lap("pause.stop");
    if record.phase != SandboxPhase::Removing {
        engine
            .save_sandbox(sandbox, |r| r.phase = SandboxPhase::Removing)
            .await?;
        phases::lap("state");
    }
    let engine2 = engine.clone();
    let id = sandbox.id.clone();
    tokio::task::spawn_blocking(move || release_host_resources(&engine2, &id)).await??;
    phases::lap("host");
    engine.store.remove(Kind::Sandbox, &sandbox.id).await?;
    phases::lap("state");
    engine.forget_sandbox(&sandbox.id);
    engine.release_name(&record.name, &sandbox.id);
    Ok(())
}

/// A half-made or half-removed sandbox (`Creating`, `Removing`) whose teardown failed: records
/// `why`, which makes it listed (NOTREADY) and removable instead of hidden, and lets go of its
/// name, so a retry of its RunPodSandbox makes a new one. A sandbox in another phase is listed
/// anyway and keeps its name; its teardown error went to the caller.
pub async fn keep_failed(engine: &Engine, sandbox: &Sandbox, why: String) {
    let record = sandbox.record();
    if !matches!(
        record.phase,
        SandboxPhase::Creating | SandboxPhase::Removing
    ) {
        return;
    }
    tracing::error!(sandbox = %sandbox.id, "kept, listed as not ready, until a removal succeeds: {why}");
    if let Err(e) = engine
        .save_sandbox(sandbox, |r| r.failure = Some(why))
        .await
    {
        tracing::error!(sandbox = %sandbox.id, "recording the failure: {e}");
    }
    engine.release_name(&record.name, &sandbox.id);
}

/// Unmounts /dev/shm (and a pause image's root), unpins the namespaces, deletes the sandbox's
/// directories and releases the pause image's layers. Paths are derived from the id, not the
/// record, so a crash before the record named them still cleans.
fn release_host_resources(engine: &Engine, id: &str) -> Result<(), PodError> {
    let files = PodFiles::new(engine, id);
    // A pause image's root (the built-in pause has a plain directory there).
    layers::unmount(&files.pause_bundle().join("rootfs"), None)?;
    files::unmount_shm(&files.shm())
        .map_err(|e| PodError::internal("unmounting the pod's /dev/shm", e))?;
    namespaces::unpin(&namespaces::pins_of(&engine.paths.ns_dir(), id))
        .map_err(|e| PodError::internal("unpinning the pod namespaces", e))?;
    for dir in [files.dir, engine.paths.container_dir(id)] {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PodError::internal(format!("removing {}", dir.display()), e)),
        }
    }
    // Last: the pause image's layers may go once nothing of the pod mounts them.
    layers::release(&engine.images, id)
}
