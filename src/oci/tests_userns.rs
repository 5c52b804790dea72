//! Specs of pods with their own user namespace.

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::tests::{Fixture, opts, with_sc};
use super::*;
use crate::api;

fn maps() -> IdMaps {
    let m = |host_id| api::IdMapping {
        host_id,
        container_id: 0,
        length: 65536,
    };
    IdMaps {
        uids: vec![m(65536)],
        gids: vec![m(131072)],
    }
}

fn spec(f: &Fixture, maps: &IdMaps, cfg: &api::ContainerConfig) -> Result<Spec, SpecError> {
    let mut pod = f.pod();
    pod.userns = Some(PodUserns {
        path: Path::new("/run/crius/ns/user/sb1"),
        maps,
    });
    let c = ContainerContext {
        id: "c1",
        config: cfg,
        image: &f.image,
        image_name: "busybox",
        rootfs: &f.rootfs,
        image_volumes: Path::new("/run/c1/volumes"),
        target_pid: None,
    };
    container_spec(&pod, &c, &opts())
}

#[test]
fn containers_join_the_pod_user_namespace_with_its_mappings() {
    let f = Fixture::new();
    let maps = maps();
    let spec = spec(&f, &maps, &api::ContainerConfig::default()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let ns = linux.namespaces().as_ref().unwrap();
    assert_eq!(ns[0].typ(), LinuxNamespaceType::User);
    assert_eq!(
        ns[0].path().as_deref(),
        Some(Path::new("/run/crius/ns/user/sb1"))
    );
    let uids = linux.uid_mappings().as_ref().unwrap();
    let gids = linux.gid_mappings().as_ref().unwrap();
    assert_eq!((uids[0].host_id(), uids[0].size()), (65536, 65536));
    assert_eq!(gids[0].host_id(), 131072);

    // Without a user namespace: none of it.
    let plain = f.spec(&api::ContainerConfig::default()).unwrap();
    let linux = plain.linux().as_ref().unwrap();
    assert!(linux.uid_mappings().is_none());
    assert!(
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .all(|n| n.typ() != LinuxNamespaceType::User)
    );
}

#[test]
fn volumes_are_idmapped_with_the_pod_or_their_own_mappings() {
    let f = Fixture::new();
    let maps = maps();
    let host = f.files.join("shm").to_string_lossy().to_string();
    let vol = |dest: &str, own: Vec<api::IdMapping>| api::Mount {
        container_path: dest.into(),
        host_path: host.clone(),
        uid_mappings: own.clone(),
        gid_mappings: own,
        ..Default::default()
    };
    let own = vec![api::IdMapping {
        host_id: 1000,
        container_id: 5,
        length: 1,
    }];
    let cfg = api::ContainerConfig {
        mounts: vec![vol("/pod", vec![]), vol("/own", own.clone())],
        ..Default::default()
    };
    let spec = spec(&f, &maps, &cfg).unwrap();
    let find = |d: &str| {
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new(d))
            .unwrap()
            .clone()
    };
    let pod_vol = find("/pod");
    assert!(
        pod_vol
            .options()
            .as_ref()
            .unwrap()
            .contains(&"idmap".into())
    );
    assert_eq!(pod_vol.uid_mappings().as_ref().unwrap()[0].host_id(), 65536);
    assert_eq!(
        pod_vol.gid_mappings().as_ref().unwrap()[0].host_id(),
        131072
    );
    let own_vol = find("/own");
    assert_eq!(own_vol.uid_mappings().as_ref().unwrap()[0].host_id(), 1000);
    // The pod's own files are chowned instead, not id-mapped.
    assert!(find("/etc/hostname").uid_mappings().is_none());

    // A mount's own mappings also work in a pod without a user namespace; bad ones do not.
    let plain = f
        .spec(&api::ContainerConfig {
            mounts: vec![vol("/own", own)],
            ..Default::default()
        })
        .unwrap();
    let m = plain.mounts().as_ref().unwrap().last().unwrap().clone();
    assert_eq!(m.uid_mappings().as_ref().unwrap()[0].container_id(), 5);
    let bad = vec![api::IdMapping {
        host_id: 1,
        container_id: 0,
        length: 0,
    }];
    assert!(matches!(
        f.spec(&api::ContainerConfig {
            mounts: vec![vol("/bad", bad)],
            ..Default::default()
        }),
        Err(SpecError::InvalidArgument(_))
    ));
}

#[test]
fn privileged_containers_are_refused_in_a_user_namespace_pod() {
    let mut f = Fixture::new();
    f.pod_cfg.linux = Some(api::LinuxPodSandboxConfig {
        security_context: Some(api::LinuxSandboxSecurityContext {
            privileged: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let cfg = with_sc(api::LinuxContainerSecurityContext {
        privileged: true,
        ..Default::default()
    });
    assert!(f.spec(&cfg).is_ok());
    let err = spec(&f, &maps(), &cfg).unwrap_err();
    assert!(err.to_string().contains("user namespace"), "{err}");
}
