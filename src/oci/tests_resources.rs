//! CRI resources in the spec, fitted to the host's cgroups, and cgroupsPath under a systemd
//! slice.

use std::collections::HashMap;

use super::tests::{Fixture, full_v2_host, opts};
use super::*;
use crate::api;

#[test]
fn resources_mapping() {
    let f = Fixture::new();
    let res = api::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 << 20,
        oom_score_adj: 500,
        cpuset_cpus: "0-1".into(),
        cpuset_mems: "0".into(),
        hugepage_limits: vec![api::HugepageLimit {
            page_size: "2MB".into(),
            limit: 4 << 20,
        }],
        unified: HashMap::from([("memory.high".to_string(), "1000000".to_string())]),
        ..Default::default()
    };
    let cfg = api::ContainerConfig {
        linux: Some(api::LinuxContainerConfig {
            resources: Some(res.clone()),
            security_context: None,
        }),
        ..Default::default()
    };
    let spec = f.spec(&cfg).unwrap();
    let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    let cpu = r.cpu().clone().unwrap();
    assert_eq!(
        (cpu.shares(), cpu.quota(), cpu.period()),
        (Some(512), Some(50_000), Some(100_000))
    );
    assert_eq!(
        (cpu.cpus().as_deref(), cpu.mems().as_deref()),
        (Some("0-1"), Some("0"))
    );
    let mem = r.memory().unwrap();
    assert_eq!((mem.limit(), mem.swap()), (Some(64 << 20), Some(64 << 20)));
    let hp = &r.hugepage_limits().clone().unwrap()[0];
    assert_eq!((hp.page_size().as_str(), hp.limit()), ("2MB", 4 << 20));
    assert_eq!(r.unified().as_ref().unwrap()["memory.high"], "1000000");
    assert_eq!(spec.process().as_ref().unwrap().oom_score_adj(), Some(500));
    assert_eq!(
        spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
        Some(Path::new("/kubepods/pod1/crius-c1"))
    );

    // Explicit swap (memory+swap), unified ignored on v1, invalid values refused.
    let v1 = SpecOptions {
        cgroups: HostCgroups {
            version: CgroupVersion::V1,
            ..full_v2_host()
        },
        ..opts()
    };
    let with_swap = api::LinuxContainerResources {
        memory_swap_limit_in_bytes: 128 << 20,
        ..res.clone()
    };
    let r = resources::container_resources(&with_swap, &v1).unwrap();
    assert_eq!(r.memory().unwrap().swap(), Some(128 << 20));
    assert_eq!(r.unified(), &None);
    let low_swap = api::LinuxContainerResources {
        memory_swap_limit_in_bytes: 1,
        ..res.clone()
    };
    assert!(resources::container_resources(&low_swap, &v1).is_err());
    let swap_only = api::LinuxContainerResources {
        memory_swap_limit_in_bytes: 1 << 30,
        ..Default::default()
    };
    assert_eq!(
        resources::container_resources(&swap_only, &v1)
            .unwrap()
            .memory(),
        &None
    );
    let bad_oom = api::LinuxContainerResources {
        oom_score_adj: 1001,
        ..Default::default()
    };
    assert!(resources::oom_score_adj(&bad_oom).is_err());
    assert_eq!(
        resources::container_resources(&Default::default(), &v1).unwrap(),
        Default::default()
    );
}

#[test]
fn resources_the_host_cannot_apply_are_dropped() {
    // What the kubelet sends every container: a 0 limit for each huge page size.
    let res = api::LinuxContainerResources {
        cpu_shares: 2,
        cpuset_cpus: "0".into(),
        memory_limit_in_bytes: 64 << 20,
        hugepage_limits: ["2MB", "1GB"]
            .map(|size| api::HugepageLimit {
                page_size: size.into(),
                limit: 0,
            })
            .into(),
        unified: HashMap::from([
            ("memory.high".to_string(), "max".to_string()),
            ("rdma.max".to_string(), "mlx4_0 hca_handle=2".to_string()),
            ("cgroup.max.depth".to_string(), "5".to_string()),
        ]),
        ..Default::default()
    };
    // This machine's shape: v1 without a hugetlb hierarchy (it is bound to the hybrid cgroup2).
    let v1_no_hugetlb = SpecOptions {
        cgroups: HostCgroups {
            version: CgroupVersion::V1,
            controllers: ["cpu", "cpuacct", "cpuset", "memory", "pids"]
                .map(String::from)
                .into(),
            hugepage_sizes: ["2MB", "1GB"].map(String::from).into(),
        },
        ..opts()
    };
    let r = resources::container_resources(&res, &v1_no_hugetlb).unwrap();
    assert_eq!(r.hugepage_limits(), &None);
    assert_eq!(r.cpu().clone().unwrap().shares(), Some(2));
    assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));

    // v2 with hugetlb but only 2MB pages, no rdma and no cpuset.
    let mut v2 = full_v2_host();
    v2.hugepage_sizes = ["2MB".to_string()].into();
    v2.controllers.remove("rdma");
    v2.controllers.remove("cpuset");
    let o = SpecOptions {
        cgroups: v2,
        ..opts()
    };
    let r = resources::container_resources(&res, &o).unwrap();
    let sizes: Vec<_> = r
        .hugepage_limits()
        .clone()
        .unwrap()
        .iter()
        .map(|l| l.page_size().clone())
        .collect();
    assert_eq!(sizes, ["2MB"]);
    let unified = r.unified().clone().unwrap();
    let mut keys: Vec<_> = unified.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["cgroup.max.depth", "memory.high"]);
    let cpu = r.cpu().clone().unwrap();
    assert_eq!((cpu.shares(), cpu.cpus().as_deref()), (Some(2), None));

    // Nothing left of a resource group: no empty group in the spec.
    let o = SpecOptions {
        cgroups: HostCgroups {
            controllers: Default::default(),
            ..full_v2_host()
        },
        ..opts()
    };
    let r = resources::container_resources(&res, &o).unwrap();
    assert_eq!(
        (r.cpu(), r.memory(), r.hugepage_limits()),
        (&None, &None, &None)
    );
    assert_eq!(r.unified().clone().unwrap().len(), 1);
}

#[test]
fn a_slice_parent_gives_a_systemd_scope() {
    let parent = "kubepods-burstable-pod1234.slice";
    assert_eq!(cgroups_path(parent, "c1"), format!("{parent}:crius:c1"));
    assert_eq!(
        cgroup_dir(parent, "c1").unwrap(),
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/crius-c1.scope"
    );
    assert_eq!(
        cgroups_path("/kubepods/pod1", "c1"),
        "/kubepods/pod1/crius-c1"
    );
    assert_eq!(
        cgroup_dir("/kubepods/pod1", "c1").unwrap(),
        "/kubepods/pod1/crius-c1"
    );
    assert!(cgroup_dir("bad--name.slice", "c1").is_err());
}
