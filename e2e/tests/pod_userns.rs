//! Pods with their own user namespace (`userns_options` mode POD), as the kubelet asks for them
//! with `hostUsers: false`: the pod's root is an unprivileged host uid, yet owns the image's
//! files (id-mapped layers), its volumes (id-mapped mounts) and its pod files; and what crius
//! refuses with it.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crius_e2e::cri::api::{
    ContainerState, IdMapping, LinuxContainerConfig, LinuxContainerSecurityContext, Mount,
    NamespaceMode, NamespaceOption, PodSandboxState, StatusRequest, UserNamespace,
};
use crius_e2e::pods::{PodEnv, pod_config, shell_container, sleep_container, with_namespaces};
use tonic::Code;

const SECOND: Duration = Duration::from_secs(1);
/// Host uid/gid of the pod's root (the kubelet hands out multiples of 65536 from here).
const HOST_ROOT: u32 = 2 * 65536;

fn userns(host_id: u32) -> UserNamespace {
    let map = vec![IdMapping {
        host_id,
        container_id: 0,
        length: 65536,
    }];
    UserNamespace {
        mode: NamespaceMode::Pod as i32,
        uids: map.clone(),
        gids: map,
    }
}

fn userns_options(u: UserNamespace) -> NamespaceOption {
    NamespaceOption {
        userns_options: Some(u),
        ..NamespaceOption::default()
    }
}

async fn sh(flow: &mut crius_e2e::pods::PodFlow, id: &str, script: &str) -> String {
    let r = flow
        .exec_sync(id, &["sh", "-c", script], 10 * SECOND)
        .await
        .unwrap();
    assert_eq!(
        r.exit_code,
        0,
        "{script}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

#[tokio::test]
async fn a_user_namespace_pod_owns_its_image_files_volumes_and_pod_files() {
    let env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let status = flow
        .client
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    // The default handler is listed under "" (what the kubelet and critest look up).
    assert_eq!(status.runtime_handlers[0].name, "");
    let features = status.runtime_handlers[0].features.unwrap();
    assert!(features.user_namespaces && features.recursive_read_only_mounts);

    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("from-host"), "x").unwrap();
    let mut pod = with_namespaces(
        pod_config("userns", &env.log_dir("userns")),
        userns_options(userns(HOST_ROOT)),
    );
    // A network sysctl: the pod's root may set it, its user namespace owns the pod's netns.
    pod.linux.as_mut().unwrap().sysctls = [(
        "net.ipv4.ping_group_range".to_string(),
        "0 1000".to_string(),
    )]
    .into();
    let pod_id = flow.run_pod(&pod).await.unwrap();
    let ps = flow.pod_status(&pod_id).await.unwrap();
    assert_eq!(ps.state, PodSandboxState::SandboxReady as i32);
    assert!(!ps.network.unwrap().ip.is_empty());

    let mut c = shell_container("app", &env.image, "sleep 3600");
    c.mounts = vec![Mount {
        container_path: "/data".into(),
        host_path: volume.path().display().to_string(),
        ..Mount::default()
    }];
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();

    let uid_map = sh(&mut flow, &id, "cat /proc/self/uid_map").await;
    let uid_map: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(uid_map, ["0", &HOST_ROOT.to_string(), "65536"]);
    assert_eq!(sh(&mut flow, &id, "id -u; id -g").await, "0\n0");
    assert_eq!(sh(&mut flow, &id, "hostname").await, "userns");
    assert_eq!(
        sh(&mut flow, &id, "cat /proc/sys/net/ipv4/ping_group_range").await,
        "0\t1000"
    );
    // The image's files, the volume's and the pod's own files belong to the pod's root.
    assert_eq!(
        sh(
            &mut flow,
            &id,
            "stat -c %u:%g /bin/busybox /data/from-host /etc/hostname /etc/hosts /etc/resolv.conf /dev/shm"
        )
        .await,
        ["0:0"; 6].join("\n")
    );
    // Writes: to the rootfs (copy-up), a new file, a volume, the pod files.
    sh(
        &mut flow,
        &id,
        "echo changed > /bin/ls-copy && chmod 600 /etc/passwd && touch /new /data/from-pod \
         && echo 10.0.0.9 other >> /etc/hosts && touch /dev/shm/s && chown 1000:1000 /new",
    )
    .await;
    assert_eq!(sh(&mut flow, &id, "stat -c %u:%g /new").await, "1000:1000");

    // Seen from the host: the container's files belong to the mapped host ids; the volume file
    // to the host's root (the id-mapped mount maps back), the image layers are untouched.
    let info = flow.container_info(&id).await.unwrap();
    let pid = info["pid"].as_i64().unwrap();
    let root = format!("/proc/{pid}/root");
    let owner = |p: &str| {
        let m = std::fs::metadata(format!("{root}{p}")).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("/new"), (HOST_ROOT + 1000, HOST_ROOT + 1000));
    assert_eq!(owner("/etc/passwd"), (HOST_ROOT, HOST_ROOT));
    assert_eq!(owner("/bin/busybox"), (HOST_ROOT, HOST_ROOT));
    let from_pod = std::fs::metadata(volume.path().join("from-pod")).unwrap();
    assert_eq!((from_pod.uid(), from_pod.gid()), (0, 0));

    // The pod's root is not the host's: the host's files outside its own stay out of reach.
    let r = flow
        .exec_sync(
            &id,
            &["sh", "-c", "echo 1 > /proc/sys/kernel/printk"],
            10 * SECOND,
        )
        .await
        .unwrap();
    assert_ne!(r.exit_code, 0);

    // A second container of the pod is in the same user namespace.
    let second = flow
        .create_and_start(&pod_id, &sleep_container("second", &env.image, 3600), &pod)
        .await
        .unwrap();
    assert_eq!(
        sh(&mut flow, &second, "readlink /proc/self/ns/user").await,
        sh(&mut flow, &id, "readlink /proc/self/ns/user").await
    );

    // State survives a kill -9 of the daemon.
    let mut env = env;
    env.crius.kill9().await.unwrap();
    env.crius.restart().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let s = flow.container_status(&id).await.unwrap();
    assert_eq!(s.state, ContainerState::ContainerRunning as i32);
    assert_eq!(sh(&mut flow, &id, "id -u").await, "0");

    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn user_namespace_requests_crius_cannot_honour_are_refused() {
    let env =
        PodEnv::start_with(|b| b.config_value("runtime.runtimes.runc.path", "/usr/sbin/runc"))
            .await
            .unwrap();
    let mut flow = env.flow().await.unwrap();
    let code = |r: Result<String, tonic::Status>| r.map_err(|e| e.code()).err();
    let pod =
        |name: &str, ns: NamespaceOption| with_namespaces(pod_config(name, &env.log_dir(name)), ns);

    // The host's network (or pid, ipc) with a pod user namespace.
    let mut ns = userns_options(userns(HOST_ROOT));
    ns.network = NamespaceMode::Node as i32;
    assert_eq!(
        code(flow.run_pod(&pod("hostnet", ns)).await),
        Some(Code::InvalidArgument)
    );
    // Mappings the kernel would refuse, and modes a pod cannot have.
    let mut no_root = userns(HOST_ROOT);
    no_root.uids[0].container_id = 1;
    let mut container_mode = userns(HOST_ROOT);
    container_mode.mode = NamespaceMode::Container as i32;
    let mut node_with_maps = userns(HOST_ROOT);
    node_with_maps.mode = NamespaceMode::Node as i32;
    for (name, u) in [
        ("noroot", no_root),
        ("containermode", container_mode),
        ("nodemaps", node_with_maps),
    ] {
        assert_eq!(
            code(flow.run_pod(&pod(name, userns_options(u))).await),
            Some(Code::InvalidArgument),
            "{name}"
        );
    }
    // Debian's runc 1.1 cannot id-map volumes: its handler does not offer user namespaces.
    let status = flow
        .client
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let runc = status
        .runtime_handlers
        .iter()
        .find(|h| h.name == "runc")
        .unwrap();
    assert!(!runc.features.unwrap().user_namespaces);
    let r = flow
        .client
        .run_pod_sandbox(crius_e2e::cri::api::RunPodSandboxRequest {
            config: Some(pod("viarunc", userns_options(userns(HOST_ROOT)))),
            runtime_handler: "runc".into(),
        })
        .await;
    assert_eq!(r.err().map(|e| e.code()), Some(Code::InvalidArgument));

    // A container asking for another user namespace than its pod's, or for a privileged one.
    let p = pod("ok", userns_options(userns(HOST_ROOT)));
    let pod_id = flow.run_pod(&p).await.unwrap();
    let mut other = sleep_container("other", &env.image, 60);
    other.linux = Some(LinuxContainerConfig {
        security_context: Some(LinuxContainerSecurityContext {
            namespace_options: Some(userns_options(userns(3 * 65536))),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        code(flow.create_container(&pod_id, &other, &p).await),
        Some(Code::InvalidArgument)
    );
    let mut same = other.clone();
    same.metadata.as_mut().unwrap().name = "same".into();
    same.linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .namespace_options = Some(userns_options(userns(HOST_ROOT)));
    let id = flow.create_and_start(&pod_id, &same, &p).await.unwrap();
    assert_eq!(
        flow.container_status(&id).await.unwrap().state,
        ContainerState::ContainerRunning as i32
    );
    flow.remove_pod(&pod_id).await.unwrap();
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
