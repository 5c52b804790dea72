//! What a node pays in memory per pod: with N pods of one container each running, the RSS and
//! PSS (`smaps_rollup`) of the daemon, of the per-container helpers (crius-monitor,
//! containerd-shim-runc-v2: found by executable name and a pod or container id on their
//! command line) and of the pause processes (the executable `--pause-exe` below a helper or
//! the daemon). The containers' own processes are not counted.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use crius_cri_api::v1::NamespaceMode;
use serde_json::{Value, json};

use super::suite::{STOP_TIMEOUT_SECS, Target, wait_ready};
use crate::pods::PodFlow;
use crate::pods::procs;

/// How long the pods run before the reading (lazy start-up work of the helpers settles).
const SETTLE: Duration = Duration::from_secs(2);
/// How far up the parent chain a pause's helper may be.
const MAX_DEPTH: usize = 8;

/// One process's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mem {
    pub pid: u32,
    pub exe: String,
    pub rss_kib: u64,
    pub pss_kib: u64,
}

impl Mem {
    fn of(pid: u32) -> Option<Mem> {
        Some(Mem {
            pid,
            exe: procs::exe_name(pid)?,
            rss_kib: procs::rss_kib(pid)?,
            pss_kib: procs::pss_kib(pid)?,
        })
    }
}

/// `{"count", "rss_kib", "pss_kib", "rss_each_kib", "pss_each_kib", "processes"}` of a group
/// (each: the mean).
pub fn group_json(group: &[Mem]) -> Value {
    let rss: u64 = group.iter().map(|m| m.rss_kib).sum();
    let pss: u64 = group.iter().map(|m| m.pss_kib).sum();
    let n = group.len().max(1) as u64;
    let processes: Vec<Value> = group
        .iter()
        .map(|m| json!({"pid": m.pid, "exe": m.exe, "rss_kib": m.rss_kib, "pss_kib": m.pss_kib}))
        .collect();
    json!({
        "count": group.len(),
        "rss_kib": rss,
        "pss_kib": pss,
        "rss_each_kib": rss / n,
        "pss_each_kib": pss / n,
        "processes": processes,
    })
}

/// Whether `pid`'s parent chain (within [`MAX_DEPTH`]) reaches one of `ancestors`.
fn below(pid: u32, ancestors: &HashSet<u32>) -> bool {
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        match procs::ppid(current) {
            Some(parent) if ancestors.contains(&parent) => return true,
            Some(parent) if parent > 1 => current = parent,
            _ => return false,
        }
    }
    false
}

/// Starts `n` pods of one container each, reads the memory of the daemon, helpers and pauses,
/// and removes the pods.
pub async fn run(target: &Target, n: usize) -> Result<Value> {
    let mut flow = PodFlow::connect(&target.options.socket).await?;
    let container = target.container();
    let daemon_before = target.daemon_pid.and_then(Mem::of);
    let (mut ids, mut pods) = (Vec::new(), Vec::new());
    for i in 0..n {
        let pod = target.pod(&format!("overhead-{i}"), NamespaceMode::Container)?;
        let pod_id = flow.run_pod(&pod).await.context("RunPodSandbox")?;
        let id = flow
            .create_and_start(&pod_id, &container, &pod)
            .await
            .context("CreateContainer + StartContainer")?;
        ids.push((pod_id, id));
        pods.push(pod);
    }
    tokio::time::sleep(SETTLE).await;
    for pod in &pods {
        wait_ready(pod).await?;
    }

    let needles: Vec<String> = ids
        .iter()
        .flat_map(|(p, c)| [p.clone(), c.clone()])
        .collect();
    let exclude: Vec<u32> = target.daemon_pid.into_iter().collect();
    let helpers: Vec<Mem> =
        procs::find_processes(&needles, target.options.helper_exe.as_deref(), &exclude)
            .into_iter()
            .filter_map(|p| Mem::of(p.pid))
            .collect();
    let mut parents: HashSet<u32> = helpers.iter().map(|m| m.pid).collect();
    parents.extend(target.daemon_pid);
    let pauses: Vec<Mem> = procs::pids()
        .into_iter()
        .filter(|pid| procs::exe_name(*pid).as_deref() == Some(target.options.pause_exe.as_str()))
        .filter(|pid| below(*pid, &parents))
        .filter_map(Mem::of)
        .collect();
    let daemon: Vec<Mem> = target.daemon_pid.and_then(Mem::of).into_iter().collect();
    let all: Vec<Mem> = daemon
        .iter()
        .chain(&helpers)
        .chain(&pauses)
        .cloned()
        .collect();
    let answer = json!({
        "pods": n,
        "daemon_before": group_json(&daemon_before.into_iter().collect::<Vec<_>>()),
        "daemon": group_json(&daemon),
        "helpers": group_json(&helpers),
        "pause": group_json(&pauses),
        "total": group_json(&all),
    });

    for (pod_id, id) in ids {
        flow.stop_container(&id, STOP_TIMEOUT_SECS).await?;
        flow.remove_container(&id).await?;
        flow.stop_pod(&pod_id).await?;
        flow.remove_pod(&pod_id).await?;
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sum_and_average() {
        let m = |pid, rss, pss| Mem {
            pid,
            exe: "x".into(),
            rss_kib: rss,
            pss_kib: pss,
        };
        let j = group_json(&[m(1, 100, 10), m(2, 300, 30)]);
        assert_eq!(j["count"], 2);
        assert_eq!(j["rss_kib"], 400);
        assert_eq!(j["pss_each_kib"], 20);
        assert_eq!(group_json(&[])["rss_each_kib"], 0);
    }

    #[test]
    fn a_grandchild_is_below_its_grandparent() {
        use std::os::unix::process::CommandExt;
        // sh (our child) -> sleep (its child).
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let me = HashSet::from([std::process::id()]);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let sleep = loop {
            let found = procs::pids()
                .into_iter()
                .find(|p| procs::ppid(*p) == Some(sh.id()));
            if let Some(p) = found {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "sleep never started");
            std::thread::sleep(Duration::from_millis(10));
        };
        let found = below(sleep, &me);
        let unrelated = below(sleep, &HashSet::from([u32::MAX]));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(sh.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = sh.wait();
        assert!(found);
        assert!(!unrelated);
    }
}
