//! ContainerStats / ListContainerStats: CPU and memory from the container's cgroup (v1 or v2),
//! the writable layer's bytes and inodes from its overlay upper directory.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::api;
use crate::engine::{Container, Engine, PodError};
use crate::libcontainer::cgroups::{self, DEFAULT_CGROUP_ROOT};
use crate::store::now_nanos;

/// The previous CPU sample of each container, for `usage_nano_cores` (a rate needs two).
#[derive(Debug, Default)]
pub struct CpuSamples(Mutex<HashMap<String, (i64, u64)>>);

impl CpuSamples {
    /// Records a sample; the rate since the previous one, if any.
    fn rate(&self, id: &str, at: i64, usage_ns: u64) -> Option<u64> {
        let mut samples = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let previous = samples.insert(id.to_owned(), (at, usage_ns));
        let (t0, u0) = previous?;
        let dt = u64::try_from(at - t0).ok().filter(|dt| *dt > 0)?;
        // ns of CPU per ns of wall time, in nano-cores.
        Some(((usage_ns.saturating_sub(u0)) as u128 * 1_000_000_000 / dt as u128) as u64)
    }

    pub fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

pub async fn stats(
    engine: &Engine,
    container: &Container,
) -> Result<api::ContainerStats, PodError> {
    let rec = container.record();
    let config = super::status::container_config(&rec)?;
    let cgroup_parent = engine
        .sandbox(&rec.sandbox_id)
        .map(|s| s.record().cgroup_parent)
        .unwrap_or_else(|_| engine.default_cgroup_parent.clone());
    let cgroup = crate::oci::cgroup_dir(&cgroup_parent, &rec.id)?;
    let upper = engine.paths.container_dir(&rec.id).join("upper");
    let (cg, layer) = tokio::task::spawn_blocking(move || {
        let cg = cgroups::manager(&cgroup, Path::new(DEFAULT_CGROUP_ROOT))
            .and_then(|m| m.stats())
            .ok();
        (cg, disk_usage(&upper))
    })
    .await?;
    let at = now_nanos();
    let value = |v: u64| Some(api::UInt64Value { value: v });
    let cpu = cg
        .as_ref()
        .and_then(|s| s.cpu.as_ref())
        .map(|c| api::CpuUsage {
            timestamp: at,
            usage_core_nano_seconds: value(c.usage_ns),
            usage_nano_cores: engine
                .cpu_samples
                .rate(&rec.id, at, c.usage_ns)
                .and_then(value),
            psi: None,
        });
    let memory = cg
        .as_ref()
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
    let writable_layer = layer.map(|(bytes, inodes, mountpoint)| api::FilesystemUsage {
        timestamp: at,
        fs_id: Some(api::FilesystemIdentifier {
            mountpoint: mountpoint.display().to_string(),
        }),
        used_bytes: value(bytes),
        inodes_used: value(inodes),
    });
    Ok(api::ContainerStats {
        attributes: Some(api::ContainerAttributes {
            id: rec.id.clone(),
            metadata: config.metadata,
            labels: config.labels,
            annotations: config.annotations,
        }),
        cpu,
        memory,
        writable_layer,
        swap: None,
        io: None,
    })
}

/// Bytes (allocated blocks) and inodes under `dir`, and the mount it is on; None when absent.
fn disk_usage(dir: &Path) -> Option<(u64, u64, PathBuf)> {
    let mountpoint = crate::mounts::mountpoint_of(dir).ok()?;
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
    Some((bytes, inodes, mountpoint))
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
            .map(|c| crate::sandbox::status::labels_match(&c.labels, &filter.label_selector))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_needs_two_samples() {
        let s = CpuSamples::default();
        assert_eq!(s.rate("c", 1_000_000_000, 0), None);
        // Half a core over one second.
        assert_eq!(s.rate("c", 2_000_000_000, 500_000_000), Some(500_000_000));
        s.forget("c");
        assert_eq!(s.rate("c", 3_000_000_000, 600_000_000), None);
    }

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
