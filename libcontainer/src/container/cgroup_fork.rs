//! Forking the intermediate process of `create` and `exec` into the container's cgroup the
//! cheapest way the manager offers (`Manager::fast_join`): born there (v2), or moving itself
//! (v1), rather than being moved by its parent — a move that names a process waits out an RCU
//! grace period for the kernel's global threadgroup lock, 5-15 ms per create.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::cgroups::{self, CgroupError, FastJoin, Manager};
use crate::process::fork::{clone_fork, clone_fork_into_cgroup};

/// What is left to do, after the fork, to have the child in the cgroup.
#[derive(Debug)]
pub enum Pending {
    /// Nothing: the child was born there.
    Nothing,
    /// The child moves itself ([`Pending::child_joins`]) through these `tasks` files.
    ChildJoins(Vec<PathBuf>),
    /// The parent moves the child ([`Pending::parent_adds`], `Manager::add_task`).
    ParentAdds,
}

/// Forks like `clone_fork(0)`. `Some(child)` in the parent, `None` in the child; either way
/// with what remains to be done.
pub fn fork(manager: Option<&dyn Manager>) -> Result<(Option<Pid>, Pending), nix::Error> {
    let Some(manager) = manager else {
        return Ok((clone_fork(0)?, Pending::Nothing));
    };
    match manager.fast_join() {
        Some(FastJoin::Tasks(files)) => Ok((clone_fork(0)?, Pending::ChildJoins(files))),
        Some(FastJoin::Birth(dir)) => {
            let born = open(
                &dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
            .map(|fd| clone_fork_into_cgroup(fd.as_fd()));
            match born {
                Some(Ok(child)) => Ok((child, Pending::Nothing)),
                // An older kernel, or a cgroup clone3 refuses: the classic way, whose error, if
                // any, is the one worth reporting.
                _ => Ok((clone_fork(0)?, Pending::ParentAdds)),
            }
        }
        None => Ok((clone_fork(0)?, Pending::ParentAdds)),
    }
}

impl Pending {
    /// In the child (single-threaded, just forked): its part.
    pub fn child_joins(&self) -> Result<(), CgroupError> {
        match self {
            Pending::ChildJoins(files) => cgroups::join_self(files),
            _ => Ok(()),
        }
    }

    /// In the parent: its part.
    pub fn parent_adds(
        &self,
        manager: Option<&dyn Manager>,
        child: Pid,
    ) -> Result<(), CgroupError> {
        match (self, manager) {
            (Pending::ParentAdds, Some(m)) => m.add_task(child),
            _ => Ok(()),
        }
    }
}
