//! /dev: the default device nodes, `linux.devices`, and the standard symlinks.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::RootfsConfig;
use crate::error::{Error, Result, SysContext};
use crate::syscall::{Syscall, TargetKind};

/// A device to create: path inside the container, type, major, minor, mode, uid, gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The devices every container gets (runc's `AllowedDevices` nodes).
pub fn default_devices() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| Device {
        path: PathBuf::from(p),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: Some(0),
        gid: Some(0),
    })
    .collect()
}

fn from_spec(d: &LinuxDevice) -> Result<Device> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::Invalid(format!(
                "device {}: type \"a\" cannot be created",
                d.path().display()
            )));
        }
    };
    if !d.path().starts_with("/dev") {
        return Err(Error::Invalid(format!(
            "device {} is not under /dev",
            d.path().display()
        )));
    }
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: u64::try_from(d.major()).unwrap_or(0),
        minor: u64::try_from(d.minor()).unwrap_or(0),
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid(),
        gid: d.gid(),
    })
}

/// Defaults first, then the spec's devices (which win for the same path).
pub fn device_list(cfg: &RootfsConfig) -> Result<Vec<Device>> {
    let mut out = default_devices();
    for d in &cfg.devices {
        let d = from_spec(d)?;
        out.retain(|x| x.path != d.path);
        out.push(d);
    }
    Ok(out)
}

pub fn create_devices(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<()> {
    for d in device_list(cfg)? {
        let shown = crate::syscall::join_in_root(&cfg.rootfs, &d.path);
        if cfg.in_userns {
            // mknod is not allowed in a user namespace: bind the host's node instead.
            let t = sys
                .resolve(&cfg.rootfs, &d.path, TargetKind::File, true)
                .ctx("creating device mount point", &shown)?;
            sys.mount(
                Some(&d.path),
                &t.path,
                None,
                nix::mount::MsFlags::MS_BIND,
                None,
            )
            .ctx("bind-mounting device", &shown)?;
            continue;
        }
        let parent = d.path.parent().unwrap_or(Path::new("/dev"));
        let name = d.path.file_name().ok_or_else(|| {
            Error::Invalid(format!("device path {} has no name", d.path.display()))
        })?;
        let dir = sys
            .resolve(&cfg.rootfs, parent, TargetKind::Dir, true)
            .ctx("creating device directory", &shown)?;
        let node = dir.path.join(name);
        let dev = nix::sys::stat::makedev(d.major, d.minor);
        match sys.mknod(&node, d.kind, d.mode, dev) {
            Ok(()) => {}
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(Error::sys("creating device", &shown, e)),
        }
        sys.chown(&node, d.uid, d.gid)
            .ctx("chowning device", &shown)?;
    }
    Ok(())
}

/// /dev/fd, stdin, stdout, stderr, core and ptmx symlinks, and the /dev/shm directory.
pub fn dev_symlinks(sys: &dyn Syscall, cfg: &RootfsConfig) -> Result<()> {
    let dev = sys
        .resolve(&cfg.rootfs, Path::new("/dev"), TargetKind::Dir, true)
        .ctx("creating", cfg.rootfs.join("dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if sys.is_dir(Path::new("/proc/kcore")).is_some() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match sys.symlink(Path::new(target), &dev.path.join(name)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::sys(
                    "creating symlink",
                    cfg.rootfs.join("dev").join(name),
                    e,
                ));
            }
        }
    }
    let has_shm = cfg
        .mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/shm"));
    if !has_shm {
        sys.resolve(&cfg.rootfs, Path::new("/dev/shm"), TargetKind::Dir, true)
            .ctx("creating", cfg.rootfs.join("dev/shm"))?;
    }
    Ok(())
}
