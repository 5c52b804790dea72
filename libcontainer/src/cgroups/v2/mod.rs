//! cgroup v2 (unified): a single directory per container. Controllers must
//! be enabled top-down through each ancestor's `cgroup.subtree_control`;
//! device access is an eBPF program attached to the directory.

pub mod bpf;
pub(crate) mod cpu;
mod cpuset;
pub mod devices;
mod hugetlb;
pub(crate) mod io;
pub(crate) mod memory;
mod pids;
mod unified;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::common::{self, read_file, read_optional, read_u64_opt, write_file};
use super::stats::{self, CpuStats, MemoryStats, PidsStats, Stats};
use super::{CgroupError, CgroupVersion, FastJoin, Manager, OomSource};

/// Controllers a container may need; only those the parent offers (its
/// `cgroup.controllers`) are enabled.
const WANTED_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "misc", "rdma",
];

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// One v2 controller: which part of the resources it handles and how.
pub(crate) trait Controller {
    /// Name in `cgroup.controllers`; `None` for interface files that need
    /// no controller.
    const NAME: Option<&'static str>;
    fn needs(r: &LinuxResources) -> bool;
    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError>;
}

#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    rel: PathBuf,
    dir: PathBuf,
    /// Load/attach device programs only on a real cgroup2 mount; on a fake
    /// tree (unit tests) the program is generated but not loaded.
    attach_bpf: bool,
}

impl V2Manager {
    pub fn new(cgroups_path: &str, root: &Path) -> Result<Self, CgroupError> {
        let rel = common::validate_cgroups_path(cgroups_path)?;
        let attach_bpf = statfs(root).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
        Ok(Self {
            root: root.to_path_buf(),
            dir: root.join(&rel),
            rel,
            attach_bpf,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn enabled(&self) -> Result<Vec<String>, CgroupError> {
        Ok(read_file(&self.dir, "cgroup.controllers")?
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }

    fn apply_controller<C: Controller>(
        &self,
        r: &LinuxResources,
        enabled: &[String],
    ) -> Result<(), CgroupError> {
        if !C::needs(r) {
            return Ok(());
        }
        if let Some(name) = C::NAME
            && !enabled.iter().any(|c| c == name)
        {
            return Err(CgroupError::ControllerUnavailable {
                controller: name,
                path: self.dir.clone(),
            });
        }
        C::apply(r, &self.dir)
    }

    fn cpu_stats(&self) -> Result<Option<CpuStats>, CgroupError> {
        // cpu.stat's usage fields exist even without the cpu controller.
        let Some(c) = read_optional(&self.dir, "cpu.stat")? else {
            return Ok(None);
        };
        let m = common::parse_flat_keyed(&c);
        let us = |k: &str| m.get(k).copied().unwrap_or(0).saturating_mul(1000);
        Ok(Some(CpuStats {
            usage_ns: us("usage_usec"),
            user_ns: us("user_usec"),
            system_ns: us("system_usec"),
            nr_periods: m.get("nr_periods").copied().unwrap_or(0),
            nr_throttled: m.get("nr_throttled").copied().unwrap_or(0),
            throttled_ns: us("throttled_usec"),
        }))
    }

    fn memory_stats(&self) -> Result<Option<MemoryStats>, CgroupError> {
        let Some(usage) = read_u64_opt(&self.dir, "memory.current")? else {
            return Ok(None);
        };
        let st = common::parse_flat_keyed(&read_file(&self.dir, "memory.stat")?);
        let get = |k: &str| st.get(k).copied().unwrap_or(0);
        let oom_kills = read_optional(&self.dir, "memory.events")?
            .map(|c| {
                common::parse_flat_keyed(&c)
                    .get("oom_kill")
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        Ok(Some(MemoryStats {
            usage_bytes: usage,
            working_set_bytes: stats::working_set(usage, get("inactive_file")),
            limit_bytes: read_u64_opt(&self.dir, "memory.max")?,
            rss_bytes: get("anon"),
            cache_bytes: get("file"),
            swap_bytes: read_u64_opt(&self.dir, "memory.swap.current")?.unwrap_or(0),
            page_faults: get("pgfault"),
            major_page_faults: get("pgmajfault"),
            oom_kills,
        }))
    }

    fn pids_stats(&self) -> Result<Option<PidsStats>, CgroupError> {
        let Some(current) = read_u64_opt(&self.dir, "pids.current")? else {
            return Ok(None);
        };
        Ok(Some(PidsStats {
            current,
            limit: read_u64_opt(&self.dir, "pids.max")?,
        }))
    }
}

/// Enables in `parent` every wanted controller it offers and has not
/// enabled yet. One write per controller so that one refusal (e.g. cpuset
/// not delegated) does not keep the others off; a controller that stays
/// off makes `apply` fail later with an error naming it.
fn enable_controllers(parent: &Path) -> Result<(), CgroupError> {
    let available = read_file(parent, "cgroup.controllers")?;
    let enabled = read_file(parent, "cgroup.subtree_control")?;
    for c in WANTED_CONTROLLERS {
        let offered = available.split_whitespace().any(|a| a == c);
        let on = enabled.split_whitespace().any(|a| a == c);
        if offered
            && !on
            && let Err(e) = common::write_entry(parent, "cgroup.subtree_control", &format!("+{c}"))
        {
            tracing::warn!(error = %e, controller = c, "cannot enable cgroup v2 controller");
        }
    }
    Ok(())
}

impl Manager for V2Manager {
    fn create(&self) -> Result<(), CgroupError> {
        let mut parent = self.root.clone();
        for comp in self.rel.components() {
            // Ancestors only: the leaf holds processes, and v2 forbids
            // processes in a cgroup that distributes controllers.
            enable_controllers(&parent)?;
            common::create_dirs(&parent, Path::new(comp.as_os_str()))?;
            parent.push(comp);
        }
        Ok(())
    }

    fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        write_file(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn fast_join(&self) -> Option<FastJoin> {
        // Only on a real cgroup2 mount: a fake tree's directory cannot hold a process.
        self.attach_bpf.then(|| FastJoin::Birth(self.dir.clone()))
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let enabled = self.enabled()?;
        if r.network().is_some() {
            tracing::warn!(
                "network (net_cls/net_prio) resources do not exist in cgroup v2; ignoring"
            );
        }
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            tracing::warn!("rdma resources are not supported; ignoring");
        }
        self.apply_controller::<cpuset::Cpuset>(r, &enabled)?;
        if let Some(rules) = r.devices() {
            let program = devices::generate(rules)?;
            if self.attach_bpf {
                bpf::attach_device_program(&self.dir, &program)?;
            } else {
                tracing::debug!(dir = %self.dir.display(), insns = program.len(), "not a cgroup2 mount; device program not loaded");
            }
        }
        self.apply_controller::<memory::Memory>(r, &enabled)?;
        self.apply_controller::<cpu::Cpu>(r, &enabled)?;
        self.apply_controller::<pids::Pids>(r, &enabled)?;
        self.apply_controller::<io::Io>(r, &enabled)?;
        self.apply_controller::<hugetlb::Hugetlb>(r, &enabled)?;
        // Last, so raw unified keys override the structured fields.
        self.apply_controller::<unified::Unified>(r, &enabled)?;
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        write_file(&self.dir, "cgroup.freeze", "1")?;
        // Freezing completes asynchronously; cgroup.events says when.
        let done = common::wait_until(FREEZE_TIMEOUT, || {
            Ok(match read_optional(&self.dir, "cgroup.events")? {
                Some(ev) => ev.lines().any(|l| l.trim() == "frozen 1"),
                None => true,
            })
        })?;
        if done {
            return Ok(());
        }
        let _ = write_file(&self.dir, "cgroup.freeze", "0");
        Err(CgroupError::Timeout {
            path: self.dir.join("cgroup.events"),
            expected: "frozen 1".into(),
        })
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        write_file(&self.dir, "cgroup.freeze", "0")
    }

    fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        common::pids_recursive(&self.dir)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        // Attached BPF programs go away with the directory.
        common::remove_tree(&self.dir)
    }

    fn oom_source(&self) -> OomSource {
        OomSource::V2 {
            memory_events: self.dir.join("memory.events"),
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        Ok(Stats {
            cpu: self.cpu_stats()?,
            memory: self.memory_stats()?,
            pids: self.pids_stats()?,
        })
    }

    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }
}

#[cfg(test)]
mod tests;
