//! `[runtime]`: how pods and containers are run — the OCI runtime handlers, the monitor,
//! the default cgroup parent and per-pod resources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::libcontainer::cgroups::Driver;

/// Name of the built-in handler: crius' own OCI runtime (`crius oci`).
pub const BUILTIN_RUNTIME: &str = "crius";

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct RuntimeConfig {
    /// Handler used when a request names none (CRI `runtime_handler` = "").
    pub default_runtime: String,
    /// The `crius-monitor` binary; empty: the one next to the `crius` binary, else `$PATH`.
    pub monitor_path: PathBuf,
    /// `"cgroupfs"`, `"systemd"`, or `""`: systemd when PID 1 is systemd and `cgroup_parent` is
    /// empty or a slice, else cgroupfs ([`RuntimeConfig::cgroup_driver`]).
    pub cgroup_manager: String,
    /// cgroup parent of pods whose request gives none: an absolute cgroupfs path (cgroupfs
    /// driver) or a slice (systemd driver); empty: `/crius` or `crius.slice`.
    pub cgroup_parent: String,
    /// cgroup (cgroupfs path) container monitors move to, out of the daemon's own, so that a
    /// service manager stopping the daemon does not kill them; empty: they stay.
    pub monitor_cgroup: String,
    /// Image whose command is the pod's pause process, pulled if missing; empty: crius' built-in
    /// pause (`<runroot>/pause`, embedded in crius; nothing to pull).
    pub pause_image: String,
    /// Size of each pod's `/dev/shm` tmpfs, in bytes.
    pub shm_size: u64,
    /// Most content bytes in one CRI log entry; longer lines are split.
    pub log_max_line: usize,
    /// Events `GetContainerEvents` keeps for a subscriber that is behind; one further behind
    /// loses its stream (and relists).
    pub container_events_buffer: usize,
    /// OCI runtime handlers by name (the CRI `runtime_handler`).
    pub runtimes: BTreeMap<String, RuntimeHandlerConfig>,
}

/// One OCI runtime handler.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct RuntimeHandlerConfig {
    /// A runtime with runc's command line (runc, crun); empty: crius' own, `crius oci`.
    pub path: PathBuf,
    /// The runtime's state directory (`--root`); empty: `<runroot>/runtimes/<name>`.
    pub root: PathBuf,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_runtime: BUILTIN_RUNTIME.to_owned(),
            monitor_path: PathBuf::new(),
            cgroup_manager: String::new(),
            cgroup_parent: String::new(),
            monitor_cgroup: "/crius-monitors".to_owned(),
            pause_image: String::new(),
            shm_size: 64 * 1024 * 1024,
            log_max_line: 16 * 1024,
            container_events_buffer: 1000,
            runtimes: BTreeMap::from([(
                BUILTIN_RUNTIME.to_owned(),
                RuntimeHandlerConfig::default(),
            )]),
        }
    }
}

/// Whether the host was booted with systemd (its `sd_booted()` test).
pub fn systemd_booted() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

impl RuntimeConfig {
    /// The configured driver, or the detected one: systemd when PID 1 is systemd and the
    /// default parent is not a cgroupfs path, as cri-o and containerd users on systemd nodes
    /// expect (the kubelet adopts the answer of `RuntimeConfig`).
    pub fn cgroup_driver(&self, systemd_booted: bool) -> Driver {
        match self.cgroup_manager.as_str() {
            "systemd" => Driver::Systemd,
            "cgroupfs" => Driver::Cgroupfs,
            _ if systemd_booted && !self.cgroup_parent.starts_with('/') => Driver::Systemd,
            _ => Driver::Cgroupfs,
        }
    }

    /// The parent of pods whose request gives none, for `driver`.
    pub fn default_cgroup_parent(&self, driver: Driver) -> String {
        match (self.cgroup_parent.is_empty(), driver) {
            (false, _) => self.cgroup_parent.clone(),
            (true, Driver::Cgroupfs) => "/crius".to_owned(),
            (true, Driver::Systemd) => "crius.slice".to_owned(),
        }
    }

    /// The handler named `name`. The built-in one exists even when a configuration's
    /// `[runtime.runtimes]` lists only others (a table in a file replaces the default table).
    pub fn handler(&self, name: &str) -> Option<RuntimeHandlerConfig> {
        self.runtimes
            .get(name)
            .cloned()
            .or_else(|| (name == BUILTIN_RUNTIME).then(RuntimeHandlerConfig::default))
    }

    /// Every handler name, the built-in one included, sorted.
    pub fn handler_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.runtimes.keys().cloned().collect();
        if !self.runtimes.contains_key(BUILTIN_RUNTIME) {
            names.push(BUILTIN_RUNTIME.to_owned());
            names.sort();
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_driver_is_configured_or_detected() {
        let rt = |manager: &str, parent: &str| RuntimeConfig {
            cgroup_manager: manager.into(),
            cgroup_parent: parent.into(),
            ..Default::default()
        };
        use Driver::*;
        // Detected: systemd only on a systemd host whose default parent is not a path.
        assert_eq!(rt("", "").cgroup_driver(true), Systemd);
        assert_eq!(rt("", "kubepods.slice").cgroup_driver(true), Systemd);
        assert_eq!(rt("", "/crius").cgroup_driver(true), Cgroupfs);
        assert_eq!(rt("", "").cgroup_driver(false), Cgroupfs);
        // Configured: whatever the host.
        assert_eq!(rt("systemd", "").cgroup_driver(false), Systemd);
        assert_eq!(rt("cgroupfs", "").cgroup_driver(true), Cgroupfs);
        assert_eq!(rt("", "").default_cgroup_parent(Cgroupfs), "/crius");
        assert_eq!(rt("", "").default_cgroup_parent(Systemd), "crius.slice");
        assert_eq!(rt("", "/x").default_cgroup_parent(Cgroupfs), "/x");
    }
}
