//! The kubelet's flow against the real daemon: pods with real CNI networking, containers from
//! the local registry's busybox image, logs, ExecSync, exit codes, shared namespaces, host
//! network and host ports — and afterwards nothing left on the host.

use std::time::Duration;

use crius_e2e::cri::api::{
    ContainerState, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxState, PortMapping,
};
use crius_e2e::pods::{
    PodEnv, pod_config, read_cri_log_tuples, shell_container, sleep_container, with_namespaces,
};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);

/// A script that prints, then waits for SIGTERM and exits 0 on it.
const SERVE: &str = "echo hello; echo oops >&2; trap 'exit 0' TERM; sleep 3600 & wait";

#[tokio::test]
async fn kubelet_flow_runs_logs_execs_stops_and_removes() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("web", &env.log_dir("web"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    assert_eq!(pod_id.len(), 64);

    let status = flow.pod_status(&pod_id).await.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip: std::net::IpAddr = status.network.unwrap().ip.parse().unwrap();
    assert!(
        env.network.contains(&ip),
        "pod IP {ip} outside {}",
        env.network.subnet()
    );

    let c = shell_container("app", &env.image, SERVE);
    let id = flow.create_container(&pod_id, &c, &pod).await.unwrap();
    assert_eq!(
        flow.container_status(&id).await.unwrap().state,
        ContainerState::ContainerCreated as i32
    );
    flow.start_container(&id).await.unwrap();
    let running = flow.container_status(&id).await.unwrap();
    assert_eq!(running.state, ContainerState::ContainerRunning as i32);
    // Its monitor left the daemon's cgroup (a service manager's restart must spare it); it
    // moves itself once it has answered the create, so give it a moment.
    let info = flow.container_info(&id).await.unwrap();
    let monitor_pid = info["monitorPid"].as_i64().unwrap();
    let wanted = crius_e2e::pods::env::monitor_cgroup(&env.cgroup_parent);
    let mut cgroups = String::new();
    for _ in 0..100 {
        cgroups = std::fs::read_to_string(format!("/proc/{monitor_pid}/cgroup")).unwrap();
        if cgroups.contains(&wanted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(cgroups.contains(&wanted), "{cgroups}");
    assert!(running.started_at >= running.created_at && running.created_at > 0);
    assert_eq!(running.image.unwrap().image, env.image);
    // The identity the process was given is what `id` sees (SupplementalGroupsPolicy).
    let user = running.user.unwrap().linux.unwrap();
    let ids = flow
        .exec_sync(&id, &["sh", "-c", "id -u; id -g; id -G"], 10 * SECOND)
        .await
        .unwrap();
    let groups = user.supplemental_groups.iter().map(|g| g.to_string());
    let expected = format!(
        "{}\n{}\n{}\n",
        user.uid,
        user.gid,
        std::iter::once(user.gid.to_string())
            .chain(groups.filter(|g| *g != user.gid.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(String::from_utf8_lossy(&ids.stdout), expected);

    // The pod's files and namespaces, seen from inside.
    let resolv = flow
        .exec_sync(&id, &["cat", "/etc/resolv.conf"], 10 * SECOND)
        .await
        .unwrap();
    let resolv = String::from_utf8_lossy(&resolv.stdout);
    assert!(resolv.contains("nameserver 127.0.0.1"), "{resolv}");
    assert!(resolv.contains("search crius.test"), "{resolv}");
    assert!(resolv.contains("options ndots:2"), "{resolv}");
    let hostname = flow
        .exec_sync(&id, &["hostname"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&hostname.stdout).trim(), "web");
    let addr = flow
        .exec_sync(&id, &["ip", "-4", "addr", "show", "eth0"], 10 * SECOND)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&ip.to_string()));
    let shm = flow
        .exec_sync(
            &id,
            &["sh", "-c", "grep ' /dev/shm ' /proc/mounts"],
            10 * SECOND,
        )
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&shm.stdout).contains("tmpfs"));

    // Exit codes and both output streams come back.
    let r = flow
        .exec_sync(
            &id,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            10 * SECOND,
        )
        .await
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_slice(), r.stderr.as_slice()),
        (3, &b"out\n"[..], &b"err\n"[..])
    );
    let timed_out = flow
        .exec_sync(&id, &["sleep", "30"], SECOND)
        .await
        .unwrap_err();
    assert_eq!(timed_out.code(), Code::DeadlineExceeded, "{timed_out:?}");

    // The log, in the CRI format.
    let log = std::path::Path::new(&running.log_path).to_path_buf();
    assert_eq!(log, env.log_dir("web").join("app.log"));
    let entries = read_cri_log_tuples(&log).unwrap();
    assert!(
        entries.contains(&("stdout".into(), "F".into(), "hello".into())),
        "{entries:?}"
    );
    assert!(
        entries.contains(&("stderr".into(), "F".into(), "oops".into())),
        "{entries:?}"
    );

    // Graceful stop: the trap exits 0.
    flow.stop_container(&id, 10).await.unwrap();
    let exited = flow.container_status(&id).await.unwrap();
    assert_eq!(exited.state, ContainerState::ContainerExited as i32);
    assert_eq!((exited.exit_code, exited.reason.as_str()), (0, "Completed"));
    assert!(exited.finished_at >= exited.started_at);
    flow.stop_container(&id, 10).await.unwrap();

    flow.remove_container(&id).await.unwrap();
    flow.remove_container(&id).await.unwrap();
    assert_eq!(
        flow.container_status(&id).await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(log.exists(), "RemoveContainer must keep the log");

    flow.stop_pod(&pod_id).await.unwrap();
    flow.stop_pod(&pod_id).await.unwrap();
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap().state,
        PodSandboxState::SandboxNotready as i32
    );
    flow.remove_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(flow.list_pods().await.unwrap().is_empty());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn exit_codes_and_reasons_include_oom_kills() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("exits", &env.log_dir("exits"));
    let pod_id = flow.run_pod(&pod).await.unwrap();

    let ok = flow
        .create_and_start(&pod_id, &shell_container("ok", &env.image, "true"), &pod)
        .await
        .unwrap();
    let fail = flow
        .create_and_start(
            &pod_id,
            &shell_container("fail", &env.image, "exit 7"),
            &pod,
        )
        .await
        .unwrap();
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

    let s = flow.wait_container_exited(&ok, 20 * SECOND).await.unwrap();
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    let s = flow
        .wait_container_exited(&fail, 20 * SECOND)
        .await
        .unwrap();
    assert_eq!((s.exit_code, s.reason.as_str()), (7, "Error"));
    let s = flow.wait_container_exited(&hog, 60 * SECOND).await.unwrap();
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "OOMKilled"));

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// A command that exits at once is reaped while `StartContainer` is still answering; its
/// `finished_at` must still not come before its `started_at` (kubelet shows both, and a
/// negative run time confuses everything that subtracts them).
#[tokio::test]
async fn a_container_that_exits_at_once_did_not_finish_before_it_started() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("quick", &env.log_dir("quick"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let quick = crius_e2e::pods::container_config("quick", &env.image, vec!["true".into()]);
    for attempt in 0..20 {
        let mut c = quick.clone();
        c.metadata.as_mut().unwrap().attempt = attempt;
        c.log_path = format!("quick/{attempt}.log");
        let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
        let s = flow.wait_container_exited(&id, 20 * SECOND).await.unwrap();
        assert_eq!(s.exit_code, 0);
        assert!(
            s.created_at <= s.started_at && s.started_at <= s.finished_at,
            "attempt {attempt}: created {} started {} finished {}",
            s.created_at,
            s.started_at,
            s.finished_at
        );
    }
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn containers_of_a_pod_share_localhost_and_the_pod_pid_namespace() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = with_namespaces(
        pod_config("shared", &env.log_dir("shared")),
        NamespaceOption {
            pid: NamespaceMode::Pod as i32,
            ..Default::default()
        },
    );
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let server = shell_container(
        "server",
        &env.image,
        "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let mut server = server;
    server.linux = Some(pod_pid());
    let mut client = sleep_container("client", &env.image, 3600);
    client.linux = Some(pod_pid());
    let _server = flow.create_and_start(&pod_id, &server, &pod).await.unwrap();
    let client = flow.create_and_start(&pod_id, &client, &pod).await.unwrap();

    let got = retry_exec(
        &mut flow,
        &client,
        &["wget", "-qO-", "http://127.0.0.1:8080/"],
    )
    .await;
    assert_eq!(got.trim(), "hello-from-server");
    // pid 1 of the pod is the pause process, and the other container's processes are visible.
    let init = flow
        .exec_sync(&client, &["cat", "/proc/1/cmdline"], 10 * SECOND)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&init.stdout).contains("pause"),
        "{:?}",
        init
    );
    let ps = flow.exec_sync(&client, &["ps"], 10 * SECOND).await.unwrap();
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains("httpd"),
        "{}",
        String::from_utf8_lossy(&ps.stdout)
    );

    flow.stop_pod(&pod_id).await.unwrap();
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

fn pod_pid() -> LinuxContainerConfig {
    LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(NamespaceOption {
                pid: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs `cmd` until it succeeds (a server in another container may still be starting).
async fn retry_exec(flow: &mut crius_e2e::pods::PodFlow, id: &str, cmd: &[&str]) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        let r = flow.exec_sync(id, cmd, 10 * SECOND).await.unwrap();
        if r.exit_code == 0 {
            return String::from_utf8_lossy(&r.stdout).into_owned();
        }
        last = String::from_utf8_lossy(&r.stderr).into_owned();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{cmd:?} kept failing: {last}");
}

#[tokio::test]
async fn host_network_pods_see_the_host_network_and_host_ports_reach_pods() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();

    // Host network: the host's network namespace and hostname, no pod IP.
    let host = with_namespaces(
        pod_config("hostnet", &env.log_dir("hostnet")),
        NamespaceOption {
            network: NamespaceMode::Node as i32,
            ..Default::default()
        },
    );
    let host_id = flow.run_pod(&host).await.unwrap();
    let c = flow
        .create_and_start(&host_id, &sleep_container("c", &env.image, 3600), &host)
        .await
        .unwrap();
    let ns = flow
        .exec_sync(&c, &["readlink", "/proc/self/ns/net"], 10 * SECOND)
        .await
        .unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ns.stdout).trim(),
        host_ns.to_string_lossy()
    );
    let name = flow
        .exec_sync(&c, &["hostname"], 10 * SECOND)
        .await
        .unwrap();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&name.stdout).trim(),
        host_name.trim()
    );
    assert_eq!(
        flow.pod_status(&host_id).await.unwrap().network.unwrap().ip,
        ""
    );

    // A host port: the portmap plugin forwards it to the pod.
    let _portmap = crius_e2e::pods::network::portmap_in_use().unwrap();
    let port = 30000 + (std::process::id() % 20000) as i32;
    let mut web = pod_config("ports", &env.log_dir("ports"));
    web.port_mappings = vec![PortMapping {
        protocol: 0,
        container_port: 8080,
        host_port: port,
        host_ip: String::new(),
    }];
    let web_id = flow.run_pod(&web).await.unwrap();
    let server = shell_container(
        "server",
        &env.image,
        "mkdir -p /www && echo through-the-host-port > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    flow.create_and_start(&web_id, &server, &web).await.unwrap();
    let url = format!("http://{}:{port}/", env.network.gateway());
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await
            && let Ok(text) = r.text().await
        {
            body = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body.trim(), "through-the-host-port", "{url}");

    flow.remove_pod(&web_id).await.unwrap();
    flow.remove_pod(&host_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn a_runc_handler_runs_pods_like_the_builtin_runtime() {
    let env =
        PodEnv::start_with(|b| b.config_value("runtime.runtimes.runc.path", "/usr/sbin/runc"))
            .await
            .unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("viarunc", &env.log_dir("viarunc"));
    let pod_id = flow
        .client
        .run_pod_sandbox(crius_e2e::cri::api::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "runc".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let status = flow.pod_status(&pod_id).await.unwrap();
    assert_eq!(status.runtime_handler, "runc");
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let id = flow
        .create_and_start(&pod_id, &shell_container("app", &env.image, SERVE), &pod)
        .await
        .unwrap();
    let r = flow
        .exec_sync(&id, &["hostname"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "viarunc");
    // runc's failure reaches the caller whole, not only its first (warning) line.
    let host_file = tempfile::NamedTempFile::new().unwrap();
    let mut broken = sleep_container("broken", &env.image, 3600);
    broken.mounts.push(crius_e2e::cri::api::Mount {
        container_path: "/etc".into(),
        host_path: host_file.path().display().to_string(),
        ..Default::default()
    });
    // The runtime's `create` runs when the container starts (as under containerd).
    let broken_id = flow.create_container(&pod_id, &broken, &pod).await.unwrap();
    let err = flow.start_container(&broken_id).await.unwrap_err();
    let message = err.message();
    let failure = message.find("not a directory").expect(message);
    // runc's warnings come after its failure, on the same line.
    assert!(
        message.find("warning:").is_none_or(|w| w > failure),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    assert!(
        err.message().len() <= 8 * 1024,
        "{} bytes",
        err.message().len()
    );
    flow.stop_container(&id, 10).await.unwrap();
    let s = flow.container_status(&id).await.unwrap();
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn a_configured_pause_image_is_pulled_pinned_and_run() {
    // Registry first: the daemon's configuration names the pause image in it.
    let registry = crius_e2e::TestRegistry::start(crius_e2e::RegistryMode::Plain)
        .await
        .unwrap();
    let mut spec = crius_e2e::images::ConfigSpec::new("pause");
    spec.entrypoint = vec![
        "/bin/sh".into(),
        "-c".into(),
        "trap 'exit 0' TERM; while :; do sleep 1; done".into(),
    ];
    spec.cmd.clear();
    let pause = crius_e2e::images::push_single_with(&registry, "e2e/pause", "v1", spec)
        .await
        .unwrap();
    let pause_ref = pause.reference.clone();
    let env = PodEnv::start_with(|b| {
        b.insecure(&registry.host())
            .config_value("runtime.pause_image", pause_ref.as_str())
    })
    .await
    .unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("imagepause", &env.log_dir("imagepause"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    assert_eq!(
        flow.pod_status(&pod_id).await.unwrap().state,
        PodSandboxState::SandboxReady as i32
    );
    let c = flow
        .create_and_start(&pod_id, &sleep_container("c", &env.image, 3600), &pod)
        .await
        .unwrap();
    let r = flow
        .exec_sync(&c, &["hostname"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "imagepause");

    let images = env.crius.images().await.unwrap().list(None).await.unwrap();
    let pinned: Vec<_> = images.iter().filter(|i| i.pinned).collect();
    assert_eq!(pinned.len(), 1, "{images:?}");
    assert!(
        pinned[0]
            .repo_tags
            .iter()
            .any(|t| t.ends_with("e2e/pause:v1"))
    );

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn log_reopen_follows_rotation_and_resources_update_the_live_cgroup() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("rotate", &env.log_dir("rotate"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let ticker = shell_container(
        "ticker",
        &env.image,
        "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
    );
    let id = flow.create_and_start(&pod_id, &ticker, &pod).await.unwrap();
    let log = env.log_dir("rotate").join("ticker.log");
    tokio::time::sleep(SECOND / 2).await;

    // The kubelet's rotation: rename, then ask for a reopen.
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).unwrap();
    flow.client
        .reopen_container_log(crius_e2e::cri::api::ReopenContainerLogRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(SECOND / 2).await;
    let old = read_cri_log_tuples(&rotated).unwrap();
    let new = read_cri_log_tuples(&log).unwrap();
    assert!(
        !old.is_empty() && !new.is_empty(),
        "old {old:?} new {new:?}"
    );
    let last_old: u32 = old
        .last()
        .unwrap()
        .2
        .trim_start_matches("tick-")
        .parse()
        .unwrap();
    let first_new: u32 = new[0].2.trim_start_matches("tick-").parse().unwrap();
    assert!(first_new > last_old, "{last_old} then {first_new}");

    // A new memory limit lands in the running container's cgroup.
    let limit = 96i64 << 20;
    flow.set_memory_limit(&id, limit).await.unwrap();
    assert_eq!(env.container_memory_limit(&id), limit.to_string());
    let status = flow.container_status(&id).await.unwrap();
    assert_eq!(
        status
            .resources
            .unwrap()
            .linux
            .unwrap()
            .memory_limit_in_bytes,
        limit
    );

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// What a v1.36 kubelet sends for a Burstable container: a 0 hugetlb limit for every page size in
/// /sys/kernel/mm/hugepages, whether or not the host has a usable hugetlb hierarchy (this
/// machine's is bound to the hybrid cgroup2, not to v1). The container starts; the limits the
/// host can apply are in force; on a v1 host it also joins `name=systemd`, as under runc.
#[tokio::test]
async fn kubelet_resources_start_where_the_host_lacks_a_controller() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("kubelet-res", &env.log_dir("kubelet-res"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let mut c = sleep_container("app", &env.image, 3600);
    let limit = 64i64 << 20;
    c.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 20_000,
            cpu_shares: 204,
            memory_limit_in_bytes: limit,
            oom_score_adj: 968,
            hugepage_limits: ["2MB", "1GB"]
                .map(|page_size| crius_e2e::cri::api::HugepageLimit {
                    page_size: page_size.into(),
                    limit: 0,
                })
                .into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    let status = flow.container_status(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerRunning as i32);

    let cgroup = format!("{}/crius-{id}", env.cgroup_parent);
    let v1 = format!("/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes");
    let v2 = format!("/sys/fs/cgroup{cgroup}/memory.max");
    let got = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap();
    assert_eq!(got.trim(), limit.to_string());
    let out = flow
        .exec_sync(&id, &["cat", "/proc/self/oom_score_adj"], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "968");
    if std::path::Path::new("/sys/fs/cgroup/systemd/cgroup.procs").exists() {
        let pid = flow.container_info(&id).await.unwrap()["pid"]
            .as_i64()
            .unwrap();
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(
            own.lines()
                .any(|l| l.ends_with(&format!(":name=systemd:{cgroup}"))),
            "{own}"
        );
    }

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

/// Unmounts (lazily, recursively) on drop.
struct SharedDir(tempfile::TempDir);

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[tokio::test]
async fn bidirectional_mounts_propagate_back_to_the_host() {
    use nix::mount::{MsFlags, mount};
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    // A shared mount on the host, as kubelet's volume plugins make them.
    let shared = SharedDir(tempfile::tempdir().unwrap());
    let path = shared.0.path();
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();

    let mut pod = pod_config("bidir", &env.log_dir("bidir"));
    pod.linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .privileged = true;
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let mut c = shell_container(
        "mounter",
        &env.image,
        "mount -t tmpfs tmpfs /shared && echo from-the-container > /shared/marker && sleep 3600",
    );
    c.mounts = vec![crius_e2e::cri::api::Mount {
        container_path: "/shared".into(),
        host_path: path.display().to_string(),
        propagation: crius_e2e::cri::api::MountPropagation::PropagationBidirectional as i32,
        ..Default::default()
    }];
    c.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    let marker = path.join("marker");
    let mut seen = String::new();
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(&marker) {
            seen = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.trim(), "from-the-container");
    flow.remove_pod(&pod_id).await.unwrap();
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
}

#[tokio::test]
async fn container_and_pod_stats_report_cpu_memory_network_and_the_writable_layer() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let pod = pod_config("stats", &env.log_dir("stats"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let busy = shell_container(
        "busy",
        &env.image,
        "head -c 2000000 /dev/zero > /written; i=0; while :; do i=$((i+1)); done",
    );
    let id = flow.create_and_start(&pod_id, &busy, &pod).await.unwrap();
    tokio::time::sleep(SECOND).await;
    let stats = |id: String| crius_e2e::cri::api::ContainerStatsRequest { container_id: id };
    let first = flow
        .client
        .container_stats(stats(id.clone()))
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    tokio::time::sleep(SECOND / 2).await;
    let second = flow
        .client
        .container_stats(stats(id.clone()))
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(second.attributes.unwrap().id, id);
    let cpu = second.cpu.unwrap();
    let used = cpu.usage_core_nano_seconds.unwrap().value;
    assert!(used > first.cpu.unwrap().usage_core_nano_seconds.unwrap().value);
    // A busy loop: most of a core.
    assert!(cpu.usage_nano_cores.unwrap().value > 200_000_000, "{cpu:?}");
    assert!(second.memory.unwrap().working_set_bytes.unwrap().value > 0);
    let layer = second.writable_layer.unwrap();
    assert!(layer.used_bytes.unwrap().value >= 2_000_000, "{layer:?}");

    let listed = flow
        .client
        .list_container_stats(crius_e2e::cri::api::ListContainerStatsRequest {
            filter: Some(crius_e2e::cri::api::ContainerStatsFilter {
                pod_sandbox_id: pod_id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(listed.len(), 1);

    // The pod: its containers, their sum, and the pod network's counters.
    let gateway = env.network.gateway().to_string();
    flow.exec_sync(&id, &["ping", "-c", "1", "-W", "2", &gateway], 10 * SECOND)
        .await
        .unwrap();
    let pod_stats = flow
        .client
        .pod_sandbox_stats(crius_e2e::cri::api::PodSandboxStatsRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    let linux = pod_stats.linux.unwrap();
    assert_eq!(linux.containers.len(), 1);
    assert!(linux.cpu.unwrap().usage_core_nano_seconds.unwrap().value >= used);
    // The pause process counts: at least it and the container's shell.
    let processes = linux.process.unwrap().process_count.unwrap().value;
    assert!(processes >= 2, "{processes} processes");
    let container_ws = linux.containers[0]
        .memory
        .as_ref()
        .unwrap()
        .working_set_bytes
        .unwrap()
        .value;
    let pod_ws = linux.memory.unwrap().working_set_bytes.unwrap().value;
    assert!(
        pod_ws >= container_ws,
        "pod {pod_ws} < container {container_ws}"
    );
    let eth0 = linux.network.unwrap().default_interface.unwrap();
    assert!(
        eth0.tx_bytes.unwrap().value > 0 && eth0.rx_bytes.unwrap().value > 0,
        "{eth0:?}"
    );
    let all = flow
        .client
        .list_pod_sandbox_stats(crius_e2e::cri::api::ListPodSandboxStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(all.len(), 1);
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
