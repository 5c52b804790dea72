//! Id-mapped mounts (Linux 5.12+; overlayfs accepts them as layers since 5.19): a detached
//! clone of a directory tree whose files appear with their ids shifted by a user namespace's
//! mappings. A pod's containers see the shared image layers owned by their own root this way,
//! with no copy and no chown of the layers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;

use super::NsChild;
use crate::libcontainer::mount_api::{self, MOUNT_ATTR_IDMAP, MountAttr};

/// A detached, id-mapped clone of the tree at `dir` (with its submounts when `recursive`).
/// Usable as an overlayfs layer through `/proc/self/fd/<fd>` ([`fd_path`]) or attachable with
/// move_mount; the clone goes away with its last fd.
pub fn idmapped_tree(dir: &Path, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let tree = mount_api::open_tree_clone(dir, recursive)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..MountAttr::default()
    };
    mount_api::setattr_fd(std::os::fd::AsFd::as_fd(&tree), recursive, &attr)?;
    Ok(tree)
}

/// A path naming the tree behind `fd` for as long as this process holds it open.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Whether the filesystem holding `dir` accepts id-mapped mounts, tried for real with a
/// throwaway user namespace.
pub fn probe(dir: &Path) -> Result<(), String> {
    let child = NsChild::spawn(CloneFlags::CLONE_NEWUSER, None).map_err(|e| e.to_string())?;
    child
        .write_maps("0 1000000 1\n", "0 1000000 1\n")
        .map_err(|e| e.to_string())?;
    let ns = std::fs::File::open(child.ns_path("user"))
        .map_err(|e| format!("opening the probe's user namespace: {e}"))?;
    let result = idmapped_tree(dir, std::os::fd::AsFd::as_fd(&ns), false)
        .map(drop)
        .map_err(|e| format!("id-mapped mount of {}: {e}", dir.display()));
    child.finish().map_err(|e| e.to_string())?;
    result
}
