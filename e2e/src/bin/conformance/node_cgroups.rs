//! The node's cgroups, per cgroup driver: where the kubelet puts its pod hierarchy (its
//! `cgroupRoot`), crius' default parent and monitor cgroup, and how they are made and removed.
//!
//! - **cgroupfs** (this host: cgroup v1 hybrid, no systemd): the kubelet's root is the cgroupfs
//!   path `/crius-conformance-<n>`, created beforehand in every v1 hierarchy.
//! - **systemd** (a systemd node, e.g. the pure cgroup v2 VM of hack/vm/): the kubelet is given
//!   the same `cgroupRoot`, which its systemd driver names `crius_conformance_<n>.slice` (`-`
//!   becomes `_` in a slice name, as `-` is a slice level), and makes
//!   `crius_conformance_<n>-kubepods.slice` and the QoS and pod slices in it; crius puts each
//!   container in a `crius-<id>.scope` of the pod's slice. The top slice is a transient unit
//!   this harness starts over D-Bus, the way a real node's `kubepods.slice` sits in `-.slice`,
//!   and stopping it on teardown stops everything left in it.
//!
//! Either way the monitors go to the cgroupfs path `/crius-conformance-<n>-monitors`
//! (`monitor_cgroup` is one under both drivers).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crius_e2e::cgroups::{CGROUP_ROOT, is_unified};
use crius_e2e::pods::env::remove_cgroup_tree;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    pub fn parse(value: &str) -> Result<CgroupDriver> {
        match value {
            "cgroupfs" => Ok(CgroupDriver::Cgroupfs),
            "systemd" => Ok(CgroupDriver::Systemd),
            other => bail!("--cgroup-driver is cgroupfs or systemd, not {other:?}"),
        }
    }

    /// The name crius' `cgroup_manager` and the kubelet's `cgroupDriver` both use.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

pub struct NodeCgroups {
    pub driver: CgroupDriver,
    n: u8,
}

impl NodeCgroups {
    pub fn new(driver: CgroupDriver, n: u8) -> Result<NodeCgroups> {
        if driver == CgroupDriver::Systemd && !Path::new("/run/systemd/system").is_dir() {
            bail!("--cgroup-driver systemd needs a host booted with systemd");
        }
        Ok(NodeCgroups { driver, n })
    }

    /// The kubelet's `cgroupRoot`, always in cgroupfs form (the kubelet converts it for its
    /// systemd driver).
    pub fn kubelet_root(&self) -> String {
        format!("/crius-conformance-{}", self.n)
    }

    /// The systemd slice the kubelet's root becomes under the systemd driver.
    fn slice(&self) -> String {
        format!("crius_conformance_{}.slice", self.n)
    }

    /// crius' `[runtime] cgroup_parent` (pods the kubelet sends always name their own).
    pub fn crius_parent(&self) -> String {
        match self.driver {
            CgroupDriver::Cgroupfs => self.kubelet_root(),
            CgroupDriver::Systemd => self.slice(),
        }
    }

    pub fn monitor_cgroup(&self) -> String {
        format!("{}-monitors", self.kubelet_root())
    }

    /// Where the kubelet's root is in the cgroup file system, relative to its root.
    fn root_path(&self) -> String {
        match self.driver {
            CgroupDriver::Cgroupfs => self.kubelet_root(),
            CgroupDriver::Systemd => format!("/{}", self.slice()),
        }
    }

    /// Makes the kubelet's root, which it checks for before it starts.
    pub fn create(&self) -> Result<()> {
        match self.driver {
            CgroupDriver::Cgroupfs => create_cgroupfs_root(&self.kubelet_root()),
            CgroupDriver::Systemd => self.start_slice(),
        }
    }

    /// Starts the slice as a transient unit with a CPU weight and memory, I/O and task
    /// accounting (so systemd enables those controllers for it), then enables every other
    /// controller the root offers (cpuset, hugetlb: the kubelet refuses a root without them, and
    /// systemd does not manage hugetlb at all) in the root's `cgroup.subtree_control`. systemd
    /// turns cpuset off again when it next realizes the root's children, unless a child has it
    /// in its own `subtree_control` by then: the kubelet's cgroup manager enables every
    /// controller down to its `kubepods` slice at start, right after this.
    fn start_slice(&self) -> Result<()> {
        let root = Path::new(CGROUP_ROOT);
        if !is_unified(root) {
            bail!("--cgroup-driver systemd is supported on a pure cgroup v2 host only");
        }
        let slice = self.slice();
        let output = Command::new("busctl")
            .args([
                "call",
                "--system",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "StartTransientUnit",
                "ssa(sv)a(sa(sv))",
                &slice,
                "fail",
                "6",
                "Description",
                "s",
                "crius NodeConformance node (kubelet cgroupRoot)",
                "CPUAccounting",
                "b",
                "true",
                // On cgroup v2 accounting alone reads the always-present cpu.stat; a weight
                // makes systemd enable the cpu controller.
                "CPUWeight",
                "t",
                "100",
                "MemoryAccounting",
                "b",
                "true",
                "IOAccounting",
                "b",
                "true",
                "TasksAccounting",
                "b",
                "true",
                "0",
            ])
            .output()
            .context("running busctl")?;
        if !output.status.success() {
            bail!(
                "starting {slice}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let dir = root.join(self.root_path().trim_start_matches('/'));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.is_dir() {
            if Instant::now() >= deadline {
                bail!("{slice} started, but {} did not appear", dir.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let available = std::fs::read_to_string(root.join("cgroup.controllers"))?;
        let enabled = std::fs::read_to_string(root.join("cgroup.subtree_control"))?;
        for controller in available.split_whitespace() {
            if enabled.split_whitespace().any(|c| c == controller) {
                continue;
            }
            std::fs::write(
                root.join("cgroup.subtree_control"),
                format!("+{controller}"),
            )
            .with_context(|| format!("enabling {controller} in the root cgroup"))?;
        }
        eprintln!(
            "conformance: started {slice}; its controllers: {}",
            std::fs::read_to_string(dir.join("cgroup.controllers"))
                .unwrap_or_default()
                .trim()
        );
        Ok(())
    }

    /// Removes what the kubelet and crius left: the slice unit (and every slice and scope in
    /// it) under systemd, then the cgroup directories.
    pub fn remove(&self) {
        if self.driver == CgroupDriver::Systemd {
            let _ = Command::new("systemctl")
                .args(["stop", &self.slice()])
                .output();
        }
        remove_cgroup_tree(&self.root_path());
        remove_cgroup_tree(&self.monitor_cgroup());
    }
}

/// Creates the kubelet's cgroup root in every v1 hierarchy (cpuset's with the parent's cpus
/// and mems, which a new v1 cpuset cgroup lacks), or once on a v2 host.
fn create_cgroupfs_root(cgroup_root: &str) -> Result<()> {
    let rel = cgroup_root.trim_start_matches('/');
    let root = Path::new(CGROUP_ROOT);
    if is_unified(root) {
        std::fs::create_dir_all(root.join(rel))?;
        return Ok(());
    }
    for entry in std::fs::read_dir(root)?.flatten() {
        let hierarchy = entry.path();
        if entry.file_name() == "unified" || !hierarchy.join("cgroup.procs").exists() {
            continue;
        }
        let dir = hierarchy.join(rel);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(hierarchy.join(file)) {
                std::fs::write(dir.join(file), value.trim())
                    .with_context(|| format!("writing {}", dir.join(file).display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_per_driver() {
        let fs = NodeCgroups {
            driver: CgroupDriver::Cgroupfs,
            n: 7,
        };
        assert_eq!(fs.kubelet_root(), "/crius-conformance-7");
        assert_eq!(fs.crius_parent(), "/crius-conformance-7");
        assert_eq!(fs.root_path(), "/crius-conformance-7");
        assert_eq!(fs.monitor_cgroup(), "/crius-conformance-7-monitors");
        let sd = NodeCgroups {
            driver: CgroupDriver::Systemd,
            n: 7,
        };
        // The kubelet's systemd driver turns the root's '-' into '_' and adds ".slice".
        assert_eq!(sd.kubelet_root(), "/crius-conformance-7");
        assert_eq!(sd.crius_parent(), "crius_conformance_7.slice");
        assert_eq!(sd.root_path(), "/crius_conformance_7.slice");
        assert_eq!(sd.monitor_cgroup(), "/crius-conformance-7-monitors");
        assert!(CgroupDriver::parse("systemd").is_ok_and(|d| d.as_str() == "systemd"));
        assert!(CgroupDriver::parse("cgroupfs").is_ok_and(|d| d.as_str() == "cgroupfs"));
        assert!(CgroupDriver::parse("v2").is_err());
    }
}
