//! Everything a pod test needs, started together: a loopback registry with the busybox image, a
//! CNI network of its own, and a crius daemon using both with a cgroup parent of its own. Drop
//! removes every pod the daemon still has, then the cgroup parent directories (and with the
//! systemd cgroup driver the parent slice unit).
//!
//! The parent follows `CRIUS_E2E_CGROUP_MANAGER` (see [`crate::cgroups`]): `/crius-e2e-<uid>`
//! for cgroupfs, `crius-e2e-<uid>.slice` for systemd. The monitors' cgroup is a cgroupfs path
//! with either driver (`[runtime] monitor_cgroup` is one).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::flow::{PodFlow, cleanup_all};
use super::leak_check::{Leaks, cgroups_under};
use super::network::TestNetwork;
use crate::cgroups;
use crate::daemon::{Crius, CriusBuilder};
use crate::images;
use crate::registry::{RegistryMode, TestRegistry};

pub struct PodEnv {
    pub crius: Crius,
    pub network: TestNetwork,
    pub registry: TestRegistry,
    /// The busybox test image, already pulled.
    pub image: String,
    /// The daemon's `[runtime] cgroup_parent`: a cgroupfs path, or a slice name with the
    /// systemd driver.
    pub cgroup_parent: String,
    /// Whether the daemon uses the systemd cgroup driver.
    pub systemd: bool,
    /// A directory for pod logs.
    pub logs: tempfile::TempDir,
}

impl PodEnv {
    pub async fn start() -> Result<PodEnv> {
        Self::start_with(|b| b).await
    }

    /// Starts with extra daemon settings.
    pub async fn start_with(
        configure: impl FnOnce(CriusBuilder) -> CriusBuilder,
    ) -> Result<PodEnv> {
        let registry = TestRegistry::start(RegistryMode::Plain).await?;
        let pushed = images::push_single(&registry, "e2e/busybox", "v1").await?;
        let network = TestNetwork::new()?;
        let systemd = cgroups::systemd_driver();
        let cgroup_parent =
            cgroups::test_cgroup_parent("crius-e2e", &super::requests::unique_uid(), systemd);
        let builder = Crius::builder()
            .insecure(&registry.host())
            .network(&network)
            .config_value("runtime.cgroup_parent", cgroup_parent.as_str())
            .config_value(
                "runtime.monitor_cgroup",
                monitor_cgroup(&cgroup_parent).as_str(),
            );
        // Whatever happens from here on, the parent is removed (Drop of a partial env would
        // not run).
        let guard = ParentGuard {
            cgroup_parent: cgroup_parent.clone(),
            systemd,
        };
        let crius = configure(builder).start().await?;
        crius.images().await?.pull(&pushed.reference).await?;
        std::mem::forget(guard);
        Ok(PodEnv {
            crius,
            network,
            registry,
            image: pushed.reference,
            cgroup_parent,
            systemd,
            logs: tempfile::Builder::new()
                .prefix("crius-e2e-logs")
                .tempdir()?,
        })
    }

    pub async fn flow(&self) -> Result<PodFlow> {
        PodFlow::connect(self.crius.socket()).await
    }

    /// A log directory for one pod.
    pub fn log_dir(&self, pod: &str) -> PathBuf {
        let dir = self.logs.path().join(pod);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    /// What the daemon left on the host: mounts, pins, cgroups (and systemd units), veths, IPs,
    /// iptables rules.
    pub fn leaks(&self) -> Leaks {
        Leaks::collect(&self.crius, Some(&self.network), Some(&self.cgroup_parent))
    }

    /// The cgroupfs path (from the cgroup root, leading `/`) of container `id`.
    pub fn container_cgroup(&self, id: &str) -> String {
        cgroups::container_cgroup(&self.cgroup_parent, id)
    }

    /// The memory limit in container `id`'s cgroup (v1 `memory.limit_in_bytes`, v2
    /// `memory.max`), as the file holds it.
    pub fn container_memory_limit(&self, id: &str) -> String {
        let file = cgroups::cgroup_file(
            &self.container_cgroup(id),
            "memory",
            "memory.limit_in_bytes",
            "memory.max",
        );
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string()
    }

    pub fn socket(&self) -> &Path {
        self.crius.socket()
    }
}

impl Drop for PodEnv {
    fn drop(&mut self) {
        let socket = self.crius.socket().to_path_buf();
        if socket.exists() && self.crius.is_running() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let mut client = crate::cri::runtime_client(&socket).await?;
                    cleanup_all(&mut client).await
                })
            })
            .join();
        }
        remove_parent(&self.cgroup_parent, self.systemd);
    }
}

/// Removes a test's cgroup parent when [`PodEnv::start_with`] fails half-way.
struct ParentGuard {
    cgroup_parent: String,
    systemd: bool,
}

impl Drop for ParentGuard {
    fn drop(&mut self) {
        remove_parent(&self.cgroup_parent, self.systemd);
    }
}

/// Removes a test's cgroup parent (a slice: its unit, then what is left of its cgroup) and its
/// monitors' cgroup.
fn remove_parent(cgroup_parent: &str, systemd: bool) {
    if systemd && cgroup_parent.ends_with(".slice") {
        cgroups::stop_unit(cgroup_parent);
    }
    remove_cgroup_tree(&cgroups::parent_path(cgroup_parent));
    remove_cgroup_tree(&monitor_cgroup(cgroup_parent));
}

/// The monitors' cgroup (a cgroupfs path) of a test daemon whose pods go under `cgroup_parent`:
/// `<parent>-monitors`, or `/<slice stem>-monitors` for a slice.
pub fn monitor_cgroup(cgroup_parent: &str) -> String {
    match cgroup_parent.strip_suffix(".slice") {
        Some(stem) => format!("/{stem}-monitors"),
        None => format!("{cgroup_parent}-monitors"),
    }
}

/// Removes a cgroup (a cgroupfs path) and its (empty) descendants in every hierarchy, deepest
/// first.
pub fn remove_cgroup_tree(parent: &str) {
    let root = Path::new(cgroups::CGROUP_ROOT);
    let mut dirs = cgroups_under(parent);
    let rel = parent.trim_start_matches('/');
    if !cgroups::is_unified(root)
        && let Ok(entries) = std::fs::read_dir(root)
    {
        for e in entries.flatten() {
            dirs.push(e.path().join(rel));
        }
    }
    dirs.push(root.join(rel));
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}
