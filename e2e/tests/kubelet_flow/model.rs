//! The kubelet's side of `kubelet_flow.rs`: the pod and container specs, the CRI requests a
//! v1.36/1.37 kubelet builds from them (labels, annotations, resources, security context), and
//! its relist and probe loops.

use super::*;
// Well-known label keys (`pkg/kubelet/types/labels.go`) and annotation keys (`labels.go`).
pub(super) const POD_NAME: &str = "io.kubernetes.pod.name";
pub(super) const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub(super) const POD_UID: &str = "io.kubernetes.pod.uid";
pub(super) const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub(super) const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub(super) const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub(super) const TERMINATION_PATH_KEY: &str = "io.kubernetes.container.terminationMessagePath";
pub(super) const TERMINATION_POLICY_KEY: &str = "io.kubernetes.container.terminationMessagePolicy";
pub(super) const GRACE_KEY: &str = "io.kubernetes.pod.terminationGracePeriod";
pub(super) const PORTS_KEY: &str = "io.kubernetes.container.ports";

/// One container of the pod spec, with what the kubelet derives its CRI config from.
pub(super) struct Spec {
    pub(super) name: &'static str,
    pub(super) command: Vec<String>,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(&'static str, &'static str)>,
    pub(super) cpu_request_milli: i64,
    pub(super) cpu_limit_milli: i64,
    pub(super) memory_request: i64,
    pub(super) memory_limit: i64,
    /// `containerPort`s with a `hostPort`: `(containerPort, hostPort)`.
    pub(super) ports: Vec<(i32, i32)>,
    pub(super) locked_down: bool,
    /// A stand-in for `kubecontainer.HashContainer` (the kubelet hashes the spec; any stable
    /// value shaped like it does here).
    pub(super) hash: u64,
}

/// The pod as the kubelet sees it, and the directories it made for it.
pub(super) struct KubeletPod {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) uid: String,
    pub(super) image: String,
    /// `/var/log/pods/<ns>_<name>_<uid>`.
    pub(super) log_dir: PathBuf,
    /// `/var/lib/kubelet/pods/<uid>`.
    pub(super) pod_dir: PathBuf,
    pub(super) host_port: i32,
    pub(super) annotations: HashMap<String, String>,
    pub(super) containers: Vec<Spec>,
}

impl KubeletPod {
    /// The pod, with the kubelet's root directory (`/var/lib/kubelet`) at `root`.
    pub(super) fn new(env: &PodEnv, root: &Path, host_port: i32) -> KubeletPod {
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

    pub(super) fn spec(&self, name: &str) -> &Spec {
        self.containers.iter().find(|c| c.name == name).unwrap()
    }

    /// The `emptyDir` volume `data`, as the empty-dir plugin sets it up (mode 0777, then the
    /// fsGroup ownership: group `fsGroup`, setgid).
    pub(super) fn empty_dir(&self) -> PathBuf {
        self.pod_dir
            .join("volumes")
            .join("kubernetes.io~empty-dir")
            .join("data")
    }

    pub(super) fn make_volume_dirs(&self) {
        let dir = self.empty_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, None, Some(FS_GROUP as u32)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2777)).unwrap();
    }

    /// `etc-hosts` as the kubelet writes it once the sandbox has an IP.
    pub(super) fn write_etc_hosts(&self, ip: &str) -> PathBuf {
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
    pub(super) fn termination_file(&self, container: &str) -> PathBuf {
        let dir = self.pod_dir.join("containers").join(container);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:08x}", rand::random::<u32>()));
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        path
    }

    pub(super) fn pod_labels(&self) -> HashMap<String, String> {
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
    pub(super) fn namespace_options(&self) -> NamespaceOption {
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
    pub(super) fn sandbox_resources(&self) -> LinuxContainerResources {
        let sum = |f: fn(&Spec) -> i64| self.containers.iter().map(f).sum::<i64>();
        calculate_linux_resources(
            sum(|c| c.cpu_request_milli),
            sum(|c| c.cpu_limit_milli),
            sum(|c| c.memory_limit),
        )
    }

    /// `generatePodSandboxConfig`.
    pub(super) fn sandbox_config(&self) -> PodSandboxConfig {
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
    pub(super) fn container_config(
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
    pub(super) fn container_resources(&self, spec: &Spec) -> LinuxContainerResources {
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
    pub(super) fn container_security_context(&self, spec: &Spec) -> LinuxContainerSecurityContext {
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
    pub(super) fn restart_count_by_log_dir(&self, container: &str) -> u32 {
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
pub(super) fn uuid_v4() -> String {
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
pub(super) fn milli_cpu_to_shares(milli: i64) -> i64 {
    (milli * 1024 / 1000).max(2)
}

/// `milliCPUToQuota`.
pub(super) fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli == 0 {
        return 0;
    }
    (milli * period / 1000).max(1000)
}

pub(super) fn cgroup2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `calculateLinuxResources` with the CFS quota on, the default 100 ms period, and (on a
/// unified hierarchy) `singleProcessOOMKill` false: `memory.oom.group`.
pub(super) fn calculate_linux_resources(
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
pub(super) fn burstable_oom_score_adj(memory_request: i64) -> i64 {
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
pub(super) fn hugepage_sizes() -> Vec<String> {
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
pub(super) fn swap_controller_available() -> bool {
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
pub(super) struct Relist {
    pub(super) sandbox_ids: Vec<String>,
    /// The pod's containers, newest first (`ContainerStatus`, not verbose).
    pub(super) statuses: Vec<ContainerStatus>,
}

impl Relist {
    /// `FindContainerStatusByName`: the newest container of that name.
    pub(super) fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        self.statuses
            .iter()
            .find(|s| s.metadata.as_ref().is_some_and(|m| m.name == name))
    }
}

/// `GenericPLEG.relist` (everything) then `GetPodStatus` for the pod `uid`.
pub(super) async fn relist(flow: &mut PodFlow, uid: &str) -> Relist {
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
pub(super) async fn ensure_image(
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
pub(super) async fn wait_ready(flow: &mut PodFlow, id: &str) -> Vec<u8> {
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
pub(super) async fn wait_exited(
    flow: &mut PodFlow,
    uid: &str,
    name: &str,
    id: &str,
) -> ContainerStatus {
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

pub(super) fn mount_host_path(status: &ContainerStatus, container_path: &str) -> Option<PathBuf> {
    status
        .mounts
        .iter()
        .find(|m| m.container_path == container_path)
        .map(|m| PathBuf::from(&m.host_path))
}
