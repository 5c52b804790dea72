//! v2 `memory`: memory.max, memory.low, memory.swap.max.
//!
//! OCI's `swap` is memory+swap (a v1 notion); v2 limits swap alone, so
//! memory.swap.max = swap - limit, with runc's conversion rules.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::super::CgroupError;
use super::super::common::{read_u64_opt, write_file};
use super::Controller;

pub(crate) struct Memory;

/// `(memory.max, memory.swap.max)` values for the spec's limit and swap
/// (0 = unset, negative = unlimited).
pub(crate) fn limit_and_swap(
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(Option<String>, Option<String>), CgroupError> {
    let limit = limit.filter(|v| *v != 0);
    let swap = swap.filter(|v| *v != 0);
    let max = limit.map(|l| {
        if l < 0 {
            "max".to_string()
        } else {
            l.to_string()
        }
    });
    let swap_max = match (limit, swap) {
        // Unlimited memory with swap unset: unlimited swap too, as on v1.
        (Some(l), None) if l < 0 => Some("max".to_string()),
        (_, None) => None,
        (_, Some(sw)) if sw < 0 => Some("max".to_string()),
        (Some(l), Some(sw)) if l > 0 => {
            if sw < l {
                return Err(CgroupError::InvalidResource(format!(
                    "memory+swap limit {sw} must be >= memory limit {l}"
                )));
            }
            Some((sw - l).to_string())
        }
        (_, Some(sw)) => {
            return Err(CgroupError::InvalidResource(format!(
                "swap limit {sw} cannot be set without a memory limit on cgroup v2"
            )));
        }
    };
    Ok((max, swap_max))
}

impl Controller for Memory {
    const NAME: Option<&'static str> = Some("memory");

    fn needs(r: &LinuxResources) -> bool {
        r.memory().as_ref().is_some_and(|m| {
            m.limit().is_some_and(|v| v != 0)
                || m.reservation().is_some_and(|v| v != 0)
                || m.swap().is_some_and(|v| v != 0)
        })
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(m) = r.memory() else {
            return Ok(());
        };
        // No v2 equivalents; Kubernetes never sets these on v2 hosts.
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            tracing::warn!("kernel memory limits do not exist in cgroup v2; ignoring");
        }
        if m.swappiness().is_some() {
            tracing::warn!("memory swappiness is not supported by cgroup v2; ignoring");
        }
        if m.disable_oom_killer() == Some(true) {
            tracing::warn!("disabling the OOM killer is not supported by cgroup v2; ignoring");
        }
        let (max, swap_max) = limit_and_swap(m.limit(), m.swap())?;

        if m.check_before_update() == Some(true)
            && let Some(l) = m.limit().filter(|l| *l > 0)
            && let Some(usage) = read_u64_opt(dir, "memory.current")?
            && usage > l as u64
        {
            return Err(CgroupError::InvalidResource(format!(
                "memory limit {l} is below current usage {usage} of {}",
                dir.display()
            )));
        }

        if let Some(sw) = swap_max {
            if dir.join("memory.swap.max").exists() {
                write_file(dir, "memory.swap.max", &sw)?;
            } else if sw != "0" && !(sw == "max" && m.swap().is_none_or(|s| s == 0)) {
                // Only an explicit request for swap is an error when the
                // kernel has no swap accounting; "no swap" is what we get.
                return Err(CgroupError::Unsupported(format!(
                    "swap limit {sw} requested but {} is missing (swap accounting disabled?)",
                    dir.join("memory.swap.max").display()
                )));
            }
        }
        if let Some(res) = m.reservation().filter(|v| *v != 0) {
            let low = if res < 0 {
                "max".to_string()
            } else {
                res.to_string()
            };
            write_file(dir, "memory.low", &low)?;
        }
        if let Some(max) = max {
            write_file(dir, "memory.max", &max)?;
        }
        Ok(())
    }
}
