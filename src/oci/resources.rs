//! linux.resources (cpu, memory, hugetlb, unified) and process.oomScoreAdj from the CRI
//! LinuxContainerResources. Zero means "not specified" throughout the CRI message. What the
//! host's cgroups cannot apply is dropped here, not refused later by the runtime.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use super::{SpecError, SpecOptions, invalid};
use crate::api;
use crate::libcontainer::cgroups::HostCgroups;

fn non_negative(what: &str, v: i64) -> Result<i64, SpecError> {
    if v < 0 {
        return Err(invalid(format!("{what} {v} is negative")));
    }
    Ok(v)
}

/// oom_score_adj in the kernel's range; 0 (unset) leaves the runtime's own value.
pub fn oom_score_adj(res: &api::LinuxContainerResources) -> Result<Option<i32>, SpecError> {
    match res.oom_score_adj {
        0 => Ok(None),
        v @ -1000..=1000 => Ok(Some(v as i32)),
        v => Err(invalid(format!("oom_score_adj {v} outside -1000..=1000"))),
    }
}

/// CRI resources → OCI resources (devices are filled in by devices.rs).
pub fn container_resources(
    res: &api::LinuxContainerResources,
    opts: &SpecOptions,
) -> Result<LinuxResources, SpecError> {
    let mut out = LinuxResources::default();

    let mut cpu = LinuxCpu::default();
    let shares = non_negative("cpu_shares", res.cpu_shares)?;
    let period = non_negative("cpu_period", res.cpu_period)?;
    if shares > 0 {
        cpu.set_shares(Some(shares as u64));
    }
    if period > 0 {
        cpu.set_period(Some(period as u64));
    }
    // -1 is "unlimited" in cgroup v1 terms; other negatives are invalid.
    match res.cpu_quota {
        0 => {}
        q if q > 0 || q == -1 => {
            cpu.set_quota(Some(q));
        }
        q => return Err(invalid(format!("cpu_quota {q} is negative"))),
    }
    if !res.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(res.cpuset_cpus.clone()));
    }
    if !res.cpuset_mems.is_empty() {
        cpu.set_mems(Some(res.cpuset_mems.clone()));
    }
    if cpu != LinuxCpu::default() {
        out.set_cpu(Some(cpu));
    }

    let limit = non_negative("memory_limit_in_bytes", res.memory_limit_in_bytes)?;
    let swap = non_negative("memory_swap_limit_in_bytes", res.memory_swap_limit_in_bytes)?;
    if limit > 0 {
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(limit));
        // Both CRI and OCI count swap as memory+swap. Unset swap means "no swap" (swap = limit),
        // as cri-o and kubelet's NoSwap behaviour do.
        match swap {
            0 => {
                mem.set_swap(Some(limit));
            }
            s if s < limit => {
                return Err(invalid(format!(
                    "memory_swap_limit_in_bytes {s} is below memory_limit_in_bytes {limit}"
                )));
            }
            s => {
                mem.set_swap(Some(s));
            }
        }
        out.set_memory(Some(mem));
    } else if swap > 0 {
        // A memory+swap total without a memory limit has nothing to be relative to.
        tracing::debug!(
            swap,
            "memory_swap_limit_in_bytes ignored without memory_limit_in_bytes"
        );
    }

    if !res.hugepage_limits.is_empty() {
        let mut limits = Vec::new();
        for h in &res.hugepage_limits {
            if h.page_size.is_empty() {
                return Err(invalid("hugepage limit without a page size"));
            }
            let limit = i64::try_from(h.limit)
                .map_err(|_| invalid(format!("hugepage limit {} is out of range", h.limit)))?;
            let mut l = LinuxHugepageLimit::default();
            l.set_page_size(h.page_size.clone()).set_limit(limit);
            limits.push(l);
        }
        out.set_hugepage_limits(Some(limits));
    }

    if !res.unified.is_empty() {
        if opts.cgroup_v2() {
            out.set_unified(Some(res.unified.clone()));
        } else {
            // Nothing can apply cgroup v2 files on a v1 host; kubelet only sends them on v2.
            tracing::debug!(keys = ?res.unified.keys().collect::<Vec<_>>(), "unified resources ignored on cgroup v1");
        }
    }
    fit_to_host(&mut out, &opts.cgroups);
    Ok(out)
}

/// Drops what the host's cgroups cannot apply, with one warning per missing controller (or
/// page size) for the daemon's lifetime. The kubelet sends some resources whatever the host
/// has (a 0 hugetlb limit for every size in /sys/kernel/mm/hugepages, even where no hugetlb
/// hierarchy is usable); cri-o and containerd leave them out rather than fail the container.
fn fit_to_host(out: &mut LinuxResources, host: &HostCgroups) {
    if let Some(mut cpu) = out.cpu().clone() {
        if !host.has("cpu")
            && (cpu.shares().is_some() || cpu.quota().is_some() || cpu.period().is_some())
        {
            warn_once("cpu", "cpu shares, quota and period dropped");
            cpu.set_shares(None).set_quota(None).set_period(None);
        }
        if !host.has("cpuset") && (cpu.cpus().is_some() || cpu.mems().is_some()) {
            warn_once("cpuset", "cpuset cpus and mems dropped");
            cpu.set_cpus(None).set_mems(None);
        }
        out.set_cpu((cpu != LinuxCpu::default()).then_some(cpu));
    }
    if out.memory().is_some() && !host.has("memory") {
        warn_once("memory", "memory limits dropped");
        out.set_memory(None);
    }
    if let Some(limits) = out.hugepage_limits().clone() {
        let kept: Vec<LinuxHugepageLimit> = if host.has("hugetlb") {
            limits
                .into_iter()
                .filter(|l| {
                    let known = host.hugepage_sizes.contains(l.page_size());
                    if !known {
                        warn_once(
                            &format!("hugetlb.{}", l.page_size()),
                            "huge page size unknown to this kernel: its limit dropped",
                        );
                    }
                    known
                })
                .collect()
        } else {
            warn_once("hugetlb", "hugepage limits dropped");
            Vec::new()
        };
        out.set_hugepage_limits((!kept.is_empty()).then_some(kept));
    }
    if let Some(unified) = out.unified().clone() {
        // A v2 file's controller is its name's prefix; cgroup.* files belong to the core.
        let kept: HashMap<String, String> = unified
            .into_iter()
            .filter(|(key, _)| {
                let controller = key.split('.').next().unwrap_or_default();
                let ok = controller == "cgroup" || host.has(controller);
                if !ok {
                    warn_once(controller, &format!("unified resource {key} dropped"));
                }
                ok
            })
            .collect();
        out.set_unified((!kept.is_empty()).then_some(kept));
    }
}

/// Logs `what` for the controller `key` the first time only: every container of every pod
/// would otherwise repeat it.
fn warn_once(key: &str, what: &str) {
    static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.to_owned());
    if first {
        tracing::warn!(
            controller = key,
            "this host's cgroups lack {key}: {what} (logged once)"
        );
    }
}
