//! Error type for the cgroup library. Every variant that involves a file
//! names it, because "Invalid argument" alone is useless when a container
//! fails to start.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "cgroups path {0:?} is relative; crius only manages absolute cgroup paths (a relative one would land inside the runtime's own cgroup)"
    )]
    RelativePath(String),

    #[error(
        "cgroups path {0:?} is in the systemd form (slice:prefix:name): it needs the systemd cgroup driver (crius oci --systemd-cgroup)"
    )]
    NeedsSystemdDriver(String),

    /// A D-Bus call to systemd failed, or a unit did not reach the wanted state.
    #[error("systemd: {0}")]
    Systemd(String),

    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    #[error("cgroup root {0} does not exist")]
    RootMissing(PathBuf),

    #[error("failed to write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },

    #[error("failed to create cgroup directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to remove cgroup directory {path}: {source}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "cgroup v1 controller {0:?} is needed but its hierarchy is not mounted under the cgroup root"
    )]
    ControllerNotMounted(&'static str),

    #[error(
        "cgroup v2 controller {controller:?} is not enabled for {path} (missing from cgroup.controllers)"
    )]
    ControllerUnavailable {
        controller: &'static str,
        path: PathBuf,
    },

    #[error("unified resource key {key:?}: no such file {path}")]
    UnifiedKeyMissing { key: String, path: PathBuf },

    #[error("unified resource key {0:?} is not a plain cgroup file name")]
    InvalidUnifiedKey(String),

    #[error("invalid resources: {0}")]
    InvalidResource(String),

    #[error("not supported: {0}")]
    Unsupported(String),

    #[error("timed out waiting for {path} to report {expected:?}")]
    Timeout { path: PathBuf, expected: String },

    #[error("bpf {op} failed for {path}: {source}{}", verifier_log(.log))]
    Bpf {
        op: &'static str,
        path: PathBuf,
        log: String,
        #[source]
        source: io::Error,
    },
}

fn verifier_log(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier log: {log})")
    }
}
