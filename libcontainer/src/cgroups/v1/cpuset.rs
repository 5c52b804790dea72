//! v1 `cpuset`: cpus and mems. A new v1 cpuset cgroup starts with empty
//! cpus/mems and refuses tasks (ENOSPC) until they are filled, so every
//! directory on a container's path is seeded from its parent.
//!
//! The seeding is not tied to the mkdir: another creator may have made an
//! ancestor a moment ago and not filled it yet (two `crius oci create` under
//! the same new pod parent). So [`fill_path`] walks the whole path from the
//! hierarchy root down, whoever made each directory, and fills every empty
//! one from its (by then filled) parent — as runc's cpuset manager does.
//! Two creators filling the same directory write the same values.

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

/// Fills `cpuset.cpus`/`cpuset.mems` in every directory of `root/rel`, top
/// down, wherever they are still empty: each from its parent.
pub(crate) fn fill_path(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let mut dir = root.to_path_buf();
    for comp in rel.components() {
        let parent = dir.clone();
        dir.push(comp);
        seed_from_parent(&parent, &dir)?;
    }
    Ok(())
}

/// Copies the parent's cpus/mems into `dir` where empty.
fn seed_from_parent(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
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
