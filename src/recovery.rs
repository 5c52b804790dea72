//! Start-up recovery: the records on disk become the in-memory tables again, and whatever a
//! crash interrupted is finished or undone — half-made sandboxes and containers are torn down,
//! half-removed ones removed, and so are those whose teardown failed before (`failure` set).
//! A teardown that fails again here leaves its object listed (NOTREADY / EXITED, with the
//! reason) and removable, never hidden; start-up goes on. A container created but not started
//! gets undone what a StartContainer cut by the crash may have launched
//! (`container::launch::undo_unrecorded`: the runtime is asked whether it knows the container).
//! Nothing else runs at start-up: no runtime or plugin is spawned for a pod that is fine.
//!
//! Running containers and pods need nothing but a watcher of their monitor
//! (`container::exit_watch`, `sandbox::pause_watch`, for the STOPPED event of their exit): their
//! monitors kept running, and a process that exited meanwhile left its exit file.

use std::collections::HashSet;
use std::sync::Arc;

use crate::container;
use crate::engine::{Container, Engine, Sandbox};
use crate::sandbox;
use crate::store::{
    ContainerPhase, ContainerRecord, Kind, SandboxPhase, SandboxRecord, StoreError,
};

pub async fn recover(engine: &Arc<Engine>) {
    let sandboxes = load::<SandboxRecord>(engine, Kind::Sandbox);
    let containers = load::<ContainerRecord>(engine, Kind::Container);
    let known: HashSet<String> = sandboxes.iter().map(|s| s.id.clone()).collect();
    for record in sandboxes {
        // A sandbox kept after a failed teardown holds no name (see `teardown::keep_failed`).
        if record.failure.is_none()
            && let Err(e) = engine.reserve_name(&record.name, &record.id)
        {
            tracing::warn!(sandbox = %record.id, "recovering: {e}");
        }
        engine.insert_sandbox(Sandbox::new(record));
    }
    for record in containers {
        if record.failure.is_none()
            && let Err(e) = engine.reserve_name(&record.name, &record.id)
        {
            tracing::warn!(container = %record.id, "recovering: {e}");
        }
        let orphan = !known.contains(&record.sandbox_id);
        let c = Container::new(record);
        engine.insert_container(c.clone());
        let phase = c.record().phase;
        if orphan || matches!(phase, ContainerPhase::Creating | ContainerPhase::Removing) {
            tracing::info!(container = %c.id, ?phase, orphan, "recovering: removing an unfinished container");
            if let Err(e) =
                container::remove::remove(engine, &c, container::remove::Files::Now).await
            {
                tracing::error!(container = %c.id, "recovering: {e}");
            }
        } else if phase == ContainerPhase::Created && c.record().process.is_none() {
            // Created, not started; a StartContainer's launch may have been cut by the crash.
            if let Err(e) = container::launch::undo_unrecorded(engine, &c).await {
                tracing::error!(container = %c.id, "recovering: {e}");
            }
        } else {
            // Its exit, when it comes, is an event like any other.
            container::exit_watch::watch(engine, c);
        }
    }
    // A hold whose owner has no record (a crash between its removal's last steps) is stale.
    // Holders are containers and sandboxes (a pause image's root).
    if let Err(e) = crate::layers::release_stale(&engine.images, |id| {
        engine.container(id).is_ok() || engine.sandbox(id).is_ok()
    }) {
        tracing::error!("recovering: {e}");
    }
    for s in engine.sandboxes() {
        let phase = s.record().phase;
        let result = match phase {
            SandboxPhase::Creating | SandboxPhase::Removing => {
                tracing::info!(sandbox = %s.id, ?phase, "recovering: removing an unfinished sandbox");
                sandbox::teardown::destroy(engine, &s).await
            }
            // `Stopped` is recorded only after the CNI DEL and the pause delete, so nothing is
            // owed; a stop interrupted earlier left `Ready`, and the kubelet repeats the stop.
            SandboxPhase::Stopped => Ok(()),
            SandboxPhase::Ready => {
                sandbox::pause_watch::watch(engine, s.clone());
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(sandbox = %s.id, "recovering: {e}");
        }
    }
    tracing::info!(
        sandboxes = engine.sandboxes().len(),
        containers = engine.containers().len(),
        "recovered pod state"
    );
}

/// Every readable record of `kind`. One that cannot be parsed (truncated, corrupted) is
/// reported and quarantined (`StateStore::quarantine`); start-up goes on without it.
fn load<T: serde::de::DeserializeOwned>(engine: &Engine, kind: Kind) -> Vec<T> {
    match engine.store.load_all::<T>(kind) {
        Ok(all) => all
            .into_iter()
            .filter_map(|r| match r {
                Ok(record) => Some(record),
                Err(StoreError::Json { path, source }) => {
                    match engine.store.quarantine(kind, &path) {
                        Ok(to) => tracing::error!(
                            "recovering: the record {} is unreadable ({source}); moved to {}",
                            path.display(),
                            to.display()
                        ),
                        Err(e) => tracing::error!(
                            "recovering: the record {} is unreadable ({source}); quarantining it: {e}",
                            path.display()
                        ),
                    }
                    None
                }
                Err(e) => {
                    tracing::error!("recovering: skipping a record: {e}");
                    None
                }
            })
            .collect(),
        Err(e) => {
            tracing::error!("recovering: {e}");
            Vec::new()
        }
    }
}
