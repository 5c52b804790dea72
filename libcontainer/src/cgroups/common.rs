//! Small file helpers shared by the v1 and v2 managers. cgroupfs files are
//! always opened without O_CREAT: a missing file means a missing controller
//! or an unsupported knob, and that must surface as an error naming it.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Component, Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::unistd::Pid;

use super::CgroupError;

/// Checks `cgroups_path` and returns it relative to a hierarchy root.
pub(crate) fn validate_cgroups_path(cgroups_path: &str) -> Result<PathBuf, CgroupError> {
    if !cgroups_path.starts_with('/') {
        // runc/containerd encode the systemd driver as "slice:prefix:name".
        if cgroups_path.split(':').count() == 3 {
            return Err(CgroupError::NeedsSystemdDriver(cgroups_path.to_string()));
        }
        return Err(CgroupError::RelativePath(cgroups_path.to_string()));
    }
    let mut rel = PathBuf::new();
    for comp in Path::new(cgroups_path).components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(c) => rel.push(c),
            // ".." could escape the hierarchy root and hit someone else's cgroup.
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::InvalidPath {
                    path: cgroups_path.to_string(),
                    reason: "\"..\" is not allowed",
                });
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(CgroupError::InvalidPath {
            path: cgroups_path.to_string(),
            reason: "the root cgroup cannot be managed as a container cgroup",
        });
    }
    Ok(rel)
}

pub(crate) fn open_write(path: &Path, append: bool) -> io::Result<fs::File> {
    // O_TRUNC is ignored by kernfs but keeps fake trees (plain files) exact.
    OpenOptions::new()
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
}

/// Writes `value` to `dir/file` in one write(2), as the kernel expects.
pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    tracing::debug!(path = %path.display(), value, "cgroup write");
    #[cfg(test)]
    super::testutil::record_write(&path, value);
    open_write(&path, false)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path,
            value: value.to_string(),
            source,
        })
}

/// Writes one entry to a "command" file that the kernel interprets per write
/// (devices.allow, io.max, blkio throttles...). Appending with a newline is
/// equivalent for the kernel and keeps every entry visible in a fake tree.
pub(crate) fn write_entry(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    tracing::debug!(path = %path.display(), value, "cgroup write entry");
    #[cfg(test)]
    super::testutil::record_write(&path, value);
    let line = format!("{value}\n");
    open_write(&path, true)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path,
            value: value.to_string(),
            source,
        })
}

pub(crate) fn read_file(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Like [`read_file`] but a missing file is `None` (optional stats).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Parses a single-number file; "max" (v2 unlimited) becomes `None`.
pub(crate) fn parse_u64_or_max(
    dir: &Path,
    file: &str,
    content: &str,
) -> Result<Option<u64>, CgroupError> {
    let t = content.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse::<u64>().map(Some).map_err(|_| CgroupError::Parse {
        path: dir.join(file),
        content: t.to_string(),
    })
}

/// Reads an optional single-number file.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_optional(dir, file)? {
        Some(c) => parse_u64_or_max(dir, file, &c),
        None => Ok(None),
    }
}

/// Parses "key value" files such as memory.stat and cpu.stat.
pub(crate) fn parse_flat_keyed(content: &str) -> HashMap<String, u64> {
    content
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Reads `cgroup.procs` of `dir` and every descendant (nested cgroups made
/// inside a container still belong to it).
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<Pid>, CgroupError> {
    let mut out = Vec::new();
    collect_pids(dir, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn collect_pids(dir: &Path, out: &mut Vec<Pid>) -> Result<(), CgroupError> {
    let content = read_file(dir, "cgroup.procs")?;
    for l in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = l.parse::<i32>().map_err(|_| CgroupError::Parse {
            path: dir.join("cgroup.procs"),
            content: l.to_string(),
        })?;
        out.push(Pid::from_raw(pid));
    }
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let rd = fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            v.push(e.path());
        }
    }
    Ok(v)
}

/// Creates `root/rel` component by component; a directory that exists is
/// fine (another creator may have made it a moment ago). What a new directory
/// needs before use (v1 cpuset's cpus and mems) is the caller's, for every
/// directory of the path: one made here or by another creator alike.
pub(crate) fn create_dirs(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match fs::create_dir(&cur) {
            Ok(()) => {
                #[cfg(test)]
                super::testutil::simulate_mkdir(&cur);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::CreateDir { path: cur, source });
            }
        }
    }
    Ok(())
}

const RMDIR_ATTEMPTS: u32 = 14;
/// The first wait after an EBUSY, doubled each time up to [`RMDIR_MAX_DELAY`] (~1.3 s in all).
/// Short: the usual cause is a container's other processes still exiting after its init (a
/// pid namespace's members are killed with it), which takes well under a millisecond — a
/// first wait of 10 ms made most RemoveContainer calls of such containers 10 ms slower.
const RMDIR_FIRST_DELAY: Duration = Duration::from_millis(1);
const RMDIR_MAX_DELAY: Duration = Duration::from_millis(200);

/// Removes `dir` and its descendants, deepest first. A cgroup with exiting
/// tasks answers EBUSY for a short while, so each rmdir is retried briefly.
/// An already missing directory is fine (destroy must be idempotent).
pub(crate) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let children = match subdirs(dir) {
        Ok(c) => c,
        Err(CgroupError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for c in children {
        remove_tree(&c)?;
    }
    let mut delay = RMDIR_FIRST_DELAY;
    for attempt in 1..=RMDIR_ATTEMPTS {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && attempt < RMDIR_ATTEMPTS => {
                thread::sleep(delay);
                delay = (delay * 2).min(RMDIR_MAX_DELAY);
            }
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// pids.max value: the spec's limit is required, so <= 0 can only mean
/// "no limit" (writing 0 would forbid even the init process).
pub(crate) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

/// Polls `check` until it returns true or ~`total` elapses.
pub(crate) fn wait_until(
    total: Duration,
    mut check: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    loop {
        if check()? {
            return Ok(true);
        }
        if waited >= total {
            return Ok(false);
        }
        thread::sleep(step);
        waited += step;
    }
}

/// Whether `b` asks for a weight, per-device weights or any throttle: what both the v1 blkio and
/// the v2 io controller act on.
pub(crate) fn block_io_requested(b: &oci_spec::runtime::LinuxBlockIo) -> bool {
    let listed = |v: Option<usize>| v.is_some_and(|n| n > 0);
    b.weight().is_some()
        || listed(b.weight_device().as_ref().map(Vec::len))
        || listed(b.throttle_read_bps_device().as_ref().map(Vec::len))
        || listed(b.throttle_write_bps_device().as_ref().map(Vec::len))
        || listed(b.throttle_read_iops_device().as_ref().map(Vec::len))
        || listed(b.throttle_write_iops_device().as_ref().map(Vec::len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_validation() {
        assert_eq!(
            validate_cgroups_path("/crius/pod1/ctr1").unwrap(),
            PathBuf::from("crius/pod1/ctr1")
        );
        assert!(matches!(
            validate_cgroups_path("crius/pod1"),
            Err(CgroupError::RelativePath(_))
        ));
        assert!(matches!(
            validate_cgroups_path("system.slice:crius:abc"),
            Err(CgroupError::NeedsSystemdDriver(_))
        ));
        let e = validate_cgroups_path("kubepods.slice:crio:x").unwrap_err();
        assert!(e.to_string().contains("--systemd-cgroup"), "{e}");
        assert!(matches!(
            validate_cgroups_path("/crius/../etc"),
            Err(CgroupError::InvalidPath { .. })
        ));
        assert!(matches!(
            validate_cgroups_path("/"),
            Err(CgroupError::InvalidPath { .. })
        ));
    }

    #[test]
    fn flat_keyed() {
        let m = parse_flat_keyed("usage_usec 10\nuser_usec 4\nbogus\n");
        assert_eq!(m.get("usage_usec"), Some(&10));
        assert_eq!(m.len(), 2);
    }
}
