//! Which namespaces a container joins (by path) and which it creates, and in what order.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Result, SysContext};

pub const CLONE_NEWTIME: i32 = 0x80;

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(CLONE_NEWTIME),
    }
}

/// Name of the namespace in /proc/<pid>/ns.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Order in which namespaces are joined: the user namespace first (it grants the capabilities
/// for the others), the mount namespace last (joining it changes how later paths resolve).
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Namespaces to setns into, in join order.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// Create a new user namespace (first, before the others, so they are owned by it).
    pub new_user: bool,
    /// The other namespaces to unshare.
    pub unshare: CloneFlags,
}

impl NamespacePlan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<NamespacePlan> {
        let mut plan = NamespacePlan {
            join: Vec::new(),
            new_user: false,
            unshare: CloneFlags::empty(),
        };
        let mut seen = Vec::new();
        for ns in namespaces {
            if seen.contains(&ns.typ()) {
                return Err(Error::Invalid(format!(
                    "namespace {} listed twice",
                    proc_name(ns.typ())
                )));
            }
            seen.push(ns.typ());
        }
        for t in JOIN_ORDER {
            let Some(ns) = namespaces.iter().find(|n| n.typ() == t) else {
                continue;
            };
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => plan.join.push((t, p.clone())),
                _ if t == LinuxNamespaceType::User => plan.new_user = true,
                _ => plan.unshare |= clone_flag(t),
            }
        }
        Ok(plan)
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(j, _)| *j == t)
            || self.unshare.contains(clone_flag(t))
            || (t == LinuxNamespaceType::User && self.new_user)
    }

    /// A new or joined pid namespace only applies to children: the caller must fork after.
    pub fn needs_fork(&self) -> bool {
        self.has(LinuxNamespaceType::Pid)
    }
}

/// Open every namespace path first (joining the mount namespace would change how later paths
/// resolve), then setns in order.
pub fn join(list: &[(LinuxNamespaceType, PathBuf)]) -> Result<()> {
    let mut fds: Vec<(LinuxNamespaceType, OwnedFd, &PathBuf)> = Vec::new();
    for (t, p) in list {
        let fd = open(p, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .ctx("opening namespace", p)?;
        fds.push((*t, fd, p));
    }
    for (t, fd, p) in fds {
        nix::sched::setns(&fd, clone_flag(t))
            .ctx(&format!("joining {} namespace", proc_name(t)), p)?;
    }
    Ok(())
}

pub fn unshare(flags: CloneFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(|e| Error::sys("unshare", format!("{flags:?}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path.map(PathBuf::from));
        n
    }

    #[test]
    fn paths_are_joined_user_first_mount_last_and_the_rest_unshared() {
        let plan = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Mount, Some("/proc/1/ns/mnt")),
            ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Uts, None),
        ])
        .unwrap();
        let order: Vec<_> = plan.join.iter().map(|(t, _)| proc_name(*t)).collect();
        assert_eq!(order, ["user", "net", "mnt"]);
        assert!(!plan.new_user);
        assert_eq!(
            plan.unshare,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS
        );
        assert!(plan.needs_fork());
    }

    #[test]
    fn new_user_namespace_is_separate_from_the_unshare_set() {
        let plan = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::User, None),
            ns(LinuxNamespaceType::Mount, None),
        ])
        .unwrap();
        assert!(plan.new_user);
        assert_eq!(plan.unshare, CloneFlags::CLONE_NEWNS);
        assert!(!plan.needs_fork());
    }

    #[test]
    fn duplicate_namespaces_are_rejected() {
        let err = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Pid, None),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("twice"));
    }
}
