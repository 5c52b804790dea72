//! What is recorded about each sandbox and container. The CRI request itself is kept as its
//! protobuf encoding, so status answers after a restart give back exactly what was asked.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::monitor::ExitStatus;
use crate::oci_runtime::OciRuntime;

/// The files holding a pod's pinned namespaces.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pinned {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    /// Absent in records written before user namespaces were supported.
    #[serde(default)]
    pub user: Option<PathBuf>,
}

/// Nanoseconds since the epoch, as the CRI reports times.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A process crius started and must recognise after a restart (pid + start time defeat pid reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    pub start_time: u64,
    pub monitor_pid: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxPhase {
    /// Being set up; a restart finds it half-made and tears it down.
    Creating,
    Ready,
    /// Stopped: containers and pause gone, network torn down.
    Stopped,
    /// Being removed; a restart finishes the job.
    Removing,
}

/// The pod's network attachment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkState {
    /// CNI network name.
    pub network: String,
    /// Pod IPs, the first being the primary one.
    pub ips: Vec<String>,
    /// Whether a CNI DEL is still owed.
    pub attached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    /// The unique name reserved for it (`k8s_<name>_<namespace>_<uid>_<attempt>`).
    pub name: String,
    pub phase: SandboxPhase,
    pub created_at: i64,
    /// The `PodSandboxConfig` of the request, protobuf-encoded.
    #[serde(with = "base64_bytes")]
    pub config: Vec<u8>,
    pub runtime_handler: String,
    pub runtime: OciRuntime,
    pub cgroup_parent: String,
    pub pinned: Pinned,
    /// `/dev/shm` for the pod's containers (a tmpfs, or the host's).
    pub shm: PathBuf,
    pub network: Option<NetworkState>,
    pub pause: Option<ProcessRef>,
    /// Made without a pause process: its containers share no PID namespace, the pinned
    /// namespaces are the pod (as cri-o's dropped infra container). READY needs no process then.
    /// Absent in older records, which all have a pause.
    #[serde(default)]
    pub no_pause: bool,
    /// Why a RunPodSandbox could not be undone or a removal not finished. Set, the half-made or
    /// half-removed sandbox is listed (NOTREADY) and removable, holds no name, and its teardown
    /// is retried by the next Stop/Remove and at start-up.
    #[serde(default)]
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerPhase {
    Creating,
    /// Created by the runtime, its process waiting to be started.
    Created,
    /// Started; running until its exit file appears.
    Started,
    Removing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox_id: String,
    /// The unique name reserved for it (`k8s_<name>_<pod>_<namespace>_<uid>_<attempt>`).
    pub name: String,
    pub phase: ContainerPhase,
    pub created_at: i64,
    pub started_at: i64,
    /// The `ContainerConfig` of the request, protobuf-encoded.
    #[serde(with = "base64_bytes")]
    pub config: Vec<u8>,
    /// Image id (`sha256:...`), the image as the request named it, and its repo digest.
    pub image_id: String,
    pub image_name: String,
    pub image_ref: String,
    pub log_path: PathBuf,
    pub runtime: OciRuntime,
    pub stop_signal: i32,
    pub process: Option<ProcessRef>,
    /// The exit status once it has been read from the exit file.
    pub exit: Option<ExitStatus>,
    /// The process identity its spec was given (absent in records before it was kept).
    #[serde(default)]
    pub user: Option<ProcessUser>,
    /// Why a CreateContainer could not be undone or a removal not finished: as
    /// [`SandboxRecord::failure`], the container is then listed (EXITED) and removable.
    #[serde(default)]
    pub failure: Option<String>,
}

/// uid, gid and supplementary groups of a container's process: `ContainerStatus.user`, which
/// the kubelet reads for the SupplementalGroupsPolicy feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub supplemental_groups: Vec<u32>,
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
