//! Entry metadata (owner, mode, mtime, xattrs) read from the tar header and
//! PAX records, and applied to created nodes.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{FchmodatFlags, Mode, UtimensatFlags, fchmod, fchmodat, futimens, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat};
use tracing::warn;

use super::UnpackError;
use super::fsops::{Node, set_xattr};

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
/// Overlayfs interprets these (redirect, metacopy, origin, opaque); a layer
/// carrying them could steer how its lower layers are merged.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

pub(super) struct Meta {
    pub(super) mode: Mode,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) mtime: TimeSpec,
    pub(super) xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    /// The tar crate already applies PAX `uid`/`gid`; PAX `mtime` (which can
    /// carry nanoseconds) and `SCHILY.xattr.*` are ours to read.
    pub(super) fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Self, UnpackError> {
        let header = entry.header();
        let mode = header.mode().map_err(|e| invalid(name, "mode", &e))?;
        let uid = id(
            header.uid().map_err(|e| invalid(name, "uid", &e))?,
            name,
            "uid",
        )?;
        let gid = id(
            header.gid().map_err(|e| invalid(name, "gid", &e))?,
            name,
            "gid",
        )?;
        let seconds = header.mtime().map_err(|e| invalid(name, "mtime", &e))?;
        let mut mtime = TimeSpec::new(
            seconds
                .try_into()
                .map_err(|_| out_of_range(name, "mtime"))?,
            0,
        );
        let mut xattrs = Vec::new();
        let pax = entry
            .pax_extensions()
            .map_err(|e| invalid(name, "PAX records", &e))?;
        for record in pax.into_iter().flatten() {
            let record = record.map_err(|e| invalid(name, "PAX records", &e))?;
            let (key, value) = (record.key_bytes(), record.value_bytes());
            if key == b"mtime" {
                mtime = pax_time(value).ok_or_else(|| out_of_range(name, "PAX mtime"))?;
            } else if let Some(xattr) = key.strip_prefix(XATTR_PREFIX) {
                let xattr = CString::new(xattr).map_err(|_| UnpackError::InvalidEntry {
                    entry: name.to_owned(),
                    reason: "xattr name contains a NUL byte".to_owned(),
                })?;
                xattrs.push((xattr, value.to_vec()));
            } else if key.starts_with(b"GNU.sparse.") {
                // Sparse maps would be written out as file content.
                return Err(UnpackError::UnsupportedType {
                    entry: name.to_owned(),
                    kind: "PAX sparse file".to_owned(),
                });
            }
        }
        Ok(Self {
            mode: Mode::from_bits_truncate(mode & 0o7777),
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            mtime,
            xattrs,
        })
    }

    /// For files and directories we hold open. Owner first: chown clears the
    /// set-id bits and `security.capability`, so mode and xattrs follow it.
    pub(super) fn apply_to_fd(&self, fd: BorrowedFd<'_>, entry: &str) -> Result<(), UnpackError> {
        fchown(fd, Some(self.uid), Some(self.gid)).map_err(|e| sys(entry, "chown", e))?;
        fchmod(fd, self.mode).map_err(|e| sys(entry, "chmod", e))?;
        self.apply_xattrs(Node::Fd(fd), entry)
    }

    /// For symlinks and special files, which must not be opened (a FIFO open
    /// blocks, a device open has side effects). Symlinks have no mode.
    pub(super) fn apply_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        chmod: bool,
        entry: &str,
    ) -> Result<(), UnpackError> {
        fchownat(
            parent,
            name,
            Some(self.uid),
            Some(self.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| sys(entry, "chown", e))?;
        if chmod {
            fchmodat(parent, name, self.mode, FchmodatFlags::NoFollowSymlink)
                .map_err(|e| sys(entry, "chmod", e))?;
        }
        self.apply_xattrs(Node::At(parent, name), entry)?;
        utimensat(
            parent,
            name,
            &self.mtime,
            &self.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| sys(entry, "set mtime", e))
    }

    pub(super) fn set_times_fd(&self, fd: BorrowedFd<'_>, entry: &str) -> Result<(), UnpackError> {
        futimens(fd, &self.mtime, &self.mtime).map_err(|e| sys(entry, "set mtime", e))
    }

    fn apply_xattrs(&self, node: Node<'_>, entry: &str) -> Result<(), UnpackError> {
        for (name, value) in &self.xattrs {
            let key = name.to_bytes();
            if key.starts_with(OVERLAY_XATTR_PREFIX) {
                warn!(entry, xattr = ?name, "dropping overlayfs xattr carried by the layer");
                continue;
            }
            match set_xattr(node, name, value) {
                Ok(()) => {}
                // Labels and trusted metadata are best effort: the target fs
                // or LSM may legitimately refuse them.
                Err(e)
                    if is_refusal(&e)
                        && (key.starts_with(b"security.") || key.starts_with(b"trusted.")) =>
                {
                    warn!(entry, xattr = ?name, error = %e, "filesystem refused xattr; skipping it");
                }
                Err(source) => {
                    return Err(UnpackError::Xattr {
                        entry: entry.to_owned(),
                        name: name.to_string_lossy().into_owned(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

fn is_refusal(e: &io::Error) -> bool {
    matches!(
        Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        Errno::EPERM | Errno::ENOTSUP
    )
}

fn id(raw: u64, entry: &str, field: &str) -> Result<u32, UnpackError> {
    raw.try_into().map_err(|_| out_of_range(entry, field))
}

/// Parses a PAX time, `[-]seconds[.fraction]`, into a timespec.
fn pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let nanos_text: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let nanos: i64 = nanos_text.parse().ok()?;
    let (seconds, nanos) = match (negative, nanos) {
        (false, _) => (seconds, nanos),
        (true, 0) => (-seconds, 0),
        (true, _) => (-seconds - 1, 1_000_000_000 - nanos),
    };
    Some(TimeSpec::new(seconds, nanos))
}

fn invalid(entry: &str, field: &str, e: &io::Error) -> UnpackError {
    UnpackError::InvalidEntry {
        entry: entry.to_owned(),
        reason: format!("invalid {field} in header: {e}"),
    }
}

fn out_of_range(entry: &str, field: &str) -> UnpackError {
    UnpackError::InvalidEntry {
        entry: entry.to_owned(),
        reason: format!("{field} is out of range or malformed"),
    }
}

pub(super) fn sys(entry: &str, op: &'static str, errno: Errno) -> UnpackError {
    UnpackError::Io {
        entry: entry.to_owned(),
        op,
        source: errno.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_nanoseconds_and_handle_negative_fractions() {
        assert_eq!(
            pax_time(b"1700000000.5"),
            Some(TimeSpec::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(pax_time(b"12"), Some(TimeSpec::new(12, 0)));
        assert_eq!(pax_time(b"-1.25"), Some(TimeSpec::new(-2, 750_000_000)));
        assert_eq!(
            pax_time(b"1.1234567891"),
            Some(TimeSpec::new(1, 123_456_789))
        );
        assert_eq!(pax_time(b"+1"), None);
        assert_eq!(pax_time(b"1.-5"), None);
        assert_eq!(pax_time(b""), None);
    }
}
