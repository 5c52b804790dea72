//! v2 `pids`: pids.max.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::Controller;

pub(crate) struct Pids;

impl Controller for Pids {
    const NAME: Option<&'static str> = Some("pids");

    fn needs(r: &LinuxResources) -> bool {
        r.pids().is_some()
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        match r.pids() {
            // Same meaning as v1: the limit is mandatory, <= 0 is "none".
            Some(p) => write_file(dir, "pids.max", &super::super::common::pids_max(p.limit())),
            None => Ok(()),
        }
    }
}
