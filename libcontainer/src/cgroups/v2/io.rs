//! v2 `io`: weights and io.max throttles. With BFQ active the weight goes
//! to io.bfq.weight unchanged (same 1..1000 scale as blkio); otherwise it is
//! rescaled to io.weight's 1..10000 (runc's conversion).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::{block_io_requested, write_entry};
use super::Controller;

pub(crate) struct Io;

/// blkio weight [10, 1000] -> io.weight [1, 10000].
pub(crate) fn blkio_weight_to_io(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

impl Controller for Io {
    const NAME: Option<&'static str> = Some("io");

    fn needs(r: &LinuxResources) -> bool {
        r.block_io().as_ref().is_some_and(block_io_requested)
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(b) = r.block_io() else {
            return Ok(());
        };
        if b.leaf_weight().is_some()
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some())
        {
            tracing::warn!("blkio leaf weights do not exist in cgroup v2; ignoring");
        }
        let bfq = dir.join("io.bfq.weight").exists();
        let conv = |w: u16| {
            if bfq {
                u64::from(w)
            } else {
                blkio_weight_to_io(w)
            }
        };
        let file = if bfq { "io.bfq.weight" } else { "io.weight" };
        // Per-write command file like io.max: entries, not whole contents.
        if let Some(w) = b.weight() {
            write_entry(dir, file, &conv(w).to_string())?;
        }
        // Per-device weights exist only under BFQ: io.weight takes `MAJ:MIN W` only where
        // blk-iocost is enabled on the device (off by default, EOPNOTSUPP otherwise). runc skips
        // them without BFQ too.
        let devices = b.weight_device().iter().flatten().collect::<Vec<_>>();
        if !bfq && !devices.is_empty() {
            tracing::warn!("per-device io weights need the BFQ scheduler; ignoring them");
        }
        for d in devices.into_iter().filter(|_| bfq) {
            if let Some(w) = d.weight() {
                write_entry(
                    dir,
                    file,
                    &format!("{}:{} {}", d.major(), d.minor(), conv(w)),
                )?;
            }
        }
        for (devs, key) in [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ] {
            for d in devs.iter().flatten() {
                // 0 is v1's "no limit"; io.max spells it "max".
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                write_entry(
                    dir,
                    "io.max",
                    &format!("{}:{} {key}={rate}", d.major(), d.minor()),
                )?;
            }
        }
        Ok(())
    }
}
