//! Malformed requests (issue 14, "validation up front"): each answers INVALID_ARGUMENT (a
//! request over the size limit: RESOURCE_EXHAUSTED) with a short message, leaves nothing on the
//! host and no state record, and the daemon goes on serving. The bounds: docs/cri-api.md.

use crius_e2e::cri::api::security_profile::ProfileType;
use crius_e2e::cri::api::{
    Capability, ContainerStatusRequest, ImageSpec, Int64Value, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, LinuxSandboxSecurityContext, Mount,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PortMapping, SeLinuxOption, SecurityProfile,
    UpdateContainerResourcesRequest, UpdatePodSandboxResourcesRequest, VersionRequest,
};
use crius_e2e::pods::{PodEnv, pod_config, sleep_container};
use tonic::{Code, Status};

const MB: usize = 1 << 20;

/// The answer is `code`, with a message a 16 KiB header cap lets through.
fn expect(what: &str, result: Result<String, Status>, code: Code) {
    let err = match result {
        Ok(id) => panic!("{what}: accepted, made {id}"),
        Err(err) => err,
    };
    assert_eq!(
        err.code(),
        code,
        "{what}: {}",
        &err.message()[..err.message().len().min(300)]
    );
    assert!(
        err.message().len() < 1024,
        "{what}: a {}-byte message",
        err.message().len()
    );
}

/// The pod's `linux.security_context`, made if absent.
fn pod_security(p: &mut PodSandboxConfig) -> &mut LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn resources(edit: impl FnOnce(&mut LinuxContainerResources)) -> LinuxContainerResources {
    let mut r = LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        oom_score_adj: -997,
        ..Default::default()
    };
    edit(&mut r);
    r
}

/// The state records the daemon holds (none may be left by a refused request).
fn records(env: &PodEnv, kind: &str) -> Vec<String> {
    std::fs::read_dir(env.crius.root().join("state").join(kind))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument_and_leave_nothing() {
    let mut env = PodEnv::start().await.unwrap();
    let mut flow = env.flow().await.unwrap();
    let logs = env.log_dir("bad");

    // Pods.
    type PodEdit = Box<dyn Fn(&mut crius_e2e::cri::api::PodSandboxConfig)>;
    let bad_pods: Vec<(&str, PodEdit)> = vec![
        (
            "1 MB pod name",
            Box::new(|p| p.metadata.as_mut().unwrap().name = "n".repeat(MB)),
        ),
        (
            "1 MB namespace",
            Box::new(|p| p.metadata.as_mut().unwrap().namespace = "n".repeat(MB)),
        ),
        (
            "1 MB uid",
            Box::new(|p| p.metadata.as_mut().unwrap().uid = "u".repeat(MB)),
        ),
        (
            "pod name with /",
            Box::new(|p| p.metadata.as_mut().unwrap().name = "a/b".into()),
        ),
        ("1 MB hostname", Box::new(|p| p.hostname = "h".repeat(MB))),
        (
            "hostname with a newline",
            Box::new(|p| p.hostname = "web\nevil".into()),
        ),
        ("hostname with _", Box::new(|p| p.hostname = "we_b".into())),
        (
            "negative container port",
            Box::new(|p| {
                p.port_mappings = vec![PortMapping {
                    container_port: -1,
                    ..Default::default()
                }]
            }),
        ),
        (
            "host port 70000",
            Box::new(|p| {
                p.port_mappings = vec![PortMapping {
                    container_port: 80,
                    host_port: 70000,
                    ..Default::default()
                }]
            }),
        ),
        (
            "unknown protocol",
            Box::new(|p| {
                p.port_mappings = vec![PortMapping {
                    container_port: 80,
                    protocol: 9,
                    ..Default::default()
                }]
            }),
        ),
        (
            "1 MB label key",
            Box::new(|p| {
                p.labels.insert("k".repeat(MB), "v".into());
            }),
        ),
        (
            "1 MB of annotations",
            Box::new(|p| {
                p.annotations.insert("k".into(), "v".repeat(MB));
            }),
        ),
        (
            "sysctl path trick",
            Box::new(|p| {
                p.linux
                    .as_mut()
                    .unwrap()
                    .sysctls
                    .insert("../../../proc/sysrq-trigger".into(), "b".into());
            }),
        ),
        (
            "sysctl value with a newline",
            Box::new(|p| {
                p.linux
                    .as_mut()
                    .unwrap()
                    .sysctls
                    .insert("net.ipv4.ip_forward".into(), "1\n0".into());
            }),
        ),
        (
            "non-namespaced sysctl",
            Box::new(|p| {
                p.linux
                    .as_mut()
                    .unwrap()
                    .sysctls
                    .insert("kernel.panic".into(), "1".into());
            }),
        ),
        (
            "net sysctl in the node's network namespace",
            Box::new(|p| {
                let linux = p.linux.as_mut().unwrap();
                linux
                    .sysctls
                    .insert("net.ipv4.ip_forward".into(), "1".into());
                pod_security(p).namespace_options = Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                });
            }),
        ),
        (
            "pod run_as_user -1",
            Box::new(|p| pod_security(p).run_as_user = Some(Int64Value { value: -1 })),
        ),
        (
            "pod supplemental group 2^32",
            Box::new(|p| pod_security(p).supplemental_groups = vec![1 << 32]),
        ),
        (
            "pod seccomp Localhost with a relative path",
            Box::new(|p| {
                pod_security(p).seccomp = Some(SecurityProfile {
                    profile_type: ProfileType::Localhost as i32,
                    localhost_ref: "profiles/audit.json".into(),
                })
            }),
        ),
        (
            "pod seccomp profile type 7",
            Box::new(|p| {
                pod_security(p).seccomp = Some(SecurityProfile {
                    profile_type: 7,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "pod legacy seccomp string",
            #[allow(deprecated)]
            Box::new(|p| pod_security(p).seccomp_profile_path = "docker/strict".into()),
        ),
        (
            "pod namespace mode 9",
            Box::new(|p| {
                pod_security(p).namespace_options = Some(NamespaceOption {
                    ipc: 9,
                    ..Default::default()
                })
            }),
        ),
        (
            "relative log directory",
            Box::new(|p| p.log_directory = "logs".into()),
        ),
        (
            "DNS search with a newline",
            Box::new(|p| {
                p.dns_config.as_mut().unwrap().searches = vec!["a\nnameserver 6.6.6.6".into()]
            }),
        ),
        (
            "pod cpu period 2^40",
            Box::new(|p| {
                p.linux.as_mut().unwrap().resources = Some(resources(|r| r.cpu_period = 1 << 40))
            }),
        ),
        (
            "pod memory limit 1 byte",
            Box::new(|p| {
                p.linux.as_mut().unwrap().resources =
                    Some(resources(|r| r.memory_limit_in_bytes = 1))
            }),
        ),
        (
            "negative pod overhead",
            Box::new(|p| {
                p.linux.as_mut().unwrap().overhead =
                    Some(resources(|r| r.memory_limit_in_bytes = -1))
            }),
        ),
    ];
    for (what, edit) in &bad_pods {
        let mut pod = pod_config("bad", &logs);
        edit(&mut pod);
        expect(what, flow.run_pod(&pod).await, Code::InvalidArgument);
    }
    assert!(flow.list_pods().await.unwrap().is_empty());
    assert_eq!(records(&env, "sandboxes"), Vec::<String>::new());

    // Over the 16 MiB message limit.
    let mut huge = pod_config("huge", &logs);
    huge.annotations.insert("k".into(), "v".repeat(20 * MB));
    expect(
        "20 MB request",
        flow.run_pod(&huge).await,
        Code::ResourceExhausted,
    );

    // Containers, in a good pod.
    let pod = pod_config("good", &env.log_dir("good"));
    let pod_id = flow.run_pod(&pod).await.unwrap();
    type ContainerEdit = Box<dyn Fn(&mut crius_e2e::cri::api::ContainerConfig)>;
    let with_resources = |edit: fn(&mut LinuxContainerResources)| -> ContainerEdit {
        Box::new(move |c| {
            c.linux = Some(LinuxContainerConfig {
                resources: Some(resources(edit)),
                ..Default::default()
            })
        })
    };
    let with_security = |edit: fn(&mut LinuxContainerSecurityContext)| -> ContainerEdit {
        Box::new(move |c| {
            let mut security = LinuxContainerSecurityContext::default();
            edit(&mut security);
            c.linux = Some(LinuxContainerConfig {
                security_context: Some(security),
                ..Default::default()
            })
        })
    };
    let bad_containers: Vec<(&str, ContainerEdit)> = vec![
        (
            "1 MB container name",
            Box::new(|c| c.metadata.as_mut().unwrap().name = "c".repeat(MB)),
        ),
        (
            "container name ..",
            Box::new(|c| c.metadata.as_mut().unwrap().name = "..".into()),
        ),
        (
            "cpu period 2^40",
            with_resources(|r| r.cpu_period = 1 << 40),
        ),
        ("cpu quota 10", with_resources(|r| r.cpu_quota = 10)),
        ("cpu shares 1", with_resources(|r| r.cpu_shares = 1)),
        (
            "bogus cpuset",
            with_resources(|r| r.cpuset_cpus = "bogus".into()),
        ),
        (
            "reversed cpuset",
            with_resources(|r| r.cpuset_mems = "3-1".into()),
        ),
        (
            "memory limit 1 byte",
            with_resources(|r| r.memory_limit_in_bytes = 1),
        ),
        (
            "oom_score_adj 5000",
            with_resources(|r| r.oom_score_adj = 5000),
        ),
        (
            "relative mount path",
            Box::new(|c| {
                c.mounts = vec![Mount {
                    container_path: "data".into(),
                    host_path: "/tmp".into(),
                    ..Default::default()
                }]
            }),
        ),
        (
            "1 MB mount path",
            Box::new(|c| {
                c.mounts = vec![Mount {
                    container_path: format!("/{}", "d".repeat(MB)),
                    host_path: "/tmp".into(),
                    ..Default::default()
                }]
            }),
        ),
        (
            "log path escaping",
            Box::new(|c| c.log_path = "../../escape.log".into()),
        ),
        (
            "mount path with ..",
            Box::new(|c| {
                c.mounts = vec![Mount {
                    container_path: "/data/../../etc".into(),
                    host_path: "/tmp".into(),
                    ..Default::default()
                }]
            }),
        ),
        (
            "writable image volume",
            Box::new(|c| {
                c.mounts = vec![Mount {
                    container_path: "/vol".into(),
                    image: Some(ImageSpec {
                        image: "registry.invalid/vol:1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]
            }),
        ),
        (
            "mount propagation 9",
            Box::new(|c| {
                c.mounts = vec![Mount {
                    container_path: "/data".into(),
                    host_path: "/tmp".into(),
                    propagation: 9,
                    ..Default::default()
                }]
            }),
        ),
        (
            "unknown capability",
            with_security(|s| {
                s.capabilities = Some(Capability {
                    add_capabilities: vec!["CAP_FLY".into()],
                    ..Default::default()
                })
            }),
        ),
        (
            "ambient ALL",
            with_security(|s| {
                s.capabilities = Some(Capability {
                    add_ambient_capabilities: vec!["ALL".into()],
                    ..Default::default()
                })
            }),
        ),
        (
            "run_as_user -1",
            with_security(|s| s.run_as_user = Some(Int64Value { value: -1 })),
        ),
        (
            "run_as_group 2^32",
            with_security(|s| s.run_as_group = Some(Int64Value { value: 1 << 32 })),
        ),
        (
            "run_as_username with a newline",
            with_security(|s| s.run_as_username = "root\nx".into()),
        ),
        (
            "relative masked path",
            with_security(|s| s.masked_paths = vec!["proc/kcore".into()]),
        ),
        (
            "1 MB readonly path",
            with_security(|s| s.readonly_paths = vec![format!("/{}", "r".repeat(MB))]),
        ),
        (
            "seccomp Localhost with a relative path",
            with_security(|s| {
                s.seccomp = Some(SecurityProfile {
                    profile_type: ProfileType::Localhost as i32,
                    localhost_ref: "audit.json".into(),
                })
            }),
        ),
        (
            "AppArmor Localhost without a name",
            with_security(|s| {
                s.apparmor = Some(SecurityProfile {
                    profile_type: ProfileType::Localhost as i32,
                    localhost_ref: String::new(),
                })
            }),
        ),
        (
            "legacy AppArmor string",
            #[allow(deprecated)]
            with_security(|s| s.apparmor_profile = "strict".into()),
        ),
        (
            "SELinux type with a colon",
            with_security(|s| {
                s.selinux_options = Some(SeLinuxOption {
                    r#type: "container_t:s0".into(),
                    ..Default::default()
                })
            }),
        ),
    ];
    for (what, edit) in &bad_containers {
        let mut c = sleep_container("c", &env.image, 3600);
        edit(&mut c);
        expect(
            what,
            flow.create_container(&pod_id, &c, &pod).await,
            Code::InvalidArgument,
        );
    }
    let mut c = sleep_container("c", &env.image, 3600);
    expect(
        "1 MB pod sandbox id",
        flow.create_container(&"p".repeat(MB), &c, &pod).await,
        Code::InvalidArgument,
    );
    assert!(flow.list_containers().await.unwrap().is_empty());
    assert_eq!(records(&env, "containers"), Vec::<String>::new());

    // Updates of a running container and of the pod.
    c.linux = Some(LinuxContainerConfig {
        resources: Some(resources(|_| {})),
        ..Default::default()
    });
    let id = flow.create_and_start(&pod_id, &c, &pod).await.unwrap();
    for (what, r) in [
        (
            "update: cpu period 2^40",
            resources(|r| r.cpu_period = 1 << 40),
        ),
        (
            "update: bogus cpuset",
            resources(|r| r.cpuset_cpus = "0-".into()),
        ),
        (
            "update: memory limit 1 byte",
            resources(|r| r.memory_limit_in_bytes = 1),
        ),
    ] {
        let answer = flow
            .client
            .update_container_resources(UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(r.clone()),
                ..Default::default()
            })
            .await
            .map(|_| String::new());
        expect(what, answer, Code::InvalidArgument);
        let answer = flow
            .client
            .update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
                pod_sandbox_id: pod_id.clone(),
                resources: Some(r),
                ..Default::default()
            })
            .await
            .map(|_| String::new());
        expect(&format!("pod {what}"), answer, Code::InvalidArgument);
    }
    // The container still has what it was created with.
    let status = flow.container_status(&id).await.unwrap();
    let live = status.resources.and_then(|r| r.linux).unwrap();
    assert_eq!(live.cpu_period, 100_000);
    assert_eq!(live.memory_limit_in_bytes, 64 << 20);

    // A lookup of a 1 MB id quotes little of it.
    let answer = flow
        .client
        .container_status(ContainerStatusRequest {
            container_id: "x".repeat(MB),
            verbose: false,
        })
        .await
        .map(|_| String::new());
    expect("status of a 1 MB id", answer, Code::NotFound);

    // Still serving, never restarted; nothing left once the good pod is gone.
    flow.client
        .version(VersionRequest::default())
        .await
        .unwrap();
    assert!(env.crius.is_running());
    flow.cleanup_all().await.unwrap();
    assert_eq!(records(&env, "sandboxes"), Vec::<String>::new());
    assert_eq!(records(&env, "containers"), Vec::<String>::new());
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}

#[tokio::test]
async fn image_requests_with_a_1_mb_name_answer_briefly() {
    let env = PodEnv::start().await.unwrap();
    let mut images = env.crius.images().await.unwrap();
    let long = format!("{}/e2e/{}:v1", env.registry.host(), "a".repeat(MB));
    let upper = format!("{}/E2E/{}:v1", env.registry.host(), "A".repeat(MB));
    for name in [&long, &upper] {
        expect("PullImage", images.pull(name).await, Code::InvalidArgument);
        expect(
            "ImageStatus",
            images.status(name).await.map(|_| String::new()),
            Code::InvalidArgument,
        );
        expect(
            "RemoveImage",
            images.remove(name).await.map(|_| String::new()),
            Code::InvalidArgument,
        );
    }
    // Still serving.
    assert!(images.status(&env.image).await.unwrap().is_some());
}
