//! A pod whose containers share no PID namespace (pid mode CONTAINER, what the kubelet asks
//! unless `shareProcessNamespace`) runs without a pause process: its pinned namespaces are the
//! pod. Everything else stays as with one: READY until stopped, sysctls and a loopback that is
//! up, network counters in its stats, survival of a daemon `kill -9`, nothing left at removal.
//! A pod that shares its PID namespace keeps its pause (pods.rs).

use std::time::Duration;

use crius_e2e::cri::api::{
    ContainerState, ContainerStatsRequest, LinuxContainerConfig, LinuxContainerSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxState, PodSandboxStatsRequest,
};
use crius_e2e::pods::{PodEnv, PodFlow, pod_config, shell_container, with_namespaces};

const SECOND: Duration = Duration::from_secs(1);

fn pauseless_pod(env: &PodEnv, name: &str) -> PodSandboxConfig {
    let mut pod = with_namespaces(
        pod_config(name, &env.log_dir(name)),
        NamespaceOption {
            pid: NamespaceMode::Container as i32,
            ..Default::default()
        },
    );
    let linux = pod.linux.get_or_insert_with(Default::default);
    linux.sysctls = [
        ("net.ipv4.ip_unprivileged_port_start", "81"),
        ("kernel.shm_rmid_forced", "1"),
        ("net.ipv4.ping_group_range", "0 2147483647"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    pod
}

/// Processes whose command line names `id` (a pause, a monitor of it).
fn processes_naming(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(id) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

async fn exec(flow: &mut PodFlow, id: &str, cmd: &[&str]) -> String {
    let r = flow.exec_sync(id, cmd, 10 * SECOND).await.unwrap();
    assert_eq!(
        r.exit_code,
        0,
        "{cmd:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).trim().to_owned()
}

async fn pod_tx_bytes(flow: &mut PodFlow, pod_id: &str) -> u64 {
    let stats = flow
        .client
        .pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: pod_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let eth0 = stats
        .linux
        .unwrap()
        .network
        .unwrap()
        .default_interface
        .unwrap();
    eth0.tx_bytes.unwrap().value
}

#[tokio::test]
async fn a_pod_sharing_no_pid_namespace_runs_without_a_pause_and_survives_a_kill9() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pauseless_pod(&env, "lean");
    let pod_id = flow.run_pod(&pod).await.unwrap();
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    assert_eq!(flow.pod_info(&pod_id).await.unwrap()["pid"], 0);
    let named = processes_naming(&pod_id);
    assert!(named.is_empty(), "no pause, no monitor of one: {named:?}");

    let mut web = shell_container("web", &env.image, "trap 'exit 0' TERM; sleep 3600 & wait");
    // Its own PID namespace, as the kubelet asks in such a pod.
    web.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Container as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = flow.create_and_start(&pod_id, &web, &pod).await.unwrap();
    // The pod's sysctls, written in its namespaces without a pause to carry them.
    let port_start = exec(
        &mut flow,
        &id,
        &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
    )
    .await;
    assert_eq!(port_start, "81");
    let rmid = exec(&mut flow, &id, &["cat", "/proc/sys/kernel/shm_rmid_forced"]).await;
    assert_eq!(rmid, "1");
    // The loopback is up (IFF_UP | IFF_LOOPBACK), and the container is pid 1 of its own PID
    // namespace.
    let lo = exec(&mut flow, &id, &["cat", "/sys/class/net/lo/flags"]).await;
    assert_eq!(lo, "0x9");
    let ping = exec(
        &mut flow,
        &id,
        &["cat", "/proc/sys/net/ipv4/ping_group_range"],
    )
    .await;
    assert_eq!(
        ping.split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
    let init = exec(&mut flow, &id, &["cat", "/proc/1/cmdline"]).await;
    assert!(init.starts_with("/bin/sh"), "{init:?}");
    // Network counters from the pod's namespace.
    let gateway = env.network.gateway().to_string();
    // Refused (nothing listens there), but packets go both ways.
    let knock = format!("wget -T 2 -q -O- http://{gateway}:1/ || true");
    exec(&mut flow, &id, &["sh", "-c", &knock]).await;
    let tx = pod_tx_bytes(&mut flow, &pod_id).await;
    assert!(tx > 0);

    env.crius.kill9().await.unwrap();
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    assert_eq!(
        flow.container_status(&id).await.unwrap().state,
        ContainerState::ContainerRunning as i32
    );
    assert_eq!(exec(&mut flow, &id, &["echo", "still"]).await, "still");

    // With no process left in the pod, its counters are still read (from the pinned namespace).
    flow.stop_container(&id, 5).await.unwrap();
    assert!(pod_tx_bytes(&mut flow, &pod_id).await >= tx);
    let stats = flow
        .client
        .container_stats(ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await;
    assert!(stats.is_ok(), "{stats:?}");

    flow.stop_pod(&pod_id).await.unwrap();
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap().state,
        PodSandboxState::SandboxNotready as i32
    );
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn a_pod_with_an_unknown_sysctl_fails_and_leaves_nothing() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let mut pod = pauseless_pod(&env, "bad-sysctl");
    pod.linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("net.ipv4.no_such_knob".to_owned(), "1".to_owned());
    let err = flow.run_pod(&pod).await.unwrap_err();
    assert!(err.message().contains("no_such_knob"), "{err:?}");
    assert!(flow.list_pods().await.unwrap().is_empty());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
