//! v1 `pids`: pids.max.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::{pids_max, write_file};
use super::{Controller, Subsystem};

pub(crate) struct Pids;

impl Controller for Pids {
    const SUBSYSTEM: Subsystem = Subsystem::Pids;

    fn needs(r: &LinuxResources) -> bool {
        r.pids().is_some()
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        match r.pids() {
            Some(p) => write_file(dir, "pids.max", &pids_max(p.limit())),
            None => Ok(()),
        }
    }
}
