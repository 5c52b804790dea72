//! The runtime's use of the cgroups library: resolving the container's cgroupsPath for the
//! chosen driver, opening its manager (at create, or later from the saved state), and finding
//! the host directories that a `type: cgroup` mount exposes inside the container.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxResources};

use super::state::State;
use crate::cgroups::{self, Driver, Manager, systemd};
use crate::error::{Error, Result};
use crate::rootfs::CgroupMount;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A container's cgroup: the driver, the path the cgroups library takes for it, and its
/// directory relative to each hierarchy's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub driver: Driver,
    /// An absolute path (cgroupfs) or `"slice:prefix:name"` (systemd).
    pub path: String,
    /// `/crius/<id>`, or the unit's cgroup (`/system.slice/crius-<id>.scope`).
    pub fs_path: PathBuf,
}

impl ContainerCgroup {
    /// The cgroup a container created earlier recorded in its state (no flag needed later).
    pub fn of(st: &State) -> ContainerCgroup {
        match &st.systemd_cgroup {
            Some(p) => ContainerCgroup {
                driver: Driver::Systemd,
                path: p.clone(),
                fs_path: st.cgroup_path.clone(),
            },
            None => ContainerCgroup {
                driver: Driver::Cgroupfs,
                path: st.cgroup_path.to_string_lossy().into_owned(),
                fs_path: st.cgroup_path.clone(),
            },
        }
    }

    pub fn manager(&self) -> Result<Box<dyn Manager>> {
        cgroups::manager_with(&self.path, Path::new(CGROUP_ROOT), self.driver)
            .map_err(|e| Error::Invalid(format!("cgroup {}: {e}", self.path)))
    }
}

/// The manager of an existing container's cgroup.
pub fn manager(st: &State) -> Result<Box<dyn Manager>> {
    ContainerCgroup::of(st).manager()
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

/// The container's cgroup from `linux.cgroupsPath` and the driver.
/// - cgroupfs: the path, or `/crius/<id>` when unset. Relative paths are taken from the root of
///   each hierarchy (the cgroupfs driver's behaviour for a runtime not itself in a container).
/// - systemd: `"slice:prefix:name"`, or `system.slice:crius:<id>` when unset (runc defaults to
///   `system.slice:runc:<id>`).
pub fn cgroups_path(spec_path: Option<&Path>, id: &str, driver: Driver) -> Result<ContainerCgroup> {
    let given = spec_path
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_string_lossy().into_owned());
    let path = match (driver, given) {
        (Driver::Systemd, None) => format!(
            "{}:{}:{id}",
            systemd::DEFAULT_SLICE,
            systemd::DEFAULT_PREFIX
        ),
        (Driver::Systemd, Some(s)) => {
            if !systemd::is_systemd_form(&s) {
                return Err(Error::Invalid(format!(
                    "cgroupsPath {s:?}: the systemd cgroup driver takes \"slice:prefix:name\""
                )));
            }
            s
        }
        (Driver::Cgroupfs, None) => format!("/crius/{id}"),
        (Driver::Cgroupfs, Some(s)) => {
            if systemd::is_systemd_form(&s) || s.contains(':') {
                return Err(Error::Invalid(format!(
                    "cgroupsPath {s:?} looks like a systemd slice: use --systemd-cgroup"
                )));
            }
            let p = Path::new(&s);
            if p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(Error::Invalid(format!("cgroupsPath {s:?} contains ..")));
            }
            Path::new("/").join(p).to_string_lossy().into_owned()
        }
    };
    let fs_path =
        cgroups::fs_path(&path, driver).map_err(|e| Error::Invalid(format!("cgroupsPath: {e}")))?;
    Ok(ContainerCgroup {
        driver,
        path,
        fs_path: PathBuf::from(fs_path),
    })
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

    fn fs(p: Option<&str>, driver: Driver) -> Result<PathBuf> {
        cgroups_path(p.map(Path::new), "c1", driver).map(|c| c.fs_path)
    }

    #[test]
    fn cgroups_path_defaults_and_validation() {
        let fsd = Driver::Cgroupfs;
        assert_eq!(fs(None, fsd).unwrap(), PathBuf::from("/crius/c1"));
        assert_eq!(fs(Some(""), fsd).unwrap(), PathBuf::from("/crius/c1"));
        assert_eq!(
            fs(Some("kubepods/pod1/c1"), fsd).unwrap(),
            PathBuf::from("/kubepods/pod1/c1")
        );
        let err = fs(Some("system.slice:crio:abc"), fsd).unwrap_err();
        assert!(err.to_string().contains("use --systemd-cgroup"), "{err}");
        assert!(fs(Some("/a/../b"), fsd).is_err());
    }

    #[test]
    fn systemd_cgroups_paths() {
        let sd = Driver::Systemd;
        let c = cgroups_path(None, "c1", sd).unwrap();
        assert_eq!(c.path, "system.slice:crius:c1");
        assert_eq!(c.fs_path, PathBuf::from("/system.slice/crius-c1.scope"));
        assert_eq!(
            fs(Some("kubepods-burstable-podXYZ.slice:crius:ctr1"), sd).unwrap(),
            PathBuf::from(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podXYZ.slice/crius-ctr1.scope"
            )
        );
        let err = fs(Some("/kubepods/pod1/c1"), sd).unwrap_err();
        assert!(err.to_string().contains("slice:prefix:name"), "{err}");
        assert!(fs(Some("bad--slice.slice:crius:c1"), sd).is_err());
    }

    #[test]
    fn state_remembers_the_driver() {
        let mut st: State = serde_json::from_value(serde_json::json!({
            "id": "c1", "pid": 1, "pid_start": 0, "bundle": "/b", "rootfs": "/r",
            "created": "x", "cgroup_path": "/crius/c1"
        }))
        .unwrap();
        let c = ContainerCgroup::of(&st);
        assert_eq!((c.driver, c.path.as_str()), (Driver::Cgroupfs, "/crius/c1"));
        st.systemd_cgroup = Some("system.slice:crius:c1".into());
        st.cgroup_path = "/system.slice/crius-c1.scope".into();
        let c = ContainerCgroup::of(&st);
        assert_eq!(c.driver, Driver::Systemd);
        assert_eq!(c.path, "system.slice:crius:c1");
        assert_eq!(c.fs_path, PathBuf::from("/system.slice/crius-c1.scope"));
    }
}
