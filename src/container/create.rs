//! CreateContainer: image → overlay rootfs, CRI request → OCI spec in the container's bundle.
//! No process yet: StartContainer launches the monitor and the runtime's `create` (`launch`)
//! right before its `start`, as containerd makes its task there.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::ImageConfiguration;
use prost::Message;

use super::{events, image_name, remove};
use crate::api::{self, ContainerEventType, NamespaceMode};
use crate::engine::{Container, Engine, PodError, new_id};
use crate::image::ImageRecord;
use crate::layers::image_volume::{self, ImageVolume};
use crate::layers::{self, Mounts};
use crate::oci::{self, ContainerContext};
use crate::phases;
use crate::pod::{PodContextParts, pod_config};
use crate::proc_info;
use crate::store::{ContainerPhase, ContainerRecord, Kind, ProcessUser, SandboxPhase, now_nanos};
use crate::validate::quote;

/// What identifies a CreateContainer request for its retries: `<pod sandbox id>/<name>`.
pub fn request_key(
    engine: &Engine,
    sandbox_id: &str,
    config: &api::ContainerConfig,
) -> Result<String, PodError> {
    let sandbox = engine.sandbox(sandbox_id)?;
    let name = container_name(config, &pod_config(&sandbox.record())?)?;
    Ok(format!("{}/{name}", sandbox.id))
}

/// Creates a container in a ready pod; returns its id. A failure undoes everything; if the undo
/// fails too, the container is kept listed (EXITED) with the reason, for RemoveContainer to
/// finish (see `remove::keep_failed`).
pub async fn create(
    engine: &Arc<Engine>,
    sandbox_id: &str,
    mut config: api::ContainerConfig,
) -> Result<String, PodError> {
    let sandbox = engine.sandbox(sandbox_id)?;
    // Held throughout: a RemovePodSandbox running meanwhile would miss this container.
    let _pod_op = sandbox.op.lock().await;
    let srec = sandbox.record();
    if srec.phase != SandboxPhase::Ready {
        return Err(PodError::FailedPrecondition(format!(
            "pod sandbox {} is not ready",
            srec.id
        )));
    }
    let pod = pod_config(&srec)?;
    let name = container_name(&config, &pod)?;
    let image_name = config
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    if image_name.is_empty() {
        return Err(PodError::InvalidArgument(
            "container image is required".into(),
        ));
    }
    let image = engine
        .images
        .find(&image_name)
        .map_err(|e| PodError::InvalidArgument(e.to_string()))?
        .ok_or_else(|| PodError::NotFound(format!("image {} not found", quote(&image_name))))?;
    let image_config = layers::image_config(&engine.images, &image)?;
    // The request's stop signal (1.33+) wins over the image's STOPSIGNAL.
    let stop_signal = match oci::stop_signal_from_cri(config.stop_signal)? {
        Some(signal) => signal,
        None => oci::stop_signal(&image_config)?,
    };
    let (image_name, image_ref) =
        image_name::reported(&image, config.image.as_ref().unwrap_or(&Default::default()));
    let volumes = image_volume::resolve(engine, &config)?;
    image_volume::record_digests(&mut config, &volumes);
    phases::lap("image");

    let id = new_id();
    engine.reserve_name(&name, &id)?;
    let log_path = log_path(engine, &srec.id, &pod, &config);
    let record = ContainerRecord {
        id: id.clone(),
        sandbox_id: srec.id.clone(),
        name: name.clone(),
        phase: ContainerPhase::Creating,
        created_at: now_nanos(),
        started_at: 0,
        config: config.encode_to_vec(),
        image_id: image.id.clone(),
        image_name,
        image_ref,
        log_path,
        runtime: srec.runtime.clone(),
        stop_signal,
        process: None,
        exit: None,
        user: None,
        failure: None,
    };
    if let Err(e) = engine.store.save(Kind::Container, &id, &record).await {
        engine.release_name(&name, &id);
        return Err(e.into());
    }
    phases::lap("state");
    // What the log directory held before: a failed create must leave it as it was, since the
    // kubelet counts a container's attempts by the files there.
    let log_left = LogLeftovers::before(&record.log_path);
    let container = Container::new(record);
    let _op = container.op.lock().await;
    engine.insert_container(container.clone());
    let set = SetUp {
        srec: &srec,
        config: &config,
        image: &image,
        image_config: &image_config,
        volumes,
    };
    match set_up(engine, &container, set).await {
        Ok(()) => {
            events::container_event(
                engine,
                &container,
                ContainerEventType::ContainerCreatedEvent,
            );
            Ok(id)
        }
        Err(err) => {
            tracing::warn!(container = %id, "CreateContainer failed, undoing: {err}");
            if let Err(undo) = remove::remove_held(engine, &container, remove::Files::Now).await {
                let why = format!("CreateContainer failed ({err}), and undoing it failed: {undo}");
                remove::keep_failed(engine, &container, why).await;
            }
            log_left.remove_new();
            Err(err)
        }
    }
}

/// The log file and its directory as they were before a CreateContainer, so that undoing it
/// removes only what it made: an empty `<attempt>.log` left behind would count as an attempt.
struct LogLeftovers {
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
}

impl LogLeftovers {
    fn before(log_path: &std::path::Path) -> LogLeftovers {
        let parent = log_path.parent().map(PathBuf::from);
        LogLeftovers {
            file: (!log_path.exists()).then(|| log_path.to_path_buf()),
            dir: parent.filter(|d| !d.exists()),
        }
    }

    fn remove_new(self) {
        if let Some(file) = self.file
            && let Err(e) = fs::remove_file(&file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(
                "removing the log of a failed create, {}: {e}",
                file.display()
            );
        }
        if let Some(dir) = self.dir {
            // Only if empty: anything else there is not ours to remove.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// What CreateContainer found before it recorded the container.
struct SetUp<'a> {
    srec: &'a crate::store::SandboxRecord,
    config: &'a api::ContainerConfig,
    image: &'a ImageRecord,
    image_config: &'a ImageConfiguration,
    volumes: Vec<ImageVolume>,
}

async fn set_up(
    engine: &Arc<Engine>,
    container: &Container,
    set: SetUp<'_>,
) -> Result<(), PodError> {
    let SetUp {
        srec,
        config,
        image,
        image_config,
        volumes,
    } = set;
    let id = container.id.clone();
    let run_dir = engine.paths.container_run_dir(&id);
    let rootfs_dir = run_dir.join("rootfs");
    let parts = PodContextParts::new(engine, srec)?;
    check_userns(&parts, config)?;
    {
        let mounts = Mounts {
            owner: id.clone(),
            image: image.clone(),
            state_dir: engine.paths.container_dir(&id),
            rootfs: rootfs_dir.clone(),
            volumes,
            run_dir: run_dir.clone(),
        };
        let idmapped = parts.layer_idmap()?;
        let images = engine.images.clone();
        tokio::task::spawn_blocking(move || mounts.mount(&images, idmapped.as_ref())).await??;
    }
    phases::lap("rootfs");

    let target_pid = target_pid_ns(engine, config)?;
    let rec = container.record();
    let spec = oci::container_spec(
        &parts.context(),
        &ContainerContext {
            id: &id,
            config,
            image: image_config,
            image_name: &rec.image_name,
            rootfs: &rootfs_dir,
            image_volumes: &image_volume::volumes_dir(&run_dir),
            target_pid,
        },
        engine.runtimes.spec_options(),
    )?;
    let user = spec.process().as_ref().map(|p| {
        let u = p.user();
        ProcessUser {
            uid: u.uid(),
            gid: u.gid(),
            supplemental_groups: u.additional_gids().clone().unwrap_or_default(),
        }
    });
    crate::pod::write_spec(&run_dir, spec)?;

    let log_path = rec.log_path.clone();
    if let Some(parent) = log_path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| PodError::internal(format!("creating {}", parent.display()), e))?;
    }
    phases::lap("spec");
    // Not synced: the `Creating` record before was, and a power loss that undoes this one
    // finds a create that did not finish and undoes it, as after a crash mid-create. A daemon
    // crash keeps it (page cache). The process comes with StartContainer (`launch`).
    engine
        .save_container_volatile(container, |r| {
            r.phase = ContainerPhase::Created;
            r.user = user;
        })
        .await?;
    phases::lap("state");
    Ok(())
}

/// A container shares its pod's user namespace: a request naming another one (or the host's in
/// a pod that has its own) is refused, as containerd does. No options means the pod's.
fn check_userns(parts: &PodContextParts, config: &api::ContainerConfig) -> Result<(), PodError> {
    let Some(asked) = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .and_then(|n| n.userns_options.as_ref())
    else {
        return Ok(());
    };
    let asked = crate::userns::IdMaps::from_options(Some(asked))
        .map_err(|e| PodError::InvalidArgument(e.to_string()))?;
    if asked.as_ref() != parts.userns_maps() {
        return Err(PodError::InvalidArgument(
            "the container's user namespace options differ from its pod's".into(),
        ));
    }
    Ok(())
}

/// `k8s_<name>_<pod>_<namespace>_<uid>_<attempt>`, as cri-o names containers.
fn container_name(
    config: &api::ContainerConfig,
    pod: &api::PodSandboxConfig,
) -> Result<String, PodError> {
    let Some(m) = config.metadata.as_ref().filter(|m| !m.name.is_empty()) else {
        return Err(PodError::InvalidArgument(
            "container metadata.name is required".into(),
        ));
    };
    let p = pod.metadata.clone().unwrap_or_default();
    Ok(format!(
        "k8s_{}_{}_{}_{}_{}",
        m.name, p.name, p.namespace, p.uid, m.attempt
    ))
}

/// `<log_directory>/<log_path>` of the pod and container; without a pod log directory, crius'
/// own per-pod directory. No container log_path: `<name>_<attempt>.log`.
fn log_path(
    engine: &Engine,
    sandbox_id: &str,
    pod: &api::PodSandboxConfig,
    config: &api::ContainerConfig,
) -> PathBuf {
    let dir = if pod.log_directory.is_empty() {
        engine.paths.default_log_dir(sandbox_id)
    } else {
        PathBuf::from(&pod.log_directory)
    };
    if config.log_path.is_empty() {
        let m = config.metadata.clone().unwrap_or_default();
        dir.join(format!("{}_{}.log", m.name, m.attempt))
    } else {
        dir.join(&config.log_path)
    }
}

/// `/proc/<pid>/ns/pid` of the TARGET container, for pid mode TARGET.
fn target_pid_ns(
    engine: &Engine,
    config: &api::ContainerConfig,
) -> Result<Option<PathBuf>, PodError> {
    let ns = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    let Some(ns) = ns.filter(|n| n.pid == NamespaceMode::Target as i32) else {
        return Ok(None);
    };
    let target = engine.container(&ns.target_id).map_err(|e| match e {
        PodError::NotFound(m) => PodError::NotFound(format!("pid namespace target: {m}")),
        other => other,
    })?;
    let rec = target.record();
    match rec.process {
        Some(p) if proc_info::is_alive(p.pid, p.start_time) => {
            Ok(Some(PathBuf::from(format!("/proc/{}/ns/pid", p.pid))))
        }
        _ => Err(PodError::FailedPrecondition(format!(
            "pid namespace target {} is not running",
            rec.id
        ))),
    }
}
