//! Pod-level resources (`UpdatePodSandboxResources`): kubelet reports them after an in-place
//! resize, once it has reconfigured the pod's cgroup itself.
//!
//! crius records them in the pod's stored `PodSandboxConfig` (`linux.resources` and
//! `linux.overhead`, the fields a pod is created with). When kubelet gave the pod a cgroup of its
//! own (`LinuxPodSandboxConfig.cgroup_parent`), crius also writes their sum into that cgroup, so
//! the pod's limits are what kubelet asked for even if kubelet's own write was lost. A pod
//! under crius' shared default parent has no pod-level cgroup: recording is all there is to do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::api;
use crate::engine::{Engine, PodError, Sandbox};
use crate::libcontainer::cgroups::{self, CgroupVersion, DEFAULT_CGROUP_ROOT};
use crate::store::SandboxRecord;

use super::status;
use crate::pod::pod_config;

/// What happened to the pod's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupUpdate {
    /// The pod lives under crius' shared parent: no pod-level cgroup.
    SharedParent,
    /// The pod's cgroup is gone (the pod was stopped): recorded only.
    Missing(String),
    /// Written to this cgroup (path from the cgroup root).
    Applied(String),
}

pub async fn update(
    engine: &Arc<Engine>,
    sandbox: &Sandbox,
    resources: Option<api::LinuxContainerResources>,
    overhead: Option<api::LinuxContainerResources>,
) -> Result<CgroupUpdate, PodError> {
    let _op = sandbox.op.lock().await;
    let record = sandbox.record();
    if !status::visible(&record) {
        return Err(PodError::NotFound(format!(
            "pod sandbox {} not found",
            sandbox.id
        )));
    }
    let total = pod_total(resources.as_ref(), overhead.as_ref());
    // Converting validates the request (negative values and the like) before anything changes.
    let mut oci = crate::oci::linux_resources(&total, engine.runtimes.spec_options())?;
    // Swap is kubelet's business at pod level (its swap behaviour), not part of this request.
    if let Some(mut memory) = *oci.memory() {
        memory.set_swap(None);
        oci.set_memory(Some(memory));
    }
    let outcome = match pod_cgroup(engine, &record)? {
        None => CgroupUpdate::SharedParent,
        Some(path) => {
            let root = Path::new(DEFAULT_CGROUP_ROOT);
            if !cgroup_exists(root, &path) {
                CgroupUpdate::Missing(path)
            } else {
                let at = path.clone();
                tokio::task::spawn_blocking(move || {
                    cgroups::manager(&at, root).and_then(|m| m.apply(&oci))
                })
                .await
                .map_err(|e| PodError::internal("updating the pod's cgroup", e))?
                .map_err(|e| PodError::internal(format!("updating the pod's cgroup {path}"), e))?;
                CgroupUpdate::Applied(path)
            }
        }
    };
    let mut config = pod_config(&record)?;
    let linux = config.linux.get_or_insert_with(Default::default);
    linux.resources = resources;
    linux.overhead = overhead;
    let encoded = prost::Message::encode_to_vec(&config);
    engine.save_sandbox(sandbox, |r| r.config = encoded).await?;
    Ok(outcome)
}

/// The pod's own cgroup, relative to the cgroup root, or `None` under crius' default parent.
fn pod_cgroup(engine: &Engine, record: &SandboxRecord) -> Result<Option<String>, PodError> {
    let parent = record.cgroup_parent.as_str();
    if parent.is_empty() || parent == engine.runtimes.default_cgroup_parent {
        return Ok(None);
    }
    let path = if parent.ends_with(".slice") {
        cgroups::systemd::expand_slice(parent)
    } else {
        cgroups::fs_path(parent, cgroups::Driver::Cgroupfs)
    };
    path.map(Some)
        .map_err(|e| PodError::internal(format!("cgroup parent {parent:?}"), e))
}

/// Whether `path` exists in the hierarchy (v2), or in the memory or cpu one (v1).
fn cgroup_exists(root: &Path, path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    let dirs: Vec<PathBuf> = match cgroups::detect_at(root) {
        CgroupVersion::V2 => vec![root.join(rel)],
        CgroupVersion::V1 => vec![root.join("memory").join(rel), root.join("cpu").join(rel)],
    };
    dirs.iter().any(|d| d.is_dir())
}

/// What the pod's cgroup holds: the containers' resources plus the pod overhead, added the way
/// kubelet sizes pod cgroups. A limit stays unlimited (0, or -1 for the quota) when the
/// resources leave it unlimited; settings without a sum (cpusets, hugepages, unified) come from
/// the resources.
pub fn pod_total(
    resources: Option<&api::LinuxContainerResources>,
    overhead: Option<&api::LinuxContainerResources>,
) -> api::LinuxContainerResources {
    let mut total = resources.cloned().unwrap_or_default();
    let Some(o) = overhead else {
        return total;
    };
    total.cpu_shares = total.cpu_shares.saturating_add(o.cpu_shares);
    if total.cpu_quota > 0 && o.cpu_quota > 0 {
        let period = match (total.cpu_period, o.cpu_period) {
            (0, p) | (p, 0) => p,
            (p, _) => p,
        };
        // The overhead's quota, rescaled to the pod's period when they differ.
        let extra = if o.cpu_period > 0 && period > 0 && o.cpu_period != period {
            o.cpu_quota.saturating_mul(period) / o.cpu_period
        } else {
            o.cpu_quota
        };
        total.cpu_quota = total.cpu_quota.saturating_add(extra);
        total.cpu_period = period;
    }
    if total.memory_limit_in_bytes > 0 {
        total.memory_limit_in_bytes = total
            .memory_limit_in_bytes
            .saturating_add(o.memory_limit_in_bytes.max(0));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(shares: i64, quota: i64, period: i64, memory: i64) -> api::LinuxContainerResources {
        api::LinuxContainerResources {
            cpu_shares: shares,
            cpu_quota: quota,
            cpu_period: period,
            memory_limit_in_bytes: memory,
            ..Default::default()
        }
    }

    #[test]
    fn without_overhead_the_pod_gets_the_resources() {
        let r = res(512, 50_000, 100_000, 1 << 30);
        assert_eq!(pod_total(Some(&r), None), r);
        assert_eq!(
            pod_total(None, None),
            api::LinuxContainerResources::default()
        );
    }

    #[test]
    fn overhead_adds_to_shares_quota_and_memory() {
        let total = pod_total(
            Some(&res(512, 50_000, 100_000, 1 << 30)),
            Some(&res(2, 10_000, 100_000, 1 << 20)),
        );
        assert_eq!(total, res(514, 60_000, 100_000, (1 << 30) + (1 << 20)));
    }

    #[test]
    fn unlimited_stays_unlimited_whatever_the_overhead() {
        let total = pod_total(
            Some(&res(512, -1, 0, 0)),
            Some(&res(2, 10_000, 100_000, 1 << 20)),
        );
        assert_eq!(total, res(514, -1, 0, 0));
    }

    #[test]
    fn an_overhead_quota_on_another_period_is_rescaled() {
        let total = pod_total(
            Some(&res(0, 50_000, 100_000, 0)),
            Some(&res(0, 5_000, 50_000, 0)),
        );
        assert_eq!((total.cpu_quota, total.cpu_period), (60_000, 100_000));
    }
}
