//! A kubelet's pod lifecycle, replayed request by request against the real daemon: the calls a
//! v1.36/v1.37 kubelet (`pkg/kubelet/kuberuntime`, default feature gates, cgroupfs driver,
//! `cpuCFSQuota` on, `seccompDefault` off) makes for one two-container Burstable pod, with the
//! fields it fills in, and the checks it makes on the answers.
//!
//! The pod, as its manifest would say:
//!
//! - `securityContext`: `runAsUser: 1000`, `runAsGroup: 3000`, `fsGroup: 2000`,
//!   `supplementalGroups: [4000]`, `seccompProfile: RuntimeDefault`;
//!   `terminationGracePeriodSeconds: 30`; an `emptyDir` volume `data`;
//! - `web`: busybox `httpd` serving the `emptyDir` on 8080 with `hostPort` (a free high port),
//!   requests cpu 100m / memory 32Mi, limits cpu 500m / memory 64Mi, exec readiness and liveness
//!   probes, `allowPrivilegeEscalation: false`, `capabilities.drop: [ALL]`;
//! - `crasher`: appends a line to the `emptyDir`, writes its termination message, exits 1;
//!   requests cpu 50m / memory 16Mi, limits cpu 100m / memory 32Mi; `restartPolicy: Always`.
//!
//! The replay, in the kubelet's order:
//!
//! 1. start-up: `Version`, `Status` (runtime and network ready), `RuntimeConfig` (the cgroup
//!    driver), `ImageFsInfo` (the eviction manager);
//! 2. `SyncPod`: `RunPodSandbox` (`generatePodSandboxConfig` + `generatePodSandboxLinuxConfig` +
//!    the sandbox resources), `PodSandboxStatus` (verbose false) for the IP, then per container
//!    (`startContainer`): `ImageStatus`, `PullImage` with the sandbox config when absent,
//!    `CreateContainer` (`generateContainerConfig` / `generateLinuxContainerConfig`: the image
//!    id as `image.image` and the user's name as `user_specified_image`, log path
//!    `<name>/<attempt>.log`, labels and annotations as `labels.go` makes them, resources as
//!    `calculateLinuxResources` computes them), `StartContainer`;
//! 3. PLEG relists (`ListPodSandbox`, `ListContainers`, then per pod `ListPodSandbox` /
//!    `PodSandboxStatus` / `ListContainers` by the pod uid label and `ContainerStatus`, all not
//!    verbose); exec probes (`ExecSync` with the probe's timeout);
//! 4. the crash loop: `crasher` seen exited, its restart count read back from the
//!    `restartCount` annotation, and a new container created with attempt + 1, twice (the
//!    back-off delays are not waited for); nothing removed in between;
//! 5. stats (`ContainerStats`, `PodSandboxStats`, `ListContainerStats`);
//! 6. pod deletion: `StopContainer` with the grace period, `StopPodSandbox`, then the garbage
//!    collector's `RemoveContainer`s and `RemovePodSandbox`; nothing left on the host.
//!
//! The kubelet's directories (`/var/lib/kubelet/pods/<uid>/...`, `/var/log/pods/<ns>_<name>_<uid>`)
//! are made the way it makes them, in temporary directories.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crius_e2e::cri::Images;
use crius_e2e::cri::api::{
    self, Capability, ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState,
    ContainerStateValue, ContainerStatsRequest, ContainerStatus, DnsConfig, HugepageLimit,
    ImageSpec, ImageStatusRequest, KeyValue, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    ListContainerStatsRequest, ListContainersRequest, ListPodSandboxRequest, Mount,
    MountPropagation, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxFilter,
    PodSandboxMetadata, PodSandboxState, PodSandboxStateValue, PodSandboxStatsRequest, PortMapping,
    Protocol, PullImageRequest, RuntimeConfigRequest, SecurityProfile, StatusRequest,
    SupplementalGroupsPolicy, UserNamespace, VersionRequest, security_profile::ProfileType,
};
use crius_e2e::pods::cri_log::{read_cri_log, stream_lines};
use crius_e2e::pods::{PodEnv, PodFlow};
use crius_e2e::util::free_port;

const SECOND: Duration = Duration::from_secs(1);
/// The probes' `timeoutSeconds`, passed as `ExecSync`'s timeout: 10 rather than the default 1,
/// since an exec under the VM node test's CPU emulation can take longer than a second.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a poll waits for a state the kubelet waits for (only reached on failure).
const POLL_LIMIT: Duration = Duration::from_secs(120);
/// The pod's `terminationGracePeriodSeconds`: `StopContainer`'s timeout.
const GRACE_SECS: i64 = 30;
/// How many times `crasher` runs: attempt 0 and two restarts.
const CRASHER_RUNS: u32 = 3;
const RUN_AS_USER: i64 = 1000;
const RUN_AS_GROUP: i64 = 3000;
const FS_GROUP: i64 = 2000;
const SUPPLEMENTAL_GROUP: i64 = 4000;
const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
const CONTAINER_PORT: i32 = 8080;
const MI: i64 = 1 << 20;

// Well-known label keys (`pkg/kubelet/types/labels.go`) and annotation keys (`labels.go`).
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_UID: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";
const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
const TERMINATION_PATH_KEY: &str = "io.kubernetes.container.terminationMessagePath";
const TERMINATION_POLICY_KEY: &str = "io.kubernetes.container.terminationMessagePolicy";
const GRACE_KEY: &str = "io.kubernetes.pod.terminationGracePeriod";
const PORTS_KEY: &str = "io.kubernetes.container.ports";

/// One container of the pod spec, with what the kubelet derives its CRI config from.
struct Spec {
    name: &'static str,
    command: Vec<String>,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    cpu_request_milli: i64,
    cpu_limit_milli: i64,
    memory_request: i64,
    memory_limit: i64,
    /// `containerPort`s with a `hostPort`: `(containerPort, hostPort)`.
    ports: Vec<(i32, i32)>,
    locked_down: bool,
    /// A stand-in for `kubecontainer.HashContainer` (the kubelet hashes the spec; any stable
    /// value shaped like it does here).
    hash: u64,
}

/// The pod as the kubelet sees it, and the directories it made for it.
struct KubeletPod {
    name: String,
    namespace: String,
    uid: String,
    image: String,
    /// `/var/log/pods/<ns>_<name>_<uid>`.
    log_dir: PathBuf,
    /// `/var/lib/kubelet/pods/<uid>`.
    pod_dir: PathBuf,
    host_port: i32,
    annotations: HashMap<String, String>,
    containers: Vec<Spec>,
}

impl KubeletPod {
    /// The pod, with the kubelet's root directory (`/var/lib/kubelet`) at `root`.
    fn new(env: &PodEnv, root: &Path, host_port: i32) -> KubeletPod {
        let name = "kubelet-web".to_string();
        let namespace = crius_e2e::pods::requests::NAMESPACE.to_string();
        let uid = uuid_v4();
        let log_dir = env.logs.path().join(format!("{namespace}_{name}_{uid}"));
        let pod_dir = root.join("pods").join(&uid);
        let annotations = HashMap::from([
            ("kubernetes.io/config.source".to_string(), "api".to_string()),
            (
                "kubernetes.io/config.seen".to_string(),
                "2026-01-02T03:04:05.678901234Z".to_string(),
            ),
        ]);
        let web = Spec {
            name: "web",
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec![
                "echo ready > /data/index.html; echo serving; \
                 httpd -f -p 8080 -h /data & trap 'kill $!; exit 0' TERM; wait"
                    .into(),
            ],
            env: vec![("MODE", "web")],
            cpu_request_milli: 100,
            cpu_limit_milli: 500,
            memory_request: 32 * MI,
            memory_limit: 64 * MI,
            ports: vec![(CONTAINER_PORT, host_port)],
            locked_down: true,
            hash: 0x5eb1a2c3,
        };
        let crasher = Spec {
            name: "crasher",
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec![
                "n=$(cat /data/crasher-runs 2>/dev/null | wc -l); \
                 echo \"run $n\" >> /data/crasher-runs; echo \"crasher run $n\"; \
                 echo \"oops $n\" >&2; echo \"crashed on run $n\" > /dev/termination-log; \
                 exit 1"
                    .into(),
            ],
            env: vec![("MODE", "crasher")],
            cpu_request_milli: 50,
            cpu_limit_milli: 100,
            memory_request: 16 * MI,
            memory_limit: 32 * MI,
            ports: vec![],
            locked_down: false,
            hash: 0xc4a5e7,
        };
        KubeletPod {
            name,
            namespace,
            uid,
            image: env.image.clone(),
            log_dir,
            pod_dir,
            host_port,
            annotations,
            containers: vec![web, crasher],
        }
    }

    fn spec(&self, name: &str) -> &Spec {
        self.containers.iter().find(|c| c.name == name).unwrap()
    }

    /// The `emptyDir` volume `data`, as the empty-dir plugin sets it up (mode 0777, then the
    /// fsGroup ownership: group `fsGroup`, setgid).
    fn empty_dir(&self) -> PathBuf {
        self.pod_dir
            .join("volumes")
            .join("kubernetes.io~empty-dir")
            .join("data")
    }

    fn make_volume_dirs(&self) {
        let dir = self.empty_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, None, Some(FS_GROUP as u32)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2777)).unwrap();
    }

    /// `etc-hosts` as the kubelet writes it once the sandbox has an IP.
    fn write_etc_hosts(&self, ip: &str) -> PathBuf {
        let path = self.pod_dir.join("etc-hosts");
        let text = format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost \
             ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n{ip}\t{}\n",
            self.name
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A fresh termination-message file for one container creation, as the kubelet makes it
    /// (`/var/lib/kubelet/pods/<uid>/containers/<name>/<random>`, mode 0666).
    fn termination_file(&self, container: &str) -> PathBuf {
        let dir = self.pod_dir.join("containers").join(container);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:08x}", rand::random::<u32>()));
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        path
    }

    fn pod_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            ("app".to_string(), "kubelet-web".to_string()),
            (POD_NAME.to_string(), self.name.clone()),
            (POD_NAMESPACE.to_string(), self.namespace.clone()),
            (POD_UID.to_string(), self.uid.clone()),
        ])
    }

    /// Namespaces as `NamespacesForPod` gives them: the pod's network and IPC, the container's
    /// own PID namespace (no `shareProcessNamespace`), the host's user namespace (`hostUsers`
    /// unset, `UserNamespacesSupport` on).
    fn namespace_options(&self) -> NamespaceOption {
        NamespaceOption {
            network: NamespaceMode::Pod as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            target_id: String::new(),
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Node as i32,
                ..Default::default()
            }),
        }
    }

    /// The pod's sum of requests and limits through `calculateLinuxResources`.
    fn sandbox_resources(&self) -> LinuxContainerResources {
        let sum = |f: fn(&Spec) -> i64| self.containers.iter().map(f).sum::<i64>();
        calculate_linux_resources(
            sum(|c| c.cpu_request_milli),
            sum(|c| c.cpu_limit_milli),
            sum(|c| c.memory_limit),
        )
    }

    /// `generatePodSandboxConfig`.
    fn sandbox_config(&self) -> PodSandboxConfig {
        let ns = &self.namespace;
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: ns.clone(),
                attempt: 0,
            }),
            hostname: self.name.clone(),
            log_directory: self.log_dir.display().to_string(),
            // ClusterFirst with the cluster DNS on loopback: nothing leaves the pod.
            dns_config: Some(DnsConfig {
                servers: vec!["127.0.0.1".into()],
                searches: vec![
                    format!("{ns}.svc.cluster.local"),
                    "svc.cluster.local".into(),
                    "cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
            }),
            port_mappings: self
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .map(|&(container_port, host_port)| PortMapping {
                    protocol: Protocol::Tcp as i32,
                    container_port,
                    host_port,
                    host_ip: String::new(),
                })
                .collect(),
            labels: self.pod_labels(),
            annotations: self.annotations.clone(),
            linux: Some(LinuxPodSandboxConfig {
                // The test daemon's own default parent (the kubelet would name the pod's
                // kubepods-burstable cgroup here).
                cgroup_parent: String::new(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(self.namespace_options()),
                    run_as_user: Some(api::Int64Value { value: RUN_AS_USER }),
                    run_as_group: Some(api::Int64Value {
                        value: RUN_AS_GROUP,
                    }),
                    supplemental_groups: vec![FS_GROUP, SUPPLEMENTAL_GROUP],
                    supplemental_groups_policy: SupplementalGroupsPolicy::Merge as i32,
                    privileged: false,
                    seccomp: Some(SecurityProfile {
                        profile_type: ProfileType::RuntimeDefault as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
                sysctls: HashMap::new(),
                overhead: Some(LinuxContainerResources::default()),
                resources: Some(self.sandbox_resources()),
            }),
            windows: None,
        }
    }

    /// `generateContainerConfig` for `attempt` (= the restart count) of container `name`.
    fn container_config(
        &self,
        name: &str,
        attempt: u32,
        image_id: &str,
        etc_hosts: &Path,
        termination_file: &Path,
    ) -> ContainerConfig {
        let spec = self.spec(name);
        let labels = HashMap::from([
            (POD_NAME.to_string(), self.name.clone()),
            (POD_NAMESPACE.to_string(), self.namespace.clone()),
            (POD_UID.to_string(), self.uid.clone()),
            (CONTAINER_NAME.to_string(), name.to_string()),
        ]);
        let mut annotations = HashMap::from([
            (CONTAINER_HASH.to_string(), format!("{:x}", spec.hash)),
            (RESTART_COUNT.to_string(), attempt.to_string()),
            (
                TERMINATION_PATH_KEY.to_string(),
                TERMINATION_MESSAGE_PATH.to_string(),
            ),
            (TERMINATION_POLICY_KEY.to_string(), "File".to_string()),
            (GRACE_KEY.to_string(), GRACE_SECS.to_string()),
        ]);
        if !spec.ports.is_empty() {
            let ports: Vec<serde_json::Value> = spec
                .ports
                .iter()
                .map(|&(container_port, host_port)| {
                    serde_json::json!({
                        "name": "http",
                        "hostPort": host_port,
                        "containerPort": container_port,
                        "protocol": "TCP",
                    })
                })
                .collect();
            annotations.insert(
                PORTS_KEY.to_string(),
                serde_json::to_string(&ports).unwrap(),
            );
        }
        // Service links first (enableServiceLinks), then the container's own variables.
        let envs: Vec<KeyValue> = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
            ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
            ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", "443"),
            ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
        ]
        .into_iter()
        .chain(spec.env.iter().copied())
        .map(|(key, value)| KeyValue {
            key: key.into(),
            value: value.into(),
        })
        .collect();
        // makeMounts: the volume mounts, /etc/hosts, then the termination message file.
        let mounts = vec![
            Mount {
                container_path: "/data".into(),
                host_path: self.empty_dir().display().to_string(),
                propagation: MountPropagation::PropagationPrivate as i32,
                ..Default::default()
            },
            Mount {
                container_path: "/etc/hosts".into(),
                host_path: etc_hosts.display().to_string(),
                propagation: MountPropagation::PropagationPrivate as i32,
                ..Default::default()
            },
            Mount {
                container_path: TERMINATION_MESSAGE_PATH.into(),
                host_path: termination_file.display().to_string(),
                propagation: MountPropagation::PropagationPrivate as i32,
                ..Default::default()
            },
        ];
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt,
            }),
            image: Some(ImageSpec {
                image: image_id.to_string(),
                user_specified_image: self.image.clone(),
                ..Default::default()
            }),
            command: spec.command.clone(),
            args: spec.args.clone(),
            working_dir: String::new(),
            envs,
            mounts,
            labels,
            annotations,
            log_path: format!("{name}/{attempt}.log"),
            linux: Some(LinuxContainerConfig {
                resources: Some(self.container_resources(spec)),
                security_context: Some(self.container_security_context(spec)),
            }),
            ..Default::default()
        }
    }

    /// `generateLinuxContainerResources` (MemoryQoS off, no swap for Burstable by default).
    fn container_resources(&self, spec: &Spec) -> LinuxContainerResources {
        let mut r = calculate_linux_resources(
            spec.cpu_request_milli,
            spec.cpu_limit_milli,
            spec.memory_limit,
        );
        r.oom_score_adj = burstable_oom_score_adj(spec.memory_request);
        r.hugepage_limits = hugepage_sizes()
            .into_iter()
            .map(|page_size| HugepageLimit {
                page_size,
                limit: 0,
            })
            .collect();
        // configureContainerSwapResources → ConfigureNoSwap, when the host has the controller.
        if swap_controller_available() {
            if cgroup2_unified() {
                r.unified
                    .insert("memory.swap.max".to_string(), "0".to_string());
            } else {
                r.memory_swap_limit_in_bytes = r.memory_limit_in_bytes;
            }
        }
        r
    }

    /// `determineEffectiveSecurityContext`: the pod's identity, groups and seccomp profile,
    /// the container's own settings, the default masked and read-only paths.
    fn container_security_context(&self, spec: &Spec) -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext {
            capabilities: spec.locked_down.then(|| Capability {
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            }),
            privileged: false,
            namespace_options: Some(self.namespace_options()),
            run_as_user: Some(api::Int64Value { value: RUN_AS_USER }),
            run_as_group: Some(api::Int64Value {
                value: RUN_AS_GROUP,
            }),
            supplemental_groups: vec![FS_GROUP, SUPPLEMENTAL_GROUP],
            supplemental_groups_policy: SupplementalGroupsPolicy::Merge as i32,
            no_new_privs: spec.locked_down,
            masked_paths: [
                "/proc/asound",
                "/proc/acpi",
                "/proc/interrupts",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                "/sys/devices/virtual/powercap",
            ]
            .map(String::from)
            .into(),
            readonly_paths: [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]
            .map(String::from)
            .into(),
            seccomp: Some(SecurityProfile {
                profile_type: ProfileType::RuntimeDefault as i32,
                localhost_ref: String::new(),
            }),
            ..Default::default()
        }
    }

    /// `calcRestartCountByLogDir`: one more than the highest `<n>.log` in the container's log
    /// directory, 0 without any.
    fn restart_count_by_log_dir(&self, container: &str) -> u32 {
        let Ok(entries) = std::fs::read_dir(self.log_dir.join(container)) else {
            return 0;
        };
        entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".log")?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .map_or(0, |n| n + 1)
    }
}

/// A random UUID (version 4), the shape of a pod's `metadata.uid`.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `MilliCPUToShares`.
fn milli_cpu_to_shares(milli: i64) -> i64 {
    (milli * 1024 / 1000).max(2)
}

/// `milliCPUToQuota`.
fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli == 0 {
        return 0;
    }
    (milli * period / 1000).max(1000)
}

fn cgroup2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `calculateLinuxResources` with the CFS quota on, the default 100 ms period, and (on a
/// unified hierarchy) `singleProcessOOMKill` false: `memory.oom.group`.
fn calculate_linux_resources(
    cpu_request_milli: i64,
    cpu_limit_milli: i64,
    memory_limit: i64,
) -> LinuxContainerResources {
    let period = 100_000;
    let mut r = LinuxContainerResources {
        cpu_shares: milli_cpu_to_shares(cpu_request_milli),
        memory_limit_in_bytes: memory_limit,
        cpu_quota: milli_cpu_to_quota(cpu_limit_milli, period),
        cpu_period: period,
        ..Default::default()
    };
    if cgroup2_unified() {
        r.unified
            .insert("memory.oom.group".to_string(), "1".to_string());
    }
    r
}

/// `GetContainerOOMScoreAdjust` for a Burstable container: 1000 − 1000·request/capacity,
/// kept within [3, 999].
fn burstable_oom_score_adj(memory_request: i64) -> i64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: i64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let adj = 1000 - (1000 * memory_request) / (kib * 1024);
    if adj < 3 {
        3
    } else if adj == 1000 {
        999
    } else {
        adj
    }
}

/// The page sizes under /sys/kernel/mm/hugepages, named as the kubelet names them ("2MB",
/// "1GB"), in directory order.
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|n| {
            let kib: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let mut size = kib as f64 * 1024.0;
            let mut unit = 0;
            let units = ["B", "KB", "MB", "GB", "TB", "PB"];
            while size >= 1024.0 && unit < units.len() - 1 {
                size /= 1024.0;
                unit += 1;
            }
            Some(format!("{size}{}", units[unit]))
        })
        .collect()
}

/// The kubelet's `swapControllerAvailable`: memsw on v1, `memory.swap.max` in its own cgroup
/// on v2.
fn swap_controller_available() -> bool {
    if !cgroup2_unified() {
        return Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    own.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .is_some_and(|p| {
            Path::new("/sys/fs/cgroup")
                .join(p.trim_start_matches('/'))
                .join("memory.swap.max")
                .exists()
        })
}

/// What the PLEG's relist and `GetPodStatus` see of one pod.
struct Relist {
    sandbox_ids: Vec<String>,
    /// The pod's containers, newest first (`ContainerStatus`, not verbose).
    statuses: Vec<ContainerStatus>,
}

impl Relist {
    /// `FindContainerStatusByName`: the newest container of that name.
    fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        self.statuses
            .iter()
            .find(|s| s.metadata.as_ref().is_some_and(|m| m.name == name))
    }
}

/// `GenericPLEG.relist` (everything) then `GetPodStatus` for the pod `uid`.
async fn relist(flow: &mut PodFlow, uid: &str) -> Relist {
    let all_pods = flow.list_pods().await.unwrap();
    let all_containers = flow.list_containers().await.unwrap();
    assert!(
        all_pods
            .iter()
            .any(|p| p.labels.get(POD_UID).map(String::as_str) == Some(uid))
    );
    let by_uid = HashMap::from([(POD_UID.to_string(), uid.to_string())]);
    let sandboxes = flow
        .client
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: by_uid.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    let mut sandbox_ids = Vec::new();
    for s in &sandboxes {
        let status = flow.pod_status(&s.id).await.unwrap();
        assert_eq!(status.id, s.id);
        sandbox_ids.push(s.id.clone());
    }
    let containers = flow
        .client
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: by_uid,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    // Every container of the pod is in the unfiltered list too, with the same labels.
    for c in &containers {
        let listed = all_containers.iter().find(|a| a.id == c.id).unwrap();
        assert_eq!(listed.labels, c.labels);
    }
    let mut statuses = Vec::new();
    for c in &containers {
        statuses.push(flow.container_status(&c.id).await.unwrap());
    }
    statuses.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Relist {
        sandbox_ids,
        statuses,
    }
}

/// `EnsureImageExists`: `ImageStatus`, and `PullImage` with the sandbox config when absent;
/// the image id the container is created from.
async fn ensure_image(
    images: &mut Images,
    pod: &KubeletPod,
    sandbox: &PodSandboxConfig,
) -> (String, bool) {
    let spec = ImageSpec {
        image: pod.image.clone(),
        annotations: pod.annotations.clone(),
        ..Default::default()
    };
    let status = images
        .client
        .image_status(ImageStatusRequest {
            image: Some(spec.clone()),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    if let Some(image) = status.image {
        return (image.id, false);
    }
    let pulled = images
        .client
        .pull_image(PullImageRequest {
            image: Some(spec),
            auth: None,
            sandbox_config: Some(sandbox.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    (pulled, true)
}

/// The readiness probe: `ExecSync` with the probe's timeout until it exits 0.
async fn wait_ready(flow: &mut PodFlow, id: &str) -> Vec<u8> {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let r = flow
            .exec_sync(
                id,
                &["wget", "-qO-", "http://127.0.0.1:8080/"],
                PROBE_TIMEOUT,
            )
            .await;
        if let Ok(r) = &r
            && r.exit_code == 0
        {
            return r.stdout.clone();
        }
        assert!(Instant::now() < deadline, "never ready: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the relist until the newest `name` container has exited.
async fn wait_exited(flow: &mut PodFlow, uid: &str, name: &str, id: &str) -> ContainerStatus {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        let seen = relist(flow, uid).await;
        let latest = seen.latest(name).unwrap();
        assert_eq!(
            latest.id, id,
            "the newest {name} is not the one just started"
        );
        if latest.state == ContainerState::ContainerExited as i32 {
            return latest.clone();
        }
        assert!(Instant::now() < deadline, "{name} never exited: {latest:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mount_host_path(status: &ContainerStatus, container_path: &str) -> Option<PathBuf> {
    status
        .mounts
        .iter()
        .find(|m| m.container_path == container_path)
        .map(|m| PathBuf::from(&m.host_path))
}

#[tokio::test]
async fn a_kubelet_runs_a_two_container_pod_through_a_crash_loop_and_deletes_it() {
    // Outlives the daemon's cleanup of the pod (declared first, dropped last).
    let kubelet_root = tempfile::Builder::new()
        .prefix("crius-e2e-kubelet")
        .tempdir()
        .unwrap();
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut images = Images::connect(env.socket()).await.unwrap();
    // The image starts absent, as on a fresh node: the first container pulls it.
    images.remove(&env.image).await.unwrap();

    // Start-up: the runtime's version, readiness and cgroup driver.
    let version = flow
        .client
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.runtime_api_version, "v1");
    assert!(!version.runtime_name.is_empty() && !version.runtime_version.is_empty());
    let status = flow
        .client
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    for wanted in ["RuntimeReady", "NetworkReady"] {
        let c = status.conditions.iter().find(|c| c.r#type == wanted);
        assert!(c.is_some_and(|c| c.status), "{wanted}: {c:?}");
    }
    let driver = flow
        .client
        .runtime_config(RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .linux
        .unwrap()
        .cgroup_driver;
    // The kubelet takes the driver from here (KubeletCgroupDriverFromCRI): the one the test
    // daemons were given; the empty cgroup_parent below relies on the daemon's default parent.
    let expected = if crius_e2e::cgroups::systemd_driver() {
        api::CgroupDriver::Systemd
    } else {
        api::CgroupDriver::Cgroupfs
    };
    assert_eq!(driver, expected as i32);
    let fs = images.fs_info().await.unwrap();
    assert!(!fs.is_empty());

    // SyncPod: the sandbox.
    let _portmap = crius_e2e::pods::network::portmap_in_use().unwrap();
    let host_port = i32::from(free_port().unwrap());
    let pod = KubeletPod::new(&env, kubelet_root.path(), host_port);
    std::fs::create_dir_all(&pod.log_dir).unwrap();
    std::fs::set_permissions(&pod.log_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    pod.make_volume_dirs();
    let sandbox = pod.sandbox_config();
    let pod_id = flow.run_pod(&sandbox).await.unwrap();
    let pod_status = flow.pod_status(&pod_id).await.unwrap();
    assert_eq!(pod_status.state, PodSandboxState::SandboxReady as i32);
    assert_eq!(pod_status.metadata, sandbox.metadata);
    assert_eq!(pod_status.labels, sandbox.labels);
    assert_eq!(pod_status.annotations, sandbox.annotations);
    let ip = pod_status.network.clone().unwrap().ip;
    let ip_addr: std::net::IpAddr = ip.parse().unwrap();
    assert!(env.network.contains(&ip_addr), "{ip} outside the network");
    let etc_hosts = pod.write_etc_hosts(&ip);

    // SyncPod: the containers, in the spec's order.
    let mut ids: HashMap<&str, String> = HashMap::new();
    let mut termination_files: Vec<PathBuf> = Vec::new();
    let mut image_id = String::new();
    for (n, name) in ["web", "crasher"].into_iter().enumerate() {
        let (id, pulled) = ensure_image(&mut images, &pod, &sandbox).await;
        assert_eq!(pulled, n == 0, "pulled only for the first container");
        assert!(id.starts_with("sha256:"), "{id}");
        image_id = id;
        std::fs::create_dir_all(pod.log_dir.join(name)).unwrap();
        let termination = pod.termination_file(name);
        let config = pod.container_config(name, 0, &image_id, &etc_hosts, &termination);
        if name == "crasher" {
            termination_files.push(termination);
        }
        let id = flow
            .create_container(&pod_id, &config, &sandbox)
            .await
            .unwrap();
        flow.start_container(&id).await.unwrap();
        ids.insert(name, id);
    }
    let web = ids["web"].clone();

    // Probes: readiness, then liveness.
    let body = wait_ready(&mut flow, &web).await;
    assert_eq!(String::from_utf8_lossy(&body), "ready\n");
    let live = flow
        .exec_sync(&web, &["cat", "/data/index.html"], PROBE_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(live.exit_code, 0);

    // The crash loop: relist, see it exited, restart with attempt + 1.
    let mut crasher = ids["crasher"].clone();
    let mut exited_ids = Vec::new();
    for attempt in 0..CRASHER_RUNS {
        let exited = wait_exited(&mut flow, &pod.uid, "crasher", &crasher).await;
        check_exited_crasher(&pod, &exited, attempt, &image_id, &termination_files);
        exited_ids.push(crasher.clone());
        // The pod's other container and the sandbox are left alone.
        let seen = relist(&mut flow, &pod.uid).await;
        assert_eq!(seen.sandbox_ids, std::slice::from_ref(&pod_id));
        assert_eq!(
            seen.latest("web").unwrap().state,
            ContainerState::ContainerRunning as i32
        );
        assert_eq!(seen.statuses.len(), 2 + attempt as usize);
        if attempt + 1 == CRASHER_RUNS {
            break;
        }
        let restart_count: u32 = exited.annotations[RESTART_COUNT].parse().unwrap();
        let next = restart_count + 1;
        let (id, pulled) = ensure_image(&mut images, &pod, &sandbox).await;
        assert!(!pulled);
        assert_eq!(id, image_id);
        let termination = pod.termination_file("crasher");
        let config = pod.container_config("crasher", next, &image_id, &etc_hosts, &termination);
        termination_files.push(termination);
        crasher = flow
            .create_container(&pod_id, &config, &sandbox)
            .await
            .unwrap();
        flow.start_container(&crasher).await.unwrap();
    }
    // What a restarted kubelet would derive from the log files: the runs made so far.
    assert_eq!(pod.restart_count_by_log_dir("crasher"), CRASHER_RUNS);
    assert_eq!(pod.restart_count_by_log_dir("web"), 1);

    // The running container, as ContainerStatus reports it.
    let web_status = flow.container_status(&web).await.unwrap();
    check_running_web(&pod, &web_status, &image_id);

    // ... and as the process lives it: identity, no new privileges, no capabilities, the
    // RuntimeDefault seccomp filter, the Burstable OOM score, the limits in its cgroup.
    let wanted = pod.container_resources(pod.spec("web"));
    let proc1 = flow
        .exec_sync(
            &web,
            &[
                "sh",
                "-c",
                "id -u; id -g; cat /proc/1/oom_score_adj; cat /proc/1/status",
            ],
            10 * SECOND,
        )
        .await
        .unwrap();
    let proc1 = String::from_utf8_lossy(&proc1.stdout).into_owned();
    let mut lines = proc1.lines();
    assert_eq!(lines.next(), Some("1000"), "{proc1}");
    assert_eq!(lines.next(), Some("3000"), "{proc1}");
    assert_eq!(
        lines.next(),
        Some(wanted.oom_score_adj.to_string().as_str()),
        "{proc1}"
    );
    let field = |name: &str| {
        proc1
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("NoNewPrivs"), "1", "{proc1}");
    assert_eq!(field("CapEff"), "0000000000000000", "{proc1}");
    assert_eq!(field("Seccomp"), "2", "{proc1}");
    let cgroup = env.container_cgroup(&web);
    let read = |v1: String, v2: String| {
        std::fs::read_to_string(&v1)
            .or_else(|_| std::fs::read_to_string(&v2))
            .unwrap_or_else(|e| panic!("{v1} / {v2}: {e}"))
    };
    let memory = read(
        format!("/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup{cgroup}/memory.max"),
    );
    assert_eq!(memory.trim(), wanted.memory_limit_in_bytes.to_string());
    let quota = read(
        format!("/sys/fs/cgroup/cpu{cgroup}/cpu.cfs_quota_us"),
        format!("/sys/fs/cgroup{cgroup}/cpu.max"),
    );
    assert_eq!(
        quota.split_whitespace().next(),
        Some(wanted.cpu_quota.to_string().as_str()),
        "{quota}"
    );

    // Lists by pod and state.
    let list = |state: Option<ContainerState>| ListContainersRequest {
        filter: Some(ContainerFilter {
            pod_sandbox_id: pod_id.clone(),
            state: state.map(|s| ContainerStateValue { state: s as i32 }),
            ..Default::default()
        }),
    };
    let ids_of = |v: Vec<api::Container>| {
        let mut ids: Vec<String> = v.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    let running = flow
        .client
        .list_containers(list(Some(ContainerState::ContainerRunning)))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(ids_of(running), std::slice::from_ref(&web));
    let exited = flow
        .client
        .list_containers(list(Some(ContainerState::ContainerExited)))
        .await
        .unwrap()
        .into_inner()
        .containers;
    let mut want = exited_ids.clone();
    want.sort();
    assert_eq!(ids_of(exited), want);
    let everything = flow
        .client
        .list_containers(list(None))
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(everything.len(), 1 + CRASHER_RUNS as usize);
    let ready = flow
        .client
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                state: Some(PodSandboxStateValue {
                    state: PodSandboxState::SandboxReady as i32,
                }),
                label_selector: HashMap::from([(POD_UID.to_string(), pod.uid.clone())]),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].id, pod_id);

    // The emptyDir: what crasher wrote on each run, seen by web, by the host, and through the
    // host port.
    let runs: String = (0..CRASHER_RUNS).map(|n| format!("run {n}\n")).collect();
    let seen = flow
        .exec_sync(&web, &["cat", "/data/crasher-runs"], PROBE_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&seen.stdout), runs);
    assert_eq!(
        std::fs::read_to_string(pod.empty_dir().join("crasher-runs")).unwrap(),
        runs
    );
    let url = format!("http://{}:{host_port}/crasher-runs", env.network.gateway());
    let mut body = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
            && let Ok(text) = r.text().await
        {
            body = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body.as_deref(), Some(runs.as_str()), "{url}");
    // The kubelet-managed /etc/hosts and the pod's DNS.
    let hosts = flow
        .exec_sync(
            &web,
            &["cat", "/etc/hosts", "/etc/resolv.conf"],
            10 * SECOND,
        )
        .await
        .unwrap();
    let hosts = String::from_utf8_lossy(&hosts.stdout);
    assert!(hosts.contains(&format!("{ip}\t{}", pod.name)), "{hosts}");
    assert!(hosts.contains("nameserver 127.0.0.1"), "{hosts}");
    assert!(
        hosts.contains(&format!("search {}.svc.cluster.local", pod.namespace)),
        "{hosts}"
    );
    let env_out = flow
        .exec_sync(
            &web,
            &["sh", "-c", "echo $KUBERNETES_SERVICE_HOST $MODE"],
            10 * SECOND,
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&env_out.stdout), "10.96.0.1 web\n");

    // Stats of the running container and of the pod.
    check_stats(&mut flow, &pod_id, &web).await;

    // The PLEG's view once more: the pod's sandbox, web running, every crasher run exited.
    let seen = relist(&mut flow, &pod.uid).await;
    assert_eq!(seen.statuses.len(), 1 + CRASHER_RUNS as usize);
    let attempts: Vec<u32> = seen
        .statuses
        .iter()
        .filter(|s| s.metadata.as_ref().unwrap().name == "crasher")
        .map(|s| s.metadata.as_ref().unwrap().attempt)
        .collect();
    assert_eq!(attempts, (0..CRASHER_RUNS).rev().collect::<Vec<_>>());

    // Pod deletion: kill the running container with the grace period, stop the sandbox.
    flow.stop_container(&web, GRACE_SECS).await.unwrap();
    let stopped = flow.container_status(&web).await.unwrap();
    assert_eq!(stopped.state, ContainerState::ContainerExited as i32);
    assert_eq!(
        (stopped.exit_code, stopped.reason.as_str()),
        (0, "Completed")
    );
    assert!(stopped.finished_at >= stopped.started_at);
    flow.stop_pod(&pod_id).await.unwrap();
    let stopped_pod = flow.pod_status(&pod_id).await.unwrap();
    assert_eq!(stopped_pod.state, PodSandboxState::SandboxNotready as i32);
    // The garbage collector: the dead containers, then the sandbox.
    for c in flow.list_containers().await.unwrap() {
        flow.remove_container(&c.id).await.unwrap();
    }
    flow.remove_pod(&pod_id).await.unwrap();
    assert!(flow.list_pods().await.unwrap().is_empty());
    assert!(flow.list_containers().await.unwrap().is_empty());
    // The logs stay for the kubelet's log manager.
    for n in 0..CRASHER_RUNS {
        assert!(pod.log_dir.join(format!("crasher/{n}.log")).is_file());
    }
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// What the kubelet reads from an exited `crasher`: state, exit code and reason, times, image,
/// log path and log, restart count annotation, termination message (through the mount).
fn check_exited_crasher(
    pod: &KubeletPod,
    s: &ContainerStatus,
    attempt: u32,
    image_id: &str,
    termination_files: &[PathBuf],
) {
    let meta = s.metadata.as_ref().unwrap();
    assert_eq!((meta.name.as_str(), meta.attempt), ("crasher", attempt));
    assert_eq!(s.state, ContainerState::ContainerExited as i32);
    assert_eq!((s.exit_code, s.reason.as_str()), (1, "Error"), "{s:?}");
    assert!(s.created_at > 0 && s.started_at >= s.created_at, "{s:?}");
    assert!(s.finished_at >= s.started_at, "{s:?}");
    let image = s.image.as_ref().unwrap();
    assert_eq!(image.image, pod.image, "the name the user wrote");
    assert_eq!(image.user_specified_image, pod.image);
    assert_eq!(s.image_id, image_id);
    let repository = pod.image.rsplit_once(':').unwrap().0;
    assert!(
        s.image_ref.starts_with(&format!("{repository}@sha256:")),
        "image_ref {} is not a digest",
        s.image_ref
    );
    assert_eq!(s.labels[CONTAINER_NAME], "crasher");
    assert_eq!(s.labels[POD_UID], pod.uid);
    assert_eq!(s.annotations[RESTART_COUNT], attempt.to_string());
    assert_eq!(
        s.annotations[TERMINATION_PATH_KEY],
        TERMINATION_MESSAGE_PATH
    );
    assert_eq!(
        s.annotations[CONTAINER_HASH],
        format!("{:x}", pod.spec("crasher").hash)
    );
    let log = pod.log_dir.join(format!("crasher/{attempt}.log"));
    assert_eq!(Path::new(&s.log_path), log);
    let entries = read_cri_log(&log).unwrap();
    assert_eq!(
        stream_lines(&entries, "stdout"),
        [format!("crasher run {attempt}")]
    );
    assert_eq!(
        stream_lines(&entries, "stderr"),
        [format!("oops {attempt}")]
    );
    // getTerminationMessage: the host side of the mount at terminationMessagePath.
    let host = mount_host_path(s, TERMINATION_MESSAGE_PATH).expect("no termination-log mount");
    assert_eq!(host, termination_files[attempt as usize]);
    assert_eq!(
        std::fs::read_to_string(&host).unwrap(),
        format!("crashed on run {attempt}\n")
    );
    assert_eq!(
        mount_host_path(s, "/data").as_deref(),
        Some(pod.empty_dir().as_path())
    );
}

/// What the kubelet reads from the running `web`: state, image, identity, resources, log.
fn check_running_web(pod: &KubeletPod, s: &ContainerStatus, image_id: &str) {
    let meta = s.metadata.as_ref().unwrap();
    assert_eq!((meta.name.as_str(), meta.attempt), ("web", 0));
    assert_eq!(s.state, ContainerState::ContainerRunning as i32);
    assert!(s.started_at >= s.created_at && s.created_at > 0);
    assert_eq!(s.finished_at, 0);
    assert_eq!(s.image.as_ref().unwrap().image, pod.image);
    assert_eq!(s.image_id, image_id);
    assert!(s.image_ref.contains("@sha256:"), "{}", s.image_ref);
    assert_eq!(s.annotations[RESTART_COUNT], "0");
    let ports: serde_json::Value = serde_json::from_str(&s.annotations[PORTS_KEY]).unwrap();
    assert_eq!(ports[0]["hostPort"], pod.host_port);
    let user = s.user.as_ref().unwrap().linux.as_ref().unwrap();
    assert_eq!((user.uid, user.gid), (RUN_AS_USER, RUN_AS_GROUP));
    for g in [FS_GROUP, SUPPLEMENTAL_GROUP] {
        assert!(user.supplemental_groups.contains(&g), "{user:?}");
    }
    // The resources the kubelet compares with the allocated ones (in-place resize).
    let wanted = pod.container_resources(pod.spec("web"));
    let got = s.resources.as_ref().unwrap().linux.as_ref().unwrap();
    assert_eq!(
        (
            got.cpu_shares,
            got.cpu_quota,
            got.cpu_period,
            got.memory_limit_in_bytes
        ),
        (
            wanted.cpu_shares,
            wanted.cpu_quota,
            wanted.cpu_period,
            wanted.memory_limit_in_bytes
        ),
        "{got:?}"
    );
    let log = pod.log_dir.join("web/0.log");
    assert_eq!(Path::new(&s.log_path), log);
    let entries = read_cri_log(&log).unwrap();
    assert_eq!(stream_lines(&entries, "stdout"), ["serving"]);
}

async fn check_stats(flow: &mut PodFlow, pod_id: &str, web: &str) {
    let stats = flow
        .client
        .container_stats(ContainerStatsRequest {
            container_id: web.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(stats.attributes.as_ref().unwrap().id, web);
    let cpu = stats.cpu.unwrap().usage_core_nano_seconds.unwrap().value;
    assert!(cpu > 0, "no CPU time");
    let memory = stats.memory.unwrap().working_set_bytes.unwrap().value;
    assert!(memory > 0, "no working set");
    let listed = flow
        .client
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(api::ContainerStatsFilter {
                pod_sandbox_id: pod_id.to_string(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert!(
        listed
            .iter()
            .any(|s| s.attributes.as_ref().unwrap().id == web)
    );
    let pod_stats = flow
        .client
        .pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: pod_id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let linux = pod_stats.linux.unwrap();
    // The web container's shell and httpd at least.
    let processes = linux.process.unwrap().process_count.unwrap().value;
    assert!(processes >= 2, "{processes} processes");
    assert!(linux.cpu.unwrap().usage_core_nano_seconds.unwrap().value >= cpu);
    assert!(linux.memory.unwrap().working_set_bytes.unwrap().value > 0);
    assert!(
        linux
            .containers
            .iter()
            .any(|c| c.attributes.as_ref().unwrap().id == web)
    );
}
