//! StopContainer: the image's stop signal (else SIGTERM), the grace period, then SIGKILL to
//! every process of the container. Idempotent; done once the monitor has written the exit file
//! and what the exited container no longer needs is released (`release`).

use std::sync::Arc;
use std::time::Duration;

use super::status::exit_status;
use super::{events, release};
use crate::api::ContainerEventType;
use crate::engine::{Container, Engine, PodError};
use crate::monitor::{self, ExitStatus};
use crate::phases;
use crate::proc_info;
use crate::store::{ContainerPhase, ProcessRef, now_nanos};

/// How long after SIGKILL the exit file may take (the monitor drains output first).
const KILL_WAIT: Duration = Duration::from_secs(10);

pub async fn stop(
    engine: &Arc<Engine>,
    container: &Container,
    grace: Duration,
) -> Result<(), PodError> {
    let _op = container.op.lock().await;
    // Removed while this call waited for the lock (so stopped): no record may be written again.
    if engine.container(&container.id).is_err() {
        return Ok(());
    }
    if container.record().process.is_none() {
        return stop_unlaunched(engine, container).await;
    }
    stop_held(engine, container, grace).await
}

/// [`stop`] with the container's `op` lock already held. Once the container has exited, what
/// it no longer needs is released (`release::after_exit`).
pub(super) async fn stop_held(
    engine: &Arc<Engine>,
    container: &Container,
    grace: Duration,
) -> Result<(), PodError> {
    let rec = container.record();
    if matches!(rec.phase, ContainerPhase::Creating) {
        return Ok(());
    }
    // Not launched: nothing runs (RemoveContainer; `stop` records the exit).
    let Some(process) = rec.process else {
        return Ok(());
    };
    if exit_status(engine, container).is_none() {
        kill(engine, container, process, grace).await?;
    }
    release::after_exit(engine, container).await;
    Ok(())
}

/// A container created and not started holds no process (its launch comes with the start):
/// stopping it records the exit its waiting init would have had, killed (137, SIGKILL, as
/// cri-o reports it), so it is EXITED and cannot be started, with its one STOPPED event.
async fn stop_unlaunched(engine: &Arc<Engine>, container: &Container) -> Result<(), PodError> {
    let rec = container.record();
    if rec.phase != ContainerPhase::Created || rec.exit.is_some() || rec.failure.is_some() {
        return Ok(());
    }
    let killed = ExitStatus {
        exit_code: 128 + libc::SIGKILL,
        signal: Some(libc::SIGKILL),
        oom_killed: false,
        finished_at_unix_nano: now_nanos(),
    };
    // Not synced: a power loss that undoes it leaves a created container, as it was.
    engine
        .save_container_volatile(container, |r| r.exit = Some(killed))
        .await?;
    events::container_event(engine, container, ContainerEventType::ContainerStoppedEvent);
    Ok(())
}

/// Signals the container and waits for its exit.
async fn kill(
    engine: &Arc<Engine>,
    container: &Container,
    process: ProcessRef,
    grace: Duration,
) -> Result<(), PodError> {
    let rec = container.record();
    let exit_file = engine.paths.exit_file(&rec.id);
    // A container never started only waits for `start`: nothing to be graceful with.
    let graceful = !grace.is_zero() && rec.phase == ContainerPhase::Started;
    if graceful {
        let exited = proc_info::signal_if_same(process.pid, process.start_time, rec.stop_signal)
            .unwrap_or(false)
            && monitor::wait_exit_file(&exit_file, grace)
                .await
                .ok()
                .flatten()
                .is_some();
        phases::lap("stop.signal");
        if exited {
            return Ok(());
        }
    }
    let _ = proc_info::signal_if_same(process.pid, process.start_time, libc::SIGKILL);
    // Processes outside the container's own pid namespace (shared pod or host pid ns).
    if let Err(e) = rec.runtime.kill(&rec.id, libc::SIGKILL, true).await {
        tracing::debug!(container = %rec.id, "kill --all: {e}");
    }
    phases::lap("stop.kill");
    let exited = monitor::wait_exit_file(&exit_file, KILL_WAIT).await;
    phases::lap("stop.exit");
    match exited {
        Ok(Some(_)) => Ok(()),
        // The process is gone but its monitor did not write the exit file (it was killed).
        _ if !proc_info::is_alive(process.pid, process.start_time) => Ok(()),
        _ => Err(PodError::DeadlineExceeded(format!(
            "container {} did not exit within {:?} of SIGKILL",
            rec.id, KILL_WAIT
        ))),
    }
}
