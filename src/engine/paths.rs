//! Where the pod and container files live.
//!
//! Persistent (`<root>`): `state/` (records), `containers/<id>/{upper,work,exit.json}`,
//! `logs/<sandbox>/` for pods whose request gives no log directory. Volatile (`<runroot>`):
//! `sandboxes/<id>/` (resolv.conf, hostname, hosts, shm, the pause bundle and exit file),
//! `containers/<id>/` (bundle and rootfs mount point), `ns/` (pinned namespaces), `sock/`
//! (monitor sockets, under a short name: unix socket paths are limited to 107 bytes),
//! `runtimes/<name>/` (OCI runtime state), `cni/` (CNI result cache), `pause` (the built-in
//! pause executable).

use std::fs;
use std::path::{Path, PathBuf};

use super::PodError;
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// The running crius binary (the built-in runtime and pause).
    pub exe: PathBuf,
    /// The crius-monitor binary.
    pub monitor: PathBuf,
    /// The built-in pause executable (`<runroot>/pause`, written by [`Paths::create`]).
    pub pause: PathBuf,
}

/// How much of an id names its sockets: 24 hex digits make collisions a non-issue.
const SOCKET_ID_LEN: usize = 24;

impl Paths {
    pub fn new(config: &Config) -> Result<Paths, PodError> {
        let exe = std::env::current_exe()
            .map_err(|e| PodError::internal("finding the crius binary", e))?;
        let monitor = if config.runtime.monitor_path.as_os_str().is_empty() {
            find_monitor(&exe)
        } else {
            config.runtime.monitor_path.clone()
        };
        Ok(Paths {
            root: config.root.clone(),
            runroot: config.runroot.clone(),
            exe,
            monitor,
            pause: config.runroot.join("pause"),
        })
    }

    pub fn create(&self) -> Result<(), PodError> {
        for dir in [
            self.state_dir(),
            self.root.join("containers"),
            self.runroot.join("sandboxes"),
            self.runroot.join("containers"),
            self.runroot.join("sock"),
            self.ns_dir(),
        ] {
            fs::create_dir_all(&dir)
                .map_err(|e| PodError::internal(format!("creating {}", dir.display()), e))?;
        }
        super::pause_bin::install(&self.pause)
            .map_err(|e| PodError::internal(format!("writing {}", self.pause.display()), e))
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    pub fn cni_cache_dir(&self) -> PathBuf {
        self.runroot.join("cni")
    }

    pub fn ns_dir(&self) -> PathBuf {
        self.runroot.join("ns")
    }

    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("sandboxes").join(id)
    }

    pub fn default_log_dir(&self, sandbox_id: &str) -> PathBuf {
        self.root.join("logs").join(sandbox_id)
    }

    /// Volatile per-container directory: bundle, rootfs mount point.
    pub fn container_run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }

    /// Persistent per-container directory: overlay upper and work, the exit file.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    pub fn exit_file(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("exit.json")
    }

    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.runroot.join("sock").join(format!("{}.a", short(id)))
    }

    pub fn control_socket(&self, id: &str) -> PathBuf {
        self.runroot.join("sock").join(format!("{}.c", short(id)))
    }

    /// Where a monitor's own diagnostics go.
    pub fn monitor_log(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor.log")
    }
}

fn short(id: &str) -> &str {
    id.get(..SOCKET_ID_LEN).unwrap_or(id)
}

/// `crius-monitor` beside the crius binary (how both are installed and built), else `$PATH`.
fn find_monitor(exe: &Path) -> PathBuf {
    let beside = exe.with_file_name("crius-monitor");
    if beside.exists() {
        return beside;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("crius-monitor"))
        .find(|p| p.exists())
        .unwrap_or(beside)
}
