//! `[runtime]`: how pods and containers are run — the OCI runtime handlers, the monitor,
//! the default cgroup parent and per-pod resources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// cgroup parent (cgroupfs path) of pods whose request gives none.
    pub cgroup_parent: String,
    /// cgroup (cgroupfs path) container monitors move to, out of the daemon's own, so that a
    /// service manager stopping the daemon does not kill them; empty: they stay.
    pub monitor_cgroup: String,
    /// Image whose command is the pod's pause process, pulled if missing; empty: crius' built-in
    /// pause (`crius pause`, nothing to pull).
    pub pause_image: String,
    /// Size of each pod's `/dev/shm` tmpfs, in bytes.
    pub shm_size: u64,
    /// Most content bytes in one CRI log entry; longer lines are split.
    pub log_max_line: usize,
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
            cgroup_parent: "/crius".to_owned(),
            monitor_cgroup: "/crius-monitors".to_owned(),
            pause_image: String::new(),
            shm_size: 64 * 1024 * 1024,
            log_max_line: 16 * 1024,
            runtimes: BTreeMap::from([(
                BUILTIN_RUNTIME.to_owned(),
                RuntimeHandlerConfig::default(),
            )]),
        }
    }
}

impl RuntimeConfig {
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
