//! Filesystem operations that stay beneath the layer directory.
//!
//! Everything works on (directory fd, single name) pairs reached by opening
//! one component at a time with `O_NOFOLLOW`, so a symlink planted by the
//! layer is never traversed, whatever it points at.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::libc;
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

/// Why a directory path could not be opened; `at` counts the components up
/// to and including the offending one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WalkError {
    Missing { at: usize },
    Symlink { at: usize },
    NotADirectory { at: usize },
    Sys { at: usize, errno: Errno },
}

/// What `Tree::clear` left at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Empty,
    /// A directory kept because the caller merges into it.
    Directory,
}

/// The layer directory, plus the last parent directory opened in it:
/// tar streams list siblings together, so most entries reuse it.
pub(super) struct Tree {
    root: OwnedFd,
    last_parent: Option<(Vec<Vec<u8>>, OwnedFd)>,
}

impl Tree {
    /// Opens `dest`; the caller's path may itself be a symlink, which is fine.
    pub(super) fn open(dest: &Path) -> nix::Result<Self> {
        let root = open(dest, dir_flags() - OFlag::O_NOFOLLOW, Mode::empty())?;
        Ok(Self {
            root,
            last_parent: None,
        })
    }

    pub(super) fn is_empty(&self) -> nix::Result<bool> {
        let mut dir = Dir::from_fd(dup(&self.root)?)?;
        for entry in dir.iter() {
            if !is_dot_or_dotdot(entry?.file_name()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(super) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens the directory an entry goes into, creating missing ones the way
    /// containerd does (0755, root-owned).
    pub(super) fn parent_dir(&mut self, components: &[Vec<u8>]) -> Result<OwnedFd, WalkError> {
        if let Some((cached, fd)) = &self.last_parent
            && cached.as_slice() == components
        {
            return dup(fd).map_err(|errno| WalkError::Sys {
                at: components.len(),
                errno,
            });
        }
        let fd = self.walk(components, true)?;
        let cached = dup(&fd).map_err(|errno| WalkError::Sys {
            at: components.len(),
            errno,
        })?;
        self.last_parent = Some((components.to_vec(), cached));
        Ok(fd)
    }

    /// Opens an existing directory without creating anything.
    pub(super) fn existing_dir(&self, components: &[Vec<u8>]) -> Result<OwnedFd, WalkError> {
        self.walk(components, false)
    }

    fn walk(&self, components: &[Vec<u8>], create: bool) -> Result<OwnedFd, WalkError> {
        let mut current = dup(&self.root).map_err(|errno| WalkError::Sys { at: 0, errno })?;
        for (i, name) in components.iter().enumerate() {
            let at = i + 1;
            current = match open_dir(&current, name) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => make_implicit_dir(&current, name)
                    .map_err(|errno| WalkError::Sys { at, errno })?,
                Err(Errno::ENOENT) => return Err(WalkError::Missing { at }),
                Err(Errno::ENOTDIR | Errno::ELOOP) => {
                    return Err(match is_symlink(&current, name) {
                        true => WalkError::Symlink { at },
                        false => WalkError::NotADirectory { at },
                    });
                }
                Err(errno) => return Err(WalkError::Sys { at, errno }),
            };
        }
        Ok(current)
    }

    /// Makes room for a new entry at `name`: a later entry in a layer wins, so
    /// whatever is there goes - except a directory the caller merges into.
    pub(super) fn clear(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        keep_dir: bool,
    ) -> nix::Result<Slot> {
        let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(Slot::Empty),
            other => other?,
        };
        if !is_dir_mode(stat.st_mode) {
            unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)?;
            return Ok(Slot::Empty);
        }
        if keep_dir {
            return Ok(Slot::Directory);
        }
        // The cached parent could be the directory going away.
        self.last_parent = None;
        remove_tree(parent, name)?;
        Ok(Slot::Empty)
    }
}

pub(super) fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Opens a child directory; fails with ELOOP/ENOTDIR if it is a symlink.
pub(super) fn open_dir(parent: impl AsFd, name: &[u8]) -> nix::Result<OwnedFd> {
    openat(parent, name, dir_flags(), Mode::empty())
}

fn make_implicit_dir(parent: &OwnedFd, name: &[u8]) -> nix::Result<OwnedFd> {
    mkdirat(parent, name, Mode::from_bits_truncate(0o755))?;
    let fd = open_dir(parent, name)?;
    // Neither the umask nor a setgid parent may shape implicit directories.
    fchown(&fd, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))?;
    fchmod(&fd, Mode::from_bits_truncate(0o755))?;
    Ok(fd)
}

fn is_symlink(parent: &OwnedFd, name: &[u8]) -> bool {
    fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits())
}

pub(super) fn is_dir_mode(mode: libc::mode_t) -> bool {
    mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

/// An overlayfs whiteout: a character device numbered 0:0.
pub(super) fn is_whiteout(stat: &libc::stat) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFCHR.bits() && stat.st_rdev == 0
}

fn is_dot_or_dotdot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

/// Removes a directory tree through fds, never following symlinks inside it.
fn remove_tree(parent: &OwnedFd, name: &[u8]) -> nix::Result<()> {
    let dir_fd = open_dir(parent, name)?;
    let mut children = Vec::new();
    {
        let mut dir = Dir::from_fd(dup(&dir_fd)?)?;
        for entry in dir.iter() {
            let entry = entry?;
            if !is_dot_or_dotdot(entry.file_name()) {
                children.push(entry.file_name().to_bytes().to_vec());
            }
        }
    }
    for child in &children {
        match unlinkat(&dir_fd, child.as_slice(), UnlinkatFlags::NoRemoveDir) {
            Err(Errno::EISDIR) => remove_tree(&dir_fd, child)?,
            other => other?,
        }
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

fn dup(fd: &OwnedFd) -> nix::Result<OwnedFd> {
    fd.try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// The node an xattr is set on.
#[derive(Clone, Copy)]
pub(super) enum Node<'a> {
    /// An open file or directory.
    Fd(BorrowedFd<'a>),
    /// A symlink or special file, which we must not open: (parent, name).
    At(BorrowedFd<'a>, &'a [u8]),
}

/// `/proc/self/fd/<parent>/<child>`: see [`set_xattr`] for why this is safe.
fn proc_path(parent: BorrowedFd<'_>, child: &[u8]) -> io::Result<std::ffi::CString> {
    let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    path.extend_from_slice(child);
    Ok(std::ffi::CString::new(path)?)
}

/// One xattr's value, `None` when the node does not have it.
pub(super) fn get_xattr(node: Node<'_>, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut size = 256;
    loop {
        let mut buf = vec![0u8; size];
        let rc = match node {
            // SAFETY: the fd is open; name is NUL-terminated; buf has buf.len() writable bytes.
            Node::Fd(fd) => unsafe {
                libc::fgetxattr(
                    fd.as_raw_fd(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            },
            Node::At(parent, child) => {
                let path = proc_path(parent, child)?;
                // SAFETY: as above; lgetxattr does not follow the final symlink.
                unsafe {
                    libc::lgetxattr(
                        path.as_ptr(),
                        name.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                }
            }
        };
        if let Ok(n) = usize::try_from(rc) {
            buf.truncate(n);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match Errno::from_raw(err.raw_os_error().unwrap_or(0)) {
            Errno::ENODATA | Errno::ENOTSUP => return Ok(None),
            Errno::ERANGE if size < XATTR_SIZE_MAX => size = XATTR_SIZE_MAX,
            _ => return Err(err),
        }
    }
}

/// The kernel's limit on one xattr value and on a name list.
const XATTR_SIZE_MAX: usize = 64 * 1024;

/// Every xattr of a node, names and values.
pub(super) fn list_xattrs(node: Node<'_>) -> io::Result<Vec<(std::ffi::CString, Vec<u8>)>> {
    let mut names = vec![0u8; XATTR_SIZE_MAX];
    let rc = match node {
        // SAFETY: the fd is open; names has names.len() writable bytes.
        Node::Fd(fd) => unsafe {
            libc::flistxattr(fd.as_raw_fd(), names.as_mut_ptr().cast(), names.len())
        },
        Node::At(parent, child) => {
            let path = proc_path(parent, child)?;
            // SAFETY: as above; llistxattr does not follow the final symlink.
            unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) }
        }
    };
    let len = match usize::try_from(rc) {
        Ok(len) => len,
        Err(_) => {
            let err = io::Error::last_os_error();
            return match Errno::from_raw(err.raw_os_error().unwrap_or(0)) {
                Errno::ENOTSUP => Ok(Vec::new()),
                _ => Err(err),
            };
        }
    };
    names.truncate(len);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::CString::new(name)?;
        if let Some(value) = get_xattr(node, &name)? {
            out.push((name, value));
        }
    }
    Ok(out)
}

pub(super) fn set_xattr(node: Node<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    let rc = match node {
        // SAFETY: the fd is open for the call; name is NUL-terminated; value
        // points to value.len() readable bytes.
        Node::Fd(fd) => unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        },
        Node::At(parent, child) => {
            // There is no fd-relative lsetxattr before Linux 6.13; going via
            // /proc/self/fd resolves only our trusted parent fd, and lsetxattr
            // does not follow `child` (a single component) if it is a symlink.
            let path = proc_path(parent, child)?;
            // SAFETY: both strings are NUL-terminated; value is valid for its length.
            unsafe {
                libc::lsetxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
