//! Behaviour tests: capabilities, privileged containers, masked paths, seccomp, AppArmor.

use std::collections::HashSet;

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccompAction, Spec};

use super::tests::{Fixture, opts, with_sc};
use super::*;
use crate::api;
use crate::api::security_profile::ProfileType;
use crate::libcontainer::seccomp as compiler;

fn caps_of(spec: &Spec) -> LinuxCapabilities {
    spec.process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap()
}

fn set(names: &[Capability]) -> HashSet<Capability> {
    names.iter().copied().collect()
}

fn with_caps(add: &[&str], drop: &[&str], ambient: &[&str]) -> api::ContainerConfig {
    with_sc(api::LinuxContainerSecurityContext {
        capabilities: Some(api::Capability {
            add_capabilities: add.iter().map(|s| s.to_string()).collect(),
            drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
            add_ambient_capabilities: ambient.iter().map(|s| s.to_string()).collect(),
        }),
        ..Default::default()
    })
}

#[test]
fn capability_add_drop_all() {
    use Capability::*;
    let f = Fixture::new();
    let defaults = set(&[
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Setgid,
        Setuid,
        Setpcap,
        NetBindService,
        Kill,
    ]);
    let c = caps_of(&f.spec(&api::ContainerConfig::default()).unwrap());
    assert_eq!(c.bounding().clone().unwrap(), defaults);
    assert_eq!(c.effective().clone().unwrap(), defaults);
    assert_eq!(c.permitted().clone().unwrap(), defaults);
    assert!(
        c.inheritable().as_ref().unwrap().is_empty() && c.ambient().as_ref().unwrap().is_empty()
    );

    let c = caps_of(
        &f.spec(&with_caps(
            &["net_admin", "CAP_SYS_TIME"],
            &["KILL", "cap_chown"],
            &[],
        ))
        .unwrap(),
    );
    let mut want = defaults.clone();
    want.extend([NetAdmin, SysTime]);
    want.remove(&Kill);
    want.remove(&Chown);
    assert_eq!(c.bounding().clone().unwrap(), want);

    let c = caps_of(&f.spec(&with_caps(&["NET_RAW"], &["ALL"], &[])).unwrap());
    assert_eq!(c.bounding().clone().unwrap(), set(&[NetRaw]));
    let c = caps_of(&f.spec(&with_caps(&["all"], &["SYS_ADMIN"], &[])).unwrap());
    let b = c.bounding().clone().unwrap();
    assert!(b.contains(&SysPtrace) && !b.contains(&SysAdmin));

    let c = caps_of(
        &f.spec(&with_caps(&[], &["ALL"], &["NET_BIND_SERVICE"]))
            .unwrap(),
    );
    assert_eq!(c.ambient().clone().unwrap(), set(&[NetBindService]));
    assert_eq!(c.inheritable().clone().unwrap(), set(&[NetBindService]));
    assert_eq!(c.effective().clone().unwrap(), set(&[NetBindService]));

    for bad in [
        with_caps(&["CAP_NOPE"], &[], &[]),
        with_caps(&[], &["bogus"], &[]),
    ] {
        assert!(matches!(f.spec(&bad), Err(SpecError::InvalidArgument(_))));
    }
}

fn privileged_sc() -> api::LinuxContainerSecurityContext {
    api::LinuxContainerSecurityContext {
        privileged: true,
        seccomp: Some(api::SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        ..Default::default()
    }
}

#[test]
fn privileged_container() {
    let mut f = Fixture::new();
    // The sandbox must be privileged too.
    assert!(matches!(
        f.spec(&with_sc(privileged_sc())),
        Err(SpecError::InvalidArgument(_))
    ));
    f.pod_cfg.linux = Some(api::LinuxPodSandboxConfig {
        security_context: Some(api::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let spec = f.spec(&with_sc(privileged_sc())).unwrap();
    let b = caps_of(&spec).bounding().clone().unwrap();
    assert!(b.contains(&Capability::SysAdmin) && b.contains(&Capability::NetAdmin));
    let linux = spec.linux().clone().unwrap();
    assert!(linux.seccomp().is_none());
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert_eq!(linux.readonly_paths().as_deref(), Some(&[][..]));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow() && rules[0].to_string() == "a *:* rwm");
    let devs = linux.devices().clone().unwrap_or_default();
    assert!(
        devs.iter()
            .any(|d| d.path() == std::path::Path::new("/dev/null"))
    );
    assert!(devs.iter().all(
        |d| !d.path().starts_with("/dev/pts") && d.path() != std::path::Path::new("/dev/ptmx")
    ));
    for dest in ["/sys", "/sys/fs/cgroup"] {
        let m = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == std::path::Path::new(dest))
            .unwrap();
        assert!(
            m.options().as_ref().unwrap().contains(&"rw".to_string()),
            "{dest}"
        );
    }
    // No cgroup namespace for privileged containers.
    let ns = linux.namespaces().clone().unwrap();
    assert!(
        ns.iter()
            .all(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Cgroup)
    );
}

#[test]
fn masked_and_readonly_paths() {
    let f = Fixture::new();
    let linux = f
        .spec(&api::ContainerConfig::default())
        .unwrap()
        .linux()
        .clone()
        .unwrap();
    let masked = linux.masked_paths().clone().unwrap();
    assert!(
        masked.contains(&"/proc/kcore".to_string())
            && masked.contains(&"/sys/devices/virtual/powercap".to_string())
    );
    assert!(
        linux
            .readonly_paths()
            .clone()
            .unwrap()
            .contains(&"/proc/sys".to_string())
    );
    let own = with_sc(api::LinuxContainerSecurityContext {
        masked_paths: vec!["/proc/x".into()],
        readonly_paths: vec!["/proc/y".into()],
        no_new_privs: true,
        readonly_rootfs: true,
        ..Default::default()
    });
    let spec = f.spec(&own).unwrap();
    let linux = spec.linux().clone().unwrap();
    assert_eq!(
        linux.masked_paths().clone().unwrap(),
        vec!["/proc/x".to_string()]
    );
    assert_eq!(
        linux.readonly_paths().clone().unwrap(),
        vec!["/proc/y".to_string()]
    );
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
}

#[test]
fn runtime_default_profile_compiles_with_crius_compiler() {
    let unknown: Vec<&str> = seccomp_default::all_names()
        .into_iter()
        .filter(|n| !compiler::known_syscall(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "syscalls unknown to crius' seccomp compiler: {unknown:?}"
    );
    let none = HashSet::new();
    let all: HashSet<Capability> = security::all_capabilities();
    for bounding in [&none, &all] {
        let p = seccomp_default::profile(bounding).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        let prog = compiler::compile(&p).unwrap();
        assert!(!prog.is_empty() && prog.len() < 4096);
    }
    // mount is only allowed with CAP_SYS_ADMIN in the bounding set.
    let names = |p: &oci_spec::runtime::LinuxSeccomp| -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
            .flat_map(|s| s.names().clone())
            .collect()
    };
    assert!(!names(&seccomp_default::profile(&none).unwrap()).contains(&"mount".to_string()));
    assert!(names(&seccomp_default::profile(&all).unwrap()).contains(&"mount".to_string()));
}

fn seccomp_sc(t: ProfileType, r: &str) -> api::ContainerConfig {
    with_sc(api::LinuxContainerSecurityContext {
        seccomp: Some(api::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        }),
        ..Default::default()
    })
}

#[test]
fn seccomp_selection() {
    let f = Fixture::new();
    let sec = |cfg: &api::ContainerConfig| {
        f.spec(cfg)
            .map(|s| s.linux().as_ref().unwrap().seccomp().clone())
    };
    assert!(
        sec(&api::ContainerConfig::default()).unwrap().is_none(),
        "unset means unconfined"
    );
    assert!(
        sec(&seccomp_sc(ProfileType::Unconfined, ""))
            .unwrap()
            .is_none()
    );
    assert!(
        sec(&seccomp_sc(ProfileType::RuntimeDefault, ""))
            .unwrap()
            .is_some()
    );
    #[allow(deprecated)]
    let legacy = with_sc(api::LinuxContainerSecurityContext {
        seccomp_profile_path: "runtime/default".into(),
        ..Default::default()
    });
    assert!(sec(&legacy).unwrap().is_some());

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
    let p = sec(&seccomp_sc(ProfileType::Localhost, good.to_str().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    assert!(matches!(
        sec(&seccomp_sc(ProfileType::Localhost, bad.to_str().unwrap())),
        Err(SpecError::InvalidArgument(_))
    ));
    let missing = dir.path().join("missing.json");
    assert!(matches!(
        sec(&seccomp_sc(
            ProfileType::Localhost,
            missing.to_str().unwrap()
        )),
        Err(SpecError::NotFound(_))
    ));
    assert!(matches!(
        sec(&seccomp_sc(ProfileType::Localhost, "rel.json")),
        Err(SpecError::InvalidArgument(_))
    ));
}

#[test]
fn apparmor_selection() {
    let f = Fixture::new();
    let aa = |t: ProfileType, r: &str| {
        with_sc(api::LinuxContainerSecurityContext {
            apparmor: Some(api::SecurityProfile {
                profile_type: t as i32,
                localhost_ref: r.into(),
            }),
            ..Default::default()
        })
    };
    let on = SpecOptions {
        apparmor_enabled: true,
        ..opts()
    };
    let profile = |cfg: &api::ContainerConfig, o: &SpecOptions| {
        f.spec_with(cfg, o)
            .map(|s| s.process().as_ref().unwrap().apparmor_profile().clone())
    };
    assert_eq!(
        profile(&aa(ProfileType::Localhost, "my-prof"), &on)
            .unwrap()
            .as_deref(),
        Some("my-prof")
    );
    assert_eq!(
        profile(&aa(ProfileType::RuntimeDefault, ""), &on).unwrap(),
        None
    );
    assert!(matches!(
        profile(&aa(ProfileType::Localhost, "my-prof"), &opts()),
        Err(SpecError::FailedPrecondition(_))
    ));
    assert_eq!(
        profile(&aa(ProfileType::RuntimeDefault, ""), &opts()).unwrap(),
        None
    );
    assert_eq!(
        profile(&aa(ProfileType::Unconfined, ""), &opts()).unwrap(),
        None
    );
}
