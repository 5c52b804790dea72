//! AppArmor profiles and SELinux process labels (`process.apparmorProfile`,
//! `process.selinuxLabel`, `linux.mountLabel`): applied where the host has the LSM, a clear
//! error where the spec asks for one the host does not have.
//!
//! Both are set by writing to the process's `/proc/self/attr` files; the kernel applies them
//! at the next execve, so the container process writes them just before it execs.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, Process};

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error(
        "process.apparmorProfile {0:?}: AppArmor is not enabled on this host (/sys/module/apparmor/parameters/enabled is not Y)"
    )]
    AppArmorDisabled(String),
    #[error(
        "{what} {label:?}: SELinux is not enabled on this host (no selinuxfs at /sys/fs/selinux)"
    )]
    SelinuxDisabled { what: &'static str, label: String },
    #[error(
        "linux.mountLabel {0:?}: SELinux mount labels are not supported yet (only process.selinuxLabel is applied)"
    )]
    MountLabel(String),
    #[error("{what}: writing {path}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the host offers, read under `root` (`/` normally; a fake tree in tests).
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Host {
        Host::at("/")
    }
}

impl Host {
    pub fn at(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// AppArmor is loaded and enabled (`Y` in the module parameter), as runc checks it.
    pub fn apparmor_enabled(&self) -> bool {
        std::fs::read_to_string(self.path("/sys/module/apparmor/parameters/enabled"))
            .is_ok_and(|s| s.trim_start().starts_with('Y'))
    }

    /// selinuxfs is mounted at /sys/fs/selinux (its `enforce` file exists whenever it is).
    pub fn selinux_enabled(&self) -> bool {
        self.path("/sys/fs/selinux/enforce").exists()
    }

    /// Refuse labels the host cannot apply, naming the label.
    pub fn check(&self, process: &Process, linux: Option<&Linux>) -> Result<(), LsmError> {
        if let Some(p) = apparmor_profile(process)
            && !self.apparmor_enabled()
        {
            return Err(LsmError::AppArmorDisabled(p.to_string()));
        }
        if let Some(l) = selinux_label(process)
            && !self.selinux_enabled()
        {
            return Err(LsmError::SelinuxDisabled {
                what: "process.selinuxLabel",
                label: l.to_string(),
            });
        }
        if let Some(l) = linux
            .and_then(|l| l.mount_label().as_deref())
            .filter(|l| !l.is_empty())
        {
            if !self.selinux_enabled() {
                return Err(LsmError::SelinuxDisabled {
                    what: "linux.mountLabel",
                    label: l.to_string(),
                });
            }
            return Err(LsmError::MountLabel(l.to_string()));
        }
        Ok(())
    }

    /// In the container process, just before execve: ask for the profile and label the
    /// next exec runs under. The host was checked by [`Host::check`] in the runtime; the
    /// container's /sys may not show it.
    pub fn apply(&self, process: &Process) -> Result<(), LsmError> {
        if let Some(p) = apparmor_profile(process) {
            let text = format!("exec {p}");
            // The AppArmor-specific file exists since Linux 5.8 (LSM stacking); before that
            // the shared one is AppArmor's.
            let own = self.path("/proc/self/attr/apparmor/exec");
            match write_attr(&own, &text, "process.apparmorProfile") {
                Err(LsmError::Write { source, .. }) if source.kind() == ErrorKind::NotFound => {
                    write_attr(
                        &self.path("/proc/self/attr/exec"),
                        &text,
                        "process.apparmorProfile",
                    )?
                }
                r => r?,
            }
        }
        if let Some(l) = selinux_label(process) {
            write_attr(
                &self.path("/proc/self/attr/exec"),
                l,
                "process.selinuxLabel",
            )?;
        }
        Ok(())
    }
}

fn apparmor_profile(p: &Process) -> Option<&str> {
    p.apparmor_profile().as_deref().filter(|s| !s.is_empty())
}

fn selinux_label(p: &Process) -> Option<&str> {
    p.selinux_label().as_deref().filter(|s| !s.is_empty())
}

fn write_attr(path: &Path, text: &str, what: &'static str) -> Result<(), LsmError> {
    // Opened without O_CREAT: the attr files exist whenever the LSM does.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| LsmError::Write {
            what,
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(v: serde_json::Value) -> Process {
        let mut base = serde_json::json!({"user": {"uid": 0, "gid": 0}, "args": ["x"], "cwd": "/"});
        if let (Some(o), Some(e)) = (base.as_object_mut(), v.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    /// A fake root with the given files.
    fn host(files: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let d = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let f = d.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        let h = Host::at(d.path());
        (d, h)
    }

    #[test]
    fn detection_reads_the_sysfs_files() {
        let (_d, h) = host(&[]);
        assert!(!h.apparmor_enabled() && !h.selinux_enabled());
        let (_d, h) = host(&[("sys/module/apparmor/parameters/enabled", "N\n")]);
        assert!(!h.apparmor_enabled());
        let (_d, h) = host(&[
            ("sys/module/apparmor/parameters/enabled", "Y\n"),
            ("sys/fs/selinux/enforce", "1"),
        ]);
        assert!(h.apparmor_enabled() && h.selinux_enabled());
    }

    #[test]
    fn labels_are_refused_by_name_where_the_lsm_is_absent() {
        let (_d, h) = host(&[]);
        h.check(&process(serde_json::json!({})), None).unwrap();
        h.check(&process(serde_json::json!({"apparmorProfile": ""})), None)
            .unwrap();
        let e = h
            .check(
                &process(serde_json::json!({"apparmorProfile": "crius-p"})),
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains("\"crius-p\""), "{e}");
        assert!(e.to_string().contains("AppArmor is not enabled"), "{e}");
        let e = h
            .check(
                &process(serde_json::json!({"selinuxLabel": "system_u:system_r:container_t:s0"})),
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains("SELinux is not enabled"), "{e}");
        let linux: Linux = serde_json::from_value(serde_json::json!({"mountLabel": "m"})).unwrap();
        let e = h
            .check(&process(serde_json::json!({})), Some(&linux))
            .unwrap_err();
        assert!(e.to_string().contains("linux.mountLabel \"m\""), "{e}");
    }

    #[test]
    fn present_lsms_accept_labels_and_apply_writes_the_exec_attr() {
        let (d, h) = host(&[
            ("sys/module/apparmor/parameters/enabled", "Y\n"),
            ("proc/self/attr/exec", ""),
        ]);
        let p = process(serde_json::json!({"apparmorProfile": "crius-p"}));
        h.check(&p, None).unwrap();
        // No attr/apparmor/exec in the fake tree: the shared file is used.
        h.apply(&p).unwrap();
        let got = std::fs::read_to_string(d.path().join("proc/self/attr/exec")).unwrap();
        assert_eq!(got, "exec crius-p");

        std::fs::create_dir_all(d.path().join("proc/self/attr/apparmor")).unwrap();
        std::fs::write(d.path().join("proc/self/attr/apparmor/exec"), "").unwrap();
        h.apply(&process(serde_json::json!({"apparmorProfile": "other"})))
            .unwrap();
        let got = std::fs::read_to_string(d.path().join("proc/self/attr/apparmor/exec")).unwrap();
        assert_eq!(got, "exec other");

        let (d, h) = host(&[("sys/fs/selinux/enforce", "1"), ("proc/self/attr/exec", "")]);
        let p = process(serde_json::json!({"selinuxLabel": "u:r:t:s0"}));
        h.check(&p, None).unwrap();
        h.apply(&p).unwrap();
        let got = std::fs::read_to_string(d.path().join("proc/self/attr/exec")).unwrap();
        assert_eq!(got, "u:r:t:s0");
        let linux: Linux = serde_json::from_value(serde_json::json!({"mountLabel": "m"})).unwrap();
        let e = h.check(&p, Some(&linux)).unwrap_err();
        assert!(matches!(e, LsmError::MountLabel(_)), "{e}");
    }
}
