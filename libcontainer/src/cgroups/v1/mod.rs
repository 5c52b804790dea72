//! cgroup v1: one hierarchy per controller (`<root>/<controller>`, where a
//! co-mounted pair like `cpu,cpuacct` is reached through its symlinks), and
//! the container's cgroup is the same relative path in each of them.

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod memory;
mod net_cls;
mod net_prio;
mod pids;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::common::{self, read_optional, read_u64_opt};
use super::stats::{self, CpuStats, MemoryStats, PidsStats, Stats};
use super::{CgroupError, CgroupVersion, FastJoin, Manager, OomSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subsystem {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Pids,
    Blkio,
    Devices,
    Freezer,
    Hugetlb,
    NetCls,
    NetPrio,
    PerfEvent,
    /// `name=systemd`: no controller, but systemd (and tools such as `systemd-cgls`) tell a
    /// process' unit by it, so a container joins it as runc does.
    NameSystemd,
}

impl Subsystem {
    /// Every controller whose hierarchy a container joins when mounted.
    pub const ALL: [Subsystem; 13] = [
        Subsystem::Cpu,
        Subsystem::Cpuacct,
        Subsystem::Cpuset,
        Subsystem::Memory,
        Subsystem::Pids,
        Subsystem::Blkio,
        Subsystem::Devices,
        Subsystem::Freezer,
        Subsystem::Hugetlb,
        Subsystem::NetCls,
        Subsystem::NetPrio,
        Subsystem::PerfEvent,
        Subsystem::NameSystemd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Subsystem::Cpu => "cpu",
            Subsystem::Cpuacct => "cpuacct",
            Subsystem::Cpuset => "cpuset",
            Subsystem::Memory => "memory",
            Subsystem::Pids => "pids",
            Subsystem::Blkio => "blkio",
            Subsystem::Devices => "devices",
            Subsystem::Freezer => "freezer",
            Subsystem::Hugetlb => "hugetlb",
            Subsystem::NetCls => "net_cls",
            Subsystem::NetPrio => "net_prio",
            Subsystem::PerfEvent => "perf_event",
            Subsystem::NameSystemd => "systemd",
        }
    }

    /// Whether this hierarchy carries a resource controller (`name=` hierarchies do not).
    pub fn is_controller(self) -> bool {
        self != Subsystem::NameSystemd
    }
}

/// One v1 controller: which part of the resources it handles and how.
pub(crate) trait Controller {
    const SUBSYSTEM: Subsystem;
    /// Whether `r` asks this controller for anything; only then is a
    /// missing hierarchy an error.
    fn needs(r: &LinuxResources) -> bool;
    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError>;
}

#[derive(Debug)]
pub struct V1Manager {
    root: PathBuf,
    rel: PathBuf,
    /// Mounted controller -> hierarchy root.
    hierarchies: BTreeMap<Subsystem, PathBuf>,
}

/// How long freeze waits for FREEZING to become FROZEN.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl V1Manager {
    pub fn new(cgroups_path: &str, root: &Path) -> Result<Self, CgroupError> {
        let rel = common::validate_cgroups_path(cgroups_path)?;
        let hierarchies = Subsystem::ALL
            .iter()
            .map(|s| (*s, root.join(s.name())))
            .filter(|(_, p)| p.is_dir())
            .collect();
        Ok(Self {
            root: root.to_path_buf(),
            rel,
            hierarchies,
        })
    }

    /// The container's directory in `sub`'s hierarchy, if mounted.
    pub fn dir(&self, sub: Subsystem) -> Option<PathBuf> {
        self.hierarchies.get(&sub).map(|h| h.join(&self.rel))
    }

    fn require(&self, sub: Subsystem) -> Result<PathBuf, CgroupError> {
        self.dir(sub)
            .ok_or(CgroupError::ControllerNotMounted(sub.name()))
    }

    /// Distinct hierarchy roots: co-mounted controllers (cpu,cpuacct) share
    /// one directory and must be created/joined/removed once.
    fn unique_hierarchies(&self) -> Vec<(PathBuf, Vec<Subsystem>)> {
        let mut seen: Vec<(PathBuf, PathBuf, Vec<Subsystem>)> = Vec::new();
        for (sub, h) in &self.hierarchies {
            let canon = fs::canonicalize(h).unwrap_or_else(|_| h.clone());
            match seen.iter_mut().find(|(c, _, _)| *c == canon) {
                Some(entry) => entry.2.push(*sub),
                None => seen.push((canon, h.clone(), vec![*sub])),
            }
        }
        seen.into_iter().map(|(_, h, subs)| (h, subs)).collect()
    }

    fn apply_controller<C: Controller>(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if !C::needs(r) {
            return Ok(());
        }
        let dir = self.require(C::SUBSYSTEM)?;
        C::apply(r, &dir)
    }

    fn cpu_stats(&self) -> Result<Option<CpuStats>, CgroupError> {
        let Some(acct) = self.dir(Subsystem::Cpuacct) else {
            return Ok(None);
        };
        let usage_ns = read_u64_opt(&acct, "cpuacct.usage")?.unwrap_or(0);
        let mut s = CpuStats {
            usage_ns,
            user_ns: read_u64_opt(&acct, "cpuacct.usage_user")?.unwrap_or(0),
            system_ns: read_u64_opt(&acct, "cpuacct.usage_sys")?.unwrap_or(0),
            ..Default::default()
        };
        if let Some(cpu) = self.dir(Subsystem::Cpu)
            && let Some(c) = read_optional(&cpu, "cpu.stat")?
        {
            let m = common::parse_flat_keyed(&c);
            s.nr_periods = m.get("nr_periods").copied().unwrap_or(0);
            s.nr_throttled = m.get("nr_throttled").copied().unwrap_or(0);
            s.throttled_ns = m.get("throttled_time").copied().unwrap_or(0);
        }
        Ok(Some(s))
    }

    fn memory_stats(&self) -> Result<Option<MemoryStats>, CgroupError> {
        let Some(dir) = self.dir(Subsystem::Memory) else {
            return Ok(None);
        };
        let usage = read_u64_opt(&dir, "memory.usage_in_bytes")?.unwrap_or(0);
        let limit = read_u64_opt(&dir, "memory.limit_in_bytes")?
            .filter(|l| *l < memory::UNLIMITED_THRESHOLD);
        let st = common::parse_flat_keyed(&common::read_file(&dir, "memory.stat")?);
        // total_* include descendants (nested cgroups in the container).
        let get = |k: &str| {
            st.get(&format!("total_{k}"))
                .or_else(|| st.get(k))
                .copied()
                .unwrap_or(0)
        };
        let swap = read_u64_opt(&dir, "memory.memsw.usage_in_bytes")?
            .map(|sw| sw.saturating_sub(usage))
            .unwrap_or(0);
        let oom_kills = read_optional(&dir, "memory.oom_control")?
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
            limit_bytes: limit,
            rss_bytes: get("rss"),
            cache_bytes: get("cache"),
            swap_bytes: swap,
            page_faults: get("pgfault"),
            major_page_faults: get("pgmajfault"),
            oom_kills,
        }))
    }

    fn pids_stats(&self) -> Result<Option<PidsStats>, CgroupError> {
        let Some(dir) = self.dir(Subsystem::Pids) else {
            return Ok(None);
        };
        Ok(Some(PidsStats {
            current: read_u64_opt(&dir, "pids.current")?.unwrap_or(0),
            limit: read_u64_opt(&dir, "pids.max")?,
        }))
    }
}

impl Manager for V1Manager {
    fn create(&self) -> Result<(), CgroupError> {
        for (h, subs) in self.unique_hierarchies() {
            common::create_dirs(&h, &self.rel)?;
            // Every directory of the path, also those another creator made and may not have
            // filled yet (see `cpuset`).
            if subs.contains(&Subsystem::Cpuset) {
                cpuset::fill_path(&h, &self.rel)?;
            }
        }
        Ok(())
    }

    fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        for (h, _) in self.unique_hierarchies() {
            common::write_file(&h.join(&self.rel), "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn fast_join(&self) -> Option<FastJoin> {
        Some(FastJoin::Tasks(
            self.unique_hierarchies()
                .into_iter()
                .map(|(h, _)| h.join(&self.rel).join("tasks"))
                .collect(),
        ))
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::Unsupported(
                "resources.unified requires cgroup v2 but this host uses cgroup v1".into(),
            ));
        }
        if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
            tracing::warn!("rdma resources are not supported; ignoring");
        }
        // cpuset first: a task must never run on a cpu it loses later;
        // devices early so a started container never sees extra devices.
        self.apply_controller::<cpuset::Cpuset>(r)?;
        self.apply_controller::<devices::Devices>(r)?;
        self.apply_controller::<memory::Memory>(r)?;
        self.apply_controller::<cpu::Cpu>(r)?;
        self.apply_controller::<pids::Pids>(r)?;
        self.apply_controller::<blkio::Blkio>(r)?;
        self.apply_controller::<hugetlb::Hugetlb>(r)?;
        self.apply_controller::<net_cls::NetCls>(r)?;
        self.apply_controller::<net_prio::NetPrio>(r)?;
        Ok(())
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        freezer::freeze(&self.require(Subsystem::Freezer)?, FREEZE_TIMEOUT)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        freezer::thaw(&self.require(Subsystem::Freezer)?)
    }

    fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        // Any joined hierarchy lists the same processes; prefer the ones
        // a container is always in.
        let dir = [
            Subsystem::Pids,
            Subsystem::Freezer,
            Subsystem::Memory,
            Subsystem::Devices,
        ]
        .into_iter()
        .find_map(|s| self.dir(s))
        .or_else(|| self.hierarchies.values().next().map(|h| h.join(&self.rel)))
        .ok_or(CgroupError::ControllerNotMounted("pids"))?;
        common::pids_recursive(&dir)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        // Try every hierarchy and report the first failure, so one busy
        // hierarchy does not leak directories in all the others.
        let mut first_err = None;
        for (h, _) in self.unique_hierarchies() {
            if let Err(e) = common::remove_tree(&h.join(&self.rel)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn oom_source(&self) -> OomSource {
        let dir = self
            .dir(Subsystem::Memory)
            .unwrap_or_else(|| self.root.join("memory").join(&self.rel));
        OomSource::V1 {
            oom_control: dir.join("memory.oom_control"),
            event_control: dir.join("cgroup.event_control"),
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
        CgroupVersion::V1
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::real as tests_real_support;
