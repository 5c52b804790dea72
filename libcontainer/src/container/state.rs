//! The on-disk state of one container: `<root>/<id>/state.json`, plus the exec fifo beside it.
//! The status is not stored but derived from the pid, like runc: a live init that still has its
//! exec fifo is `created`, without it `running`; a dead (or reused) pid is `stopped`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// A container id as runc accepts it: `[A-Za-z0-9_+.-]+`, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn parse(s: &str) -> Result<ContainerId> {
        let ok = !s.is_empty()
            && s != "."
            && s != ".."
            && s.len() <= 1024
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+.-".contains(c));
        if ok {
            Ok(ContainerId(s.to_string()))
        } else {
            Err(Error::Invalid(format!("invalid container id {s:?}")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: ContainerId,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Start time of that pid (field 22 of /proc/<pid>/stat), to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroups path the container's cgroup lives at (relative to each hierarchy's root).
    pub cgroup_path: PathBuf,
    /// The systemd-form cgroupsPath (`slice:prefix:name`) when the cgroup is a systemd unit
    /// (`--systemd-cgroup` at create); later commands find the unit through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_cgroup: Option<String>,
    #[serde(default)]
    pub paused: bool,
    /// Hooks still to run (poststart at start, poststop at delete).
    #[serde(default)]
    pub hooks: Option<Hooks>,
}

/// The runtime-spec state document (what `crius oci state` prints and hooks read on stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

pub fn container_dir(root: &Path, id: &ContainerId) -> PathBuf {
    root.join(id.as_str())
}

impl State {
    pub fn load(root: &Path, id: &ContainerId) -> Result<State> {
        let path = container_dir(root, id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Invalid(format!("container {id} does not exist")));
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&data)
            .map_err(|e| Error::Invalid(format!("corrupt state {}: {e}", path.display())))
    }

    /// Write atomically (temp file + rename).
    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = container_dir(root, &self.id);
        let data = serde_json::to_vec(self).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&dir.join(STATE_FILE), &data)
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        container_dir(root, &self.id)
    }

    /// Whether the recorded init process is still alive (and not a zombie or a reused pid).
    pub fn alive(&self) -> bool {
        self.pid > 0
            && matches!(proc_stat(self.pid), Some((state, start)) if state != 'Z' && state != 'X' && start == self.pid_start)
    }

    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            Status::Stopped
        } else if self.paused {
            Status::Paused
        } else if self.dir(root).join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    pub fn spec_state(&self, status: Status) -> SpecState {
        SpecState {
            oci_version: "1.2.0".into(),
            id: self.id.to_string(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// (state letter, start time) from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // starttime is field 22 overall, i.e. index 19 after pid and comm.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Replaces `path` atomically. `Volatile`: the runtime's state and pid files live under its root
/// on tmpfs and end with the boot, as its containers do.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    crius_atomic_file::write(path, data, crius_atomic_file::Durability::Volatile)
        .io_ctx(|| format!("writing {}", path.display()))
}

/// RFC 3339 UTC timestamp with nanoseconds, without a date library.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_follow_runc_rules() {
        assert!(ContainerId::parse("abc-1_2+3.4").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_formats_utc() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn own_process_is_alive_and_running_or_created_by_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id() as i32;
        let st = State {
            id: ContainerId::parse("c1").unwrap(),
            pid: me,
            pid_start: proc_stat(me).unwrap().1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: rfc3339(SystemTime::now()),
            annotations: HashMap::new(),
            cgroup_path: "/x".into(),
            systemd_cgroup: None,
            paused: false,
            hooks: None,
        };
        fs::create_dir(st.dir(dir.path())).unwrap();
        st.save(dir.path()).unwrap();
        let back = State::load(dir.path(), &st.id).unwrap();
        assert_eq!(back.status(dir.path()), Status::Running);
        fs::write(back.dir(dir.path()).join(EXEC_FIFO), "").unwrap();
        assert_eq!(back.status(dir.path()), Status::Created);
        let dead = State {
            pid_start: 1,
            ..back
        };
        assert_eq!(dead.status(dir.path()), Status::Stopped);
        assert_eq!(dead.spec_state(Status::Stopped).pid, 0);
    }
}
