//! The kernel seam: every mount, device and root-switching call the rootfs code makes goes through
//! [`Syscall`], so the mount plan can be unit-tested with [`RecordingSyscall`] without root, and the
//! real thing ([`LinuxSyscall`]) is proven by the integration tests.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::mount_api::{self, MountAttr};

/// What kind of object a mount destination must be when it has to be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Dir,
    File,
}

/// A mount destination resolved inside a root. `path` is what to hand to mount(2) (for the real
/// implementation `/proc/self/fd/N` of an `O_PATH` fd, so a symlink swapped in after resolution
/// cannot redirect the mount); `shown` is the logical path, for messages and for the test double.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    pub shown: PathBuf,
    _fd: Option<OwnedFd>,
}

impl Target {
    pub fn plain(path: PathBuf) -> Target {
        Target {
            path: path.clone(),
            shown: path,
            _fd: None,
        }
    }
}

/// Lexically join `dest` under `root`, never climbing above it (like Go's `filepath.Join(root,
/// filepath.Clean("/"+dest))`). Used for messages and by the test double; the real resolution is
/// [`resolve_in_root`].
pub fn join_in_root(root: &Path, dest: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in dest.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut out = root.to_path_buf();
    for p in parts {
        out.push(p);
    }
    out
}

pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno>;
    /// mount_setattr on the mount at `target` (and every mount below it when `recursive`);
    /// `Err(ENOSYS)` where the kernel lacks it.
    fn mount_setattr(&self, target: &Path, attr: &MountAttr, recursive: bool) -> Result<(), Errno>;
    /// Attach a detached mount (an id-mapped clone made by the runtime parent) onto `target`.
    fn move_mount(&self, from: BorrowedFd<'_>, target: &Path) -> Result<(), Errno>;
    /// Copy the contents of directory `from` into directory `to` (`tmpcopyup`).
    fn copy_up(&self, from: &Path, to: &Path) -> Result<(), Errno>;
    /// Resolve `dest` inside `root` without following symlinks out of it, creating missing
    /// components (directories, and the last one as `kind`) when `create` is set.
    fn resolve(
        &self,
        root: &Path,
        dest: &Path,
        kind: TargetKind,
        create: bool,
    ) -> Result<Target, Errno>;
    /// Whether `path` (a host path) is a directory; `None` if it does not exist.
    fn is_dir(&self, path: &Path) -> Option<bool>;
    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, dev: u64) -> Result<(), Errno>;
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno>;
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno>;
    /// Switch to `new_root` with pivot_root(".", ".") and detach the old root.
    fn pivot_root(&self, new_root: &Path) -> Result<(), Errno>;
    /// `--no-pivot`: MS_MOVE the rootfs onto / and chroot into it.
    fn move_root(&self, new_root: &Path) -> Result<(), Errno>;
    fn sethostname(&self, name: &str) -> Result<(), Errno>;
    fn setdomainname(&self, name: &str) -> Result<(), Errno>;
    /// Flags of the mount at `path` that an unprivileged remount must keep (statvfs).
    fn locked_flags(&self, path: &Path) -> MsFlags;
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

fn cpath(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn openat2_in_root(dirfd: RawFd, path: &Path, flags: i32) -> Result<OwnedFd, Errno> {
    let c = cpath(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid C string and a correctly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Resolve `dest` inside `root` with openat2(RESOLVE_IN_ROOT): symlinks (absolute or `..`) are
/// interpreted with `root` as `/`, so nothing resolves to the host. Missing components are
/// created one at a time relative to the already-resolved parent.
pub fn resolve_in_root(
    root: &Path,
    dest: &Path,
    kind: TargetKind,
    create: bool,
) -> Result<Target, Errno> {
    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let rel = join_in_root(Path::new(""), dest);
    // Usually the destination exists: one openat2 of the whole path resolves it exactly as the
    // last step of the walk below would. The walk is only for creating what is missing.
    let whole = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &rel
    };
    match openat2_in_root(root_fd.as_raw_fd(), whole, libc::O_PATH) {
        Ok(fd) => return Ok(target(root, dest, fd)),
        Err(Errno::ENOENT) if create => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<_> = rel.components().collect();
    let mut prefix = PathBuf::new();
    let mut cur = openat2_in_root(root_fd.as_raw_fd(), Path::new("."), libc::O_PATH)?;
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        prefix.push(c.as_os_str());
        match openat2_in_root(root_fd.as_raw_fd(), &prefix, libc::O_PATH) {
            Ok(fd) => cur = fd,
            Err(Errno::ENOENT) if create => {
                let name = cpath(Path::new(c.as_os_str()))?;
                if last && kind == TargetKind::File {
                    // SAFETY: openat relative to a directory fd we own, single component name.
                    let fd = unsafe {
                        libc::openat(
                            cur.as_raw_fd(),
                            name.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                            0o644,
                        )
                    };
                    if fd < 0 {
                        return Err(Errno::last());
                    }
                    // SAFETY: fd was just returned by openat.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                } else {
                    // SAFETY: mkdirat relative to a directory fd we own, single component name.
                    let rc = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) };
                    if rc < 0 && Errno::last() != Errno::EEXIST {
                        return Err(Errno::last());
                    }
                }
                cur = openat2_in_root(root_fd.as_raw_fd(), &prefix, libc::O_PATH)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(target(root, dest, cur))
}

fn target(root: &Path, dest: &Path, fd: OwnedFd) -> Target {
    Target {
        path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        shown: join_in_root(root, dest),
        _fd: Some(fd),
    }
}

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }

    fn mount_setattr(&self, target: &Path, attr: &MountAttr, recursive: bool) -> Result<(), Errno> {
        mount_api::setattr_path(target, recursive, attr)
    }

    fn move_mount(&self, from: BorrowedFd<'_>, target: &Path) -> Result<(), Errno> {
        mount_api::move_mount(from, target)
    }

    fn copy_up(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        crate::rootfs::copyup::copy_dir_contents(from, to)
    }

    fn resolve(
        &self,
        root: &Path,
        dest: &Path,
        kind: TargetKind,
        create: bool,
    ) -> Result<Target, Errno> {
        resolve_in_root(root, dest, kind, create)
    }

    fn is_dir(&self, path: &Path) -> Option<bool> {
        std::fs::metadata(path).ok().map(|m| m.is_dir())
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, dev: u64) -> Result<(), Errno> {
        nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(perm), dev)
    }

    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        nix::unistd::chown(path, uid.map(Uid::from_raw), gid.map(Gid::from_raw))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link)
    }

    fn pivot_root(&self, new_root: &Path) -> Result<(), Errno> {
        let old = open(
            "/",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let new = open(
            new_root,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        nix::unistd::fchdir(&new)?;
        nix::unistd::pivot_root(".", ".")?;
        // The old root is now stacked under the new one at "."; make it a slave so the detach
        // below cannot propagate to the host, then lazily unmount it.
        nix::unistd::fchdir(&old)?;
        nix::mount::mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir("/")
    }

    fn move_root(&self, new_root: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(new_root)?;
        nix::mount::mount(
            Some(new_root),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )?;
        nix::unistd::chroot(".")?;
        nix::unistd::chdir("/")
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn setdomainname(&self, name: &str) -> Result<(), Errno> {
        // SAFETY: setdomainname with a pointer/length pair of a live buffer.
        let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
        if rc < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn locked_flags(&self, path: &Path) -> MsFlags {
        use nix::sys::statvfs::{FsFlags, statvfs};
        let mut out = MsFlags::empty();
        if let Ok(st) = statvfs(path) {
            let f = st.flags();
            for (fs, ms) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if f.contains(fs) {
                    out |= ms;
                }
            }
        }
        out
    }
}

/// One recorded kernel call, with paths as the logical (`shown`) paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount(PathBuf),
    SetAttr {
        target: PathBuf,
        attr: MountAttr,
        recursive: bool,
    },
    MoveMount(PathBuf),
    CopyUp(PathBuf, PathBuf),
    Create(PathBuf, TargetKind),
    Mknod {
        path: PathBuf,
        kind: SFlag,
        perm: u32,
        dev: u64,
    },
    Chown(PathBuf, Option<u32>, Option<u32>),
    Symlink(PathBuf, PathBuf),
    PivotRoot(PathBuf),
    MoveRoot(PathBuf),
    Hostname(String),
    Domainname(String),
}

/// Test double: records every call, performs nothing. Paths that "exist" are configured up front.
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    pub calls: RefCell<Vec<Call>>,
    /// Host paths reported as existing, with whether they are directories.
    pub host_paths: Vec<(PathBuf, bool)>,
    /// Destinations (logical paths) that `resolve` reports as missing when `create` is false.
    pub missing: Vec<PathBuf>,
    /// Make `mount` of this fstype fail with EPERM (to exercise fallbacks).
    pub deny_fstype: Option<String>,
}

impl RecordingSyscall {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }
    pub fn mounts(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .collect()
    }
    fn push(&self, c: Call) {
        self.calls.borrow_mut().push(c);
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        if fstype.is_some() && fstype == self.deny_fstype.as_deref() {
            return Err(Errno::EPERM);
        }
        self.push(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        });
        Ok(())
    }
    fn umount2(&self, target: &Path, _flags: MntFlags) -> Result<(), Errno> {
        self.push(Call::Umount(target.to_path_buf()));
        Ok(())
    }
    fn mount_setattr(&self, target: &Path, attr: &MountAttr, recursive: bool) -> Result<(), Errno> {
        self.push(Call::SetAttr {
            target: target.to_path_buf(),
            attr: *attr,
            recursive,
        });
        Ok(())
    }
    fn move_mount(&self, _from: BorrowedFd<'_>, target: &Path) -> Result<(), Errno> {
        self.push(Call::MoveMount(target.to_path_buf()));
        Ok(())
    }
    fn copy_up(&self, from: &Path, to: &Path) -> Result<(), Errno> {
        self.push(Call::CopyUp(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }
    fn resolve(
        &self,
        root: &Path,
        dest: &Path,
        kind: TargetKind,
        create: bool,
    ) -> Result<Target, Errno> {
        let shown = join_in_root(root, dest);
        if !create && self.missing.contains(&shown) {
            return Err(Errno::ENOENT);
        }
        if create {
            self.push(Call::Create(shown.clone(), kind));
        }
        Ok(Target::plain(shown))
    }
    fn is_dir(&self, path: &Path) -> Option<bool> {
        self.host_paths
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, d)| *d)
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: u32, dev: u64) -> Result<(), Errno> {
        self.push(Call::Mknod {
            path: path.to_path_buf(),
            kind,
            perm,
            dev,
        });
        Ok(())
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        self.push(Call::Chown(path.to_path_buf(), uid, gid));
        Ok(())
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), Errno> {
        self.push(Call::Symlink(target.to_path_buf(), link.to_path_buf()));
        Ok(())
    }
    fn pivot_root(&self, new_root: &Path) -> Result<(), Errno> {
        self.push(Call::PivotRoot(new_root.to_path_buf()));
        Ok(())
    }
    fn move_root(&self, new_root: &Path) -> Result<(), Errno> {
        self.push(Call::MoveRoot(new_root.to_path_buf()));
        Ok(())
    }
    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        self.push(Call::Hostname(name.to_string()));
        Ok(())
    }
    fn setdomainname(&self, name: &str) -> Result<(), Errno> {
        self.push(Call::Domainname(name.to_string()));
        Ok(())
    }
    fn locked_flags(&self, _path: &Path) -> MsFlags {
        MsFlags::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_in_root_never_climbs_above_root() {
        let r = Path::new("/rootfs");
        assert_eq!(
            join_in_root(r, Path::new("/../../etc")),
            PathBuf::from("/rootfs/etc")
        );
        assert_eq!(
            join_in_root(r, Path::new("a/./b/../c")),
            PathBuf::from("/rootfs/a/c")
        );
    }

    fn real(t: &Target) -> PathBuf {
        std::fs::read_link(&t.path).unwrap_or_default()
    }

    #[test]
    fn resolution_refuses_symlink_escape() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        // An absolute symlink to a host directory and a relative one climbing out of the root.
        std::os::unix::fs::symlink(outside.path(), root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.path().join("rel")).unwrap();
        for dest in ["/abs/x", "/rel/tmp/y", "/../../z"] {
            let res = resolve_in_root(root.path(), Path::new(dest), TargetKind::Dir, true);
            if let Ok(t) = res {
                let p = real(&t);
                assert!(
                    p.starts_with(root.path()),
                    "{dest} resolved to {} outside the root",
                    p.display()
                );
            }
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn resolution_creates_missing_components_inside_root() {
        let root = tempfile::tempdir().unwrap();
        let t =
            resolve_in_root(root.path(), Path::new("/a/b/file"), TargetKind::File, true).unwrap();
        assert_eq!(real(&t), root.path().join("a/b/file"));
        assert!(root.path().join("a/b/file").is_file());
        assert_eq!(
            resolve_in_root(root.path(), Path::new("/nope"), TargetKind::Dir, false).unwrap_err(),
            Errno::ENOENT
        );
    }

    #[test]
    fn existing_paths_and_the_root_itself_resolve_without_create() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("x/y")).unwrap();
        // A symlink followed inside the root, as the component walk would.
        std::os::unix::fs::symlink("/x", root.path().join("link")).unwrap();
        for (dest, want) in [
            ("/", ""),
            ("/x/y", "x/y"),
            ("/link/y", "x/y"),
            ("/x/../x", "x"),
        ] {
            let t = resolve_in_root(root.path(), Path::new(dest), TargetKind::Dir, false).unwrap();
            assert_eq!(real(&t), root.path().join(want), "{dest}");
        }
        assert_eq!(
            resolve_in_root(root.path(), Path::new("/x/y/z"), TargetKind::Dir, false).unwrap_err(),
            Errno::ENOENT
        );
    }
}
