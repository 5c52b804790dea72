//! Cgroup management for crius' OCI runtime (libcontainer's `cgroups`).
//!
//! One [`Manager`] per container, created by [`manager`] from the absolute
//! `linux.cgroupsPath` of the OCI spec. Version 1 (including the hybrid
//! layout with an extra cgroup2 at `/sys/fs/cgroup/unified`) and version 2
//! (unified) hierarchies are supported through the cgroupfs driver; the
//! systemd driver is not implemented yet.
//!
//! Every controller lives in its own file under `v1/` or `v2/` and turns the
//! relevant part of [`LinuxResources`] into writes of cgroupfs files.

mod common;
mod device_rules;
mod error;
mod host;
mod stats;
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

/// Manager for `cgroups_path` (absolute, e.g. `/crius/pod1/ctr1`) under
/// `root` (normally [`DEFAULT_CGROUP_ROOT`]); the version is detected there.
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
        assert!(
            e.to_string()
                .contains("systemd cgroup driver not supported yet")
        );
        let e = manager_for(CgroupVersion::V2, "ctr", tmp.path()).unwrap_err();
        assert!(matches!(e, CgroupError::RelativePath(_)));
    }

    #[test]
    fn tempdir_is_not_v2() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(detect_at(tmp.path()), CgroupVersion::V1);
        let m = manager("/x", tmp.path()).unwrap();
        assert_eq!(m.version(), CgroupVersion::V1);
    }
}
