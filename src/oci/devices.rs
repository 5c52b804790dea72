//! linux.devices and the device cgroup rules.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::{SpecError, invalid};
use crate::api;

/// Entries of /dev a privileged container does not get from the host: the runtime makes its
/// own pts instance, shm, mqueue, console and ptmx; the rest are not device nodes to copy.
const HOST_DEV_SKIP: &[&str] = &[
    "pts",
    "shm",
    "mqueue",
    "fd",
    "console",
    "ptmx",
    ".lxc",
    ".lxd-mounts",
    ".udev",
];

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(Some(typ))
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// Deny everything, then allow the devices every container has (null, zero, full, random,
/// urandom, tty, console, ptmx, the pts instance).
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, C};
    let mut rules = vec![rule(false, A, None, None, "rwm")];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule(true, C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, C, Some(136), None, "rwm"));
    rules
}

/// A device node on the host as an OCI device at `dest`; None if `host` is no device.
fn device_at(host: &Path, dest: &Path) -> Result<Option<LinuxDevice>, SpecError> {
    let md = std::fs::metadata(host).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            SpecError::NotFound(format!("device {}: {e}", host.display()))
        }
        _ => SpecError::FailedPrecondition(format!("device {}: {e}", host.display())),
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = md.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(dest.to_path_buf())
        .set_typ(typ)
        .set_major(nix::sys::stat::major(rdev) as i64)
        .set_minor(nix::sys::stat::minor(rdev) as i64)
        .set_file_mode(Some(md.mode() & 0o777))
        .set_uid(Some(md.uid()))
        .set_gid(Some(md.gid()));
    Ok(Some(d))
}

/// Every device node below `dir` (recursively, not following symlinks), mapped under `dest`.
fn devices_below(
    dir: &Path,
    dest: &Path,
    skip: &[&str],
    out: &mut Vec<LinuxDevice>,
) -> Result<(), SpecError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SpecError::FailedPrecondition(format!("listing {}: {e}", dir.display())))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        let (src, dst) = (e.path(), dest.join(&name));
        if ft.is_dir() {
            devices_below(&src, &dst, &[], out)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            // A node that vanished meanwhile is simply not offered.
            if let Ok(Some(d)) = device_at(&src, &dst) {
                out.push(d);
            }
        }
    }
    Ok(())
}

fn validate_permissions(p: &str) -> Result<String, SpecError> {
    if p.is_empty() {
        return Ok("rwm".into());
    }
    if !p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(invalid(format!(
            "device permissions {p:?}: only r, w and m are allowed"
        )));
    }
    Ok(p.to_string())
}

/// The request's devices (a directory brings every device below it), plus all host devices
/// when privileged; and the cgroup rules (everything allowed when privileged).
pub fn container_devices(
    requested: &[api::Device],
    privileged: bool,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut devices = Vec::new();
    let mut rules = if privileged {
        devices_below(
            Path::new("/dev"),
            Path::new("/dev"),
            HOST_DEV_SKIP,
            &mut devices,
        )?;
        vec![rule(true, LinuxDeviceType::A, None, None, "rwm")]
    } else {
        default_rules()
    };
    for d in requested {
        if d.host_path.is_empty() {
            return Err(invalid("device without host_path"));
        }
        let host = PathBuf::from(&d.host_path);
        let dest = PathBuf::from(if d.container_path.is_empty() {
            &d.host_path
        } else {
            &d.container_path
        });
        if !dest.is_absolute() {
            return Err(invalid(format!(
                "device container path {} is not absolute",
                dest.display()
            )));
        }
        let access = validate_permissions(&d.permissions)?;
        let mut found = Vec::new();
        match device_at(&host, &dest)? {
            Some(dev) => found.push(dev),
            None if host.is_dir() => devices_below(&host, &dest, &[], &mut found)?,
            None => return Err(invalid(format!("{} is not a device node", host.display()))),
        }
        for dev in found {
            if !privileged {
                rules.push(rule(
                    true,
                    dev.typ(),
                    Some(dev.major()),
                    Some(dev.minor()),
                    &access,
                ));
            }
            // A requested device replaces a privileged host device at the same path.
            devices.retain(|x: &LinuxDevice| x.path() != dev.path());
            devices.push(dev);
        }
    }
    Ok((devices, rules))
}
