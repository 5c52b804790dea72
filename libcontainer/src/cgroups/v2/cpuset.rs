//! v2 `cpuset`: cpuset.cpus / cpuset.mems. Unlike v1, empty means
//! "inherit", so no seeding of new directories is needed.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::Controller;

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    const NAME: Option<&'static str> = Some("cpuset");

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
