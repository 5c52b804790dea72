//! Building the container's root filesystem inside its mount namespace: propagation, the rootfs
//! bind, the spec's mounts in order, devices, the root switch, and the masked/readonly paths.
//! Everything goes through [`Syscall`] so the sequence is unit-testable.

pub mod copyup;
pub mod devices;
pub mod idmap;
pub mod mounts;
pub mod options;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDevice, Mount, Spec};

use crate::error::{Error, Result, SysContext};
use crate::syscall::{Syscall, TargetKind};

/// Where the container's cgroup comes from, for `type: cgroup` mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CgroupMount {
    /// cgroup v1: (hierarchy name as mounted on the host, e.g. `cpu,cpuacct`; the host directory
    /// of the container's cgroup in that hierarchy).
    V1(Vec<(String, PathBuf)>),
    /// cgroup v2: the host directory of the container's cgroup (fallback bind source).
    V2(PathBuf),
    #[default]
    None,
}

/// What the rootfs code needs from the spec and the runtime, resolved up front.
#[derive(Debug, Clone, Default)]
pub struct RootfsConfig {
    /// Absolute path of the rootfs on the host.
    pub rootfs: PathBuf,
    /// Bundle directory, base of relative bind sources.
    pub bundle: PathBuf,
    pub mounts: Vec<Mount>,
    pub propagation: Option<String>,
    pub devices: Vec<LinuxDevice>,
    pub in_userns: bool,
    pub cgroup: CgroupMount,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub root_readonly: bool,
    pub no_pivot: bool,
    /// Id-mapped mounts made by the runtime parent (detached mount fds), by index into
    /// `mounts`; attached with move_mount instead of a bind.
    pub detached: Vec<(usize, Arc<OwnedFd>)>,
}

impl RootfsConfig {
    pub fn from_spec(spec: &Spec, bundle: &Path, in_userns: bool, cgroup: CgroupMount) -> Self {
        let root = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_else(|| PathBuf::from("rootfs"));
        let rootfs = if root.is_absolute() {
            root
        } else {
            bundle.join(root)
        };
        let linux = spec.linux().as_ref();
        RootfsConfig {
            rootfs,
            bundle: bundle.to_path_buf(),
            mounts: spec.mounts().clone().unwrap_or_default(),
            propagation: linux.and_then(|l| l.rootfs_propagation().clone()),
            devices: linux.and_then(|l| l.devices().clone()).unwrap_or_default(),
            in_userns,
            cgroup,
            masked_paths: linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default(),
            readonly_paths: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default(),
            root_readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            no_pivot: false,
            detached: Vec::new(),
        }
    }

    /// The detached mount the parent made for `mounts[index]`, if any.
    fn detached_for(&self, index: usize) -> Option<&OwnedFd> {
        self.detached
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, fd)| fd.as_ref())
    }

    /// Whether /dev comes from the host (a bind mount), in which case devices are not created.
    fn dev_is_bind(&self) -> bool {
        self.mounts.iter().any(|m| {
            m.destination() == Path::new("/dev")
                && (m.typ().as_deref() == Some("bind")
                    || m.options()
                        .iter()
                        .flatten()
                        .any(|o| o == "bind" || o == "rbind"))
        })
    }
}

/// Everything before the root switch, run in the container's fresh mount namespace.
pub fn prepare(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<()> {
    // Stop our mounts from propagating to the host: rslave unless the spec says otherwise.
    let prop = match cfg.propagation.as_deref() {
        Some(p) if !p.is_empty() => options::propagation(p)
            .ok_or_else(|| Error::Invalid(format!("invalid rootfsPropagation {p:?}")))?,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    sys.mount(None, Path::new("/"), None, prop, None)
        .ctx("setting propagation of", "/")?;
    if prop.contains(MsFlags::MS_SHARED) && !cfg.no_pivot {
        // pivot_root refuses a shared new root (or a shared parent of it). As runc does, make
        // the mount holding the rootfs (the rootfs itself when it is a mount point) private, in
        // this mount namespace only, before the bind below copies its propagation.
        let mount_point = crate::mounts::mountpoint_of(&cfg.rootfs)
            .map_err(|e| Error::Invalid(format!("finding the mount of {:?}: {e}", cfg.rootfs)))?;
        sys.mount(None, &mount_point, None, MsFlags::MS_PRIVATE, None)
            .ctx("making the rootfs mount private", &mount_point)?;
    }
    // pivot_root needs the rootfs to be a mount point.
    sys.mount(
        Some(&cfg.rootfs),
        &cfg.rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .ctx("bind-mounting rootfs", &cfg.rootfs)?;
    for (i, m) in cfg.mounts.iter().enumerate() {
        mounts::mount_entry(sys, cfg, i, m)?;
    }
    if !cfg.dev_is_bind() {
        devices::create_devices(sys, cfg)?;
        devices::dev_symlinks(sys, cfg)?;
    }
    Ok(())
}

/// Switch the process's root to the rootfs.
pub fn switch_root(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<()> {
    if cfg.no_pivot {
        sys.move_root(&cfg.rootfs)
            .ctx("moving root to", &cfg.rootfs)
    } else {
        sys.pivot_root(&cfg.rootfs)
            .ctx("pivot_root to", &cfg.rootfs)
    }
}

/// After the switch (and after sysctls, which need a writable /proc/sys): readonly paths, masked
/// paths, then the read-only root.
pub fn finalize(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<()> {
    let root = Path::new("/");
    for p in &cfg.readonly_paths {
        let t = match sys.resolve(root, Path::new(p), TargetKind::Dir, false) {
            Ok(t) => t,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys("resolving readonly path", p, e)),
        };
        sys.mount(
            Some(&t.path),
            &t.path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .ctx("bind-mounting readonly path", p)?;
        let t = sys
            .resolve(root, Path::new(p), TargetKind::Dir, false)
            .ctx("reopening readonly path", p)?;
        let locked = sys.locked_flags(&t.path);
        sys.mount(
            None,
            &t.path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked,
            None,
        )
        .ctx("remounting readonly path", p)?;
    }
    for p in &cfg.masked_paths {
        let t = match sys.resolve(root, Path::new(p), TargetKind::File, false) {
            Ok(t) => t,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys("resolving masked path", p, e)),
        };
        if sys.is_dir(&t.path).unwrap_or(false) {
            sys.mount(
                Some(Path::new("tmpfs")),
                &t.path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )
            .ctx("masking directory", p)?;
        } else {
            sys.mount(
                Some(Path::new("/dev/null")),
                &t.path,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .ctx("masking file", p)?;
        }
    }
    if cfg.root_readonly {
        let locked = sys.locked_flags(root);
        sys.mount(
            None,
            root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None,
        )
        .ctx("remounting root read-only", "/")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
