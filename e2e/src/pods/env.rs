//! Everything a pod test needs, started together: a loopback registry with the busybox image, a
//! CNI network of its own, and a crius daemon using both with a cgroup parent of its own. Drop
//! removes every pod the daemon still has, then the cgroup parent directories.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::flow::{PodFlow, cleanup_all};
use super::leak_check::{Leaks, cgroups_under};
use super::network::TestNetwork;
use crate::daemon::{Crius, CriusBuilder};
use crate::images;
use crate::registry::{RegistryMode, TestRegistry};

pub struct PodEnv {
    pub crius: Crius,
    pub network: TestNetwork,
    pub registry: TestRegistry,
    /// The busybox test image, already pulled.
    pub image: String,
    /// The daemon's `[runtime] cgroup_parent`.
    pub cgroup_parent: String,
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
        let cgroup_parent = format!("/crius-e2e-{}", super::requests::unique_uid());
        let builder = Crius::builder()
            .insecure(&registry.host())
            .network(&network)
            .config_value("runtime.cgroup_parent", cgroup_parent.as_str())
            .config_value(
                "runtime.monitor_cgroup",
                monitor_cgroup(&cgroup_parent).as_str(),
            );
        let crius = configure(builder).start().await?;
        crius.images().await?.pull(&pushed.reference).await?;
        Ok(PodEnv {
            crius,
            network,
            registry,
            image: pushed.reference,
            cgroup_parent,
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

    /// What the daemon left on the host: mounts, pins, cgroups, veths, IPs, iptables rules.
    pub fn leaks(&self) -> Leaks {
        Leaks::collect(&self.crius, Some(&self.network), Some(&self.cgroup_parent))
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
        remove_cgroup_tree(&self.cgroup_parent);
        remove_cgroup_tree(&monitor_cgroup(&self.cgroup_parent));
    }
}

/// The monitors' cgroup of a test daemon whose pods go under `cgroup_parent`.
pub fn monitor_cgroup(cgroup_parent: &str) -> String {
    format!("{cgroup_parent}-monitors")
}

/// Removes a cgroup and its (empty) descendants in every hierarchy, deepest first.
pub fn remove_cgroup_tree(parent: &str) {
    let mut dirs = cgroups_under(parent);
    let rel = parent.trim_start_matches('/');
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            dirs.push(e.path().join(rel));
        }
    }
    dirs.push(Path::new("/sys/fs/cgroup").join(rel));
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}
