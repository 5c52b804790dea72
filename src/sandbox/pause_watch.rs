//! Notices a pause process that dies by itself (killed, OOM, a crash): the pod turns NOTREADY
//! at once (its status looks at the pause process), and subscribers of `GetContainerEvents`
//! get the sandbox's CONTAINER_STOPPED then, as containerd sends it, so the kubelet's evented
//! PLEG recreates the pod without waiting for a relist.
//!
//! One task per running pod waits for the pause's crius-monitor to exit (a pidfd). A stop's
//! own kill is not reported twice: the task takes the pod's lock and reports only a pod that
//! is still `Ready`, and [`super::teardown::stop`] reports only a pod whose pause was alive
//! when it began.

use std::sync::Arc;

use crate::api::ContainerEventType;
use crate::container::events::sandbox_event;
use crate::engine::{Engine, Sandbox};
use crate::monitor::MonitorExit;
use crate::store::SandboxPhase;

/// Watches the pause process of `sandbox` (a running pod) until its monitor exits.
pub fn watch(engine: &Arc<Engine>, sandbox: Arc<Sandbox>) {
    let record = sandbox.record();
    let Some(pause) = record.pause else {
        return;
    };
    if record.phase != SandboxPhase::Ready {
        return;
    }
    let exit = match MonitorExit::watch(pause.monitor_pid) {
        Ok(Some(exit)) => exit,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(sandbox = %sandbox.id, "watching the pause monitor: {e}");
            return;
        }
    };
    let engine = engine.clone();
    tokio::spawn(async move {
        if let Err(e) = exit.exited().await {
            tracing::warn!(sandbox = %sandbox.id, "watching the pause monitor: {e}");
            return;
        }
        let _op = sandbox.op.lock().await;
        // Removed, stopped, or being removed meanwhile: their own events said so.
        if engine.sandbox(&sandbox.id).is_err() {
            return;
        }
        let record = sandbox.record();
        if record.phase != SandboxPhase::Ready {
            return;
        }
        tracing::warn!(sandbox = %sandbox.id, "the pause process exited: the pod is not ready");
        sandbox_event(&engine, &record, ContainerEventType::ContainerStoppedEvent);
    });
}
