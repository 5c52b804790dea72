//! Many containers made at once under cgroup parents that do not exist yet (root). On cgroup v1
//! a cpuset cgroup takes no process until its cpus and mems are filled, in it and in every
//! ancestor; a creator that finds an ancestor another creator has just made must not use it
//! before it is filled. Each creation must succeed: `crius oci create` processes started
//! together, and pods run together through the daemon (their pause containers' creates).

mod oci_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Barrier;

use crius_e2e::cri::api::{NamespaceMode, NamespaceOption, PodSandboxState};
use crius_e2e::pods::env::remove_cgroup_tree;
use crius_e2e::pods::{PodEnv, pod_config, with_namespaces};
use oci_common::*;

/// `crius oci create` processes started together, per round.
const CREATES: usize = 48;
/// Rounds, each under new parents.
const ROUNDS: usize = 4;
/// Pods run together through the daemon, in groups under parents of their own.
const PODS: usize = 64;
const GROUPS: usize = 16;

/// Removes a test's cgroup parent (and what is under it) in every hierarchy, also when the test
/// fails; the containers in it are deleted before (the [`Runtime`] drops first).
struct ParentGuard(String);

impl Drop for ParentGuard {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.0);
    }
}

/// A bundle directory of its own for container `i`, sharing `base`'s root file system.
fn bundle_for(base: &Bundle, dir: &Path, cgroup: &str) -> PathBuf {
    let mut config = base_config(&["true"], &base.obs(), cgroup);
    config["root"]["path"] = base.rootfs().to_str().unwrap().into();
    std::fs::create_dir(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

#[test]
fn concurrent_oci_creates_under_new_nested_parents_all_succeed() {
    let parent = format!("/crius-race-{}", unique());
    // Dropped last: after the runtime has deleted the containers in it.
    let _parent = ParentGuard(parent.clone());
    let rt = Runtime::crius();
    let base = Bundle::new(&["true"]);
    let bundles = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        // Every level of the path is new: the round's directory, the pod's, the container's.
        let commands: Vec<(String, Command)> = (0..CREATES)
            .map(|i| {
                let id = format!("race-{round}-{i}-{}", unique());
                let cgroup = format!("{parent}/r{round}/pod/c{i}");
                rt.ids.borrow_mut().push(id.clone());
                rt.cgroups.borrow_mut().push(cgroup.clone());
                let dir = bundle_for(&base, &bundles.path().join(&id), &cgroup);
                let mut c = rt.command();
                c.arg("create").arg("--bundle").arg(dir).arg(&id);
                (id, c)
            })
            .collect();
        let barrier = Barrier::new(CREATES);
        let outputs: Vec<(String, Output)> = std::thread::scope(|s| {
            let running: Vec<_> = commands
                .into_iter()
                .map(|(id, c)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        (id, run_with_files(c))
                    })
                })
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for (id, out) in outputs {
            if out.status.success() {
                assert_eq!(rt.state(&id)["status"], "created", "{id}");
            } else {
                failures.push(format!(
                    "{id}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} creates failed:\n{}",
        failures.len(),
        CREATES * ROUNDS,
        failures.join("\n")
    );
    for id in rt.ids.borrow().iter() {
        rt.ok(&["delete", "--force", id]);
    }
}

#[tokio::test]
async fn pods_run_together_under_new_cgroup_parents_all_start() {
    let env = PodEnv::start().await.unwrap();
    // New levels under the daemon's own parent, which does not exist yet either: `top`, and in
    // it one parent per group of pods, each a race of its own among the group's first creates.
    let (top_unit, top) = if env.systemd {
        let stem = env.cgroup_parent.trim_end_matches(".slice");
        let slice = format!("{stem}-burst.slice");
        let path = crius_e2e::cgroups::parent_path(&slice);
        (Some(slice), path)
    } else {
        (None, format!("{}/burst", env.cgroup_parent))
    };
    let parent_of = |i: usize| match &top_unit {
        Some(slice) => format!("{}-g{}.slice", slice.trim_end_matches(".slice"), i % GROUPS),
        None => format!("{top}/g{}/pods", i % GROUPS),
    };
    let runs = (0..PODS).map(|i| {
        // On the node's network: no CNI ADD (serialised by its IPAM lock) spreads the pause
        // containers' creates apart.
        let mut config = with_namespaces(
            pod_config(&format!("burst-{i}"), &env.log_dir(&format!("b{i}"))),
            NamespaceOption {
                network: NamespaceMode::Node as i32,
                ..Default::default()
            },
        );
        config.linux.get_or_insert_default().cgroup_parent = parent_of(i);
        let socket = env.socket().to_path_buf();
        async move {
            let mut flow = crius_e2e::pods::PodFlow::connect(&socket).await.unwrap();
            flow.run_pod(&config).await
        }
    });
    let results = futures::future::join_all(runs).await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|s| s.message().to_string()))
        .collect();
    let mut flow = env.flow().await.unwrap();
    let mut not_ready = Vec::new();
    for id in results.iter().flatten() {
        let status = flow.pod_status(id).await.unwrap();
        if status.state != PodSandboxState::SandboxReady as i32 {
            not_ready.push(id.clone());
        }
    }
    flow.cleanup_all().await.unwrap();
    // The parents are the kubelet's to remove (crius leaves pod parents in place).
    if let Some(slice) = &top_unit {
        crius_e2e::cgroups::stop_unit(slice);
    }
    remove_cgroup_tree(&top);
    assert!(
        failures.is_empty(),
        "{} of {PODS} pods failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(not_ready.is_empty(), "not ready: {not_ready:?}");
    let leaks = env.leaks();
    assert!(leaks.is_empty(), "{leaks}");
}
