//! The cgroup side of the tests: which cgroup manager the daemons under test use
//! (`CRIUS_E2E_CGROUP_MANAGER`), how a test's cgroup parent is named for it, where that parent
//! lives in the cgroup file system, and the host's cgroup layout (v1/hybrid or pure v2).
//!
//! With `cgroupfs` (or the variable unset) a test's parent is a cgroupfs path such as
//! `/crius-e2e-<uid>`. With `systemd` it is a slice, `crius-e2e-<uid>.slice`, which systemd places
//! at `/crius.slice/crius-e2e.slice/crius-e2e-<uid>.slice` (every `-` in a slice name is a level)
//! and the container cgroups are scope units in it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cgroup file system's mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `$CRIUS_E2E_CGROUP_MANAGER`: the `[runtime] cgroup_manager` every test daemon gets; `None`
/// (unset or empty) leaves the key out of the configuration (the daemon's default).
pub fn cgroup_manager() -> Option<String> {
    std::env::var("CRIUS_E2E_CGROUP_MANAGER")
        .ok()
        .filter(|m| !m.is_empty())
}

/// Whether the daemons under test use the systemd cgroup driver.
pub fn systemd_driver() -> bool {
    cgroup_manager().as_deref() == Some("systemd")
}

/// Whether `root` is a cgroup2 mount (pure v2): it then has `cgroup.controllers` itself.
pub fn is_unified(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// Whether this host's `/sys/fs/cgroup` is pure cgroup v2.
pub fn host_is_unified() -> bool {
    is_unified(Path::new(CGROUP_ROOT))
}

/// A test's `[runtime] cgroup_parent`: `/<prefix>-<uid>` for cgroupfs, `<prefix>-<uid>.slice`
/// (`-` in `uid` turned into `_`, which is not a slice level) for systemd.
pub fn test_cgroup_parent(prefix: &str, uid: &str, systemd: bool) -> String {
    if systemd {
        format!("{prefix}-{}.slice", uid.replace('-', "_"))
    } else {
        format!("/{prefix}-{uid}")
    }
}

/// Where a systemd slice lives, relative to the cgroup root: `a-b.slice` →
/// `/a.slice/a-b.slice`, `-.slice` → `/`. Any other name is taken as a cgroupfs path.
pub fn slice_path(name: &str) -> String {
    let Some(stem) = name.strip_suffix(".slice") else {
        return name.to_string();
    };
    if stem == "-" || stem.is_empty() {
        return "/".to_string();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    path
}

/// The cgroupfs path of a cgroup parent: the slice's expansion for a `.slice` name, else the
/// path itself.
pub fn parent_path(cgroup_parent: &str) -> String {
    slice_path(cgroup_parent)
}

/// The cgroupfs path (relative to the cgroup root, leading `/`) of container `id` under
/// `cgroup_parent`: `<parent>/crius-<id>` with cgroupfs, `<slice path>/crius-<id>.scope` with
/// the systemd driver (the scope naming of runc's and cri-o's systemd drivers).
pub fn container_cgroup(cgroup_parent: &str, id: &str) -> String {
    if cgroup_parent.ends_with(".slice") {
        format!("{}/crius-{id}.scope", slice_path(cgroup_parent))
    } else {
        format!("{}/crius-{id}", cgroup_parent.trim_end_matches('/'))
    }
}

/// A cgroup file of `cgroup` (a cgroupfs path) in the layout of `root`: the v2 `v2_file`
/// directly under the unified root, else the v1 `v1_file` under the `v1_controller` hierarchy.
pub fn cgroup_file_in(
    root: &Path,
    cgroup: &str,
    v1_controller: &str,
    v1_file: &str,
    v2_file: &str,
) -> PathBuf {
    let rel = cgroup.trim_start_matches('/');
    if is_unified(root) {
        root.join(rel).join(v2_file)
    } else {
        root.join(v1_controller).join(rel).join(v1_file)
    }
}

/// [`cgroup_file_in`] on this host.
pub fn cgroup_file(cgroup: &str, v1_controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    cgroup_file_in(
        Path::new(CGROUP_ROOT),
        cgroup,
        v1_controller,
        v1_file,
        v2_file,
    )
}

/// systemd units that belong to `slice`: slices named below it (`<stem>-….slice`) and scopes
/// whose `Slice=` is it or one of those, loaded in any state. Empty when systemd is not running
/// (no `systemctl`, or it fails).
pub fn units_in_slice(slice: &str) -> Vec<String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Vec::new();
    };
    let Ok(out) = Command::new("systemctl")
        .args([
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "--type=slice,scope",
        ])
        .output()
    else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    let names = parse_unit_names(&String::from_utf8_lossy(&out.stdout));
    let child_slice = |n: &str| {
        n.strip_suffix(".slice")
            .and_then(|s| s.strip_prefix(stem))
            .is_some_and(|rest| rest.starts_with('-'))
    };
    let mut found: Vec<String> = names.iter().filter(|n| child_slice(n)).cloned().collect();
    let scopes: Vec<&String> = names.iter().filter(|n| n.ends_with(".scope")).collect();
    if !scopes.is_empty() {
        let mut show = Command::new("systemctl");
        show.args(["show", "-p", "Id", "-p", "Slice"]);
        show.args(&scopes);
        if let Ok(out) = show.output() {
            for (id, unit_slice) in parse_show_id_slice(&String::from_utf8_lossy(&out.stdout)) {
                if unit_slice == slice || child_slice(&unit_slice) {
                    found.push(id);
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The unit names (first column) of `systemctl list-units --plain --no-legend` output.
pub fn parse_unit_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        // A failed unit may be marked with a leading "●" even with --plain on old versions.
        .map(|n| n.trim_start_matches('●').to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// `(Id, Slice)` pairs of `systemctl show -p Id -p Slice u1 u2 …` output (blocks separated by
/// empty lines).
pub fn parse_show_id_slice(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut slice = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("Id=") {
                id = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("Slice=") {
                slice = v.to_string();
            }
        }
        if let Some(id) = id {
            out.push((id, slice));
        }
    }
    out
}

/// Stops the systemd unit `unit` (a test's own slice), which removes its cgroup. Errors are
/// ignored: the unit may never have been created.
pub fn stop_unit(unit: &str) {
    let _ = Command::new("systemctl")
        .args(["stop", "--no-block", unit])
        .output();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_level_by_level() {
        assert_eq!(slice_path("-.slice"), "/");
        assert_eq!(slice_path("system.slice"), "/system.slice");
        assert_eq!(
            slice_path("crius-e2e-12_ab_0.slice"),
            "/crius.slice/crius-e2e.slice/crius-e2e-12_ab_0.slice"
        );
        assert_eq!(slice_path("/crius-e2e-1"), "/crius-e2e-1");
    }

    #[test]
    fn parents_and_container_cgroups_per_driver() {
        assert_eq!(
            test_cgroup_parent("crius-e2e", "1-2a-0", false),
            "/crius-e2e-1-2a-0"
        );
        let slice = test_cgroup_parent("crius-e2e", "1-2a-0", true);
        assert_eq!(slice, "crius-e2e-1_2a_0.slice");
        assert_eq!(
            container_cgroup(&slice, "abc"),
            "/crius.slice/crius-e2e.slice/crius-e2e-1_2a_0.slice/crius-abc.scope"
        );
        assert_eq!(
            container_cgroup("/crius-e2e-1/", "abc"),
            "/crius-e2e-1/crius-abc"
        );
        assert_eq!(parent_path("/crius-e2e-1"), "/crius-e2e-1");
    }

    #[test]
    fn cgroup_files_follow_the_layout() {
        let v1 = tempfile::tempdir().unwrap();
        assert_eq!(
            cgroup_file_in(
                v1.path(),
                "/p/c",
                "memory",
                "memory.limit_in_bytes",
                "memory.max"
            ),
            v1.path().join("memory/p/c/memory.limit_in_bytes")
        );
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "memory pids\n").unwrap();
        assert!(is_unified(v2.path()));
        assert_eq!(
            cgroup_file_in(
                v2.path(),
                "/p/c",
                "memory",
                "memory.limit_in_bytes",
                "memory.max"
            ),
            v2.path().join("p/c/memory.max")
        );
    }

    #[test]
    fn systemctl_output_parses() {
        let list = "crius-e2e-1_a_0.slice loaded active active Slice /crius/e2e\n\
                    crius-abc.scope loaded active running libcontainer container abc\n\
                    ●crius-dead.scope loaded failed failed dead\n";
        assert_eq!(
            parse_unit_names(list),
            [
                "crius-e2e-1_a_0.slice",
                "crius-abc.scope",
                "crius-dead.scope"
            ]
        );
        let show = "Slice=crius-e2e-1_a_0.slice\nId=crius-abc.scope\n\n\
                    Slice=system.slice\nId=cron.scope\n";
        assert_eq!(
            parse_show_id_slice(show),
            [
                (
                    "crius-abc.scope".to_string(),
                    "crius-e2e-1_a_0.slice".to_string()
                ),
                ("cron.scope".to_string(), "system.slice".to_string())
            ]
        );
    }
}
