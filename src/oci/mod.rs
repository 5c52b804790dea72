//! CRI requests + image config → OCI runtime spec (runtime-spec 1.2), following cri-o's rules.
//!
//! Everything here is a pure function of its inputs plus a few file reads: users and groups in the
//! container's rootfs, a Localhost seccomp profile, the host's device nodes (privileged containers
//! and requested devices) and /proc/self/mountinfo (propagation checks). The resulting bundle runs
//! under `crius oci` (the `crius-libcontainer` crate, `libcontainer/`) or runc. See `docs/oci-spec.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{Linux, LinuxResources, Process, Root, Spec};

use crate::api;
use crate::libcontainer::cgroups::{self, CgroupVersion, HostCgroups};
use crate::userns::IdMaps;

mod devices;
mod mounts;
mod namespaces;
mod process;
mod resources;
pub mod seccomp_default;
mod security;
mod signal;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_image_volume;
#[cfg(test)]
mod tests_resources;
#[cfg(test)]
mod tests_security;
#[cfg(test)]
mod tests_userns;

pub use mounts::image_volume_path;
pub use security::DEFAULT_CAPABILITIES;
pub use signal::{from_cri as stop_signal_from_cri, stop_signal, to_cri as stop_signal_to_cri};

/// How a container/pause joins a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsMode {
    /// Share the host's namespace (no entry in the spec).
    Host,
    /// A fresh namespace created by the runtime.
    New,
    /// Join an existing namespace (a bind-mounted nsfs file or /proc/<pid>/ns/<type>).
    Path(PathBuf),
}

/// What the pod sandbox provides (already prepared by the caller).
pub struct PodContext<'a> {
    pub sandbox_id: &'a str,
    pub config: &'a api::PodSandboxConfig,
    pub net: NsMode,
    pub ipc: NsMode,
    pub uts: NsMode,
    /// The pod's pid namespace for containers with pid mode POD: Path(/proc/<pause pid>/ns/pid);
    /// Host when the pod uses the host pid ns.
    pub pod_pid: NsMode,
    /// File to bind at /etc/resolv.conf.
    pub resolv_conf: Option<&'a Path>,
    /// File to bind at /etc/hostname.
    pub hostname_file: &'a Path,
    /// File to bind at /etc/hosts.
    pub hosts_file: &'a Path,
    /// Directory to bind at /dev/shm (a tmpfs the caller mounted, or /dev/shm for host ipc).
    pub shm: &'a Path,
    /// Absolute cgroupfs path, e.g. "/crius" or "/kubepods/besteffort/pod123".
    pub cgroup_parent: &'a str,
    /// The pod's own user namespace, when it has one.
    pub userns: Option<PodUserns<'a>>,
}

/// A pod's user namespace: the pinned namespace every process of the pod joins, and its
/// mappings (also given to the runtime, which id-maps volumes with them).
#[derive(Debug, Clone, Copy)]
pub struct PodUserns<'a> {
    pub path: &'a Path,
    pub maps: &'a IdMaps,
}

/// One container of the pod.
pub struct ContainerContext<'a> {
    pub id: &'a str,
    pub config: &'a api::ContainerConfig,
    pub image: &'a ImageConfiguration,
    /// For annotations.
    pub image_name: &'a str,
    /// Mounted overlay root: the spec's root.path and where /etc/passwd is looked up.
    pub rootfs: &'a Path,
    /// Where the image volumes are mounted: CRI mount `i` with an image at
    /// [`image_volume_path`]`(image_volumes, i)`.
    pub image_volumes: &'a Path,
    /// /proc/<pid>/ns/pid of the TARGET container, when pid mode is TARGET.
    pub target_pid: Option<PathBuf>,
}

/// The pod's pause (infra) process.
pub struct PauseContext<'a> {
    /// The sandbox id.
    pub id: &'a str,
    /// An empty directory the caller made.
    pub rootfs: &'a Path,
    /// The built-in pause executable on the host (static, needing no library); bind-mounted
    /// read-only at /pause, run as ["/pause"].
    pub pause: &'a Path,
    /// With a configured pause image: its command (entrypoint + cmd); `rootfs` is then the
    /// image's mounted root and nothing of the host is bound in.
    pub image_args: Option<Vec<String>>,
}

/// Host facts and runtime configuration the generator needs.
#[derive(Debug, Clone)]
pub struct SpecOptions {
    /// The host's cgroup version, controllers and huge page sizes: what the host cannot apply
    /// is left out of the spec.
    pub cgroups: HostCgroups,
    /// The host has AppArmor enabled.
    pub apparmor_enabled: bool,
    /// Capabilities of a non-privileged container before add/drop.
    pub default_capabilities: Vec<String>,
}

impl Default for SpecOptions {
    /// Detects the cgroups and AppArmor of this host; cri-o's default capabilities.
    fn default() -> Self {
        SpecOptions {
            cgroups: HostCgroups::detect(),
            apparmor_enabled: crate::libcontainer::lsm::Host::default().apparmor_enabled(),
            default_capabilities: DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl SpecOptions {
    /// The host uses the unified cgroup v2 hierarchy.
    pub fn cgroup_v2(&self) -> bool {
        self.cgroups.version == CgroupVersion::V2
    }
}

/// Why a spec cannot be generated; the variants map onto gRPC status codes.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A feature crius does not have yet (gRPC UNIMPLEMENTED, which clients treat as such).
    #[error("{0}")]
    Unsupported(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> SpecError {
    SpecError::InvalidArgument(msg.into())
}

/// Annotation keys (containerd's io.kubernetes.cri.* names, which tools such as crictl and
/// NRI plugins understand).
pub mod annotations {
    pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
    pub const CONTAINER_TYPE_SANDBOX: &str = "sandbox";
    pub const CONTAINER_TYPE_CONTAINER: &str = "container";
    pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
    pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
    pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
    pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
    pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const K8S_CONTAINER_NAME: &str = "io.kubernetes.container.name";
}

/// CRI resources as OCI resources, for `update` on a live container (no device rules: the
/// device cgroup set at creation stays).
pub fn linux_resources(
    res: &api::LinuxContainerResources,
    opts: &SpecOptions,
) -> Result<LinuxResources, SpecError> {
    resources::container_resources(res, opts)
}

/// `<parent>/crius-<id>`: the container's cgroup below the pod's cgroupfs parent. Under a
/// systemd slice (the systemd driver), runc's `<slice>:crius:<id>`: the scope unit
/// `crius-<id>.scope` in that slice.
pub fn cgroups_path(cgroup_parent: &str, id: &str) -> String {
    if cgroup_parent.ends_with(".slice") {
        return format!("{cgroup_parent}:crius:{id}");
    }
    let parent = cgroup_parent.trim_end_matches('/');
    if parent.is_empty() {
        format!("/crius-{id}")
    } else if parent.starts_with('/') {
        format!("{parent}/crius-{id}")
    } else {
        format!("/{parent}/crius-{id}")
    }
}

/// The directory of [`cgroups_path`] relative to the cgroup root (`/kubepods.slice/…/crius-<id>.scope`
/// for a slice parent), where its stats are read.
pub fn cgroup_dir(cgroup_parent: &str, id: &str) -> Result<String, SpecError> {
    let path = cgroups_path(cgroup_parent, id);
    let driver = if cgroup_parent.ends_with(".slice") {
        cgroups::Driver::Systemd
    } else {
        cgroups::Driver::Cgroupfs
    };
    cgroups::fs_path(&path, driver).map_err(|e| invalid(format!("cgroup of {id}: {e}")))
}

fn pod_annotations(pod: &PodContext, kind: &str) -> HashMap<String, String> {
    use annotations::*;
    let meta = pod.config.metadata.clone().unwrap_or_default();
    HashMap::from([
        (CONTAINER_TYPE.into(), kind.into()),
        (SANDBOX_ID.into(), pod.sandbox_id.into()),
        (SANDBOX_NAME.into(), meta.name.clone()),
        (SANDBOX_NAMESPACE.into(), meta.namespace.clone()),
        (SANDBOX_UID.into(), meta.uid.clone()),
        (POD_NAME.into(), meta.name),
        (POD_NAMESPACE.into(), meta.namespace),
        (POD_UID.into(), meta.uid),
    ])
}

/// The request's annotations, then ours (ours win: the runtime relies on them).
fn merge_annotations(
    request: &HashMap<String, String>,
    ours: HashMap<String, String>,
) -> HashMap<String, String> {
    let mut all = request.clone();
    all.extend(ours);
    all
}

fn pod_security(pod: &PodContext) -> api::LinuxSandboxSecurityContext {
    pod.config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.clone())
        .unwrap_or_default()
}

/// The hostname goes into the spec only for a fresh uts namespace: a pinned one (Path) already
/// carries it and the host's must not be changed.
fn hostname_for(pod: &PodContext) -> Option<String> {
    (pod.uts == NsMode::New && !pod.config.hostname.is_empty()).then(|| pod.config.hostname.clone())
}

fn empty_spec(root: &Path, readonly: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version("1.2.0".into());
    let mut r = Root::default();
    r.set_path(root.to_path_buf()).set_readonly(Some(readonly));
    spec.set_root(Some(r))
        .set_hostname(None)
        .set_mounts(None)
        .set_annotations(None);
    spec
}

fn empty_linux() -> Linux {
    let mut linux = Linux::default();
    linux
        .set_resources(Some(LinuxResources::default()))
        .set_namespaces(None)
        .set_masked_paths(None)
        .set_readonly_paths(None)
        .set_sysctl(None)
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_devices(None);
    linux
}

/// The spec of one container of the pod.
pub fn container_spec(
    pod: &PodContext,
    c: &ContainerContext,
    opts: &SpecOptions,
) -> Result<Spec, SpecError> {
    let sc = c
        .config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.clone())
        .unwrap_or_default();
    let privileged = sc.privileged;
    if privileged && !pod_security(pod).privileged {
        return Err(invalid(
            "privileged container in a sandbox not marked privileged",
        ));
    }
    if privileged && pod.userns.is_some() {
        return Err(invalid(
            "a privileged container cannot run in a pod with its own user namespace",
        ));
    }
    let res = c
        .config
        .linux
        .as_ref()
        .and_then(|l| l.resources.clone())
        .unwrap_or_default();

    let mut proc: Process = process::container_process(pod, c, &sc)?;
    let caps = security::container_capabilities(&sc, opts)?;
    let seccomp = security::container_seccomp(&sc, &caps)?;
    proc.set_capabilities(Some(caps));
    proc.set_no_new_privileges(Some(sc.no_new_privs));
    proc.set_apparmor_profile(security::apparmor_profile(
        sc.apparmor.as_ref(),
        apparmor_legacy(&sc),
        privileged,
        opts,
    )?);
    proc.set_oom_score_adj(resources::oom_score_adj(&res)?);

    let mut spec = empty_spec(c.rootfs, sc.readonly_rootfs);
    spec.set_hostname(hostname_for(pod));
    let (mounts, rootfs_propagation) = mounts::container_mounts(pod, c, &sc, opts)?;
    spec.set_mounts(Some(mounts));

    let mut linux = empty_linux();
    linux.set_namespaces(Some(namespaces::container_namespaces(
        pod, c, privileged, opts,
    )?));
    linux.set_cgroups_path(Some(cgroups_path(pod.cgroup_parent, c.id).into()));
    let mut resources = resources::container_resources(&res, opts)?;
    let (devs, rules) = devices::container_devices(&c.config.devices, privileged)?;
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
    linux.set_devices((!devs.is_empty()).then_some(devs));
    let (masked, readonly) = security::masked_and_readonly(&sc);
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_seccomp(seccomp);
    linux.set_rootfs_propagation(rootfs_propagation);
    set_id_mappings(&mut linux, pod);
    spec.set_linux(Some(linux));
    spec.set_process(Some(proc));

    let name = c
        .config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let mut ours = pod_annotations(pod, annotations::CONTAINER_TYPE_CONTAINER);
    ours.insert(annotations::CONTAINER_NAME.into(), name.clone());
    ours.insert(annotations::K8S_CONTAINER_NAME.into(), name);
    ours.insert(annotations::IMAGE_NAME.into(), c.image_name.into());
    spec.set_annotations(Some(merge_annotations(&c.config.annotations, ours)));
    Ok(spec)
}

/// The pod's mappings, for a runtime joining its user namespace (runc checks they match).
fn set_id_mappings(linux: &mut Linux, pod: &PodContext) {
    if let Some(u) = &pod.userns {
        let (uids, gids) = u.maps.to_oci();
        linux
            .set_uid_mappings(Some(uids))
            .set_gid_mappings(Some(gids));
    }
}

#[allow(deprecated)]
fn apparmor_legacy(sc: &api::LinuxContainerSecurityContext) -> &str {
    &sc.apparmor_profile
}

/// The spec of the pod's pause process.
pub fn pause_spec(
    pod: &PodContext,
    p: &PauseContext,
    opts: &SpecOptions,
) -> Result<Spec, SpecError> {
    let psc = pod_security(pod);
    let mut proc = process::pause_process(&psc, p.image_args.clone())?;
    proc.set_apparmor_profile(security::apparmor_profile(
        psc.apparmor.as_ref(),
        "",
        false,
        opts,
    )?);

    let mut spec = empty_spec(p.rootfs, true);
    spec.set_hostname(hostname_for(pod));
    spec.set_mounts(Some(mounts::pause_mounts(p)));

    let mut linux = empty_linux();
    linux.set_namespaces(Some(namespaces::pause_namespaces(pod, &psc, opts)));
    linux.set_cgroups_path(Some(cgroups_path(pod.cgroup_parent, p.id).into()));
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(devices::default_rules()));
    linux.set_resources(Some(resources));
    let (masked, readonly) = security::default_masked_and_readonly();
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_seccomp(security::pause_seccomp(&psc)?);
    // No sysctls: the pod's are written when its namespaces are pinned (`sandbox::ns_setup`),
    // for pods with a pause and without alike.
    set_id_mappings(&mut linux, pod);
    spec.set_linux(Some(linux));
    spec.set_process(Some(proc));

    spec.set_annotations(Some(merge_annotations(
        &pod.config.annotations,
        pod_annotations(pod, annotations::CONTAINER_TYPE_SANDBOX),
    )));
    Ok(spec)
}
