//! v1 `net_cls`: classid for tc/iptables matching.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::{Controller, Subsystem};

pub(crate) struct NetCls;

impl Controller for NetCls {
    const SUBSYSTEM: Subsystem = Subsystem::NetCls;

    fn needs(r: &LinuxResources) -> bool {
        r.network().as_ref().is_some_and(|n| n.class_id().is_some())
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        match r.network().as_ref().and_then(|n| n.class_id()) {
            Some(id) => write_file(dir, "net_cls.classid", &id.to_string()),
            None => Ok(()),
        }
    }
}
