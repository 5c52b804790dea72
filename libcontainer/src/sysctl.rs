//! Apply OCI `linux.sysctl` by writing /proc/sys inside the container.
//!
//! Only sysctls that belong to a namespace the container owns are allowed
//! (runc's validation list): IPC (`kernel.msgmax`, `kernel.msgmnb`,
//! `kernel.msgmni`, `kernel.sem`, `kernel.shmall`, `kernel.shmmax`,
//! `kernel.shmmni`, `kernel.shm_rmid_forced`, `fs.mqueue.*`) with a private
//! IPC namespace, `net.*` with a network namespace that is not the host's,
//! and `kernel.domainname` with a private UTS namespace (`kernel.hostname`
//! is refused: it conflicts with the OCI `hostname` field). Everything else
//! would change the host and is an error.
//!
//! Keys use sysctl(8) syntax: "net.ipv4.ip_forward", or the slash form
//! "net/ipv4/ip_forward". In the dotted form a '/' stands for a literal '.'
//! inside one component ("net.ipv4.conf.eth0/100.rp_filter" is
//! /proc/sys/net/ipv4/conf/eth0.100/rp_filter) — the convention Kubernetes
//! accepts. Components may not be empty, "." or "..".
//!
//! Call [`Namespaces::from_linux`] in the runtime (host namespaces, before
//! the container joins its own) and [`apply`] in the container init after
//! /proc is mounted and before it is made read-only.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("sysctl {0:?}: invalid key")]
    InvalidKey(String),
    #[error("sysctl {key:?} is not allowed: {reason}")]
    NotAllowed { key: String, reason: &'static str },
    #[error("sysctl {key:?}: {op}: {source}")]
    Io {
        key: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("network namespace {path}: {source}")]
    NetnsPath {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Which sysctl-relevant namespaces the container owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub ipc: bool,
    /// A network namespace that is not the runtime's (host's) own.
    pub net: bool,
    pub uts: bool,
}

impl Namespaces {
    /// From the spec's namespace list. A `network` entry with a `path` counts
    /// as private unless the path is the runtime's current netns (runc's
    /// isHostNetNS), so call this in the runtime, not in the container init.
    pub fn from_linux(linux: &Linux) -> Result<Self, SysctlError> {
        let mut ns = Namespaces::default();
        for n in linux.namespaces().iter().flatten() {
            match n.typ() {
                LinuxNamespaceType::Ipc => ns.ipc = true,
                LinuxNamespaceType::Uts => ns.uts = true,
                LinuxNamespaceType::Network => {
                    ns.net = match n.path() {
                        None => true,
                        Some(p) => !is_current_netns(p)?,
                    }
                }
                _ => {}
            }
        }
        Ok(ns)
    }
}

fn is_current_netns(path: &Path) -> Result<bool, SysctlError> {
    let meta = |p: &Path| {
        std::fs::metadata(p).map_err(|source| SysctlError::NetnsPath {
            path: p.display().to_string(),
            source,
        })
    };
    let (a, b) = (meta(Path::new("/proc/self/ns/net"))?, meta(path)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// Split a key into /proc/sys path components (see module docs).
fn components(key: &str) -> Result<Vec<String>, SysctlError> {
    let invalid = || SysctlError::InvalidKey(key.to_string());
    let dotted = match key.find(['.', '/']) {
        Some(i) => key.as_bytes()[i] == b'.',
        None => true,
    };
    let parts: Vec<String> = if dotted {
        key.split('.').map(|c| c.replace('/', ".")).collect()
    } else {
        key.split('/').map(String::from).collect()
    };
    let bad = |c: &String| c.is_empty() || c == "." || c == ".." || c.contains('\0');
    if parts.iter().any(bad) {
        return Err(invalid());
    }
    Ok(parts)
}

/// Whether the kernel scopes sysctl `name` (dotted, e.g. `kernel.shmmax`) to the IPC
/// namespace. The one list of them: the daemon's request checks use it too.
pub fn ipc_scoped(name: &str) -> bool {
    IPC_SYSCTLS.contains(&name) || name.starts_with("fs.mqueue.")
}

const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Check one key against the namespace policy; returns its path components.
pub fn validate(key: &str, ns: Namespaces) -> Result<Vec<String>, SysctlError> {
    let parts = components(key)?;
    // Canonical dotted name (with in-component dots as '/') for matching.
    let canon = parts
        .iter()
        .map(|c| c.replace('.', "/"))
        .collect::<Vec<_>>()
        .join(".");
    let deny = |reason| SysctlError::NotAllowed {
        key: key.to_string(),
        reason,
    };
    if ipc_scoped(&canon) {
        return if ns.ipc {
            Ok(parts)
        } else {
            Err(deny("the container shares the host's IPC namespace"))
        };
    }
    if canon.starts_with("net.") {
        return if ns.net {
            Ok(parts)
        } else {
            Err(deny("the container uses the host's network namespace"))
        };
    }
    if ns.uts && canon == "kernel.domainname" {
        return Ok(parts);
    }
    if ns.uts && canon == "kernel.hostname" {
        return Err(deny("conflicts with the OCI hostname field"));
    }
    Err(deny("not in a namespace owned by the container"))
}

/// One sysctl to write: its key, its path relative to `/proc/sys`, its value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Planned {
    pub key: String,
    pub rel: String,
    pub value: String,
}

/// Every key validated (all or nothing, before anything is written) with its path, in a
/// deterministic order (logs, partial-failure reports).
pub fn plan(
    sysctls: &HashMap<String, String>,
    ns: Namespaces,
) -> Result<Vec<Planned>, SysctlError> {
    let mut planned = Vec::with_capacity(sysctls.len());
    for (key, value) in sysctls {
        planned.push(Planned {
            key: key.clone(),
            rel: validate(key, ns)?.join("/"),
            value: value.clone(),
        });
    }
    planned.sort();
    Ok(planned)
}

/// Validate every key, then write each value under `/proc/sys`.
pub fn apply(sysctls: &HashMap<String, String>, ns: Namespaces) -> Result<(), SysctlError> {
    apply_at(Path::new("/proc/sys"), sysctls, ns)
}

/// [`apply`] with an explicit /proc/sys directory (tests, or a procfs
/// mounted elsewhere).
pub fn apply_at(
    proc_sys: &Path,
    sysctls: &HashMap<String, String>,
    ns: Namespaces,
) -> Result<(), SysctlError> {
    write_planned(proc_sys, &plan(sysctls, ns)?)
}

/// Writes what [`plan`] gave under the /proc/sys directory `proc_sys`.
pub fn write_planned(proc_sys: &Path, planned: &[Planned]) -> Result<(), SysctlError> {
    if planned.is_empty() {
        return Ok(());
    }
    let dir: OwnedFd = open(
        proc_sys,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysctlError::Io {
        key: proc_sys.display().to_string(),
        op: "open",
        source: e.into(),
    })?;
    for Planned { key, rel, value } in planned {
        let io = |op, e: std::io::Error| SysctlError::Io {
            key: key.clone(),
            op,
            source: e,
        };
        // No symlinks and nothing outside /proc/sys, whatever the key says.
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(&dir, rel.as_str(), how).map_err(|e| io("open", e.into()))?;
        // One write(2): procfs handlers parse per write.
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .map_err(|e| io("write", e))?;
        tracing::debug!(%key, %value, "sysctl set");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ChildResult, fork_child};
    use super::*;

    const ALL: Namespaces = Namespaces {
        ipc: true,
        net: true,
        uts: true,
    };

    #[test]
    fn key_syntax() {
        assert_eq!(
            components("net.ipv4.ip_forward").expect("ok"),
            ["net", "ipv4", "ip_forward"]
        );
        assert_eq!(
            components("net/ipv4/ip_forward").expect("ok"),
            ["net", "ipv4", "ip_forward"]
        );
        assert_eq!(
            components("net.ipv4.conf.eth0/100.rp_filter").expect("ok"),
            ["net", "ipv4", "conf", "eth0.100", "rp_filter"]
        );
        assert_eq!(
            components("net/ipv4/conf/eth0.100/rp_filter").expect("ok"),
            ["net", "ipv4", "conf", "eth0.100", "rp_filter"]
        );
        for bad in [
            "",
            "net..x",
            "net.ipv4.",
            ".net",
            "net/../../etc",
            "net.ipv4./",
            "net/./x",
            "net.x\0y",
        ] {
            assert!(
                matches!(components(bad), Err(SysctlError::InvalidKey(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn namespace_policy() {
        let none = Namespaces::default();
        assert!(validate("net.ipv4.ip_forward", ALL).is_ok());
        assert!(validate("net.ipv4.conf.eth0/100.rp_filter", ALL).is_ok());
        assert!(validate("kernel.shmmax", ALL).is_ok());
        assert!(validate("kernel/sem", ALL).is_ok());
        assert!(validate("fs.mqueue.msg_max", ALL).is_ok());
        assert!(validate("kernel.domainname", ALL).is_ok());
        for (key, ns) in [
            ("net.ipv4.ip_forward", none),
            ("kernel.shmmax", none),
            ("fs.mqueue.msg_max", none),
            ("kernel.domainname", none),
            ("kernel.hostname", ALL),
            ("kernel.pid_max", ALL),
            ("vm.overcommit_memory", ALL),
            ("fs.file-max", ALL),
            ("kernel.shm_next_id", ALL),
        ] {
            let e = validate(key, ns).expect_err(key);
            assert!(matches!(e, SysctlError::NotAllowed { .. }), "{key}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn namespaces_from_spec() {
        let linux: Linux = serde_json::from_str(
            r#"{"namespaces":[{"type":"ipc"},{"type":"network","path":"/proc/self/ns/net"},{"type":"uts"}]}"#,
        )
        .expect("linux");
        assert_eq!(
            Namespaces::from_linux(&linux).expect("ns"),
            Namespaces {
                ipc: true,
                net: false,
                uts: true
            }
        );
        let linux: Linux =
            serde_json::from_str(r#"{"namespaces":[{"type":"network"}]}"#).expect("linux");
        assert!(Namespaces::from_linux(&linux).expect("ns").net);
        let linux: Linux =
            serde_json::from_str(r#"{"namespaces":[{"type":"network","path":"/nonexistent"}]}"#)
                .expect("linux");
        assert!(Namespaces::from_linux(&linux).is_err());
    }

    #[test]
    fn writes_values_and_refuses_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sys = dir.path();
        std::fs::create_dir_all(sys.join("net/ipv4/conf/eth0.100")).expect("mkdir");
        std::fs::write(sys.join("net/ipv4/ip_forward"), "0").expect("write");
        std::fs::write(sys.join("net/ipv4/conf/eth0.100/rp_filter"), "1").expect("write");
        let map: HashMap<String, String> = [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.eth0/100.rp_filter", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        apply_at(sys, &map, ALL).expect("apply");
        assert_eq!(
            std::fs::read_to_string(sys.join("net/ipv4/ip_forward")).expect("r"),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(sys.join("net/ipv4/conf/eth0.100/rp_filter")).expect("r"),
            "2"
        );

        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").expect("write");
        std::os::unix::fs::symlink(&outside, sys.join("net/core")).expect("symlink");
        let map: HashMap<String, String> = [("net.core".to_string(), "y".to_string())]
            .into_iter()
            .collect();
        assert!(apply_at(sys, &map, ALL).is_err());
        assert_eq!(std::fs::read_to_string(&outside).expect("r"), "x");

        // A disallowed key stops everything before the first write.
        let map: HashMap<String, String> = [("net.ipv4.ip_forward", "0"), ("kernel.pid_max", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(apply_at(sys, &map, ALL).is_err());
        assert_eq!(
            std::fs::read_to_string(sys.join("net/ipv4/ip_forward")).expect("r"),
            "1"
        );
    }

    /// Real /proc/sys in a private network namespace.
    #[test]
    fn real_sysctl_in_private_netns() {
        let res = fork_child(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare: {e}"))?;
            let key = "net.ipv4.ip_default_ttl";
            let map: HashMap<String, String> =
                [(key.to_string(), "77".to_string())].into_iter().collect();
            apply(&map, ALL).map_err(|e| e.to_string())?;
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl")
                .map(|s| s.trim().to_string())
                .map_err(|e| e.to_string())
        });
        match res {
            ChildResult::Err(e) if e.starts_with("unshare") => {
                eprintln!("skipped: cannot create a network namespace ({e})");
            }
            other => assert_eq!(other, ChildResult::Ok("77".into())),
        }
    }
}
