//! Behaviour tests of the spec generator: process, mounts, namespaces, resources, devices,
//! pause, annotations, stop signal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::*;
use crate::api;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub pod_cfg: api::PodSandboxConfig,
    pub image: ImageConfiguration,
    pub rootfs: PathBuf,
    pub files: PathBuf,
    pub target_pid: Option<PathBuf>,
    pub net: NsMode,
}

pub(super) fn image(config: serde_json::Value) -> ImageConfiguration {
    serde_json::from_value(serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap()
}

/// A v2 host with every controller and the common huge page sizes.
pub(super) fn full_v2_host() -> HostCgroups {
    HostCgroups {
        version: CgroupVersion::V2,
        controllers: [
            "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
        ]
        .map(String::from)
        .into(),
        hugepage_sizes: ["2MB", "1GB"].map(String::from).into(),
    }
}

pub(super) fn opts() -> SpecOptions {
    SpecOptions {
        cgroups: full_v2_host(),
        apparmor_enabled: false,
        ..SpecOptions::default()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app\naudio:x:29:other,app\nstaff:x:50:\n",
        )
        .unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir_all(files.join("shm")).unwrap();
        for f in ["hosts", "hostname", "resolv.conf"] {
            std::fs::write(files.join(f), "").unwrap();
        }
        let pod_cfg = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "web".into(),
                uid: "uid-1".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "web-host".into(),
            ..Default::default()
        };
        Fixture {
            image: image(serde_json::json!({"Cmd": ["sleep", "1"]})),
            _dir: dir,
            pod_cfg,
            rootfs,
            files,
            target_pid: None,
            net: NsMode::Path("/run/netns/x".into()),
        }
    }

    pub fn pod(&self) -> PodContext<'_> {
        PodContext {
            sandbox_id: "sb1",
            config: &self.pod_cfg,
            net: self.net.clone(),
            ipc: NsMode::Path("/proc/10/ns/ipc".into()),
            uts: NsMode::New,
            pod_pid: NsMode::Path("/proc/10/ns/pid".into()),
            resolv_conf: None,
            hostname_file: Path::new("/nonexistent/hostname"),
            hosts_file: Path::new("/nonexistent/hosts"),
            shm: Path::new("/nonexistent/shm"),
            cgroup_parent: "/kubepods/pod1",
            userns: None,
        }
    }

    pub fn spec(&self, cfg: &api::ContainerConfig) -> Result<Spec, SpecError> {
        self.spec_with(cfg, &opts())
    }

    pub fn spec_with(
        &self,
        cfg: &api::ContainerConfig,
        o: &SpecOptions,
    ) -> Result<Spec, SpecError> {
        let c = ContainerContext {
            id: "c1",
            config: cfg,
            image: &self.image,
            image_name: "docker.io/library/busybox:latest",
            rootfs: &self.rootfs,
            image_volumes: Path::new("/run/c1/volumes"),
            target_pid: self.target_pid.clone(),
        };
        container_spec(&self.pod(), &c, o)
    }
}

pub(super) fn with_sc(sc: api::LinuxContainerSecurityContext) -> api::ContainerConfig {
    api::ContainerConfig {
        linux: Some(api::LinuxContainerConfig {
            security_context: Some(sc),
            resources: None,
        }),
        ..Default::default()
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// (image entrypoint, image cmd, command, args, expected argv)
type ArgvCase<'a> = (
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
);

#[test]
fn entrypoint_and_cmd_rules() {
    let cases: &[ArgvCase] = &[
        (&["/ep"], &["c1"], &[], &[], &["/ep", "c1"]),
        (&["/ep"], &["c1"], &[], &["a"], &["/ep", "a"]),
        (&["/ep"], &["c1"], &["/cmd"], &[], &["/cmd"]),
        (
            &["/ep"],
            &["c1"],
            &["/cmd"],
            &["a", "b"],
            &["/cmd", "a", "b"],
        ),
        (&[], &["c1", "x"], &[], &[], &["c1", "x"]),
        (&[], &[], &[], &["only"], &["only"]),
    ];
    for (ep, cmd, command, args, want) in cases {
        let img = image(serde_json::json!({"Entrypoint": ep, "Cmd": cmd}));
        let cfg = api::ContainerConfig {
            command: s(command),
            args: s(args),
            ..Default::default()
        };
        assert_eq!(
            process::args(&cfg, &img).unwrap(),
            s(want),
            "{ep:?} {cmd:?} {command:?} {args:?}"
        );
    }
    let err = process::args(
        &api::ContainerConfig::default(),
        &image(serde_json::json!({})),
    )
    .unwrap_err();
    assert!(matches!(err, SpecError::InvalidArgument(_)));
}

#[test]
fn env_overlay_keeps_order_and_adds_path() {
    let img = image(serde_json::json!({"Env": ["A=1", "B=2", "PATH=/img"]}));
    let cfg = api::ContainerConfig {
        envs: vec![
            api::KeyValue {
                key: "B".into(),
                value: "x".into(),
            },
            api::KeyValue {
                key: "C".into(),
                value: "3".into(),
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        process::env(&cfg, &img, "").unwrap(),
        s(&["A=1", "B=x", "PATH=/img", "C=3"])
    );
    let env = process::env(
        &api::ContainerConfig {
            tty: true,
            ..Default::default()
        },
        &image(serde_json::json!({})),
        "h",
    )
    .unwrap();
    assert_eq!(
        env,
        s(&[
            &format!("PATH={}", process::DEFAULT_PATH),
            "TERM=xterm",
            "HOSTNAME=h"
        ])
    );
}

#[test]
fn an_env_value_that_is_not_utf8_is_refused_naming_its_key() {
    let cfg = api::ContainerConfig {
        envs: vec![api::KeyValue {
            key: "BIN".into(),
            value: vec![0xff, 0xfe],
        }],
        ..Default::default()
    };
    let err = process::env(&cfg, &image(serde_json::json!({})), "").unwrap_err();
    assert!(matches!(&err, SpecError::InvalidArgument(m) if m.contains("BIN")));
}

#[test]
fn cwd_rules() {
    let img = image(serde_json::json!({"WorkingDir": "/srv"}));
    assert_eq!(
        process::cwd(&api::ContainerConfig::default(), &img).unwrap(),
        PathBuf::from("/srv")
    );
    let cfg = api::ContainerConfig {
        working_dir: "/w".into(),
        ..Default::default()
    };
    assert_eq!(process::cwd(&cfg, &img).unwrap(), PathBuf::from("/w"));
    let none = image(serde_json::json!({}));
    assert_eq!(
        process::cwd(&api::ContainerConfig::default(), &none).unwrap(),
        PathBuf::from("/")
    );
}

#[test]
fn user_resolution() {
    let f = Fixture::new();
    let sc0 = api::LinuxContainerSecurityContext::default();
    let user = |image_user: &str, sc: &api::LinuxContainerSecurityContext| {
        process::user(
            &f.rootfs,
            sc,
            &image(serde_json::json!({"User": image_user})),
        )
        .map(|u| {
            (
                u.uid(),
                u.gid(),
                u.additional_gids().clone().unwrap_or_default(),
            )
        })
    };
    assert_eq!(user("", &sc0).unwrap(), (0, 0, vec![0]));
    assert_eq!(user("app", &sc0).unwrap(), (1000, 1001, vec![1001, 10, 29]));
    assert_eq!(
        user("1000", &sc0).unwrap(),
        (1000, 1001, vec![1001, 10, 29])
    );
    assert_eq!(
        user("app:staff", &sc0).unwrap(),
        (1000, 50, vec![50, 10, 29])
    );
    assert_eq!(user("1000:7", &sc0).unwrap(), (1000, 7, vec![7, 10, 29]));
    // A numeric uid absent from /etc/passwd is fine; a name is not.
    assert_eq!(user("4242", &sc0).unwrap(), (4242, 0, vec![0]));
    assert!(matches!(
        user("nobody", &sc0),
        Err(SpecError::InvalidArgument(_))
    ));
    assert!(matches!(
        user("app:nogroup", &sc0),
        Err(SpecError::InvalidArgument(_))
    ));

    // The security context wins over the image.
    let sc = api::LinuxContainerSecurityContext {
        run_as_user: Some(api::Int64Value { value: 1000 }),
        run_as_group: Some(api::Int64Value { value: 3000 }),
        supplemental_groups: vec![4000, 10],
        ..Default::default()
    };
    assert_eq!(
        user("root", &sc).unwrap(),
        (1000, 3000, vec![3000, 10, 29, 4000])
    );
    let strict = api::LinuxContainerSecurityContext {
        supplemental_groups_policy: 1,
        ..sc.clone()
    };
    assert_eq!(
        user("", &strict).unwrap(),
        (1000, 3000, vec![3000, 4000, 10])
    );
    let by_name = api::LinuxContainerSecurityContext {
        run_as_username: "app".into(),
        ..Default::default()
    };
    assert_eq!(
        user("", &by_name).unwrap(),
        (1000, 1001, vec![1001, 10, 29])
    );
    let missing = api::LinuxContainerSecurityContext {
        run_as_username: "ghost".into(),
        ..Default::default()
    };
    assert!(matches!(
        user("", &missing),
        Err(SpecError::InvalidArgument(_))
    ));
    let group_only = api::LinuxContainerSecurityContext {
        run_as_group: Some(api::Int64Value { value: 5 }),
        ..Default::default()
    };
    assert!(matches!(
        user("", &group_only),
        Err(SpecError::InvalidArgument(_))
    ));
}

fn find<'a>(spec: &'a Spec, dest: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
}

fn opts_of(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

#[test]
fn default_mounts_and_replacement() {
    let f = Fixture::new();
    let host_hosts = f.files.join("hosts");
    let cfg = api::ContainerConfig {
        mounts: vec![api::Mount {
            container_path: "/etc/hosts".into(),
            host_path: host_hosts.to_string_lossy().into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let spec = f.spec(&cfg).unwrap();
    let dests: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    let want = [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/shm",
        "/etc/hostname",
        "/etc/hosts",
    ];
    assert_eq!(dests, want.iter().map(PathBuf::from).collect::<Vec<_>>());
    assert_eq!(
        find(&spec, "/etc/hosts").unwrap().source().as_deref(),
        Some(host_hosts.as_path())
    );
    assert!(opts_of(find(&spec, "/sys").unwrap()).contains(&"ro".to_string()));
    assert!(opts_of(find(&spec, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_string()));
}

fn one_mount(f: &Fixture, m: api::Mount) -> Result<Spec, SpecError> {
    f.spec(&api::ContainerConfig {
        mounts: vec![m],
        ..Default::default()
    })
}

#[test]
fn cri_mount_propagation_rro_and_validation() {
    let f = Fixture::new();
    let host = f.files.join("shm").to_string_lossy().to_string();
    let m = |dest: &str, prop: api::MountPropagation, ro: bool, rro: bool| api::Mount {
        container_path: dest.into(),
        host_path: host.clone(),
        readonly: ro,
        recursive_read_only: rro,
        propagation: prop as i32,
        ..Default::default()
    };
    use api::MountPropagation::*;
    let spec = one_mount(&f, m("/data/", PropagationPrivate, true, true)).unwrap();
    let data = find(&spec, "/data").unwrap();
    assert_eq!(data.typ().as_deref(), Some("bind"));
    assert_eq!(opts_of(data), s(&["rbind", "rprivate", "ro", "rro"]));
    assert_eq!(spec.linux().as_ref().unwrap().rootfs_propagation(), &None);

    // rro needs readonly and private propagation.
    assert!(matches!(
        one_mount(&f, m("/d", PropagationPrivate, false, true)),
        Err(SpecError::InvalidArgument(_))
    ));
    assert!(matches!(
        one_mount(&f, m("/d", PropagationHostToContainer, true, true)),
        Err(SpecError::InvalidArgument(_))
    ));
    // Relative / ".." destinations and missing host paths.
    assert!(matches!(
        one_mount(&f, m("data", PropagationPrivate, false, false)),
        Err(SpecError::InvalidArgument(_))
    ));
    assert!(matches!(
        one_mount(&f, m("/a/../b", PropagationPrivate, false, false)),
        Err(SpecError::InvalidArgument(_))
    ));
    let mut missing = m("/d", PropagationPrivate, false, false);
    missing.host_path = "/nonexistent/crius-oci-test".into();
    assert!(matches!(
        one_mount(&f, missing),
        Err(SpecError::NotFound(_))
    ));

    // Propagation from the host needs the rootfs to propagate too (when the host mount allows).
    for (prop, opt) in [
        (PropagationHostToContainer, "rslave"),
        (PropagationBidirectional, "rshared"),
    ] {
        match one_mount(&f, m("/p", prop, false, false)) {
            Ok(spec) => {
                assert!(opts_of(find(&spec, "/p").unwrap()).contains(&opt.to_string()));
                assert_eq!(
                    spec.linux()
                        .as_ref()
                        .unwrap()
                        .rootfs_propagation()
                        .as_deref(),
                    Some(opt)
                );
            }
            Err(e) => assert!(matches!(e, SpecError::FailedPrecondition(_)), "{e}"),
        }
    }
}

#[test]
fn cri_mounts_sorted_parents_first() {
    let f = Fixture::new();
    let host = f.files.join("shm").to_string_lossy().to_string();
    let mk = |d: &str| api::Mount {
        container_path: d.into(),
        host_path: host.clone(),
        ..Default::default()
    };
    let cfg = api::ContainerConfig {
        mounts: vec![mk("/a/b/c"), mk("/a"), mk("/a/b")],
        ..Default::default()
    };
    let spec = f.spec(&cfg).unwrap();
    let tail: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|m| m.destination().clone())
        .collect();
    assert_eq!(
        tail,
        vec![PathBuf::from("/a/b/c"), "/a/b".into(), "/a".into()]
    );
}

fn namespaces(spec: &Spec) -> HashMap<LinuxNamespaceType, Option<PathBuf>> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

#[test]
fn namespace_modes() {
    let mut f = Fixture::new();
    let cfg_pid = |mode: api::NamespaceMode| {
        with_sc(api::LinuxContainerSecurityContext {
            namespace_options: Some(api::NamespaceOption {
                pid: mode as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
    };
    let ns = namespaces(&f.spec(&cfg_pid(api::NamespaceMode::Pod)).unwrap());
    assert_eq!(ns[&LinuxNamespaceType::Pid], Some("/proc/10/ns/pid".into()));
    assert_eq!(
        ns[&LinuxNamespaceType::Network],
        Some("/run/netns/x".into())
    );
    assert_eq!(ns[&LinuxNamespaceType::Uts], None);
    assert_eq!(ns[&LinuxNamespaceType::Mount], None);
    assert_eq!(ns[&LinuxNamespaceType::Cgroup], None);
    assert!(!ns.contains_key(&LinuxNamespaceType::User));
    assert_eq!(
        namespaces(&f.spec(&cfg_pid(api::NamespaceMode::Container)).unwrap())
            [&LinuxNamespaceType::Pid],
        None
    );
    assert!(
        !namespaces(&f.spec(&cfg_pid(api::NamespaceMode::Node)).unwrap())
            .contains_key(&LinuxNamespaceType::Pid)
    );
    // TARGET needs the target's pid namespace.
    assert!(matches!(
        f.spec(&cfg_pid(api::NamespaceMode::Target)),
        Err(SpecError::InvalidArgument(_))
    ));
    f.target_pid = Some("/proc/77/ns/pid".into());
    assert_eq!(
        namespaces(&f.spec(&cfg_pid(api::NamespaceMode::Target)).unwrap())
            [&LinuxNamespaceType::Pid],
        Some("/proc/77/ns/pid".into())
    );
    // Host network: no entry; cgroup v1: no cgroup namespace.
    f.net = NsMode::Host;
    let o = SpecOptions {
        cgroups: HostCgroups {
            version: CgroupVersion::V1,
            ..full_v2_host()
        },
        ..opts()
    };
    let ns = namespaces(&f.spec_with(&cfg_pid(api::NamespaceMode::Pod), &o).unwrap());
    assert!(!ns.contains_key(&LinuxNamespaceType::Network));
    assert!(!ns.contains_key(&LinuxNamespaceType::Cgroup));
}

#[test]
fn hostname_only_for_new_uts() {
    let f = Fixture::new();
    let spec = f.spec(&api::ContainerConfig::default()).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("web-host"));
    let mut pod = f.pod();
    pod.uts = NsMode::Path("/run/uts/x".into());
    let c = ContainerContext {
        id: "c1",
        config: &api::ContainerConfig::default(),
        image: &f.image,
        image_name: "img",
        rootfs: &f.rootfs,
        image_volumes: Path::new("/run/c1/volumes"),
        target_pid: None,
    };
    assert_eq!(container_spec(&pod, &c, &opts()).unwrap().hostname(), &None);
}

#[test]
fn device_cgroup_and_requested_devices() {
    let f = Fixture::new();
    let cfg = api::ContainerConfig {
        devices: vec![api::Device {
            container_path: "/dev/mynull".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        }],
        ..Default::default()
    };
    let spec = f.spec(&cfg).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let devs = linux.devices().clone().unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(
        (devs[0].path().as_path(), devs[0].major(), devs[0].minor()),
        (Path::new("/dev/mynull"), 1, 3)
    );
    let rules: Vec<String> = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap()
        .iter()
        .map(|r| format!("{}{}", if r.allow() { "+" } else { "-" }, r))
        .collect();
    assert_eq!(rules.first().map(String::as_str), Some("-a *:* rwm"));
    assert!(rules.contains(&"+c 136:* rwm".to_string()));
    assert_eq!(rules.last().map(String::as_str), Some("+c 1:3 rw"));

    let missing = api::ContainerConfig {
        devices: vec![api::Device {
            host_path: "/dev/crius-nope".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(matches!(f.spec(&missing), Err(SpecError::NotFound(_))));
    let not_dev = api::ContainerConfig {
        devices: vec![api::Device {
            host_path: "/etc/hostname".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(f.spec(&not_dev).is_err());
}

#[test]
fn annotations_and_root() {
    let f = Fixture::new();
    let cfg = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        annotations: HashMap::from([
            ("user.key".to_string(), "v".to_string()),
            (annotations::CONTAINER_TYPE.to_string(), "spoof".to_string()),
        ]),
        ..Default::default()
    };
    let spec = f.spec(&cfg).unwrap();
    let a = spec.annotations().clone().unwrap();
    assert_eq!(a[annotations::CONTAINER_TYPE], "container");
    assert_eq!(a[annotations::SANDBOX_ID], "sb1");
    assert_eq!(a[annotations::CONTAINER_NAME], "app");
    assert_eq!(a[annotations::SANDBOX_NAMESPACE], "default");
    assert_eq!(
        a[annotations::IMAGE_NAME],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(a["user.key"], "v");
    let root = spec.root().clone().unwrap();
    assert_eq!(
        (root.path().as_path(), root.readonly()),
        (f.rootfs.as_path(), Some(false))
    );
    let p = spec.process().clone().unwrap();
    assert_eq!(p.args().clone().unwrap(), s(&["sleep", "1"]));
    // The spec serialises to runtime-spec JSON.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["ociVersion"], "1.2.0");
    assert_eq!(json["linux"]["cgroupsPath"], "/kubepods/pod1/crius-c1");
}

#[test]
fn cgroups_path_forms() {
    assert_eq!(cgroups_path("/crius", "x"), "/crius/crius-x");
    assert_eq!(
        cgroups_path("/kubepods/pod1/", "x"),
        "/kubepods/pod1/crius-x"
    );
    assert_eq!(cgroups_path("", "x"), "/crius-x");
    assert_eq!(cgroups_path("/", "x"), "/crius-x");
}

#[test]
fn stop_signal_parsing() {
    let img = |s: Option<&str>| image(serde_json::json!({"StopSignal": s}));
    let rtmin = libc::SIGRTMIN();
    for (raw, want) in [
        (None, 15),
        (Some("SIGTERM"), 15),
        (Some("TERM"), 15),
        (Some("sigkill"), 9),
        (Some("15"), 15),
        (Some("SIGQUIT"), 3),
        (Some("SIGRTMIN"), rtmin),
        (Some("SIGRTMIN+3"), rtmin + 3),
        (Some("SIGRTMAX-1"), libc::SIGRTMAX() - 1),
    ] {
        assert_eq!(stop_signal(&img(raw)).unwrap(), want, "{raw:?}");
    }
    for bad in ["SIGNOPE", "0", "999", "SIGRTMIN+99", "SIGRTMIN-1", "-3"] {
        assert!(
            matches!(
                stop_signal(&img(Some(bad))),
                Err(SpecError::InvalidArgument(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn pause_spec_shape() {
    let mut f = Fixture::new();
    f.pod_cfg.linux = Some(api::LinuxPodSandboxConfig {
        sysctls: HashMap::from([(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        )]),
        security_context: Some(api::LinuxSandboxSecurityContext {
            run_as_user: Some(api::Int64Value { value: 65535 }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let p = PauseContext {
        id: "sb1",
        rootfs: &f.rootfs,
        pause: Path::new("/run/crius/pause"),
        image_args: None,
    };
    let spec = pause_spec(&f.pod(), &p, &opts()).unwrap();
    let proc = spec.process().clone().unwrap();
    assert_eq!(proc.args().clone().unwrap(), s(&["/pause"]));
    assert_eq!((proc.user().uid(), proc.user().gid()), (65535, 0));
    assert_eq!(proc.no_new_privileges(), Some(true));
    assert_eq!(proc.oom_score_adj(), Some(-998));
    let caps = proc.capabilities().clone().unwrap();
    assert!(
        caps.bounding().as_ref().unwrap().is_empty()
            && caps.effective().as_ref().unwrap().is_empty()
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    let pause = find(&spec, "/pause").unwrap();
    assert_eq!(
        pause.source().as_deref(),
        Some(Path::new("/run/crius/pause"))
    );
    assert!(opts_of(pause).contains(&"ro".to_string()));
    assert!(find(&spec, "/usr").is_none() && find(&spec, "/proc").is_some());
    let linux = spec.linux().clone().unwrap();
    assert!(
        linux.seccomp().is_some(),
        "RuntimeDefault unless the pod says otherwise"
    );
    assert!(
        linux.sysctl().is_none(),
        "the pod's sysctls are written at pinning, not by the pause"
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/kubepods/pod1/crius-sb1"))
    );
    let ns = namespaces(&spec);
    assert_eq!(ns[&LinuxNamespaceType::Pid], None);
    assert_eq!(spec.hostname().as_deref(), Some("web-host"));

    // A pause image: its own command, nothing of the host bound in.
    let from_image = PauseContext {
        image_args: Some(s(&["/pause"])),
        ..p
    };
    let image_spec = pause_spec(&f.pod(), &from_image, &opts()).unwrap();
    assert_eq!(
        image_spec
            .process()
            .clone()
            .unwrap()
            .args()
            .clone()
            .unwrap(),
        s(&["/pause"])
    );
    assert!(find(&image_spec, "/usr").is_none() && find(&image_spec, "/pause").is_none());
    let empty = PauseContext {
        image_args: Some(Vec::new()),
        ..from_image
    };
    assert!(matches!(
        pause_spec(&f.pod(), &empty, &opts()),
        Err(SpecError::InvalidArgument(_))
    ));
    assert_eq!(
        spec.annotations().as_ref().unwrap()[annotations::CONTAINER_TYPE],
        "sandbox"
    );

    // Host pid pod: no pid namespace.
    f.pod_cfg.linux = Some(api::LinuxPodSandboxConfig {
        security_context: Some(api::LinuxSandboxSecurityContext {
            namespace_options: Some(api::NamespaceOption {
                pid: api::NamespaceMode::Node as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(
        !namespaces(&pause_spec(&f.pod(), &p, &opts()).unwrap())
            .contains_key(&LinuxNamespaceType::Pid)
    );
}
