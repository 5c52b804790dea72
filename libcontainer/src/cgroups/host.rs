//! What this host's cgroups offer a container: the controllers its cgroup can use and the huge
//! page sizes the kernel knows. Hosts differ (the hugetlb controller may be bound to a hybrid
//! cgroup2 mount rather than to v1, rdma and misc are often absent), and the daemon drops what a
//! host cannot do instead of failing the container, as cri-o and containerd do.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::{CgroupVersion, detect_at, v1::Subsystem};

/// Where the kernel lists the huge page sizes it supports (`hugepages-<N>kB`).
pub const HUGEPAGES_DIR: &str = "/sys/kernel/mm/hugepages";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCgroups {
    pub version: CgroupVersion,
    /// Controllers a container cgroup can use: on v2 those the root offers
    /// (`cgroup.controllers`), on v1 the mounted hierarchies (`cpu`, `memory`, …).
    pub controllers: BTreeSet<String>,
    /// Huge page sizes as cgroup files name them (`2MB`, `1GB`).
    pub hugepage_sizes: BTreeSet<String>,
}

impl HostCgroups {
    /// This host: `/sys/fs/cgroup` and `/sys/kernel/mm/hugepages`.
    pub fn detect() -> HostCgroups {
        Self::detect_at(
            Path::new(super::DEFAULT_CGROUP_ROOT),
            Path::new(HUGEPAGES_DIR),
        )
    }

    pub fn detect_at(root: &Path, hugepages: &Path) -> HostCgroups {
        let version = detect_at(root);
        let controllers = match version {
            CgroupVersion::V2 => fs::read_to_string(root.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            CgroupVersion::V1 => Subsystem::ALL
                .iter()
                .filter(|s| s.is_controller())
                .map(|s| s.name())
                .filter(|name| root.join(name).join("cgroup.procs").exists())
                .map(str::to_owned)
                .collect(),
        };
        let hugepage_sizes = fs::read_dir(hugepages)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| page_size_name(&e.file_name().to_string_lossy()))
            .collect();
        HostCgroups {
            version,
            controllers,
            hugepage_sizes,
        }
    }

    pub fn has(&self, controller: &str) -> bool {
        self.controllers.contains(controller)
    }
}

/// `hugepages-2048kB` → `2MB`, the kernel's hugetlb cgroup file naming (KB/MB/GB by the
/// largest unit that divides the size).
pub fn page_size_name(sysfs_entry: &str) -> Option<String> {
    let kb: u64 = sysfs_entry
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(if kb >= 1 << 20 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_named_as_cgroup_files_name_them() {
        assert_eq!(page_size_name("hugepages-2048kB").as_deref(), Some("2MB"));
        assert_eq!(
            page_size_name("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(page_size_name("hugepages-64kB").as_deref(), Some("64KB"));
        assert_eq!(page_size_name("hugepages-32768kB").as_deref(), Some("32MB"));
        assert_eq!(page_size_name("nr_hugepages"), None);
    }

    #[test]
    fn v1_controllers_are_the_mounted_hierarchies() {
        let root = tempfile::tempdir().unwrap();
        for c in ["cpu", "memory", "pids"] {
            fs::create_dir_all(root.path().join(c)).unwrap();
            fs::write(root.path().join(c).join("cgroup.procs"), "").unwrap();
        }
        // A directory that is not a hierarchy (no cgroup.procs) does not count.
        fs::create_dir_all(root.path().join("hugetlb")).unwrap();
        let pages = tempfile::tempdir().unwrap();
        fs::create_dir(pages.path().join("hugepages-2048kB")).unwrap();
        let h = HostCgroups::detect_at(root.path(), pages.path());
        assert_eq!(h.version, CgroupVersion::V1);
        assert_eq!(
            h.controllers.iter().map(String::as_str).collect::<Vec<_>>(),
            ["cpu", "memory", "pids"]
        );
        assert!(!h.has("hugetlb"));
        assert_eq!(
            h.hugepage_sizes
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["2MB"]
        );
    }

    #[test]
    fn this_host_is_detected() {
        // Whatever the host is, the answer is consistent with the file system.
        let h = HostCgroups::detect();
        assert_eq!(h.version, super::super::detect());
        if h.version == CgroupVersion::V1 {
            for c in &h.controllers {
                assert!(Path::new("/sys/fs/cgroup").join(c).is_dir(), "{c}");
            }
        }
    }
}
