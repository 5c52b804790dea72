//! v1 `cpu`: CFS shares/quota/period/burst, realtime budget, idle.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::write_file;
use super::{Controller, Subsystem};

pub(crate) struct Cpu;

impl Controller for Cpu {
    const SUBSYSTEM: Subsystem = Subsystem::Cpu;

    fn needs(r: &LinuxResources) -> bool {
        r.cpu().as_ref().is_some_and(|c| {
            c.shares().is_some_and(|s| s != 0)
                || c.quota().is_some_and(|q| q != 0)
                || c.period().is_some_and(|p| p != 0)
                || c.burst().is_some()
                || c.realtime_period().is_some()
                || c.realtime_runtime().is_some()
                || c.idle().is_some()
        })
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(cpu) = r.cpu() else {
            return Ok(());
        };
        // 0 means "not set" for shares/quota/period (runc semantics).
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            write_file(dir, "cpu.shares", &shares.to_string())?;
        }
        let quota = cpu
            .quota()
            .filter(|q| *q != 0)
            .map(|q| if q < 0 { -1 } else { q });
        set_period_quota(dir, cpu.period().filter(|p| *p != 0), quota)?;
        if let Some(burst) = cpu.burst() {
            write_file(dir, "cpu.cfs_burst_us", &burst.to_string())?;
        }
        // The runtime is validated against the period, so period goes first.
        if let Some(p) = cpu.realtime_period() {
            write_file(dir, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(rt) = cpu.realtime_runtime() {
            write_file(dir, "cpu.rt_runtime_us", &rt.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            write_file(dir, "cpu.idle", &idle.to_string())?;
        }
        Ok(())
    }
}

/// Period first, then quota. A smaller period can be refused (EINVAL) while
/// the old quota/new period ratio exceeds the parent's bandwidth; in that
/// case write the quota first and retry the period.
fn set_period_quota(
    dir: &Path,
    period: Option<u64>,
    quota: Option<i64>,
) -> Result<(), CgroupError> {
    let mut period_pending = false;
    if let Some(p) = period {
        match write_file(dir, "cpu.cfs_period_us", &p.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(nix::libc::EINVAL) && quota.is_some() =>
            {
                period_pending = true;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(q) = quota {
        write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
    }
    if period_pending && let Some(p) = period {
        write_file(dir, "cpu.cfs_period_us", &p.to_string())?;
    }
    Ok(())
}
