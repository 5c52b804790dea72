//! Id-mapped mounts (Linux 5.12+; overlayfs accepts them as layers since 5.19): a detached
//! clone of a directory tree whose files appear with their ids shifted by a user namespace's
//! mappings. A pod's containers see the shared image layers owned by their own root this way,
//! with no copy and no chown of the layers.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sched::CloneFlags;

use super::NsChild;

/// A detached, id-mapped clone of the tree at `dir` (with its submounts when `recursive`).
/// Usable as an overlayfs layer through `/proc/self/fd/<fd>` ([`fd_path`]) or attachable with
/// move_mount; the clone goes away with its last fd.
pub fn idmapped_tree(dir: &Path, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree with a valid C path; the result is a new fd we own.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: rc is a fresh fd returned by the kernel.
    let tree = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let at = if recursive { libc::AT_RECURSIVE } else { 0 } | libc::AT_EMPTY_PATH;
    // SAFETY: mount_setattr on our fd with an empty path and a correctly sized mount_attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at as libc::c_uint,
            &raw const attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
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
