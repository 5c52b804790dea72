//! What a sandbox gives the specs of its pause process and containers (`oci::PodContext`),
//! worked out from its record and request.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::api::{self, NamespaceMode};
use crate::engine::{Engine, PodError};
use crate::oci::{NsMode, PodContext};
use crate::store::SandboxRecord;

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

pub fn is_node(mode: i32) -> bool {
    mode == NamespaceMode::Node as i32
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
            // Only while the pause process itself is being made.
            (false, None) => NsMode::New,
        };
        Ok(PodContextParts {
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
        }
    }
}
