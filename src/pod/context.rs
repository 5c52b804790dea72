//! What a sandbox gives the specs of its pause process and containers (`oci::PodContext`),
//! worked out from its record and request.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::api::{self, NamespaceMode};
use crate::engine::{Engine, PodError};
use crate::layers::LayerIdmap;
use crate::oci::{NsMode, PodContext, PodUserns};
use crate::store::SandboxRecord;
use crate::userns::IdMaps;

/// The request a sandbox was made from.
pub fn pod_config(record: &SandboxRecord) -> Result<api::PodSandboxConfig, PodError> {
    api::PodSandboxConfig::decode(record.config.as_slice())
        .map_err(|e| PodError::internal(format!("sandbox {} record", record.id), e))
}

/// The namespace options of a pod request (all POD when absent).
pub fn namespace_options(config: &api::PodSandboxConfig) -> api::NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default()
}

/// The pod's user namespace mappings (mode POD), checked; `None` without one.
pub fn pod_userns(config: &api::PodSandboxConfig) -> Result<Option<IdMaps>, PodError> {
    IdMaps::from_options(namespace_options(config).userns_options.as_ref())
        .map_err(|e| PodError::InvalidArgument(e.to_string()))
}

pub fn is_node(mode: i32) -> bool {
    mode == NamespaceMode::Node as i32
}

/// Whether a pod gets a pause process: only one whose containers share a PID namespace (mode
/// POD: the pause is its PID 1 and reaps), or every pod when the operator configured a pause
/// image. Otherwise the pinned namespaces are all a pod needs, and a process per pod (and its
/// monitor) would be memory spent on nothing: cri-o drops its infra container the same way.
pub fn needs_pause(config: &api::PodSandboxConfig, pause_image_configured: bool) -> bool {
    pause_image_configured || namespace_options(config).pid == NamespaceMode::Pod as i32
}

/// Files prepared for the containers, under `<runroot>/sandboxes/<id>/`.
pub struct PodFiles {
    pub dir: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
    pub hosts: PathBuf,
}

impl PodFiles {
    pub fn new(engine: &Engine, id: &str) -> PodFiles {
        let dir = engine.paths.sandbox_dir(id);
        PodFiles {
            resolv_conf: dir.join("resolv.conf"),
            hostname: dir.join("hostname"),
            hosts: dir.join("hosts"),
            dir,
        }
    }

    /// The pod's own `/dev/shm` tmpfs mount point.
    pub fn shm(&self) -> PathBuf {
        self.dir.join("shm")
    }

    pub fn pause_bundle(&self) -> PathBuf {
        self.dir.join("pause")
    }
}

/// Owned parts a [`PodContext`] borrows.
pub struct PodContextParts {
    pub config: api::PodSandboxConfig,
    pub files: PodFiles,
    net: NsMode,
    ipc: NsMode,
    uts: NsMode,
    pod_pid: NsMode,
    shm: PathBuf,
    cgroup_parent: String,
    id: String,
    userns: Option<(PathBuf, IdMaps)>,
}

impl PodContextParts {
    pub fn new(engine: &Engine, record: &SandboxRecord) -> Result<PodContextParts, PodError> {
        let config = pod_config(record)?;
        let ns = namespace_options(&config);
        let pinned_or_host = |path: &Option<PathBuf>| match path {
            Some(p) => NsMode::Path(p.clone()),
            None => NsMode::Host,
        };
        let pod_pid = match (is_node(ns.pid), record.pause) {
            (true, _) => NsMode::Host,
            (false, Some(pause)) => {
                NsMode::Path(PathBuf::from(format!("/proc/{}/ns/pid", pause.pid)))
            }
            // While the pause process itself is being made; and in a pod without a pause, whose
            // containers share no PID namespace, a container asking for the pod's gets its own.
            (false, None) => NsMode::New,
        };
        let userns = match (&record.pinned.user, pod_userns(&config)?) {
            (Some(path), Some(maps)) => Some((path.clone(), maps)),
            (None, None) => None,
            _ => {
                return Err(PodError::internal(
                    format!("sandbox {}", record.id),
                    "its user namespace does not match its request",
                ));
            }
        };
        Ok(PodContextParts {
            userns,
            files: PodFiles::new(engine, &record.id),
            net: pinned_or_host(&record.pinned.net),
            ipc: pinned_or_host(&record.pinned.ipc),
            uts: pinned_or_host(&record.pinned.uts),
            pod_pid,
            shm: record.shm.clone(),
            cgroup_parent: record.cgroup_parent.clone(),
            id: record.id.clone(),
            config,
        })
    }

    /// The sandbox's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pod's mappings, when it has its own user namespace.
    pub fn userns_maps(&self) -> Option<&IdMaps> {
        self.userns.as_ref().map(|(_, maps)| maps)
    }

    /// What an overlay rootfs of this pod needs for id-mapped layers.
    pub fn layer_idmap(&self) -> Result<Option<LayerIdmap>, PodError> {
        self.userns
            .as_ref()
            .map(|(pin, maps)| LayerIdmap::open(pin, maps.host_root()))
            .transpose()
    }

    pub fn context(&self) -> PodContext<'_> {
        let resolv: &Path = &self.files.resolv_conf;
        PodContext {
            sandbox_id: &self.id,
            config: &self.config,
            net: self.net.clone(),
            ipc: self.ipc.clone(),
            uts: self.uts.clone(),
            pod_pid: self.pod_pid.clone(),
            resolv_conf: Some(resolv),
            hostname_file: &self.files.hostname,
            hosts_file: &self.files.hosts,
            shm: &self.shm,
            cgroup_parent: &self.cgroup_parent,
            userns: self
                .userns
                .as_ref()
                .map(|(path, maps)| PodUserns { path, maps }),
        }
    }
}
