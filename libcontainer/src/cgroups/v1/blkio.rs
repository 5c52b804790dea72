//! v1 `blkio`: weights and throttles. CFQ's blkio.weight is gone from
//! modern kernels; BFQ exposes blkio.bfq.weight instead (same 1..1000 range
//! for our purposes), so fall back to it like runc does.

use std::path::Path;

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use super::super::CgroupError;
use super::super::common::{block_io_requested, write_entry, write_file};
use super::{Controller, Subsystem};

pub(crate) struct Blkio;

impl Controller for Blkio {
    const SUBSYSTEM: Subsystem = Subsystem::Blkio;

    fn needs(r: &LinuxResources) -> bool {
        r.block_io()
            .as_ref()
            .is_some_and(|b| b.leaf_weight().is_some() || block_io_requested(b))
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(b) = r.block_io() else {
            return Ok(());
        };
        let (weight_file, weight_dev_file) = if dir.join("blkio.weight").exists() {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if let Some(w) = b.weight() {
            write_file(dir, weight_file, &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight() {
            write_file(dir, "blkio.leaf_weight", &w.to_string())?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                write_entry(
                    dir,
                    weight_dev_file,
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
            if let Some(w) = d.leaf_weight() {
                write_entry(
                    dir,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
        }
        let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
            ),
        ];
        for (devs, file) in throttles {
            for d in devs.iter().flatten() {
                write_entry(
                    dir,
                    file,
                    &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
        Ok(())
    }
}
