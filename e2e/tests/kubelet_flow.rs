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

#[path = "kubelet_flow/model.rs"]
mod model;
use model::*;

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
