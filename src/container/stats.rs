//! ContainerStats / ListContainerStats: CPU and memory from the container's cgroup (v1 or v2),
//! the writable layer's bytes and inodes from its overlay upper directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::api;
use crate::engine::{Container, Engine, PodError};
use crate::libcontainer::cgroups::{self, DEFAULT_CGROUP_ROOT};
use crate::store::now_nanos;

pub async fn stats(
    engine: &Engine,
    container: &Container,
) -> Result<api::ContainerStats, PodError> {
    Ok(stats_and_processes(engine, container).await?.0)
}

/// [`stats`], and the number of processes in the container's cgroup (for the pod's count).
pub async fn stats_and_processes(
    engine: &Engine,
    container: &Container,
) -> Result<(api::ContainerStats, Option<u64>), PodError> {
    let rec = container.record();
    let config = super::status::container_config(&rec)?;
    let cgroup_parent = engine
        .sandbox(&rec.sandbox_id)
        .map(|s| s.record().cgroup_parent)
        .unwrap_or_else(|_| engine.runtimes.default_cgroup_parent.clone());
    let cgroup = crate::oci::cgroup_dir(&cgroup_parent, &rec.id)?;
    let upper = engine.paths.container_dir(&rec.id).join("upper");
    let (cg, layer) =
        tokio::task::spawn_blocking(move || (read_cgroup(&cgroup), disk_usage(&upper))).await?;
    let at = now_nanos();
    let usage = CgroupUsage::of(engine, &rec.id, cg.as_ref(), at);
    let value = |v: u64| Some(api::UInt64Value { value: v });
    let writable_layer = layer.map(|(bytes, inodes, mountpoint)| api::FilesystemUsage {
        timestamp: at,
        fs_id: Some(api::FilesystemIdentifier {
            mountpoint: mountpoint.display().to_string(),
        }),
        used_bytes: value(bytes),
        inodes_used: value(inodes),
    });
    let stats = api::ContainerStats {
        attributes: Some(api::ContainerAttributes {
            id: rec.id.clone(),
            metadata: config.metadata,
            labels: config.labels,
            annotations: config.annotations,
        }),
        cpu: usage.cpu,
        memory: usage.memory,
        writable_layer,
        swap: None,
        io: None,
    };
    Ok((stats, usage.processes))
}

/// The stats of the cgroup at `dir` (relative to the cgroup root); None when it is gone.
pub fn read_cgroup(dir: &str) -> Option<cgroups::Stats> {
    cgroups::manager(dir, Path::new(DEFAULT_CGROUP_ROOT))
        .and_then(|m| m.stats())
        .ok()
}

/// One cgroup's stats in CRI terms: CPU (with its rate over the shared window of `id`), memory,
/// and the processes in it.
pub struct CgroupUsage {
    pub cpu: Option<api::CpuUsage>,
    pub memory: Option<api::MemoryUsage>,
    pub processes: Option<u64>,
}

impl CgroupUsage {
    pub fn of(engine: &Engine, id: &str, cg: Option<&cgroups::Stats>, at: i64) -> CgroupUsage {
        let value = |v: u64| Some(api::UInt64Value { value: v });
        let cpu = cg.and_then(|s| s.cpu.as_ref()).map(|c| api::CpuUsage {
            timestamp: at,
            usage_core_nano_seconds: value(c.usage_ns),
            usage_nano_cores: engine.cpu_samples.rate(id, at, c.usage_ns).and_then(value),
            psi: None,
        });
        let memory = cg
            .and_then(|s| s.memory.as_ref())
            .map(|m| api::MemoryUsage {
                timestamp: at,
                working_set_bytes: value(m.working_set_bytes),
                available_bytes: m
                    .limit_bytes
                    .map(|l| l.saturating_sub(m.working_set_bytes))
                    .and_then(value),
                usage_bytes: value(m.usage_bytes),
                rss_bytes: value(m.rss_bytes),
                page_faults: value(m.page_faults),
                major_page_faults: value(m.major_page_faults),
                psi: None,
            });
        CgroupUsage {
            cpu,
            memory,
            processes: cg.and_then(|s| s.pids.as_ref()).map(|p| p.current),
        }
    }
}

/// Bytes (allocated blocks) and inodes under `dir`, and the mount it is on; None when absent.
fn disk_usage(dir: &Path) -> Option<(u64, u64, PathBuf)> {
    let mountpoint = crate::libcontainer::mounts::mountpoint_of(dir).ok()?;
    let (bytes, inodes) = dir_usage(dir);
    Some((bytes, inodes, mountpoint))
}

/// Bytes (allocated blocks) and inodes under `dir` (0 when it is absent).
pub fn dir_usage(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            bytes += meta.blocks() * 512;
            inodes += 1;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

/// Whether a container passes a `ContainerStatsFilter`.
pub fn matches(container: &Container, filter: &api::ContainerStatsFilter) -> bool {
    let rec = container.record();
    if !filter.id.is_empty() && !rec.id.starts_with(&filter.id) {
        return false;
    }
    if !filter.pod_sandbox_id.is_empty() && !rec.sandbox_id.starts_with(&filter.pod_sandbox_id) {
        return false;
    }
    filter.label_selector.is_empty()
        || super::status::container_config(&rec)
            .map(|c| crate::pod::labels_match(&c.labels, &filter.label_selector))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_counts_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), vec![1u8; 10000]).unwrap();
        let (bytes, inodes, _) = disk_usage(dir.path()).unwrap();
        assert_eq!(inodes, 2);
        assert!(bytes >= 10000, "{bytes}");
    }
}
