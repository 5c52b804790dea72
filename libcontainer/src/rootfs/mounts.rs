//! One `mounts[]` entry of the spec → mount(2) calls, with the destination resolved inside the
//! rootfs.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::options::{self, MountOptions};
use super::{CgroupMount, RootfsConfig};
use crate::error::{Error, Result, SysContext};
use crate::syscall::{Syscall, Target, TargetKind};

/// Flags that a bind mount needs a remount to apply.
fn needs_remount(flags: MsFlags) -> bool {
    !(flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)).is_empty()
}

/// Mount `cfg.mounts[index]` (`m`).
pub fn mount_entry(sys: &dyn Syscall, cfg: &RootfsConfig, index: usize, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = typ == "bind" || opts.is_bind();
    if opts.tmpcopyup && (typ != "tmpfs" || is_bind) {
        return Err(Error::Invalid(format!(
            "mount {}: tmpcopyup is only for tmpfs mounts",
            dest.display()
        )));
    }
    let target = if is_bind {
        bind(sys, cfg, index, m, &opts)?
    } else {
        match typ {
            "tmpfs" if opts.tmpcopyup => tmpfs_copyup(sys, cfg, m, &opts)?,
            "cgroup" | "cgroup2" => cgroup(sys, cfg, dest, &opts)?,
            "sysfs" | "mqueue" => {
                let t = resolve_dir(sys, cfg, dest)?;
                let fallback = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                match plain(sys, m, typ, &t, &opts) {
                    // Without its own network (sysfs) or ipc (mqueue) namespace a user namespace
                    // may not mount a fresh instance; bind the host's like runc does.
                    Err(Errno::EPERM) | Err(Errno::EBUSY) => {
                        sys.mount(
                            Some(Path::new(fallback)),
                            &t.path,
                            None,
                            MsFlags::MS_BIND | MsFlags::MS_REC,
                            None,
                        )
                        .ctx(&format!("bind-mounting {fallback} onto"), &t.shown)?;
                        let t = reopen(sys, &cfg.rootfs, dest)?;
                        remount(sys, &t, opts.flags, Path::new(fallback))?;
                    }
                    r => r.ctx(&format!("mounting {typ} on"), &t.shown)?,
                }
                t
            }
            "" => {
                return Err(Error::Invalid(format!(
                    "mount {}: no type and not a bind mount",
                    dest.display()
                )));
            }
            _ => {
                let t = resolve_dir(sys, cfg, dest)?;
                plain(sys, m, typ, &t, &opts).ctx(&format!("mounting {typ} on"), &t.shown)?;
                t
            }
        }
    };
    let target = if opts.propagation.is_empty() && !opts.has_recursive() {
        target
    } else {
        reopen(sys, &cfg.rootfs, dest)?
    };
    for p in &opts.propagation {
        sys.mount(None, &target.path, None, *p, None)
            .ctx("setting mount propagation of", &target.shown)?;
    }
    if opts.has_recursive() {
        match sys.mount_setattr(&target.path, &opts.recursive, true) {
            Ok(()) => {}
            Err(Errno::ENOSYS) => {
                return Err(Error::Unsupported(
                    "recursive mount options (rro, rnosuid, …) on this kernel (no mount_setattr)"
                        .into(),
                ));
            }
            Err(e) => {
                return Err(Error::sys(
                    "setting recursive mount attributes of",
                    &target.shown,
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// A tmpfs that starts with a copy of the directory it covers. The fd resolved before the mount
/// still reaches the covered directory; a read-only tmpfs is made read-only after the copy.
fn tmpfs_copyup(
    sys: &dyn Syscall,
    cfg: &RootfsConfig,
    m: &Mount,
    opts: &MountOptions,
) -> Result<Target> {
    let dest = m.destination();
    let covered = resolve_dir(sys, cfg, dest)?;
    let mut first = opts.clone();
    first.flags.remove(MsFlags::MS_RDONLY);
    plain(sys, m, "tmpfs", &covered, &first).ctx("mounting tmpfs on", &covered.shown)?;
    let t = reopen(sys, &cfg.rootfs, dest)?;
    sys.copy_up(&covered.path, &t.path)
        .ctx("copying the image's files into tmpfs", &t.shown)?;
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        let data = opts.data_string();
        sys.mount(
            None,
            &t.path,
            None,
            (opts.flags - MsFlags::MS_BIND) | MsFlags::MS_REMOUNT,
            data.as_deref(),
        )
        .ctx("remounting tmpfs read-only", &t.shown)?;
    }
    Ok(t)
}

/// Re-resolve a destination after something was mounted on it: an fd opened before the mount
/// refers to the covered directory, not to the new mount.
fn reopen(sys: &dyn Syscall, root: &Path, dest: &Path) -> Result<Target> {
    sys.resolve(root, dest, TargetKind::Dir, false).ctx(
        "reopening mount point",
        crate::syscall::join_in_root(root, dest),
    )
}

fn resolve_dir(sys: &dyn Syscall, cfg: &RootfsConfig, dest: &Path) -> Result<Target> {
    sys.resolve(&cfg.rootfs, dest, TargetKind::Dir, true).ctx(
        "creating mount point",
        crate::syscall::join_in_root(&cfg.rootfs, dest),
    )
}

fn plain(
    sys: &dyn Syscall,
    m: &Mount,
    typ: &str,
    t: &Target,
    opts: &MountOptions,
) -> std::result::Result<(), Errno> {
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data_string();
    sys.mount(
        Some(&source),
        &t.path,
        Some(typ),
        opts.flags - MsFlags::MS_REMOUNT,
        data.as_deref(),
    )
}

fn remount(sys: &dyn Syscall, t: &Target, flags: MsFlags, source: &Path) -> Result<()> {
    if !needs_remount(flags) {
        return Ok(());
    }
    // A remount in a user namespace must keep the flags locked by the source mount.
    let locked = sys.locked_flags(source);
    sys.mount(
        None,
        &t.path,
        None,
        flags | locked | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None,
    )
    .ctx("remounting", &t.shown)
}

fn bind(
    sys: &dyn Syscall,
    cfg: &RootfsConfig,
    index: usize,
    m: &Mount,
    opts: &MountOptions,
) -> Result<Target> {
    let source = m.source().clone().ok_or_else(|| {
        Error::Invalid(format!(
            "bind mount {} has no source",
            m.destination().display()
        ))
    })?;
    let source = if source.is_absolute() {
        source
    } else {
        cfg.bundle.join(source)
    };
    let kind = match sys.is_dir(&source) {
        Some(true) => TargetKind::Dir,
        Some(false) => TargetKind::File,
        None => {
            return Err(Error::sys("bind mount source", &source, Errno::ENOENT));
        }
    };
    let t = sys.resolve(&cfg.rootfs, m.destination(), kind, true).ctx(
        "creating mount point",
        crate::syscall::join_in_root(&cfg.rootfs, m.destination()),
    )?;
    match cfg.detached_for(index) {
        Some(fd) => sys.move_mount(fd.as_fd(), &t.path).ctx(
            &format!("attaching id-mapped mount of {} onto", source.display()),
            &t.shown,
        )?,
        None if super::idmap::wants_idmap(m) => {
            return Err(Error::Invalid(format!(
                "id-mapped mount {} was not prepared by the runtime",
                m.destination().display()
            )));
        }
        None => {
            let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
            sys.mount(Some(&source), &t.path, None, flags, None).ctx(
                &format!("bind-mounting {} onto", source.display()),
                &t.shown,
            )?;
        }
    }
    let t = if needs_remount(opts.flags - MsFlags::MS_REMOUNT) {
        let t = reopen(sys, &cfg.rootfs, m.destination())?;
        remount(sys, &t, opts.flags - MsFlags::MS_REMOUNT, &source)?;
        t
    } else {
        t
    };
    Ok(t)
}

fn cgroup(
    sys: &dyn Syscall,
    cfg: &RootfsConfig,
    dest: &Path,
    opts: &MountOptions,
) -> Result<Target> {
    let t = resolve_dir(sys, cfg, dest)?;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let base = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    match &cfg.cgroup {
        CgroupMount::V1(hierarchies) => {
            // A tmpfs holding one read-only bind of the container's own cgroup per hierarchy.
            sys.mount(
                Some(Path::new("tmpfs")),
                &t.path,
                Some("tmpfs"),
                base,
                Some("mode=755"),
            )
            .ctx("mounting cgroup tmpfs on", &t.shown)?;
            let t = reopen(sys, &cfg.rootfs, dest)?;
            for (name, host_dir) in hierarchies {
                let sub_dest = dest.join(name);
                let sub = resolve_dir(sys, cfg, &sub_dest)?;
                sys.mount(
                    Some(host_dir),
                    &sub.path,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC | base,
                    None,
                )
                .ctx(
                    &format!("bind-mounting cgroup {}", host_dir.display()),
                    &sub.shown,
                )?;
                if ro {
                    let sub = reopen(sys, &cfg.rootfs, &sub_dest)?;
                    remount(sys, &sub, base | MsFlags::MS_RDONLY, host_dir)?;
                }
                if name.contains(',') {
                    for part in name.split(',') {
                        match sys.symlink(Path::new(name), &t.path.join(part)) {
                            Ok(()) | Err(Errno::EEXIST) => {}
                            Err(e) => return Err(Error::sys("symlinking cgroup", &sub_dest, e)),
                        }
                    }
                }
            }
            if ro {
                let t = reopen(sys, &cfg.rootfs, dest)?;
                sys.mount(
                    None,
                    &t.path,
                    None,
                    MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                    Some("mode=755"),
                )
                .ctx("remounting cgroup tmpfs read-only", &t.shown)?;
            }
        }
        CgroupMount::V2(host_dir) => {
            match sys.mount(
                Some(Path::new("cgroup2")),
                &t.path,
                Some("cgroup2"),
                opts.flags,
                None,
            ) {
                Err(Errno::EPERM) | Err(Errno::EBUSY) => {
                    sys.mount(
                        Some(host_dir),
                        &t.path,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                    )
                    .ctx("bind-mounting cgroup2 onto", &t.shown)?;
                    let t = reopen(sys, &cfg.rootfs, dest)?;
                    remount(sys, &t, opts.flags, host_dir)?;
                }
                r => r.ctx("mounting cgroup2 on", &t.shown)?,
            }
        }
        CgroupMount::None => {
            return Err(Error::Invalid(format!(
                "cgroup mount {}: no cgroup hierarchy found",
                dest.display()
            )));
        }
    }
    Ok(t)
}
