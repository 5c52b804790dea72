//! The pod's pause process: the built-in pause (`pause/pause.rs`, a static ~2 KB executable
//! written to `<runroot>/pause` at start-up), run as an OCI container (same runtime
//! handler as the pod's containers) under a crius-monitor like any container, so it survives a
//! daemon restart and its exit is recorded. With pid mode POD it is pid 1 of the pod and reaps.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, PodError};
use crate::layers::{self, Mounts};
use crate::monitor::{self, Launch};
use crate::oci::{self, PauseContext};
use crate::phases;
use crate::pod::PodContextParts;
use crate::proc_info;
use crate::store::{ProcessRef, SandboxRecord};

/// Creates and starts the pause container; its id is the sandbox id.
pub async fn start(
    engine: &Arc<Engine>,
    record: &SandboxRecord,
    parts: &PodContextParts,
) -> Result<ProcessRef, PodError> {
    let bundle = parts.files.pause_bundle();
    let rootfs = bundle.join("rootfs");
    let container_dir = engine.paths.container_dir(&record.id);
    for dir in [&rootfs, &container_dir] {
        fs::create_dir_all(dir)
            .map_err(|e| PodError::internal(format!("creating {}", dir.display()), e))?;
    }
    // The pause runs as the pod's root: its mount points are made in this root.
    if let Some(maps) = parts.userns_maps() {
        let (uid, gid) = maps.host_root();
        std::os::unix::fs::chown(&rootfs, Some(uid), Some(gid))
            .map_err(|e| PodError::internal(format!("chown {}", rootfs.display()), e))?;
    }
    let image_args = match engine.config.runtime.pause_image.as_str() {
        "" => None,
        image => Some(mount_pause_image(engine, image, &container_dir, &rootfs, parts).await?),
    };
    let spec = oci::pause_spec(
        &parts.context(),
        &PauseContext {
            id: &record.id,
            rootfs: &rootfs,
            pause: &engine.paths.pause,
            image_args,
        },
        engine.runtimes.spec_options(),
    )?;
    crate::pod::write_spec(&bundle, spec)?;
    phases::lap("pause.spec");
    let exit_file = engine.paths.exit_file(&record.id);
    let monitor_log = engine.paths.monitor_log(&record.id);
    let launched = monitor::launch_container(&Launch {
        monitor: &engine.paths.monitor,
        runtime: &record.runtime,
        id: &record.id,
        bundle: &bundle,
        exit_file: &exit_file,
        log_path: None,
        log_max_line: None,
        attach_socket: None,
        control_socket: None,
        monitor_cgroup: &engine.config.runtime.monitor_cgroup,
        terminal: false,
        stdin: false,
        stdin_once: false,
        stderr_log: Some(&monitor_log),
    })
    .await
    .map_err(|e| PodError::internal("creating the pause container", e))?;
    record
        .runtime
        .start(&record.id)
        .await
        .map_err(|e| PodError::internal("starting the pause container", e))?;
    phases::lap("runtime.start");
    Ok(ProcessRef {
        pid: launched.pid,
        start_time: proc_info::start_time(launched.pid).unwrap_or(0),
        monitor_pid: launched.monitor_pid,
    })
}

/// The configured pause image, pulled if missing, mounted as the pause root; its command.
async fn mount_pause_image(
    engine: &Arc<Engine>,
    image: &str,
    container_dir: &std::path::Path,
    rootfs: &std::path::Path,
    parts: &PodContextParts,
) -> Result<Vec<String>, PodError> {
    let found = engine
        .images
        .find(image)
        .map_err(|e| PodError::FailedPrecondition(format!("pause image: {e}")))?;
    let record =
        match found {
            Some(r) => r,
            None => {
                engine.images.pull(image, None).await.map_err(|e| {
                    PodError::internal(format!("pulling the pause image {image}"), e)
                })?;
                engine
                    .images
                    .find(image)
                    .ok()
                    .flatten()
                    .ok_or_else(|| PodError::Internal(format!("pause image {image} vanished")))?
            }
        };
    let config = layers::image_config(&engine.images, &record)?;
    // Held under the sandbox's id until RemovePodSandbox unmounts it (teardown.rs).
    let mounts = Mounts {
        owner: parts.id().to_owned(),
        image: record,
        state_dir: container_dir.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        volumes: Vec::new(),
        run_dir: parts.files.pause_bundle(),
    };
    let idmapped = parts.layer_idmap()?;
    let images = engine.images.clone();
    tokio::task::spawn_blocking(move || mounts.mount(&images, idmapped.as_ref())).await??;
    let c = config.config().clone().unwrap_or_default();
    Ok(c.entrypoint()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .chain(c.cmd().clone().unwrap_or_default())
        .collect())
}

/// How long a teardown waits for a pause launch that a crash interrupted.
const LAUNCH_SETTLE: Duration = Duration::from_secs(30);

/// Stops the pause process (SIGTERM, then SIGKILL) and deletes it from the runtime. Idempotent;
/// nothing to do for a pod made without one.
pub async fn stop(engine: &Engine, record: &SandboxRecord) -> Result<(), PodError> {
    if record.no_pause {
        return Ok(());
    }
    let exit_file = engine.paths.exit_file(&record.id);
    if let Some(p) = record.pause
        && proc_info::is_alive(p.pid, p.start_time)
    {
        let _ = proc_info::signal_if_same(p.pid, p.start_time, libc::SIGTERM);
        let gone = monitor::wait_exit_file(&exit_file, Duration::from_secs(2))
            .await
            .ok()
            .flatten();
        if gone.is_none() && proc_info::is_alive(p.pid, p.start_time) {
            let _ = proc_info::signal_if_same(p.pid, p.start_time, libc::SIGKILL);
            let _ = monitor::wait_exit_file(&exit_file, Duration::from_secs(5)).await;
        }
    }
    if record.pause.is_none() {
        // A launch nobody saw finish (a crash during RunPodSandbox) must not create the pause
        // after this delete.
        monitor::settle_launch(&record.runtime, &record.id, LAUNCH_SETTLE).await;
    }
    record
        .runtime
        .delete(&record.id, true)
        .await
        .map_err(|e| PodError::internal("deleting the pause container", e))
}
