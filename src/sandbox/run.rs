//! RunPodSandbox: reserve the name, record the sandbox, pin its namespaces, write its files,
//! attach it to the pod network and start the pause process. Any failure undoes every step.

use std::collections::HashMap;
use std::fs;
use std::sync::Arc;

use prost::Message;

use super::{files, namespaces, network, ns_setup, pause_process, teardown};
use crate::api::{self, ContainerEventType};
use crate::container::events::sandbox_event;
use crate::engine::{Engine, PodError, Sandbox, new_id};
use crate::libcontainer::cgroups::Driver;
use crate::network::cni::CniNetwork;
use crate::phases;
use crate::pod::{PodContextParts, PodFiles, is_node, namespace_options, needs_pause, pod_userns};
use crate::store::{Kind, SandboxPhase, SandboxRecord, now_nanos};
use crate::userns::IdMaps;
use crate::validate::quote;

/// Creates and starts a pod sandbox; returns its id. A failure undoes everything; if the undo
/// fails too, the sandbox is kept listed (NOTREADY) with the reason, for Stop/Remove to finish
/// (see `teardown::keep_failed`).
pub async fn run(
    engine: &Arc<Engine>,
    config: api::PodSandboxConfig,
    handler: &str,
) -> Result<String, PodError> {
    let name = sandbox_name(&config)?;
    let runtime = engine.runtimes.runtime_for(handler)?;
    let userns = check_userns(engine, &config, &runtime.name)?;
    let cgroup_parent = cgroup_parent(engine, &config)?;
    let ns = namespace_options(&config);
    let net = match is_node(ns.network) {
        true => None,
        false => Some(network::default_network(engine).await?),
    };
    let id = new_id();
    engine.reserve_name(&name, &id)?;

    let shm = if is_node(ns.ipc) {
        "/dev/shm".into()
    } else {
        PodFiles::new(engine, &id).shm()
    };
    let record = SandboxRecord {
        id: id.clone(),
        name: name.clone(),
        phase: SandboxPhase::Creating,
        created_at: now_nanos(),
        config: config.encode_to_vec(),
        runtime_handler: runtime.name.clone(),
        runtime,
        cgroup_parent,
        pinned: Default::default(),
        shm,
        network: net.as_ref().map(network::owed),
        pause: None,
        no_pause: !needs_pause(&config, !engine.config.runtime.pause_image.is_empty()),
        failure: None,
    };
    if let Err(e) = engine.store.save(Kind::Sandbox, &id, &record).await {
        engine.release_name(&name, &id);
        return Err(e.into());
    }
    phases::lap("state");
    let sandbox = Sandbox::new(record);
    let _op = sandbox.op.lock().await;
    engine.insert_sandbox(sandbox.clone());
    match set_up(engine, &sandbox, &config, net, userns).await {
        Ok(()) => {
            // Made and started in one call: the pod is listed from here on.
            let record = sandbox.record();
            sandbox_event(engine, &record, ContainerEventType::ContainerCreatedEvent);
            sandbox_event(engine, &record, ContainerEventType::ContainerStartedEvent);
            super::pause_watch::watch(engine, sandbox.clone());
            Ok(id)
        }
        Err(err) => {
            tracing::warn!(sandbox = %id, "RunPodSandbox failed, undoing: {err}");
            if let Err(undo) = teardown::destroy_held(engine, &sandbox).await {
                let why = format!("RunPodSandbox failed ({err}), and undoing it failed: {undo}");
                teardown::keep_failed(engine, &sandbox, why).await;
            }
            Err(err)
        }
    }
}

async fn set_up(
    engine: &Arc<Engine>,
    sandbox: &Sandbox,
    config: &api::PodSandboxConfig,
    net: Option<CniNetwork>,
    userns: Option<IdMaps>,
) -> Result<(), PodError> {
    let id = sandbox.id.clone();
    let ns = namespace_options(config);
    let host_network = is_node(ns.network);
    let hostname = hostname(config, host_network);

    // Namespaces and files (blocking work: mounts and a thread that unshares).
    let pinned = {
        let engine = engine.clone();
        let config = config.clone();
        let hostname = hostname.clone();
        let id = id.clone();
        let userns = userns.clone();
        tokio::task::spawn_blocking(phases::carry_blocking(move || {
            prepare(&engine, &id, &config, &hostname, userns)
        }))
        .await??
    };
    // Stored with the rest once the pod is READY; a crash before undoes the pod, finding its
    // pins by its id.
    engine.amend_sandbox(sandbox, |r| r.pinned = pinned);

    // The network and the pause process need each other only through the pinned namespaces:
    // they are made at the same time. A pod without a pause is ready once its network is.
    let record = sandbox.record();
    let parts = PodContextParts::new(engine, &record)?;
    let pause = async {
        if record.no_pause {
            return Ok(None);
        }
        // Its laps would interleave with the network's: they are parts of the lap of both.
        phases::branch(pause_process::start(engine, &record, &parts))
            .await
            .map(Some)
    };
    let attach = async {
        match net {
            Some(net) => network::attach(engine, sandbox, net, config).await,
            None => Ok(None),
        }
    };
    let (pause, ip) = tokio::join!(pause, attach);
    phases::lap("net+pause");
    if let Ok(Some(pause)) = &pause {
        // Kept even if the network failed, for the undo to stop it; stored with READY (a crash
        // before: teardown finds a pause by the pod's id, `monitor::settle_launch`).
        let pause = *pause;
        engine.amend_sandbox(sandbox, |r| r.pause = Some(pause));
    }
    let ip = ip?;
    pause?;

    let files = PodFiles::new(engine, &id);
    files::write_hosts(
        &files.hosts,
        &hostname,
        ip,
        host_network,
        std::path::Path::new("/etc/hosts"),
    )
    .map_err(|e| PodError::internal("writing the pod's /etc/hosts", e))?;
    if let Some(maps) = &userns {
        give_to_pod_root(&files, maps, !is_node(ns.ipc))?;
    }
    phases::lap("hosts");

    engine
        .save_sandbox(sandbox, |r| r.phase = SandboxPhase::Ready)
        .await?;
    phases::lap("state");
    Ok(())
}

/// Directory, pinned namespaces, resolv.conf, hostname and /dev/shm.
fn prepare(
    engine: &Engine,
    id: &str,
    config: &api::PodSandboxConfig,
    hostname: &str,
    userns: Option<IdMaps>,
) -> Result<namespaces::Pinned, PodError> {
    let files = PodFiles::new(engine, id);
    fs::create_dir_all(&files.dir)
        .map_err(|e| PodError::internal(format!("creating {}", files.dir.display()), e))?;
    let ns = namespace_options(config);
    let host_network = is_node(ns.network);
    let mut which = namespaces::NsSet {
        net: !host_network,
        ipc: !is_node(ns.ipc),
        // A pod on the host network keeps the host's name too, as the kubelet expects.
        uts: !host_network,
        user: userns,
        user_sysctls: Vec::new(),
    };
    let no_sysctls = HashMap::new();
    let sysctls = config.linux.as_ref().map_or(&no_sysctls, |l| &l.sysctls);
    let mut sysctls = ns_setup::plan(sysctls, &which)?;
    if which.user.is_some() {
        // Written from inside the pod's user namespace, by the process that makes it.
        which.user_sysctls = std::mem::take(&mut sysctls);
    }
    let own_ipc = which.ipc;
    let pinned = namespaces::pin(
        &engine.paths.ns_dir(),
        id,
        which,
        (!host_network).then_some(hostname),
    )
    .map_err(|e| PodError::internal("pinning the pod namespaces", e))?;
    phases::lap("ns");
    // On failure the undo (`teardown`) unpins, finding the pins by the pod's id.
    ns_setup::set_up(&pinned, &sysctls)?;
    phases::lap("ns.setup");
    files::write_resolv_conf(
        &files.resolv_conf,
        config.dns_config.as_ref(),
        std::path::Path::new("/etc/resolv.conf"),
    )
    .map_err(|e| match e {
        files::FilesError::InvalidArgument(m) => PodError::InvalidArgument(m),
        other => PodError::internal("writing the pod's resolv.conf", other),
    })?;
    files::write_hostname(&files.hostname, hostname)
        .map_err(|e| PodError::internal("writing the pod's hostname file", e))?;
    if own_ipc {
        files::mount_shm(&files.shm(), engine.config.runtime.shm_size)
            .map_err(|e| PodError::internal("mounting the pod's /dev/shm", e))?;
    }
    phases::lap("files");
    Ok(pinned)
}

/// The pod's files belong to its root, as the files of a pod without a user namespace belong to
/// root: writable by it, and the shm tmpfs its own.
fn give_to_pod_root(files: &PodFiles, maps: &IdMaps, own_shm: bool) -> Result<(), PodError> {
    let (uid, gid) = maps.host_root();
    let shm = own_shm.then(|| files.shm());
    for path in [&files.resolv_conf, &files.hostname, &files.hosts]
        .into_iter()
        .chain(shm.as_ref())
    {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| PodError::internal(format!("chown {}", path.display()), e))?;
    }
    Ok(())
}

/// A user namespace (mode POD) needs mappings the kernel takes, namespaces of the pod's own
/// (the kubelet forbids host namespaces with it too) and a handler that offers it.
/// The pod's checked mappings, if it has a user namespace.
fn check_userns(
    engine: &Engine,
    config: &api::PodSandboxConfig,
    handler: &str,
) -> Result<Option<IdMaps>, PodError> {
    let Some(maps) = pod_userns(config)? else {
        return Ok(None);
    };
    let ns = namespace_options(config);
    for (kind, mode) in [("network", ns.network), ("pid", ns.pid), ("ipc", ns.ipc)] {
        if is_node(mode) {
            return Err(PodError::InvalidArgument(format!(
                "a pod with its own user namespace cannot use the host's {kind} namespace"
            )));
        }
    }
    if !engine.runtimes.features(handler).user_namespaces {
        return Err(PodError::InvalidArgument(format!(
            "runtime handler {handler:?} does not offer user namespaces (see RuntimeStatus)"
        )));
    }
    Ok(Some(maps))
}

/// `k8s_<name>_<namespace>_<uid>_<attempt>`, as cri-o names pods; the metadata is required.
pub fn sandbox_name(config: &api::PodSandboxConfig) -> Result<String, PodError> {
    let Some(m) = &config.metadata else {
        return Err(PodError::InvalidArgument(
            "pod sandbox metadata is required".into(),
        ));
    };
    for (field, value) in [
        ("name", &m.name),
        ("namespace", &m.namespace),
        ("uid", &m.uid),
    ] {
        if value.is_empty() {
            return Err(PodError::InvalidArgument(format!(
                "pod sandbox metadata.{field} is required"
            )));
        }
    }
    Ok(format!(
        "k8s_{}_{}_{}_{}",
        m.name, m.namespace, m.uid, m.attempt
    ))
}

fn cgroup_parent(engine: &Engine, config: &api::PodSandboxConfig) -> Result<String, PodError> {
    let requested = config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.as_str())
        .unwrap_or("");
    if requested.is_empty() {
        return Ok(engine.runtimes.default_cgroup_parent.clone());
    }
    match engine.runtimes.cgroup_driver {
        Driver::Systemd => {
            if !requested.ends_with(".slice") {
                return Err(PodError::InvalidArgument(format!(
                    "cgroup parent {} is not a systemd slice, and crius uses the systemd cgroup driver (see RuntimeConfig); run the kubelet with cgroupDriver: systemd",
                    quote(requested)
                )));
            }
            // A kubelet sends the slice's expansion; the pod's record keeps the slice name.
            return crate::libcontainer::cgroups::systemd::slice_of_parent(requested).map_err(
                |e| PodError::InvalidArgument(format!("cgroup parent {}: {e}", quote(requested))),
            );
        }
        Driver::Cgroupfs => {
            if requested.ends_with(".slice") {
                return Err(PodError::InvalidArgument(format!(
                    "cgroup parent {requested:?} is a systemd slice, and crius uses the cgroupfs driver (see RuntimeConfig); run the kubelet with cgroupDriver: cgroupfs, or set [runtime] cgroup_manager = \"systemd\""
                )));
            }
            if !requested.starts_with('/') || requested.split('/').any(|c| c == "..") {
                return Err(PodError::InvalidArgument(format!(
                    "cgroup parent {requested:?} must be an absolute cgroup path"
                )));
            }
        }
    }
    Ok(requested.to_owned())
}

/// The pod's hostname: the request's, else the pod name; the host's on the host network.
fn hostname(config: &api::PodSandboxConfig, host_network: bool) -> String {
    if host_network {
        return nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
    }
    if !config.hostname.is_empty() {
        return config.hostname.clone();
    }
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.as_str())
        .unwrap_or_default();
    default_hostname(name)
}

/// The pod name as a hostname, as the kubelet derives one: at most 63 bytes (the kernel's
/// limit), without a trailing `-` or `.` after the cut.
fn default_hostname(name: &str) -> String {
    let mut end = name.len().min(HOSTNAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches(['-', '.']).to_owned()
}

const HOSTNAME_MAX: usize = 63;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_full_metadata() {
        let mut c = api::PodSandboxConfig::default();
        assert!(matches!(
            sandbox_name(&c),
            Err(PodError::InvalidArgument(_))
        ));
        c.metadata = Some(api::PodSandboxMetadata {
            name: "web".into(),
            uid: "u1".into(),
            namespace: "ns".into(),
            attempt: 2,
        });
        assert_eq!(sandbox_name(&c).unwrap(), "k8s_web_ns_u1_2");
        c.metadata.as_mut().unwrap().uid.clear();
        assert!(sandbox_name(&c).unwrap_err().to_string().contains("uid"));
    }

    #[test]
    fn long_pod_names_make_valid_hostnames() {
        assert_eq!(default_hostname("web"), "web");
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(default_hostname(&long), "a".repeat(62));
        assert_eq!(default_hostname(&"x".repeat(80)).len(), 63);
    }
}
