//! v1 `cpuset`: cpus and mems. A new v1 cpuset cgroup starts with empty
//! cpus/mems and refuses tasks until they are filled, so every directory we
//! create is first seeded from its parent.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::{read_file, write_file};
use super::{Controller, Subsystem};

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    const SUBSYSTEM: Subsystem = Subsystem::Cpuset;

    fn needs(r: &LinuxResources) -> bool {
        r.cpu().as_ref().is_some_and(|c| {
            c.cpus().as_ref().is_some_and(|s| !s.is_empty())
                || c.mems().as_ref().is_some_and(|s| !s.is_empty())
        })
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(cpu) = r.cpu() else {
            return Ok(());
        };
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            write_file(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            write_file(dir, "cpuset.mems", mems)?;
        }
        Ok(())
    }
}

/// Copies the parent's cpus/mems into a freshly created `dir` when empty.
pub(crate) fn seed_from_parent(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read_file(dir, file)?.trim().is_empty() {
            let v = read_file(parent, file)?;
            let v = v.trim();
            if !v.is_empty() {
                write_file(dir, file, v)?;
            }
        }
    }
    Ok(())
}
