//! `tmpcopyup`: before a tmpfs hides a directory of the image, its contents are copied into the
//! tmpfs (files, directories, symlinks, fifos and device nodes, with modes and owners; not
//! xattrs or timestamps). Everything is done relative to directory fds with O_NOFOLLOW, so a
//! symlink in the image cannot make the copy read or write outside the two trees.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, fchown, fchownat, symlinkat};

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Copy what is inside directory `from` into directory `to` (both may be `/proc/self/fd/N`).
pub fn copy_dir_contents(from: &Path, to: &Path) -> Result<(), Errno> {
    // Not O_NOFOLLOW here: the callers hand over /proc/self/fd magic links on purpose.
    let dir_flags = DIR_FLAGS - OFlag::O_NOFOLLOW;
    let src = open(from, dir_flags, Mode::empty())?;
    let dst = open(to, dir_flags, Mode::empty())?;
    copy_dir(&src, &dst, 0)
}

fn owner(st: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

fn perm(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd, depth: usize) -> Result<(), Errno> {
    // A deeper tree than this is not an image directory but an attempt to exhaust fds.
    if depth > 128 {
        return Err(Errno::ELOOP);
    }
    let names: Vec<Vec<u8>> = {
        let dup = openat(src.as_fd(), ".", DIR_FLAGS, Mode::empty())?;
        let mut dir = nix::dir::Dir::from_fd(dup)?;
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e?;
            let name: &CStr = e.file_name();
            let b = name.to_bytes();
            if b != b"." && b != b".." {
                out.push(b.to_vec());
            }
        }
        out
    };
    for name in names {
        let name = OsStr::from_bytes(&name);
        copy_entry(src, dst, name, depth)?;
    }
    Ok(())
}

fn copy_entry(src: &OwnedFd, dst: &OwnedFd, name: &OsStr, depth: usize) -> Result<(), Errno> {
    let st = fstatat(src.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let (uid, gid) = owner(&st);
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    match kind {
        SFlag::S_IFDIR => {
            match mkdirat(dst.as_fd(), name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            let s = openat(src.as_fd(), name, DIR_FLAGS, Mode::empty())?;
            let d = openat(dst.as_fd(), name, DIR_FLAGS, Mode::empty())?;
            copy_dir(&s, &d, depth + 1)?;
            fchown(d.as_fd(), uid, gid)?;
            fchmod(d.as_fd(), perm(&st))?;
        }
        SFlag::S_IFREG => {
            let s = openat(
                src.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let d = openat(
                dst.as_fd(),
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )?;
            let (mut s, mut d) = (File::from(s), File::from(d));
            std::io::copy(&mut s, &mut d)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            fchown(d.as_fd(), uid, gid)?;
            // After the chown, which clears set-id bits.
            fchmod(d.as_fd(), perm(&st))?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(src.as_fd(), name)?;
            symlinkat(target.as_os_str(), dst.as_fd(), name)?;
            fchownat(dst.as_fd(), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        }
        SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
            mknodat(dst.as_fd(), name, kind, perm(&st), st.st_rdev)?;
            fchownat(dst.as_fd(), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        }
        // Sockets are meaningless without their listener.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn files_dirs_symlinks_modes_and_owners_are_copied() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("a/b")).unwrap();
        std::fs::write(s.join("a/b/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("link")).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            nix::unistd::chown(&s.join("a/b/f"), Some(Uid::from_raw(1000)), None).unwrap();
            std::os::unix::fs::lchown(s.join("link"), Some(1001), Some(1002)).unwrap();
        }
        // After the chown, which clears set-id bits.
        std::fs::set_permissions(s.join("a/b/f"), std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::fs::set_permissions(s.join("a"), std::fs::Permissions::from_mode(0o711)).unwrap();
        nix::unistd::mkfifo(&s.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        copy_dir_contents(s, dst.path()).unwrap();
        let d = dst.path();
        assert_eq!(std::fs::read(d.join("a/b/f")).unwrap(), b"hello");
        let m = std::fs::metadata(d.join("a/b/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4751);
        assert_eq!(
            std::fs::metadata(d.join("a")).unwrap().mode() & 0o7777,
            0o711
        );
        assert_eq!(
            std::fs::read_link(d.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let fifo = std::fs::symlink_metadata(d.join("fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        if root {
            assert_eq!(m.uid(), 1000);
            let l = std::fs::symlink_metadata(d.join("link")).unwrap();
            assert_eq!((l.uid(), l.gid()), (1001, 1002));
        }
    }

    #[test]
    fn a_symlinked_directory_is_copied_as_a_link_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), src.path().join("escape")).unwrap();
        copy_dir_contents(src.path(), dst.path()).unwrap();
        let l = std::fs::symlink_metadata(dst.path().join("escape")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 1);
    }
}
