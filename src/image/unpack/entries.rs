//! Creating each tar entry beneath the layer directory.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat, makedev, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat};
use tar::EntryType;
use tracing::debug;

use super::fsops::{self, Node, Slot, Tree, WalkError, open_dir, set_xattr};
use super::lower::LowerLink;
use super::meta::{Meta, sys};
use super::path::{self, LayerPath, PathError, Whiteout, display_prefix};
use super::stream::read_error;
use super::{Compression, UnpackError};

/// File content is copied through one buffer of this size.
const COPY_BUFFER: usize = 128 * 1024;
const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";

/// What an entry creates, after whiteouts are taken out.
#[derive(Debug, Clone, Copy)]
enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Device(SFlag),
    Fifo,
}

fn classify(
    entry_type: EntryType,
    raw_path: &[u8],
    entry: &str,
) -> Result<Option<Kind>, UnpackError> {
    let kind = match entry_type {
        // Pre-POSIX archives mark directories only by a trailing slash.
        EntryType::Regular | EntryType::Continuous if raw_path.ends_with(b"/") => Kind::Dir,
        EntryType::Regular | EntryType::Continuous => Kind::File,
        EntryType::Directory => Kind::Dir,
        EntryType::Symlink => Kind::Symlink,
        EntryType::Link => Kind::HardLink,
        EntryType::Char => Kind::Device(SFlag::S_IFCHR),
        EntryType::Block => Kind::Device(SFlag::S_IFBLK),
        EntryType::Fifo => Kind::Fifo,
        // Global PAX defaults describe the archive, not a file; docker and
        // containerd ignore them too.
        EntryType::XGlobalHeader => return Ok(None),
        // Writing sparse files out densely lets a tiny layer fill the disk.
        EntryType::GNUSparse => return Err(unsupported(entry, "GNU sparse file".to_owned())),
        other => {
            return Err(unsupported(
                entry,
                format!("typeflag {:?}", char::from(other.as_byte())),
            ));
        }
    };
    Ok(Some(kind))
}

fn unsupported(entry: &str, kind: String) -> UnpackError {
    UnpackError::UnsupportedType {
        entry: entry.to_owned(),
        kind,
    }
}

fn invalid(entry: &str, reason: &str) -> UnpackError {
    UnpackError::InvalidEntry {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

fn too_deep() -> String {
    format!("path is deeper than {} directories", path::MAX_DEPTH)
}

fn path_error(entry: &str, e: PathError) -> UnpackError {
    match e {
        PathError::Escapes => UnpackError::PathEscapes {
            entry: entry.to_owned(),
        },
        PathError::Nul => invalid(entry, "path contains a NUL byte"),
        PathError::TooDeep => invalid(entry, &too_deep()),
    }
}

/// Maps a failed walk to an entry's parent directory.
fn walk_error(entry: &str, components: &[Vec<u8>], e: WalkError) -> UnpackError {
    match e {
        WalkError::Symlink { at } => UnpackError::SymlinkInPath {
            entry: entry.to_owned(),
            component: display_prefix(components, at),
        },
        WalkError::NotADirectory { at } => UnpackError::NotADirectory {
            entry: entry.to_owned(),
            component: display_prefix(components, at),
        },
        // Only walks that do not create can miss; they map this themselves.
        WalkError::Missing { .. } => sys(entry, "open parent directory", Errno::ENOENT),
        WalkError::Sys { errno, .. } => sys(entry, "open parent directory", errno),
    }
}

pub(super) struct Unpacker {
    tree: Tree,
    buffer: Vec<u8>,
    compression: Compression,
    /// Directory mtimes are set last: adding children changes them.
    dir_times: Vec<(Vec<Vec<u8>>, TimeSpec, String)>,
    pub(super) size: u64,
    pub(super) entries: u64,
    /// Hard links whose target lies in a lower layer, as placeholders to fill in later.
    pub(super) lower_links: Vec<LowerLink>,
    /// The parent directory of the entry being unpacked: every name `clear` removes is in it.
    current_parent: Vec<Vec<u8>>,
}

impl Unpacker {
    pub(super) fn new(tree: Tree, compression: Compression) -> Self {
        Self {
            tree,
            buffer: vec![0; COPY_BUFFER],
            compression,
            dir_times: Vec::new(),
            size: 0,
            entries: 0,
            lower_links: Vec::new(),
            current_parent: Vec::new(),
        }
    }

    pub(super) fn unpack_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let raw_path = entry.path_bytes().into_owned();
        let name = path::display(&raw_path);
        let Some(kind) = classify(entry.header().entry_type(), &raw_path, &name)? else {
            debug!(entry = %name, "ignoring global PAX header");
            return Ok(());
        };
        let path = LayerPath::parse(&raw_path).map_err(|e| path_error(&name, e))?;
        let Some((base, parent_components)) = path.split_last() else {
            return match kind {
                Kind::Dir => self.root_dir(entry, &name),
                _ => Err(invalid(&name, "only a directory can name the layer root")),
            };
        };
        self.current_parent.clear();
        self.current_parent.extend_from_slice(parent_components);
        match path::whiteout(base) {
            Whiteout::None => {}
            Whiteout::Opaque => return self.mark_opaque(parent_components, &name),
            Whiteout::Delete(deleted) => {
                return self.whiteout(entry, parent_components, deleted, &name);
            }
            Whiteout::AufsMetadata => {
                debug!(entry = %name, "ignoring aufs metadata");
                return Ok(());
            }
        }
        let parent = self
            .tree
            .parent_dir(parent_components)
            .map_err(|e| walk_error(&name, parent_components, e))?;
        match kind {
            Kind::File => self.file(entry, &parent, base, &name),
            Kind::Dir => self.dir(entry, &parent, base, path.components(), &name),
            Kind::Symlink => self.symlink(entry, &parent, base, &name),
            Kind::HardLink => self.hard_link(entry, &parent, path.components(), &name),
            Kind::Device(device_type) => self.special(entry, &parent, base, device_type, &name),
            Kind::Fifo => self.special(entry, &parent, base, SFlag::S_IFIFO, &name),
        }
    }

    fn clear(
        &mut self,
        parent: &OwnedFd,
        base: &[u8],
        keep_dir: bool,
        name: &str,
    ) -> Result<Slot, UnpackError> {
        let slot = self
            .tree
            .clear(parent, base, keep_dir)
            .map_err(|e| sys(name, "replace existing entry", e))?;
        if slot == Slot::Empty && !self.lower_links.is_empty() {
            // A placeholder's name (or a directory holding one) is gone: nothing fills it.
            let depth = self.current_parent.len();
            let gone = |n: &Vec<Vec<u8>>| {
                n.len() > depth
                    && n[..depth] == self.current_parent[..]
                    && n[depth].as_slice() == base
            };
            for link in &mut self.lower_links {
                link.names.retain(|n| !gone(n));
            }
            self.lower_links.retain(|l| !l.names.is_empty());
        }
        Ok(slot)
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        base: &[u8],
        name: &str,
    ) -> Result<(), UnpackError> {
        let meta = Meta::read(entry, name)?;
        self.clear(parent, base, false, name)?;
        // O_EXCL|O_NOFOLLOW: never reuse, or write through, whatever is there.
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(parent, base, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| sys(name, "create file", e))?;
        let mut file = File::from(fd);
        let written = self.copy_content(entry, &mut file, name)?;
        if written != entry.size() {
            return Err(UnpackError::Truncated {
                entry: name.to_owned(),
                written,
                expected: entry.size(),
            });
        }
        self.size += written;
        meta.apply_to_fd(file.as_fd(), name)?;
        meta.set_times_fd(file.as_fd(), name)
    }

    fn copy_content(
        &mut self,
        from: &mut impl Read,
        to: &mut File,
        name: &str,
    ) -> Result<u64, UnpackError> {
        let mut written = 0u64;
        loop {
            let n = match from.read(&mut self.buffer) {
                Ok(0) => return Ok(written),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e, self.compression)),
            };
            to.write_all(&self.buffer[..n])
                .map_err(|source| UnpackError::Io {
                    entry: name.to_owned(),
                    op: "write file content",
                    source,
                })?;
            written += n as u64;
        }
    }

    /// A directory over an existing one merges: children stay, metadata changes.
    fn dir<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        base: &[u8],
        components: &[Vec<u8>],
        name: &str,
    ) -> Result<(), UnpackError> {
        let meta = Meta::read(entry, name)?;
        if self.clear(parent, base, true, name)? == Slot::Empty {
            mkdirat(parent, base, Mode::from_bits_truncate(0o700))
                .map_err(|e| sys(name, "create directory", e))?;
        }
        let fd = open_dir(parent, base).map_err(|e| sys(name, "open directory", e))?;
        meta.apply_to_fd(fd.as_fd(), name)?;
        self.dir_times
            .push((components.to_vec(), meta.mtime, name.to_owned()));
        Ok(())
    }

    /// `./` entries carry the layer root's metadata, which overlayfs shows
    /// for the merged root when this is the top layer.
    fn root_dir<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<(), UnpackError> {
        let meta = Meta::read(entry, name)?;
        meta.apply_to_fd(self.tree.root(), name)?;
        self.dir_times
            .push((Vec::new(), meta.mtime, name.to_owned()));
        Ok(())
    }

    /// The target is stored verbatim and never resolved by us.
    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        base: &[u8],
        name: &str,
    ) -> Result<(), UnpackError> {
        let meta = Meta::read(entry, name)?;
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(name, "symlink has no target"))?
            .into_owned();
        self.clear(parent, base, false, name)?;
        symlinkat(target.as_slice(), parent, base).map_err(|e| sys(name, "create symlink", e))?;
        meta.apply_at(parent.as_fd(), base, false, name)
    }

    fn special<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        base: &[u8],
        node_type: SFlag,
        name: &str,
    ) -> Result<(), UnpackError> {
        let meta = Meta::read(entry, name)?;
        let device = if node_type == SFlag::S_IFIFO {
            0
        } else {
            device_number(entry.header(), name)?
        };
        self.clear(parent, base, false, name)?;
        mknodat(
            parent,
            base,
            node_type,
            Mode::from_bits_truncate(0o600),
            device,
        )
        .map_err(|e| sys(name, "create node", e))?;
        meta.apply_at(parent.as_fd(), base, true, name)
    }

    /// Hard link targets are resolved like entry paths: beneath the layer, no
    /// symlinked parents. linkat without AT_SYMLINK_FOLLOW links a symlink
    /// target itself rather than what it points at. The header's metadata is
    /// not applied: the inode already got it from the target's own entry.
    ///
    /// A target this layer does not have may be in a lower layer, which a
    /// hard link cannot reach across overlayfs layers: the link becomes a
    /// placeholder that [`super::copy_up_lower_links`] fills with a copy of
    /// the lower file once the lower layers are unpacked (overlayfs copy-up).
    fn hard_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        components: &[Vec<u8>],
        name: &str,
    ) -> Result<(), UnpackError> {
        let Some(base) = components.last().map(Vec::as_slice) else {
            return Err(invalid(name, "only a directory can name the layer root"));
        };
        let raw_target = entry
            .link_name_bytes()
            .ok_or_else(|| invalid(name, "hard link has no target"))?
            .into_owned();
        let target_name = path::display(&raw_target);
        let missing = || UnpackError::LinkTargetMissing {
            entry: name.to_owned(),
            target: target_name.clone(),
        };
        let target = LayerPath::parse(&raw_target).map_err(|e| match e {
            PathError::Escapes => UnpackError::LinkTargetEscapes {
                entry: name.to_owned(),
                target: target_name.clone(),
            },
            PathError::Nul => invalid(name, "hard link target contains a NUL byte"),
            PathError::TooDeep => invalid(name, &too_deep()),
        })?;
        let Some((target_base, target_parent)) = target.split_last() else {
            return Err(UnpackError::LinkTargetIsDirectory {
                entry: name.to_owned(),
                target: target_name,
            });
        };
        let target_dir = match self.tree.existing_dir(target_parent) {
            Ok(fd) => fd,
            Err(WalkError::Missing { .. }) => {
                return self.lower_link(parent, components, target.components(), name, target_name);
            }
            // A file or a whiteout of this layer hides whatever lower layers have there.
            Err(WalkError::NotADirectory { .. }) => return Err(missing()),
            Err(e) => return Err(walk_error(name, target_parent, e)),
        };
        let target_stat = match fstatat(&target_dir, target_base, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => {
                return self.lower_link(parent, components, target.components(), name, target_name);
            }
            Err(e) => return Err(sys(name, "inspect hard link target", e)),
        };
        if fsops::is_dir_mode(target_stat.st_mode) {
            return Err(UnpackError::LinkTargetIsDirectory {
                entry: name.to_owned(),
                target: target_name,
            });
        }
        // A whiteout deletes the name: there is nothing to link to.
        if fsops::is_whiteout(&target_stat) {
            return Err(missing());
        }
        // A repeated link entry (or a link to itself) is already satisfied.
        if let Ok(existing) = fstatat(parent, base, AtFlags::AT_SYMLINK_NOFOLLOW)
            && (existing.st_dev, existing.st_ino) == (target_stat.st_dev, target_stat.st_ino)
        {
            return Ok(());
        }
        self.clear(parent, base, false, name)?;
        match linkat(&target_dir, target_base, parent, base, AtFlags::empty()) {
            Ok(()) => {}
            // Clearing the entry's name removed the target's directory.
            Err(Errno::ENOENT) => return Err(missing()),
            Err(e) => return Err(sys(name, "create hard link", e)),
        }
        // A link to a placeholder shares the copy that fills it.
        let target_components = target.components();
        if let Some(pending) = self
            .lower_links
            .iter_mut()
            .find(|l| l.names.iter().any(|n| n.as_slice() == target_components))
        {
            pending.names.push(components.to_vec());
        }
        Ok(())
    }

    /// An empty placeholder file at the link's name, to be filled from the lower layers.
    fn lower_link(
        &mut self,
        parent: &OwnedFd,
        components: &[Vec<u8>],
        target: &[Vec<u8>],
        name: &str,
        target_name: String,
    ) -> Result<(), UnpackError> {
        let Some(base) = components.last().map(Vec::as_slice) else {
            return Err(invalid(name, "only a directory can name the layer root"));
        };
        self.clear(parent, base, false, name)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        openat(parent, base, flags, Mode::empty())
            .map_err(|e| sys(name, "create hard link placeholder", e))?;
        self.lower_links.push(LowerLink {
            entry: name.to_owned(),
            target_name,
            names: vec![components.to_vec()],
            target: target.to_vec(),
        });
        Ok(())
    }

    /// `.wh.<name>` becomes the overlayfs whiteout for `<name>`: a 0:0 char device.
    fn whiteout<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent_components: &[Vec<u8>],
        deleted: &[u8],
        name: &str,
    ) -> Result<(), UnpackError> {
        match deleted {
            b"" | b"." => return Err(invalid(name, "whiteout does not name a file")),
            b".." => {
                return Err(UnpackError::PathEscapes {
                    entry: name.to_owned(),
                });
            }
            _ => {}
        }
        let meta = Meta::read(entry, name)?;
        let parent = self
            .tree
            .parent_dir(parent_components)
            .map_err(|e| walk_error(name, parent_components, e))?;
        self.clear(&parent, deleted, false, name)?;
        mknodat(
            &parent,
            deleted,
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .map_err(|e| sys(name, "create whiteout", e))?;
        fchownat(
            &parent,
            deleted,
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| sys(name, "chown whiteout", e))?;
        // The `.wh.` entry's mtime, so the same layer always unpacks to the same tree.
        nix::sys::stat::utimensat(
            &parent,
            deleted,
            &meta.mtime,
            &meta.mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| sys(name, "set whiteout mtime", e))
    }

    /// `dir/.wh..wh..opq` hides lower layers' `dir`; it may come before or
    /// after `dir`'s own entry, and creates `dir` if needed.
    fn mark_opaque(&mut self, components: &[Vec<u8>], name: &str) -> Result<(), UnpackError> {
        let dir = self
            .tree
            .parent_dir(components)
            .map_err(|e| walk_error(name, components, e))?;
        // Never best effort: without it lower layers would show through.
        set_xattr(Node::Fd(dir.as_fd()), OPAQUE_XATTR, b"y").map_err(|source| UnpackError::Xattr {
            entry: name.to_owned(),
            name: OPAQUE_XATTR.to_string_lossy().into_owned(),
            source,
        })
    }

    /// Directories replaced by a later entry no longer exist and are skipped.
    pub(super) fn set_dir_times(&mut self) -> Result<(), UnpackError> {
        for (components, mtime, name) in std::mem::take(&mut self.dir_times) {
            let dir = match self.tree.existing_dir(&components) {
                Ok(fd) => fd,
                Err(WalkError::Sys { errno, .. }) => {
                    return Err(sys(&name, "open directory", errno));
                }
                Err(_) => continue,
            };
            nix::sys::stat::futimens(&dir, &mtime, &mtime)
                .map_err(|e| sys(&name, "set mtime", e))?;
        }
        Ok(())
    }
}

fn device_number(header: &tar::Header, name: &str) -> Result<nix::libc::dev_t, UnpackError> {
    let field = |value: io::Result<Option<u32>>| match value {
        Ok(Some(number)) => Ok(u64::from(number)),
        Ok(None) => Err(invalid(name, "device entry has no device numbers")),
        Err(e) => Err(invalid(name, &format!("invalid device number: {e}"))),
    };
    Ok(makedev(
        field(header.device_major())?,
        field(header.device_minor())?,
    ))
}
