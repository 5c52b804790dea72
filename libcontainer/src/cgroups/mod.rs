//! Cgroup management for crius' OCI runtime (libcontainer's `cgroups`).
//!
//! One [`Manager`] per container, created by [`manager_with`] from the
//! `linux.cgroupsPath` of the OCI spec and a [`Driver`]: the cgroupfs driver
//! takes an absolute path, the systemd driver runc's `"slice:prefix:name"`
//! (see [`systemd`]). Version 1 (including the hybrid layout with an extra
//! cgroup2 at `/sys/fs/cgroup/unified`) and version 2 (unified) hierarchies
//! are supported by both.
//!
//! Every controller lives in its own file under `v1/` or `v2/` and turns the
//! relevant part of [`LinuxResources`] into writes of cgroupfs files; the
//! systemd driver writes through them too, after telling systemd.

mod common;
mod device_rules;
mod error;
mod host;
mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

pub use error::CgroupError;
pub use host::{HostCgroups, page_size_name};
pub use stats::{CpuStats, MemoryStats, PidsStats, Stats};

/// Default mount point of the cgroup hierarchies.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Which cgroup version the host uses: V2 only when `/sys/fs/cgroup` itself
/// is a cgroup2 mount; the hybrid layout (v1 controllers plus a cgroup2 at
/// `unified/`) counts as V1 because every resource controller is on v1.
pub fn detect() -> CgroupVersion {
    detect_at(Path::new(DEFAULT_CGROUP_ROOT))
}

/// [`detect`] for an arbitrary root (tests inject tempdirs).
pub fn detect_at(root: &Path) -> CgroupVersion {
    match statfs(root) {
        Ok(s) if s.filesystem_type() == CGROUP2_SUPER_MAGIC => CgroupVersion::V2,
        _ => CgroupVersion::V1,
    }
}

/// Where a container's OOM events can be watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OomSource {
    /// v1: register an eventfd by writing "<efd> <fd of oom_control>" to
    /// `event_control`; `oom_control` also shows `oom_kill N`.
    V1 {
        oom_control: PathBuf,
        event_control: PathBuf,
    },
    /// v2: `memory.events` (inotify IN_MODIFY), counters `oom` / `oom_kill`.
    V2 { memory_events: PathBuf },
}

/// Cgroup of one container. All methods take `&self`: the manager holds
/// only paths, the kernel holds the state.
pub trait Manager: Send + Sync + std::fmt::Debug {
    /// Creates the cgroup directories (idempotent).
    fn create(&self) -> Result<(), CgroupError>;
    /// Moves a process (all its threads) into the cgroup.
    fn add_task(&self, pid: Pid) -> Result<(), CgroupError>;
    /// How a new process can be put in the cgroup without `add_task`, when the manager has a
    /// way; `None`: use `add_task`.
    ///
    /// Why: moving a process by naming it (`cgroup.procs`) takes the kernel's global
    /// `cgroup_threadgroup_rwsem` for writing, which first waits out an RCU grace period —
    /// 5-15 ms on an idle node, most of a container's create. A thread moving itself (v1) or a
    /// process born in its cgroup (v2) takes no such lock.
    fn fast_join(&self) -> Option<FastJoin> {
        None
    }
    /// Applies resource limits; also used for `update`.
    fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// Freezes every task and waits until the kernel reports frozen.
    fn freeze(&self) -> Result<(), CgroupError>;
    fn thaw(&self) -> Result<(), CgroupError>;
    /// Processes in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<Pid>, CgroupError>;
    /// Removes the cgroup (and any sub-cgroups) leaf-first; missing is ok.
    fn destroy(&self) -> Result<(), CgroupError>;
    fn oom_source(&self) -> OomSource;
    fn stats(&self) -> Result<Stats, CgroupError>;
    fn version(&self) -> CgroupVersion;
}

/// A way into a cgroup that skips the global lock ([`Manager::fast_join`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastJoin {
    /// v1: a single-threaded process (one just forked) writes "0" to each of these `tasks`
    /// files, moving its only thread, hence itself ([`join_self`]).
    Tasks(Vec<PathBuf>),
    /// v2: the process is born in this cgroup directory (clone3's `CLONE_INTO_CGROUP`).
    Birth(PathBuf),
}

/// Moves the calling thread into the cgroup of each `tasks` file of [`FastJoin::Tasks`]. The
/// caller must be single-threaded, so that moving its thread moves the process.
pub fn join_self(tasks: &[PathBuf]) -> Result<(), CgroupError> {
    for file in tasks {
        common::open_write(file, false)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"0"))
            .map_err(|source| CgroupError::Write {
                path: file.clone(),
                value: "0".into(),
                source,
            })?;
    }
    Ok(())
}

/// Who owns the container cgroups: crius writing cgroupfs directly, or
/// systemd (runc's `--systemd-cgroup`, the kubelet's `cgroupDriver: systemd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    #[default]
    Cgroupfs,
    Systemd,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Cgroupfs => "cgroupfs",
            Driver::Systemd => "systemd",
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Driver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cgroupfs" => Ok(Driver::Cgroupfs),
            "systemd" => Ok(Driver::Systemd),
            other => Err(format!(
                "unknown cgroup driver {other:?} (expected \"cgroupfs\" or \"systemd\")"
            )),
        }
    }
}

/// The cgroup directory of `cgroups_path` relative to the hierarchy root, in
/// absolute form (`/crius/pod1/ctr1`, or for the systemd driver
/// `/kubepods.slice/kubepods-pod1.slice/crius-ctr1.scope`). Pure: no
/// filesystem or D-Bus access.
pub fn fs_path(cgroups_path: &str, driver: Driver) -> Result<String, CgroupError> {
    match driver {
        Driver::Cgroupfs => {
            let rel = common::validate_cgroups_path(cgroups_path)?;
            Ok(format!("/{}", rel.display()))
        }
        Driver::Systemd => Ok(systemd::expand(cgroups_path)?.cgroup_path),
    }
}

/// Manager for `cgroups_path` with `driver`, under `root` (normally
/// [`DEFAULT_CGROUP_ROOT`]); the version is detected there. The systemd
/// driver connects to systemd only when a call needs it.
pub fn manager_with(
    cgroups_path: &str,
    root: &Path,
    driver: Driver,
) -> Result<Box<dyn Manager>, CgroupError> {
    match driver {
        Driver::Cgroupfs => manager(cgroups_path, root),
        Driver::Systemd => {
            systemd::expand(cgroups_path)?;
            if !root.is_dir() {
                return Err(CgroupError::RootMissing(root.to_path_buf()));
            }
            Ok(Box::new(systemd::SystemdManager::new(
                cgroups_path,
                root,
                detect_at(root),
            )?))
        }
    }
}

/// cgroupfs manager for `cgroups_path` (absolute, e.g. `/crius/pod1/ctr1`)
/// under `root` (normally [`DEFAULT_CGROUP_ROOT`]); the version is detected there.
pub fn manager(cgroups_path: &str, root: &Path) -> Result<Box<dyn Manager>, CgroupError> {
    // Validate first so path errors win over environment errors.
    common::validate_cgroups_path(cgroups_path)?;
    if !root.is_dir() {
        return Err(CgroupError::RootMissing(root.to_path_buf()));
    }
    manager_for(detect_at(root), cgroups_path, root)
}

/// Like [`manager`] with the version forced (fake trees in tests).
pub fn manager_for(
    version: CgroupVersion,
    cgroups_path: &str,
    root: &Path,
) -> Result<Box<dyn Manager>, CgroupError> {
    Ok(match version {
        CgroupVersion::V1 => Box::new(v1::V1Manager::new(cgroups_path, root)?),
        CgroupVersion::V2 => Box::new(v2::V2Manager::new(cgroups_path, root)?),
    })
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_rejects_relative_and_systemd_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let e = manager("crius/ctr", tmp.path()).unwrap_err();
        assert!(matches!(e, CgroupError::RelativePath(_)), "{e}");
        let e = manager("system.slice:crius:ctr", tmp.path()).unwrap_err();
        assert!(matches!(e, CgroupError::NeedsSystemdDriver(_)), "{e}");
        assert!(e.to_string().contains("--systemd-cgroup"), "{e}");
        let e = manager_for(CgroupVersion::V2, "ctr", tmp.path()).unwrap_err();
        assert!(matches!(e, CgroupError::RelativePath(_)));
    }

    #[test]
    fn fs_paths_of_both_drivers() {
        assert_eq!(
            fs_path("/crius/pod1/./ctr1", Driver::Cgroupfs).unwrap(),
            "/crius/pod1/ctr1"
        );
        assert_eq!(
            fs_path("kubepods-besteffort-pod9.slice:crius:c1", Driver::Systemd).unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/crius-c1.scope"
        );
        assert!(matches!(
            fs_path("system.slice:crius:c1", Driver::Cgroupfs),
            Err(CgroupError::NeedsSystemdDriver(_))
        ));
        assert!(matches!(
            fs_path("/crius/c1", Driver::Systemd),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn drivers_parse() {
        assert_eq!("systemd".parse::<Driver>().unwrap(), Driver::Systemd);
        assert_eq!("cgroupfs".parse::<Driver>().unwrap(), Driver::Cgroupfs);
        assert!("cgroupv2".parse::<Driver>().is_err());
        assert_eq!(Driver::Systemd.to_string(), "systemd");
    }

    #[test]
    fn systemd_manager_needs_no_bus_to_open() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manager_with("a-b.slice:crius:c", tmp.path(), Driver::Systemd).unwrap();
        assert_eq!(m.version(), CgroupVersion::V1);
        assert!(manager_with("/x", tmp.path(), Driver::Systemd).is_err());
        assert!(manager_with("a.slice:crius:c", &tmp.path().join("no"), Driver::Systemd).is_err());
    }

    #[test]
    fn tempdir_is_not_v2() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(detect_at(tmp.path()), CgroupVersion::V1);
        let m = manager("/x", tmp.path()).unwrap();
        assert_eq!(m.version(), CgroupVersion::V1);
    }
}
