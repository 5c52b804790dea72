//! v1 `net_prio`: per-interface priorities (one "ifname prio" per write).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_entry;
use super::{Controller, Subsystem};

pub(crate) struct NetPrio;

impl Controller for NetPrio {
    const SUBSYSTEM: Subsystem = Subsystem::NetPrio;

    fn needs(r: &LinuxResources) -> bool {
        r.network()
            .as_ref()
            .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let prios = r.network().as_ref().and_then(|n| n.priorities().as_ref());
        for p in prios.into_iter().flatten() {
            write_entry(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
        Ok(())
    }
}
