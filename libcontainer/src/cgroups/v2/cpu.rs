//! v2 `cpu`: cpu.weight (from v1 shares), cpu.max, cpu.max.burst, cpu.idle.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::{read_file, write_file};
use super::Controller;

pub(crate) struct Cpu;

/// v1 shares [2, 262144] -> v2 weight [1, 10000], the formula of the
/// kernel docs / KEP-2254 that runc and crun use, so the same pod spec gives
/// the same weight under every runtime. 0 = unset.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// cpu.max value. `current` is the file's content, needed when only the
/// period changes so that an existing quota is kept.
pub(crate) fn cpu_max(
    quota: Option<i64>,
    period: Option<u64>,
    current: impl FnOnce() -> Result<String, CgroupError>,
) -> Result<Option<String>, CgroupError> {
    let q = |q: i64| {
        if q > 0 {
            q.to_string()
        } else {
            "max".to_string()
        }
    };
    Ok(match (quota, period) {
        (Some(qv), Some(p)) => Some(format!("{} {p}", q(qv))),
        // The kernel keeps the period when only the quota is written.
        (Some(qv), None) => Some(q(qv)),
        (None, Some(p)) => {
            let cur = current()?;
            let cur_quota = cur.split_whitespace().next().unwrap_or("max").to_string();
            Some(format!("{cur_quota} {p}"))
        }
        (None, None) => None,
    })
}

impl Controller for Cpu {
    const NAME: Option<&'static str> = Some("cpu");

    fn needs(r: &LinuxResources) -> bool {
        r.cpu().as_ref().is_some_and(|c| {
            c.shares().is_some_and(|s| s != 0)
                || c.quota().is_some_and(|q| q != 0)
                || c.period().is_some_and(|p| p != 0)
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_runtime().is_some_and(|v| v != 0)
                || c.realtime_period().is_some_and(|v| v != 0)
        })
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(cpu) = r.cpu() else {
            return Ok(());
        };
        if cpu.realtime_runtime().is_some_and(|v| v != 0)
            || cpu.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(CgroupError::Unsupported(
                "realtime cpu scheduling limits do not exist in cgroup v2".into(),
            ));
        }
        let weight = shares_to_weight(cpu.shares().unwrap_or(0));
        if weight != 0 {
            write_file(dir, "cpu.weight", &weight.to_string())?;
        }
        let quota = cpu.quota().filter(|q| *q != 0);
        let period = cpu.period().filter(|p| *p != 0);
        if let Some(v) = cpu_max(quota, period, || read_file(dir, "cpu.max"))? {
            write_file(dir, "cpu.max", &v)?;
        }
        if let Some(b) = cpu.burst() {
            write_file(dir, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            write_file(dir, "cpu.idle", &idle.to_string())?;
        }
        Ok(())
    }
}
