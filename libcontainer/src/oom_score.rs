//! Apply OCI `process.oomScoreAdj` by writing /proc/<pid>/oom_score_adj.
//!
//! Lowering the value below what an unprivileged process may set needs
//! CAP_SYS_RESOURCE. Without it (restricted or nested environments) the value
//! is clamped to the current one and a [`Warning`] is returned, like
//! containerd's `restrict_oom_score_adj`. Values outside -1000..=1000 are an
//! error.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;

use nix::unistd::Pid;

pub const OOM_SCORE_ADJ_MIN: i32 = -1000;
pub const OOM_SCORE_ADJ_MAX: i32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum OomScoreError {
    #[error("oom_score_adj {0} out of range ({OOM_SCORE_ADJ_MIN}..={OOM_SCORE_ADJ_MAX})")]
    OutOfRange(i32),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
}

/// The requested value could not be set and the current one was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub requested: i32,
    pub applied: i32,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "oom_score_adj {} refused (lowering needs CAP_SYS_RESOURCE); kept {}",
            self.requested, self.applied
        )
    }
}

fn path_for(pid: Option<Pid>) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/oom_score_adj")),
        None => PathBuf::from("/proc/self/oom_score_adj"),
    }
}

/// Current oom_score_adj of `pid` (None: the calling process).
pub fn read(pid: Option<Pid>) -> Result<i32, OomScoreError> {
    let path = path_for(pid);
    let content = std::fs::read_to_string(&path).map_err(|source| OomScoreError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    content
        .trim()
        .parse()
        .map_err(|_| OomScoreError::Parse { path, content })
}

/// Sets the calling process's value for the process it is about to fork, while it is still the
/// host's root outside any user namespace. In a joined user namespace the container process is
/// not dumpable, so its /proc files belong to the host's root and its own write is refused;
/// forked children inherit the value instead. Warnings (clamping) are dropped: the runtime has
/// nowhere to report them.
pub fn preset(adj: Option<i32>) -> Result<(), OomScoreError> {
    match adj {
        Some(adj) => apply(None, adj).map(drop),
        None => Ok(()),
    }
}

/// Set oom_score_adj of `pid` (None: the calling process) to `adj`.
pub fn apply(pid: Option<Pid>, adj: i32) -> Result<Option<Warning>, OomScoreError> {
    if !(OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX).contains(&adj) {
        return Err(OomScoreError::OutOfRange(adj));
    }
    let path = path_for(pid);
    let io_err = |op, source| OomScoreError::Io {
        op,
        path: path.clone(),
        source,
    };
    // One write(2) of the whole value: procfs parses per write call.
    let result = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(adj.to_string().as_bytes()));
    match result {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            let current = read(pid)?;
            if adj < current {
                Ok(Some(Warning {
                    requested: adj,
                    applied: current,
                }))
            } else {
                Err(io_err("write", e))
            }
        }
        Err(e) => Err(io_err("write", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ChildResult, fork_child};
    use super::*;

    #[test]
    fn out_of_range_is_error() {
        assert!(matches!(
            apply(None, 1001),
            Err(OomScoreError::OutOfRange(1001))
        ));
        assert!(matches!(
            apply(None, -1001),
            Err(OomScoreError::OutOfRange(-1001))
        ));
    }

    #[test]
    fn raising_works_in_child() {
        let res = fork_child(|| {
            let w = apply(None, 500).map_err(|e| e.to_string())?;
            let now = read(None).map_err(|e| e.to_string())?;
            Ok(format!("{w:?} {now}"))
        });
        assert_eq!(res, ChildResult::Ok("None 500".into()));
    }

    #[test]
    fn negative_is_clamped_without_cap_sys_resource() {
        let privileged = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap_or(false);
        let res = fork_child(|| {
            let before = read(None).map_err(|e| e.to_string())?;
            // Raise first so the child has something to lower from.
            apply(None, before.max(100)).map_err(|e| e.to_string())?;
            let w = apply(None, -500).map_err(|e| e.to_string())?;
            let now = read(None).map_err(|e| e.to_string())?;
            Ok(format!("{w:?} {now}"))
        });
        let expected = if privileged {
            "None -500".to_string()
        } else {
            let cur = read(None).expect("read").max(100);
            format!(
                "{:?} {cur}",
                Some(Warning {
                    requested: -500,
                    applied: cur
                })
            )
        };
        assert_eq!(res, ChildResult::Ok(expected));
    }

    #[test]
    fn other_pid_is_addressed() {
        let me = nix::unistd::getpid();
        assert_eq!(
            path_for(Some(me)),
            PathBuf::from(format!("/proc/{me}/oom_score_adj"))
        );
        assert_eq!(read(Some(me)).expect("read"), read(None).expect("read"));
    }
}
