//! The systemd cgroup driver the way a kubelet with `cgroupDriver: systemd` uses it: a Burstable
//! pod under `kubepods-burstable-pod<uid>.slice`, its containers in `crius-<id>.scope` units with
//! their limits, stats read from the scopes, an OOM kill reported, and no unit left after
//! removal; and a pod parent given as the slice's expansion, the form a real kubelet sends. It
//! needs daemons on the systemd driver (the VM node test's systemd pass,
//! `CRIUS_E2E_CGROUP_MANAGER=systemd`); elsewhere it says so and returns.

use std::process::Command;
use std::time::Duration;

use tonic::Code;

use crius_e2e::cri::api::{LinuxContainerConfig, LinuxContainerResources};
use crius_e2e::pods::{PodEnv, pod_config, shell_container, unique_uid};

const SECOND: Duration = Duration::from_secs(1);

fn systemctl(args: &[&str]) -> String {
    let out = Command::new("systemctl").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Stops the kubelet-style slices on the way out, as the kubelet does when the pod is gone
/// (also when the test fails): nothing else in the VM uses `kubepods.slice`.
struct KubepodsSlices;

impl Drop for KubepodsSlices {
    fn drop(&mut self) {
        let _ = Command::new("systemctl")
            .args(["stop", "kubepods.slice"])
            .status();
    }
}

/// Stops a test's own top slice on the way out (and with it every slice and scope in it).
struct StopSlice(String);

impl Drop for StopSlice {
    fn drop(&mut self) {
        let _ = Command::new("systemctl").args(["stop", &self.0]).status();
    }
}

fn cgroup_file(dir: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup{dir}/{file}"))
        .unwrap_or_else(|e| panic!("{dir}/{file}: {e}"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_kubelet_pod_slice_holds_scopes_with_limits_stats_and_oom_kills() {
    if !crius_e2e::cgroups::systemd_driver() {
        eprintln!("skipping: the daemons under test do not use the systemd cgroup driver");
        return;
    }
    let _slices = KubepodsSlices;
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let uid = unique_uid();
    // The kubelet's pod slice name: '-' in the uid becomes '_' (a '-' is a slice level).
    let slice = format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_"));
    let mut pod = pod_config("sd", &env.log_dir("sd"));
    pod.metadata.as_mut().unwrap().uid = uid.clone();
    pod.linux.get_or_insert_default().cgroup_parent = slice.clone();
    let pod_id = flow.run_pod(&pod).await.unwrap();

    let mut busy = shell_container("busy", &env.image, "while :; do :; done");
    busy.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            unified: [("pids.max".to_string(), "64".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = flow.create_and_start(&pod_id, &busy, &pod).await.unwrap();

    // systemd's view: the scope is active, in the pod's slice, which sits in kubepods-burstable.
    let scope = format!("crius-{id}.scope");
    assert_eq!(systemctl(&["is-active", &scope]), "active");
    assert_eq!(
        systemctl(&["show", "-p", "Slice", "--value", &scope]),
        slice
    );
    assert_eq!(systemctl(&["is-active", &slice]), "active");
    assert_eq!(
        systemctl(&["show", "-p", "Slice", "--value", &slice]),
        "kubepods-burstable.slice"
    );
    let status = systemctl(&["status", "--no-pager", &scope]);
    assert!(status.contains(&slice), "{status}");

    // The kernel's view: the limits in the scope's v2 files, the process in the scope.
    let dir = format!("/kubepods.slice/kubepods-burstable.slice/{slice}/crius-{id}.scope");
    assert_eq!(cgroup_file(&dir, "memory.max"), (64u64 << 20).to_string());
    assert_eq!(cgroup_file(&dir, "cpu.max"), "50000 100000");
    assert_eq!(cgroup_file(&dir, "pids.max"), "64");
    let procs = cgroup_file(&dir, "cgroup.procs");
    assert!(!procs.is_empty(), "no process in {dir}");

    // Stats come from the scope and the pod's parts.
    tokio::time::sleep(SECOND + SECOND / 5).await;
    let stats = || crius_e2e::cri::api::ContainerStatsRequest {
        container_id: id.clone(),
    };
    flow.client.container_stats(stats()).await.unwrap();
    tokio::time::sleep(SECOND + SECOND / 5).await;
    let s = flow
        .client
        .container_stats(stats())
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let cpu = s.cpu.unwrap();
    assert!(cpu.usage_core_nano_seconds.unwrap().value > 0);
    assert!(cpu.usage_nano_cores.unwrap().value > 0);
    assert!(s.memory.unwrap().working_set_bytes.unwrap().value > 0);
    let pod_stats = flow
        .client
        .pod_sandbox_stats(crius_e2e::cri::api::PodSandboxStatsRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap()
        .linux
        .unwrap();
    assert!(
        pod_stats
            .cpu
            .unwrap()
            .usage_core_nano_seconds
            .unwrap()
            .value
            > 0
    );
    assert!(pod_stats.memory.unwrap().working_set_bytes.unwrap().value > 0);
    assert!(pod_stats.process.unwrap().process_count.unwrap().value >= 2);

    // An OOM kill in a scope is reported as such.
    let mut hog = shell_container("hog", &env.image, "tail /dev/zero");
    hog.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            memory_swap_limit_in_bytes: 32 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    let hog = flow.create_and_start(&pod_id, &hog, &pod).await.unwrap();
    let exited = flow
        .wait_container_exited(&hog, 120 * SECOND)
        .await
        .unwrap();
    assert_eq!(
        (exited.exit_code, exited.reason.as_str()),
        (137, "OOMKilled")
    );

    // Removal leaves no unit and no cgroup behind.
    flow.remove_pod(&pod_id).await.unwrap();
    for unit in [
        &scope,
        &format!("crius-{hog}.scope"),
        &format!("crius-{pod_id}.scope"),
    ] {
        let listed = systemctl(&["list-units", "--all", "--plain", "--no-legend", unit]);
        assert!(listed.is_empty(), "{unit} left: {listed}");
    }
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup{dir}")).exists());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// A kubelet with `cgroupDriver: systemd` sends a pod's parent as its cgroup manager's name for
/// it: the slice's expansion, `/<root>.slice/<root>-kubepods.slice/…/<…>-pod<uid>.slice`, not
/// the bare slice name. The pod's containers land as scopes in that slice, and a path that is
/// not the last slice's own expansion is refused. (Its own top slice, under which the kubelet's
/// `cgroupRoot` puts kubepods, so that it does not share `kubepods.slice` with the test above.)
#[tokio::test]
async fn a_kubelets_slice_path_as_pod_parent_puts_the_containers_in_that_slice() {
    if !crius_e2e::cgroups::systemd_driver() {
        eprintln!("skipping: the daemons under test do not use the systemd cgroup driver");
        return;
    }
    let uid = unique_uid();
    let top = format!("crius_kpath_{}", uid.replace('-', "_"));
    let _slices = StopSlice(format!("{top}.slice"));
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let slice = format!(
        "{top}-kubepods-besteffort-pod{}.slice",
        uid.replace('-', "_")
    );
    let parent =
        format!("/{top}.slice/{top}-kubepods.slice/{top}-kubepods-besteffort.slice/{slice}");

    let mut refused = pod_config("kpath-bad", &env.log_dir("kpath-bad"));
    refused.metadata.as_mut().unwrap().uid = unique_uid();
    refused.linux.get_or_insert_default().cgroup_parent = format!("/{top}.slice/{slice}");
    let err = flow.run_pod(&refused).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let mut pod = pod_config("kpath", &env.log_dir("kpath"));
    pod.metadata.as_mut().unwrap().uid = uid.clone();
    pod.linux.get_or_insert_default().cgroup_parent = parent.clone();
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let sleeper = shell_container("sleeper", &env.image, "sleep 600");
    let id = flow
        .create_and_start(&pod_id, &sleeper, &pod)
        .await
        .unwrap();

    let scope = format!("crius-{id}.scope");
    assert_eq!(systemctl(&["is-active", &scope]), "active");
    assert_eq!(
        systemctl(&["show", "-p", "Slice", "--value", &scope]),
        slice
    );
    let procs = cgroup_file(&format!("{parent}/{scope}"), "cgroup.procs");
    assert!(!procs.is_empty(), "no process in {parent}/{scope}");

    flow.remove_pod(&pod_id).await.unwrap();
    let listed = systemctl(&["list-units", "--all", "--plain", "--no-legend", &scope]);
    assert!(listed.is_empty(), "{scope} left: {listed}");
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
