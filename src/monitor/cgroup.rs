//! Moving container monitors out of the daemon's cgroup.
//!
//! A service manager stops a service by killing its cgroup (systemd's default
//! `KillMode=control-group`): monitors left in crius' cgroup would die with a daemon restart,
//! and with them the containers' stdio and exit status. So each container monitor is moved into
//! `[runtime] monitor_cgroup` in the hierarchy the service manager tracks processes by — the
//! unified (v2) hierarchy, or on v1 hosts the `name=systemd` one and the hybrid `unified` one —
//! as cri-o's `conmon_cgroup` does. Resource controllers are left alone: monitors are tiny.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The hierarchies (mount points) that track services.
fn tracking_hierarchies(root: &Path) -> Vec<PathBuf> {
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    ["systemd", "unified"]
        .iter()
        .map(|h| root.join(h))
        .filter(|h| h.join("cgroup.procs").exists())
        .collect()
}

/// Moves a just-launched container monitor into `cgroup` (`[runtime] monitor_cgroup`; empty:
/// left where it is). A failure costs only that protection, so it is logged, not returned.
pub fn adopt_monitor(cgroup: &str, monitor_pid: i32) {
    if cgroup.is_empty() {
        return;
    }
    if let Err(e) = adopt(cgroup, monitor_pid) {
        tracing::warn!(monitor_pid, "moving the monitor into cgroup {cgroup}: {e}");
    }
}

/// Moves `pid` into `cgroup` (an absolute cgroupfs path) in every tracking hierarchy.
pub fn adopt(cgroup: &str, pid: i32) -> io::Result<()> {
    adopt_under(Path::new(ROOT), cgroup, pid)
}

fn adopt_under(root: &Path, cgroup: &str, pid: i32) -> io::Result<()> {
    let rel = cgroup.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{cgroup:?} is not an absolute cgroup path"),
        ));
    }
    for hierarchy in tracking_hierarchies(root) {
        let dir = hierarchy.join(rel);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("cgroup.procs"), pid.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_root_is_the_only_tracking_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        assert_eq!(
            tracking_hierarchies(root.path()),
            vec![root.path().to_path_buf()]
        );
    }

    #[test]
    fn v1_tracks_by_systemd_and_unified() {
        let root = tempfile::tempdir().unwrap();
        for h in ["systemd", "unified", "memory"] {
            fs::create_dir(root.path().join(h)).unwrap();
            fs::write(root.path().join(h).join("cgroup.procs"), "").unwrap();
        }
        assert_eq!(
            tracking_hierarchies(root.path()),
            vec![root.path().join("systemd"), root.path().join("unified")]
        );
        // A fake tree: the write lands in the file.
        adopt_under(root.path(), "/crius/monitors", 42).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("systemd/crius/monitors/cgroup.procs")).unwrap(),
            "42"
        );
        assert!(adopt_under(root.path(), "/", 42).is_err());
        assert!(adopt_under(root.path(), "/a/../b", 42).is_err());
    }
}
