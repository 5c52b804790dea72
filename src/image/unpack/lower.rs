//! Hard links to files of lower layers, filled in as overlayfs copy-up would.
//!
//! A tar's hard link may name a file an earlier layer of the image holds. Layers are separate
//! directories (overlayfs lower layers), so no inode can be shared across them: the linking
//! layer gets its own copy of the lower file, content and metadata (owner, mode, times,
//! xattrs), at the link's name and at every name of that layer linked to it. This is what
//! overlayfs itself does when a container links to a lower file. The result depends on the
//! layers below, so such a layer is stored per chain (see `image::layer`).
//!
//! The target is looked up as the merged view would show it: top layer first, honouring
//! whiteouts and opaque directories, through directory fds opened one component at a time with
//! `O_NOFOLLOW`. A symlink on the way is refused, never followed, so nothing outside the image's
//! layers is ever read.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, linkat, symlinkat, unlinkat};

use super::UnpackError;
use super::fsops::{Node, dir_flags, get_xattr, is_dir_mode, is_whiteout, list_xattrs, open_dir};
use super::meta::{Meta, sys};
use super::path::display_prefix;

const OPAQUE_XATTR: &std::ffi::CStr = c"trusted.overlay.opaque";

/// A hard link whose target this layer does not have: an empty placeholder inode, reachable
/// under `names`, waits for a copy of the lower file at `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerLink {
    /// The tar entry that made the link, for errors.
    pub(super) entry: String,
    /// The target as the tar names it, for errors.
    pub(super) target_name: String,
    /// Layer-relative components of each name linked to the placeholder (the link entry first).
    pub(super) names: Vec<Vec<Vec<u8>>>,
    pub(super) target: Vec<Vec<u8>>,
}

/// What one layer says about a path.
enum Probe {
    /// The layer has the node: its parent directory and stat.
    Found(OwnedFd, FileStat),
    /// The layer has no node there; `hides_below` when one of its directories on the way is
    /// opaque, so layers beneath cannot provide it either.
    Absent { hides_below: bool },
    /// A whiteout, or a non-directory where the path needs a directory, deletes it.
    Deleted,
}

/// Fills the placeholders `unpack_layer` left in `dest` for `links` from `lowers`, the image's
/// lower layer directories with the topmost first. Returns the bytes of content copied.
///
/// A target that the merged view of `dest` over `lowers` does not show (never there, deleted
/// by a whiteout, hidden by an opaque directory) fails with `LinkTargetMissing`, as it does for
/// the bottom layer, which has nothing below it.
pub fn copy_up_lower_links(
    dest: &Path,
    links: &[LowerLink],
    lowers: &[&Path],
) -> Result<u64, UnpackError> {
    if links.is_empty() {
        return Ok(0);
    }
    let root_of = |path: &Path| {
        open(path, dir_flags() - OFlag::O_NOFOLLOW, Mode::empty()).map_err(|e| {
            UnpackError::Destination {
                path: path.to_owned(),
                source: e.into(),
            }
        })
    };
    let upper = root_of(dest)?;
    let lowers = lowers
        .iter()
        .map(|path| root_of(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut copied = 0;
    for link in links {
        copied += copy_up(&upper, &lowers, link)?;
    }
    Ok(copied)
}

fn copy_up(upper: &OwnedFd, lowers: &[OwnedFd], link: &LowerLink) -> Result<u64, UnpackError> {
    let name = link.entry.as_str();
    // The unpacker dropped the names later entries replaced: these all name the placeholder.
    let mut live = Vec::new();
    let mut placeholder = None;
    for components in &link.names {
        let Some((base, parent)) = components.split_last() else {
            continue;
        };
        let dir = walk(upper, parent).map_err(|e| sys(name, "open hard link placeholder", e))?;
        let stat = fstatat(&dir, base.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| sys(name, "inspect hard link placeholder", e))?;
        let inode = (stat.st_dev, stat.st_ino);
        let is_file = stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits();
        if !is_file || *placeholder.get_or_insert(inode) != inode {
            return Err(sys(name, "inspect hard link placeholder", Errno::ESTALE));
        }
        live.push((dir, base.as_slice()));
    }
    let Some(placeholder) = placeholder else {
        return Ok(0);
    };
    let (source_dir, source) = find_in_lowers(upper, lowers, link)?;
    let Some(source_base) = link.target.last() else {
        return Err(missing(link));
    };
    let meta = Meta {
        mode: Mode::from_bits_truncate(source.st_mode & 0o7777),
        uid: Uid::from_raw(source.st_uid),
        gid: Gid::from_raw(source.st_gid),
        mtime: TimeSpec::new(source.st_mtime, source.st_mtime_nsec),
        xattrs: Vec::new(),
    };
    let file_type = source.st_mode & SFlag::S_IFMT.bits();
    if file_type == SFlag::S_IFREG.bits() {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let from = openat(&source_dir, source_base.as_slice(), flags, Mode::empty())
            .map_err(|e| sys(name, "open hard link target in a lower layer", e))?;
        let meta = Meta {
            xattrs: list_xattrs(Node::Fd(from.as_fd())).map_err(|e| io_error(name, e))?,
            ..meta
        };
        let (dir, base) = &live[0];
        let flags = OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let to = openat(dir, *base, flags, Mode::empty())
            .map_err(|e| sys(name, "open hard link placeholder", e))?;
        let stat = fstat(&to).map_err(|e| sys(name, "open hard link placeholder", e))?;
        if (stat.st_dev, stat.st_ino) != placeholder {
            return Err(sys(name, "open hard link placeholder", Errno::ESTALE));
        }
        let (mut from, mut to) = (File::from(from), File::from(to));
        let bytes = io::copy(&mut from, &mut to).map_err(|e| io_error(name, e))?;
        meta.apply_to_fd(to.as_fd(), name)?;
        meta.set_times_fd(to.as_fd(), name)?;
        return Ok(bytes);
    }
    // A symlink, device or FIFO: the placeholder file gives way to a copy of the node, and the
    // other names link to that copy.
    let meta = Meta {
        xattrs: list_xattrs(Node::At(source_dir.as_fd(), source_base))
            .map_err(|e| io_error(name, e))?,
        ..meta
    };
    let (first_dir, first) = &live[0];
    unlinkat(first_dir, *first, UnlinkatFlags::NoRemoveDir)
        .map_err(|e| sys(name, "replace hard link placeholder", e))?;
    if file_type == SFlag::S_IFLNK.bits() {
        let target = readlinkat(&source_dir, source_base.as_slice())
            .map_err(|e| sys(name, "read symlink in a lower layer", e))?;
        symlinkat(target.as_os_str(), first_dir, *first)
            .map_err(|e| sys(name, "copy symlink", e))?;
    } else {
        mknodat(
            first_dir,
            *first,
            SFlag::from_bits_truncate(file_type),
            Mode::from_bits_truncate(0o600),
            source.st_rdev,
        )
        .map_err(|e| sys(name, "copy node", e))?;
    }
    meta.apply_at(
        first_dir.as_fd(),
        first,
        file_type != SFlag::S_IFLNK.bits(),
        name,
    )?;
    for (dir, base) in &live[1..] {
        unlinkat(dir, *base, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| sys(name, "replace hard link placeholder", e))?;
        linkat(first_dir, *first, dir, *base, AtFlags::empty())
            .map_err(|e| sys(name, "create hard link", e))?;
    }
    Ok(0)
}

/// The lower node the link names, as the merged view shows it: the upper layer's whiteouts
/// and opaque directories first, then each lower layer from the top.
fn find_in_lowers(
    upper: &OwnedFd,
    lowers: &[OwnedFd],
    link: &LowerLink,
) -> Result<(OwnedFd, FileStat), UnpackError> {
    match probe(upper, link)? {
        Probe::Deleted | Probe::Absent { hides_below: true } => return Err(missing(link)),
        // What the upper layer has at the name itself came after the link (or is the
        // placeholder): the link named the lower file.
        Probe::Found(..) | Probe::Absent { hides_below: false } => {}
    }
    for layer in lowers {
        match probe(layer, link)? {
            Probe::Found(_, stat) if is_dir_mode(stat.st_mode) => {
                return Err(UnpackError::LinkTargetIsDirectory {
                    entry: link.entry.clone(),
                    target: link.target_name.clone(),
                });
            }
            Probe::Found(dir, stat) => return Ok((dir, stat)),
            Probe::Absent { hides_below: false } => {}
            Probe::Absent { hides_below: true } | Probe::Deleted => break,
        }
    }
    Err(missing(link))
}

/// Looks `link.target` up in one layer directory, never following a symlink.
fn probe(layer: &OwnedFd, link: &LowerLink) -> Result<Probe, UnpackError> {
    let Some((base, parents)) = link.target.split_last() else {
        return Err(missing(link));
    };
    let mut dir = layer.try_clone().map_err(|e| io_error(&link.entry, e))?;
    let mut hides_below = false;
    for (i, component) in parents.iter().enumerate() {
        dir = match open_dir(&dir, component) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Probe::Absent { hides_below }),
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                let stat = fstatat(&dir, component.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| sys(&link.entry, "inspect hard link target", e))?;
                if stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() {
                    return Err(UnpackError::SymlinkInPath {
                        entry: link.entry.clone(),
                        component: display_prefix(&link.target, i + 1),
                    });
                }
                return Ok(Probe::Deleted);
            }
            Err(e) => return Err(sys(&link.entry, "open hard link target directory", e)),
        };
        let opaque =
            get_xattr(Node::Fd(dir.as_fd()), OPAQUE_XATTR).map_err(|e| io_error(&link.entry, e))?;
        hides_below |= opaque.as_deref() == Some(b"y");
    }
    match fstatat(&dir, base.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is_whiteout(&stat) => Ok(Probe::Deleted),
        Ok(stat) => Ok(Probe::Found(dir, stat)),
        Err(Errno::ENOENT) => Ok(Probe::Absent { hides_below }),
        Err(e) => Err(sys(&link.entry, "inspect hard link target", e)),
    }
}

/// Opens an existing directory of the upper layer, one component at a time.
fn walk(root: &OwnedFd, components: &[Vec<u8>]) -> nix::Result<OwnedFd> {
    let mut dir = root
        .try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)))?;
    for component in components {
        dir = open_dir(&dir, component)?;
    }
    Ok(dir)
}

fn missing(link: &LowerLink) -> UnpackError {
    UnpackError::LinkTargetMissing {
        entry: link.entry.clone(),
        target: link.target_name.clone(),
    }
}

fn io_error(entry: &str, source: io::Error) -> UnpackError {
    UnpackError::Io {
        entry: entry.to_owned(),
        op: "copy hard link target from a lower layer",
        source,
    }
}
