//! The monitor's own cgroup (`--cgroup`, the daemon's `[runtime] monitor_cgroup`).
//!
//! A service manager stops a service by killing its cgroup (systemd's default
//! `KillMode=control-group`): a monitor left in the daemon's cgroup would die with a daemon
//! restart, and with it the container's stdio and exit status. So the monitor moves itself into
//! its own cgroup in the hierarchies a service manager tracks processes by — the unified (v2)
//! one, or on v1 hosts the `name=systemd` one and the hybrid `unified` one — as cri-o's
//! `conmon_cgroup` does. Resource controllers are left alone: monitors are tiny.
//!
//! The monitor does it itself, once the container is created and the daemon has its answer:
//! a cgroup move that names a process waits for the kernel's global threadgroup lock (an RCU
//! grace period, 5-15 ms), which then costs no request anything. On a v1 hierarchy the
//! (single-threaded) monitor moves its thread through `tasks`, which skips that lock.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// Where one move is written: a hierarchy's directory for the cgroup and the file to write
/// "0" (the writer itself) to.
fn targets(root: &Path, cgroup: &str) -> Vec<PathBuf> {
    let rel = cgroup.trim_start_matches('/');
    if root.join("cgroup.controllers").exists() {
        return vec![root.join(rel).join("cgroup.procs")];
    }
    [("systemd", "tasks"), ("unified", "cgroup.procs")]
        .iter()
        .filter(|(h, _)| root.join(h).join("cgroup.procs").exists())
        .map(|(h, file)| root.join(h).join(rel).join(file))
        .collect()
}

/// Moves the calling (single-threaded) process into `cgroup` in every tracking hierarchy,
/// making the cgroup where missing.
pub fn join(cgroup: &str) -> io::Result<()> {
    join_under(Path::new(ROOT), cgroup)
}

fn join_under(root: &Path, cgroup: &str) -> io::Result<()> {
    for file in targets(root, cgroup) {
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&file, "0")
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
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
            targets(root.path(), "/crius-monitors"),
            vec![root.path().join("crius-monitors/cgroup.procs")]
        );
    }

    #[test]
    fn v1_moves_the_thread_by_systemd_and_the_process_by_unified() {
        let root = tempfile::tempdir().unwrap();
        for h in ["systemd", "unified", "memory"] {
            fs::create_dir(root.path().join(h)).unwrap();
            fs::write(root.path().join(h).join("cgroup.procs"), "").unwrap();
        }
        assert_eq!(
            targets(root.path(), "/m"),
            vec![
                root.path().join("systemd/m/tasks"),
                root.path().join("unified/m/cgroup.procs")
            ]
        );
        // A fake tree: the directories are made and the writes land in the files.
        join_under(root.path(), "/crius/monitors").unwrap();
        for file in [
            "systemd/crius/monitors/tasks",
            "unified/crius/monitors/cgroup.procs",
        ] {
            assert_eq!(fs::read_to_string(root.path().join(file)).unwrap(), "0");
        }
        assert!(!root.path().join("memory/crius").exists());
    }
}
