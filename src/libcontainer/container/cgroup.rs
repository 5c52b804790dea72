//! The runtime's use of the cgroups library: opening the container's manager, and finding the
//! host directories that a `type: cgroup` mount exposes inside the container.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxResources};

use crate::libcontainer::cgroups::{self, Manager};
use crate::libcontainer::error::{Error, Result};
use crate::libcontainer::rootfs::CgroupMount;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub fn manager(cgroups_path: &Path) -> Result<Box<dyn Manager>> {
    cgroups::manager(&cgroups_path.to_string_lossy(), Path::new(CGROUP_ROOT))
        .map_err(|e| Error::Invalid(format!("cgroup {}: {e}", cgroups_path.display())))
}

/// The device rules a container always gets after the spec's own (runc's `AllowedDevices`):
/// mknod of anything, the default device nodes, ptys and tun.
const DEFAULT_DEVICE_RULES: [(&str, Option<i64>, Option<i64>, &str); 11] = [
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", Some(1), Some(3), "rwm"),
    ("c", Some(1), Some(8), "rwm"),
    ("c", Some(1), Some(7), "rwm"),
    ("c", Some(5), Some(0), "rwm"),
    ("c", Some(1), Some(5), "rwm"),
    ("c", Some(1), Some(9), "rwm"),
    ("c", Some(136), None, "rwm"),
    ("c", Some(5), Some(2), "rwm"),
    ("c", Some(10), Some(200), "rwm"),
];

/// The resources to apply at create: the spec's, with device rules allowing `linux.devices` and
/// the default devices appended (a spec that denies all devices still gets /dev/null & co.).
pub fn effective_resources(
    r: Option<&LinuxResources>,
    devices: &[LinuxDevice],
) -> Result<LinuxResources> {
    let mut r = r.cloned().unwrap_or_default();
    let mut rules: Vec<LinuxDeviceCgroup> = r.devices().clone().unwrap_or_default();
    rules.extend(devices.iter().map(LinuxDeviceCgroup::from));
    for (typ, major, minor, access) in DEFAULT_DEVICE_RULES {
        let rule = serde_json::json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": access});
        rules.push(serde_json::from_value(rule).map_err(|e| Error::Invalid(e.to_string()))?);
    }
    r.set_devices(Some(rules));
    Ok(r)
}

/// `linux.cgroupsPath`, or `/crius/<id>` when unset. Relative paths are taken from the root of
/// each hierarchy (the cgroupfs driver's behaviour for a runtime not itself in a container).
pub fn cgroups_path(spec_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    match spec_path {
        Some(p) if !p.as_os_str().is_empty() => {
            let s = p.to_string_lossy();
            if s.contains(':') {
                return Err(Error::Invalid(format!(
                    "cgroupsPath {s:?} looks like a systemd slice: systemd cgroup driver not supported yet"
                )));
            }
            if p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(Error::Invalid(format!("cgroupsPath {s:?} contains ..")));
            }
            Ok(Path::new("/").join(p))
        }
        _ => Ok(PathBuf::from(format!("/crius/{id}"))),
    }
}

/// The hierarchies mounted on this host and the container's directory in each.
pub fn mount_source(cgroups_path: &Path) -> CgroupMount {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let rel = cgroups_path.strip_prefix("/").unwrap_or(cgroups_path);
    let mut v1 = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = pre.split(' ').nth(4).unwrap_or("");
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype == "cgroup2" && mountpoint == CGROUP_ROOT {
            return CgroupMount::V2(Path::new(mountpoint).join(rel));
        }
        if fstype == "cgroup" && mountpoint.starts_with(CGROUP_ROOT) {
            let Some(name) = Path::new(mountpoint).file_name() else {
                continue;
            };
            let dir = Path::new(mountpoint).join(rel);
            if dir.is_dir() {
                v1.push((name.to_string_lossy().to_string(), dir));
            }
        }
    }
    CgroupMount::V1(v1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_device_rules_follow_the_specs_own() {
        let deny: LinuxDeviceCgroup =
            serde_json::from_value(serde_json::json!({"allow": false, "access": "rwm"})).unwrap();
        let mut r = LinuxResources::default();
        r.set_devices(Some(vec![deny.clone()]));
        let out = effective_resources(Some(&r), &[]).unwrap();
        let rules = out.devices().clone().unwrap();
        assert_eq!(rules[0], deny);
        assert_eq!(rules.len(), 1 + DEFAULT_DEVICE_RULES.len());
        assert!(rules[1..].iter().all(|d| d.allow()));
    }

    #[test]
    fn cgroups_path_defaults_and_validation() {
        assert_eq!(
            cgroups_path(None, "c1").unwrap(),
            PathBuf::from("/crius/c1")
        );
        assert_eq!(
            cgroups_path(Some(Path::new("kubepods/pod1/c1")), "c1").unwrap(),
            PathBuf::from("/kubepods/pod1/c1")
        );
        let err = cgroups_path(Some(Path::new("system.slice:crio:abc")), "c1").unwrap_err();
        assert!(
            err.to_string()
                .contains("systemd cgroup driver not supported yet")
        );
        assert!(cgroups_path(Some(Path::new("/a/../b")), "c1").is_err());
    }
}
