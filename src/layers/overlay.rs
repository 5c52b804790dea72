//! The overlay mounts of image layers: a root filesystem (a container's, or a pause image's)
//! is an overlayfs of the image's unpacked layers (read-only lowers, shared by every user of
//! the image) with the owner's own upper and work directories under `<root>/containers/<id>/`;
//! an image volume is a read-only overlay with no upper directory.
//!
//! In a pod with its own user namespace each layer is an id-mapped clone (named by its fd):
//! the image's root-owned files belong to the pod's root, the layers on disk stay as they are,
//! and copy-up writes the mapped owners into the container's upper dir, which its root owns.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::engine::PodError;
use crate::userns::idmap;

/// The pod's user namespace, for id-mapped layers.
#[derive(Debug)]
pub struct LayerIdmap {
    /// The pinned user namespace, open.
    pub userns: fs::File,
    /// Host uid and gid of the pod's root.
    pub root: (u32, u32),
}

impl LayerIdmap {
    /// Opens the pod's pinned user namespace.
    pub fn open(pin: &Path, root: (u32, u32)) -> Result<LayerIdmap, PodError> {
        let userns = fs::File::open(pin).map_err(|e| {
            PodError::internal(
                format!("opening the pod user namespace {}", pin.display()),
                e,
            )
        })?;
        Ok(LayerIdmap { userns, root })
    }
}

/// The kernel copies mount data into one page.
const MAX_MOUNT_DATA: usize = 4095;

/// Mounts the overlay; `lowers` lowest layer first (image order).
pub fn mount_overlay(
    lowers: &[PathBuf],
    container_dir: &Path,
    target: &Path,
    idmapped: Option<&LayerIdmap>,
) -> Result<(), PodError> {
    let upper = container_dir.join("upper");
    let work = container_dir.join("work");
    for dir in [&upper, &work, &target.to_path_buf()] {
        fs::create_dir_all(dir)
            .map_err(|e| PodError::internal(format!("creating {}", dir.display()), e))?;
    }
    // Held until the overlay is mounted; the overlay keeps the clones alive after.
    let (_clones, lowerdir) = lowerdir(lowers, idmapped)?;
    if let Some(m) = idmapped {
        let (uid, gid) = m.root;
        std::os::unix::fs::chown(&upper, Some(uid), Some(gid))
            .map_err(|e| PodError::internal(format!("chown {}", upper.display()), e))?;
    }
    let data = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    mount_overlayfs(target, &data, MsFlags::empty(), lowers.len(), "the rootfs")
}

/// Mounts `lowers` (lowest first) as a read-only overlay with no upper
/// directory: an image volume. overlayfs wants two lowers when there is no upper, so a
/// one-layer image gets the empty directory `empty` beneath its layer.
pub fn mount_readonly_overlay(
    lowers: &[PathBuf],
    empty: &Path,
    target: &Path,
    idmapped: Option<&LayerIdmap>,
) -> Result<(), PodError> {
    let mut all = Vec::with_capacity(lowers.len() + 1);
    if lowers.len() == 1 {
        fs::create_dir_all(empty)
            .map_err(|e| PodError::internal(format!("creating {}", empty.display()), e))?;
        all.push(empty.to_path_buf());
    }
    all.extend_from_slice(lowers);
    fs::create_dir_all(target)
        .map_err(|e| PodError::internal(format!("creating {}", target.display()), e))?;
    let (_clones, lowerdir) = lowerdir(&all, idmapped)?;
    let data = format!("lowerdir={lowerdir}");
    // Only read-only: more flags here would be locked in a user namespace and make the
    // container's bind of it fail to remount without them.
    mount_overlayfs(
        target,
        &data,
        MsFlags::MS_RDONLY,
        lowers.len(),
        "the image volume",
    )
}

/// One overlayfs mount of `data`, refused up front when it would not fit the page the kernel
/// copies mount data into.
fn mount_overlayfs(
    target: &Path,
    data: &str,
    flags: MsFlags,
    layers: usize,
    what: &str,
) -> Result<(), PodError> {
    if data.len() > MAX_MOUNT_DATA {
        return Err(PodError::FailedPrecondition(format!(
            "the image has too many layers ({layers}) for one overlay mount"
        )));
    }
    mount(Some("overlay"), target, Some("overlay"), flags, Some(data))
        .map_err(|e| PodError::internal(format!("mounting {what} at {}", target.display()), e))
}

/// The overlay `lowerdir=` value for `lowers` (lowest first), and, in a pod with a user
/// namespace, the id-mapped clones it names, to be held open until the overlay is mounted.
fn lowerdir(
    lowers: &[PathBuf],
    idmapped: Option<&LayerIdmap>,
) -> Result<(Vec<OwnedFd>, String), PodError> {
    if lowers.is_empty() {
        return Err(PodError::FailedPrecondition(
            "the image has no layers".into(),
        ));
    }
    let mut clones: Vec<OwnedFd> = Vec::new();
    let mut names: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    if let Some(m) = idmapped {
        for lower in lowers {
            let tree = idmap::idmapped_tree(lower, m.userns.as_fd(), false).map_err(|e| {
                PodError::internal(format!("id-mapped clone of layer {}", lower.display()), e)
            })?;
            clones.push(tree);
        }
        names = clones.iter().map(idmap::fd_path).collect();
    }
    // overlayfs lists the topmost lower first.
    let joined = names.into_iter().rev().collect::<Vec<_>>().join(":");
    Ok((clones, joined))
}

/// Unmounts the rootfs if mounted; idempotent.
pub fn unmount(target: &Path) -> Result<(), PodError> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            // Mounted twice (should not happen): keep going until nothing is left.
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(PodError::internal(
                    format!("unmounting {}", target.display()),
                    e,
                ));
            }
        }
    }
}

/// Removes a directory tree; absent is fine.
pub fn remove_tree(dir: &Path) -> Result<(), PodError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PodError::internal(format!("removing {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_stacks_layers_and_unmounts() {
        let dir = tempfile::tempdir().unwrap();
        let l1 = dir.path().join("l1");
        let l2 = dir.path().join("l2");
        fs::create_dir_all(&l1).unwrap();
        fs::create_dir_all(&l2).unwrap();
        fs::write(l1.join("f"), "low").unwrap();
        fs::write(l2.join("f"), "high").unwrap();
        fs::write(l1.join("only-low"), "x").unwrap();
        let target = dir.path().join("rootfs");
        mount_overlay(
            &[l1.clone(), l2.clone()],
            &dir.path().join("c"),
            &target,
            None,
        )
        .unwrap();
        let read = fs::read_to_string(target.join("f"));
        fs::write(target.join("new"), "w").unwrap();
        unmount(&target).unwrap();
        unmount(&target).unwrap();
        assert_eq!(read.unwrap(), "high");
        assert!(dir.path().join("c/upper/new").exists());
        assert!(!l1.join("new").exists());
        assert!(mount_overlay(&[], dir.path(), &target, None).is_err());
    }

    #[test]
    fn readonly_overlay_of_one_or_two_layers() {
        let dir = tempfile::tempdir().unwrap();
        let l1 = dir.path().join("l1");
        let l2 = dir.path().join("l2");
        fs::create_dir_all(&l1).unwrap();
        fs::create_dir_all(&l2).unwrap();
        fs::write(l1.join("f"), "low").unwrap();
        fs::write(l2.join("f"), "high").unwrap();
        let empty = dir.path().join("empty");
        let one = dir.path().join("one");
        let two = dir.path().join("two");
        let r1 = mount_readonly_overlay(std::slice::from_ref(&l1), &empty, &one, None);
        let r2 = mount_readonly_overlay(&[l1.clone(), l2.clone()], &empty, &two, None);
        let read1 = fs::read_to_string(one.join("f"));
        let read2 = fs::read_to_string(two.join("f"));
        let write = fs::write(two.join("new"), "w");
        unmount(&one).unwrap();
        unmount(&two).unwrap();
        r1.unwrap();
        r2.unwrap();
        assert_eq!(read1.unwrap(), "low");
        assert_eq!(read2.unwrap(), "high");
        assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));
        assert!(!l2.join("new").exists());
    }
}
