//! Apply OCI `process.rlimits` (setrlimit on the calling process).
//!
//! Call this in the container init before capabilities are dropped: raising a
//! hard limit needs CAP_SYS_RESOURCE. When the kernel refuses to raise a hard
//! limit (EPERM: no CAP_SYS_RESOURCE, e.g. a restricted or nested
//! environment) the request is clamped to the current hard limit and a
//! [`Warning`] is returned instead of failing — the containerd approach for
//! restricted environments. The caller logs the warnings once.

use std::fmt;
use std::str::FromStr;

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("unknown rlimit type {0:?}")]
    UnknownType(String),
    #[error("rlimit {0} specified more than once")]
    Duplicate(String),
    #[error("rlimit {name}: soft limit {soft} is above hard limit {hard}")]
    SoftAboveHard { name: String, soft: u64, hard: u64 },
    #[error("rlimit {name}: {op}: {source}")]
    Syscall {
        name: String,
        op: &'static str,
        #[source]
        source: Errno,
    },
}

/// A limit that could not be applied as requested and was clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// OCI name, e.g. "RLIMIT_NOFILE".
    pub name: String,
    /// Requested (soft, hard).
    pub requested: (u64, u64),
    /// Applied (soft, hard).
    pub applied: (u64, u64),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: requested soft={} hard={} above the current hard limit without CAP_SYS_RESOURCE; applied soft={} hard={}",
            self.name, self.requested.0, self.requested.1, self.applied.0, self.applied.1
        )
    }
}

/// Parse an OCI rlimit name ("RLIMIT_NOFILE").
pub fn parse_type(name: &str) -> Result<PosixRlimitType, RlimitError> {
    PosixRlimitType::from_str(name).map_err(|_| RlimitError::UnknownType(name.to_string()))
}

fn name_of(typ: PosixRlimitType) -> String {
    // oci-spec displays variants as "RLIMIT_NOFILE".
    typ.to_string()
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// setrlimit every entry; see the module docs for the clamping rule.
/// Everything is validated before anything is changed.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<Vec<Warning>, RlimitError> {
    let mut seen = Vec::with_capacity(rlimits.len());
    for rl in rlimits {
        let name = name_of(rl.typ());
        if seen.contains(&rl.typ()) {
            return Err(RlimitError::Duplicate(name));
        }
        if rl.soft() > rl.hard() {
            return Err(RlimitError::SoftAboveHard {
                name,
                soft: rl.soft(),
                hard: rl.hard(),
            });
        }
        seen.push(rl.typ());
    }

    let mut warnings = Vec::new();
    for rl in rlimits {
        let (typ, soft, hard) = (rl.typ(), rl.soft(), rl.hard());
        let res = resource(typ);
        let err = |op, source| RlimitError::Syscall {
            name: name_of(typ),
            op,
            source,
        };
        match setrlimit(res, soft, hard) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                let (_, cur_hard) = getrlimit(res).map_err(|e| err("getrlimit", e))?;
                if hard <= cur_hard {
                    // Not the "raise above hard" case (e.g. RLIMIT_NOFILE above
                    // fs.nr_open also gives EPERM): report it as an error.
                    return Err(err("setrlimit", Errno::EPERM));
                }
                let applied = (soft.min(cur_hard), cur_hard);
                setrlimit(res, applied.0, applied.1).map_err(|e| err("setrlimit (clamped)", e))?;
                warnings.push(Warning {
                    name: name_of(typ),
                    requested: (soft, hard),
                    applied,
                });
            }
            Err(e) => return Err(err("setrlimit", e)),
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ChildResult, fork_child};
    use super::*;

    fn rl(typ: &str, soft: u64, hard: u64) -> PosixRlimit {
        serde_json::from_value(serde_json::json!({"type": typ, "soft": soft, "hard": hard}))
            .expect("rlimit json")
    }

    fn has_cap_sys_resource() -> bool {
        caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap_or(false)
    }

    #[test]
    fn names_parse_and_unknown_is_error() {
        assert_eq!(
            parse_type("RLIMIT_NOFILE").expect("known"),
            PosixRlimitType::RlimitNofile
        );
        assert_eq!(name_of(PosixRlimitType::RlimitRttime), "RLIMIT_RTTIME");
        let e = parse_type("RLIMIT_BOGUS").expect_err("unknown");
        assert!(e.to_string().contains("RLIMIT_BOGUS"));
        // And serde rejects unknown names at spec-parse time.
        assert!(
            serde_json::from_value::<PosixRlimit>(
                serde_json::json!({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn invalid_specs_are_rejected_before_any_change() {
        let e = apply(&[rl("RLIMIT_CORE", 2, 1)]).expect_err("soft>hard");
        assert!(matches!(e, RlimitError::SoftAboveHard { .. }), "{e}");
        let e = apply(&[rl("RLIMIT_CORE", 0, 0), rl("RLIMIT_CORE", 0, 0)]).expect_err("dup");
        assert!(matches!(e, RlimitError::Duplicate(_)), "{e}");
    }

    #[test]
    fn lowering_limits_applies_them() {
        let res = fork_child(|| {
            let w = apply(&[rl("RLIMIT_NOFILE", 100, 200), rl("RLIMIT_CORE", 0, 0)])
                .map_err(|e| e.to_string())?;
            let (s, h) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
            let (cs, ch) = getrlimit(Resource::RLIMIT_CORE).map_err(|e| e.to_string())?;
            Ok(format!("{} {s} {h} {cs} {ch}", w.len()))
        });
        assert_eq!(res, ChildResult::Ok("0 100 200 0 0".into()));
    }

    #[test]
    fn raising_above_hard_is_clamped_with_warning() {
        if has_cap_sys_resource() {
            eprintln!("skipped: this host has CAP_SYS_RESOURCE, raising would succeed");
            return;
        }
        let res = fork_child(|| {
            setrlimit(Resource::RLIMIT_NOFILE, 50, 64).map_err(|e| e.to_string())?;
            let w = apply(&[rl("RLIMIT_NOFILE", 1000, 2000), rl("RLIMIT_CORE", 0, 0)])
                .map_err(|e| e.to_string())?;
            let (s, h) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
            Ok(format!("{w:?} {s} {h}"))
        });
        let want = Warning {
            name: "RLIMIT_NOFILE".into(),
            requested: (1000, 2000),
            applied: (64, 64),
        };
        assert_eq!(res, ChildResult::Ok(format!("{:?} 64 64", vec![want])));
    }
}
