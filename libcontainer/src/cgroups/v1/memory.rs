//! v1 `memory`: limit, soft limit (reservation), memory+swap, kernel,
//! swappiness, OOM killer.
//!
//! The kernel enforces `limit_in_bytes <= memsw.limit_in_bytes` on every
//! single write, so the two must be written in an order that keeps the
//! invariant true: raising → memsw first, lowering → limit first.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::super::CgroupError;
use super::super::common::{read_file, read_u64_opt, write_file};
use super::{Controller, Subsystem};

pub(crate) struct Memory;

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// The kernel reports "unlimited" as PAGE_COUNTER_MAX pages, just under
/// i64::MAX; anything at or above this is no limit.
pub(crate) const UNLIMITED_THRESHOLD: u64 = 0x7FFF_FFFF_FFFF_F000;

impl Controller for Memory {
    const SUBSYSTEM: Subsystem = Subsystem::Memory;

    fn needs(r: &LinuxResources) -> bool {
        r.memory().as_ref().is_some_and(|m| {
            m.limit().is_some_and(|v| v != 0)
                || m.reservation().is_some_and(|v| v != 0)
                || m.swap().is_some_and(|v| v != 0)
                || m.kernel().is_some()
                || m.kernel_tcp().is_some()
                || m.swappiness().is_some()
                || m.disable_oom_killer().is_some()
        })
    }

    fn apply(r: &LinuxResources, dir: &Path) -> Result<(), CgroupError> {
        let Some(m) = r.memory() else {
            return Ok(());
        };
        // 0 is "unset" for the byte limits (kubelet/runc semantics); -1 is
        // unlimited and is accepted by the kernel as such.
        let limit = m.limit().filter(|v| *v != 0);
        let mut swap = m.swap().filter(|v| *v != 0);
        let has_memsw = dir.join(MEMSW).exists();

        if m.check_before_update() == Some(true)
            && let Some(l) = limit.filter(|l| *l > 0)
            && let Some(usage) = read_u64_opt(dir, "memory.usage_in_bytes")?
            && usage > l as u64
        {
            return Err(CgroupError::InvalidResource(format!(
                "memory limit {l} is below current usage {usage} of {}",
                dir.display()
            )));
        }

        // Unlimited memory with swap unset means both unlimited, otherwise
        // the old memsw value would cap the "unlimited" memory.
        if limit == Some(-1) && swap.is_none() && has_memsw {
            swap = Some(-1);
        }
        if let Some(sw) = swap
            && !has_memsw
        {
            // Equal limit and memory+swap means "no swap", which is what a
            // kernel without swap accounting gives anyway.
            if limit == Some(sw) {
                swap = None;
            } else {
                return Err(CgroupError::Unsupported(format!(
                    "memory swap limit {sw} requested but {} is missing (swap accounting disabled?)",
                    dir.join(MEMSW).display()
                )));
            }
        }
        if let (Some(l), Some(sw)) = (limit, swap)
            && sw != -1
            && l > sw
        {
            return Err(CgroupError::InvalidResource(format!(
                "memory+swap limit {sw} must be >= memory limit {l}"
            )));
        }
        set_limit_and_swap(dir, limit, swap)?;

        if let Some(res) = m.reservation().filter(|v| *v != 0) {
            write_file(dir, "memory.soft_limit_in_bytes", &res.to_string())?;
        }
        set_kernel(dir, m)?;
        if let Some(sw) = m.swappiness() {
            if sw > 100 {
                return Err(CgroupError::InvalidResource(format!(
                    "memory swappiness {sw} must be in 0..=100"
                )));
            }
            write_file(dir, "memory.swappiness", &sw.to_string())?;
        }
        if let Some(d) = m.disable_oom_killer() {
            write_file(dir, "memory.oom_control", if d { "1" } else { "0" })?;
        }
        Ok(())
    }
}

fn set_limit_and_swap(
    dir: &Path,
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(), CgroupError> {
    match (limit, swap) {
        (Some(l), Some(sw)) => {
            let cur = read_file(dir, LIMIT)?;
            let cur = cur.trim().parse::<u64>().map_err(|_| CgroupError::Parse {
                path: dir.join(LIMIT),
                content: cur.trim().to_string(),
            })?;
            // New memsw >= current limit: it can go first, then the limit
            // (<= new memsw). Otherwise lower the limit first.
            if sw == -1 || cur <= sw as u64 {
                write_file(dir, MEMSW, &sw.to_string())?;
                write_file(dir, LIMIT, &l.to_string())
            } else {
                write_file(dir, LIMIT, &l.to_string())?;
                write_file(dir, MEMSW, &sw.to_string())
            }
        }
        (Some(l), None) => write_file(dir, LIMIT, &l.to_string()),
        (None, Some(sw)) => write_file(dir, MEMSW, &sw.to_string()),
        (None, None) => Ok(()),
    }
}

/// Kernel memory limits are deprecated (5.16+ ignores or refuses them).
/// Kubernetes never sets them; keep honouring them where the kernel still
/// can, and only warn where the knob is gone.
fn set_kernel(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    for (value, file) in [
        (m.kernel(), "memory.kmem.limit_in_bytes"),
        (m.kernel_tcp(), "memory.kmem.tcp.limit_in_bytes"),
    ] {
        let Some(v) = value else { continue };
        if !dir.join(file).exists() {
            tracing::warn!(
                file,
                "kernel memory limit not supported by this kernel; ignoring"
            );
            continue;
        }
        match write_file(dir, file, &v.to_string()) {
            Err(CgroupError::Write { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(nix::libc::EOPNOTSUPP) | Some(524 /* ENOTSUPP */)
                ) =>
            {
                tracing::warn!(file, "kernel memory limit refused as unsupported; ignoring");
            }
            other => other?,
        }
    }
    Ok(())
}
