//! Apply OCI `process.capabilities` to the container init before execve.
//!
//! Call order in the container init (same as runc's finalizeNamespace):
//! 1. [`set_keep_caps`]`(true)` — so setuid away from 0 keeps the permitted
//!    set (the kernel clears it otherwise);
//! 2. `user::apply` (setgroups → setgid → setuid → umask);
//! 3. [`set_keep_caps`]`(false)`;
//! 4. [`apply`] — bounding, then effective/inheritable/permitted, then ambient
//!    ([`prepare`] + [`Plan::apply`] when the reads should happen earlier).
//!
//! [`apply`] first raises effective to the current permitted set: after a
//! setuid with keepcaps, effective is empty and dropping from the bounding set
//! needs CAP_SETPCAP in effective. It also works when called before any uid
//! change.
//!
//! A missing set (`None`) means the empty set, as in runc: a spec without
//! `bounding` drops every capability from the bounding set.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapabilitiesError {
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("capabilities: {op}: {reason}")]
    Syscall { op: String, reason: String },
}

fn sys_err(op: impl Into<String>, e: caps::errors::CapsError) -> CapabilitiesError {
    CapabilitiesError::Syscall {
        op: op.into(),
        reason: e.to_string(),
    }
}

/// Parse an OCI capability name ("CAP_SYS_ADMIN"; the "CAP_" prefix is
/// optional, case-insensitive).
pub fn parse_capability(name: &str) -> Result<Capability, CapabilitiesError> {
    Capability::from_str(&caps::to_canonical(name))
        .map_err(|_| CapabilitiesError::UnknownCapability(name.to_string()))
}

fn convert(
    set: Option<&oci_spec::runtime::Capabilities>,
) -> Result<CapsHashSet, CapabilitiesError> {
    set.into_iter()
        .flatten()
        // oci-spec displays variants as SCREAMING_SNAKE_CASE without "CAP_".
        .map(|c| parse_capability(&c.to_string()))
        .collect()
}

/// Capabilities of the running kernel (cap_last_cap), falling back to what
/// the bounding set can report when /proc is not usable.
fn kernel_supported() -> CapsHashSet {
    caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported())
}

/// All capabilities known to this runtime and supported by the kernel, as
/// OCI names sorted by number — the set for a privileged container.
pub fn all_known() -> Vec<String> {
    let mut all: Vec<Capability> = kernel_supported().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(|c| c.to_string()).collect()
}

/// prctl(PR_SET_KEEPCAPS): keep the permitted set across setuid from 0.
pub fn set_keep_caps(keep: bool) -> Result<(), CapabilitiesError> {
    caps::securebits::set_keepcaps(keep).map_err(|e| sys_err("PR_SET_KEEPCAPS", e))
}

/// Apply all five capability sets to the calling thread (the container init
/// is single-threaded, so that is the whole process).
pub fn apply(spec: &LinuxCapabilities) -> Result<(), CapabilitiesError> {
    prepare(spec)?.apply()
}

/// The sets to apply, resolved against the kernel, and the capabilities the
/// bounding set still holds that must go. Computed ahead of [`Plan::apply`]
/// (the init does it before it waits for `start`), so that what runs after
/// `start` is only the syscalls that change credentials.
#[derive(Debug, Clone)]
pub struct Plan {
    effective: CapsHashSet,
    inheritable: CapsHashSet,
    permitted: CapsHashSet,
    ambient: CapsHashSet,
    /// In the bounding set now but not in the spec's.
    bounding_drop: Vec<Capability>,
}

/// Resolve `spec` into a [`Plan`]: reads cap_last_cap and the current bounding
/// set, changes nothing.
pub fn prepare(spec: &LinuxCapabilities) -> Result<Plan, CapabilitiesError> {
    let supported = kernel_supported();
    // Known to us but not to this kernel: runc ignores those with a warning.
    let keep_supported = |set: CapsHashSet, which: &str| -> CapsHashSet {
        let (ok, unsupported): (CapsHashSet, CapsHashSet) =
            set.into_iter().partition(|c| supported.contains(c));
        if !unsupported.is_empty() {
            tracing::warn!(
                set = which,
                ?unsupported,
                "capabilities not supported by the kernel ignored"
            );
        }
        ok
    };
    let bounding = keep_supported(convert(spec.bounding().as_ref())?, "bounding");
    let mut bounding_drop = Vec::new();
    for cap in supported.iter().filter(|c| !bounding.contains(c)) {
        if caps::has_cap(None, CapSet::Bounding, *cap).map_err(|e| sys_err("PR_CAPBSET_READ", e))? {
            bounding_drop.push(*cap);
        }
    }
    Ok(Plan {
        effective: keep_supported(convert(spec.effective().as_ref())?, "effective"),
        inheritable: keep_supported(convert(spec.inheritable().as_ref())?, "inheritable"),
        permitted: keep_supported(convert(spec.permitted().as_ref())?, "permitted"),
        ambient: keep_supported(convert(spec.ambient().as_ref())?, "ambient"),
        bounding_drop,
    })
}

impl Plan {
    /// Apply the sets. The bounding set must not have changed since [`prepare`].
    pub fn apply(&self) -> Result<(), CapabilitiesError> {
        // Effective := permitted, so CAP_SETPCAP is usable for the bounding drop.
        let current_permitted =
            caps::read(None, CapSet::Permitted).map_err(|e| sys_err("capget permitted", e))?;
        caps::set(None, CapSet::Effective, &current_permitted)
            .map_err(|e| sys_err("raise effective to permitted", e))?;

        for cap in &self.bounding_drop {
            caps::drop(None, CapSet::Bounding, *cap)
                .map_err(|e| sys_err(format!("drop {cap} from bounding set"), e))?;
        }

        // Separate capset calls; the order keeps every intermediate state valid:
        // effective ⊆ old permitted, inheritable ⊆ old inheritable ∪ old
        // permitted, then permitted shrinks (effective must stay ⊆ permitted).
        let (effective, inheritable, permitted) =
            (&self.effective, &self.inheritable, &self.permitted);
        caps::set(None, CapSet::Effective, effective)
            .map_err(|e| sys_err(format!("set effective {}", names(effective)), e))?;
        caps::set(None, CapSet::Inheritable, inheritable)
            .map_err(|e| sys_err(format!("set inheritable {}", names(inheritable)), e))?;
        caps::set(None, CapSet::Permitted, permitted)
            .map_err(|e| sys_err(format!("set permitted {}", names(permitted)), e))?;

        // Ambient caps must be in both permitted and inheritable; start clean so
        // nothing leaks from the runtime's own ambient set.
        caps::clear(None, CapSet::Ambient).map_err(|e| sys_err("clear ambient", e))?;
        for cap in &self.ambient {
            caps::raise(None, CapSet::Ambient, *cap).map_err(|e| {
                sys_err(
                    format!("raise {cap} in ambient set (must be in permitted and inheritable)"),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

fn names(set: &HashSet<Capability>) -> String {
    let mut v: Vec<_> = set.iter().collect();
    v.sort_by_key(|c| c.index());
    format!("{v:?}")
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{ChildResult, fork_child, require_root};
    use super::*;

    fn spec(json: &str) -> LinuxCapabilities {
        serde_json::from_str(json).expect("caps json")
    }

    fn mask(caps: &[Capability]) -> u64 {
        caps.iter().fold(0, |m, c| m | c.bitmask())
    }

    /// CapInh/CapPrm/CapEff/CapBnd/CapAmb of the calling thread.
    fn status_caps() -> Result<String, String> {
        let status =
            std::fs::read_to_string("/proc/thread-self/status").map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            let line = status
                .lines()
                .find(|l| l.starts_with(key))
                .ok_or(format!("{key} missing"))?;
            let hex = line.split_whitespace().nth(1).ok_or("bad line")?;
            let v = u64::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
            out.push(format!("{key}={v:x}"));
        }
        Ok(out.join(" "))
    }

    #[test]
    fn every_oci_capability_maps() {
        for c in caps::all() {
            let oci: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(c.to_string()))
                    .expect("oci knows the name");
            assert_eq!(parse_capability(&oci.to_string()).expect("maps"), c);
        }
        assert_eq!(
            parse_capability("net_raw").expect("short name"),
            Capability::CAP_NET_RAW
        );
        let e = parse_capability("CAP_NOT_A_THING").expect_err("unknown");
        assert!(e.to_string().contains("CAP_NOT_A_THING"), "{e}");
    }

    #[test]
    fn all_known_lists_kernel_caps() {
        let all = all_known();
        assert!(all.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(all.first().map(String::as_str), Some("CAP_CHOWN"));
    }

    #[test]
    fn reduced_set_applied_as_root() {
        if !require_root("reduced_set_applied_as_root") {
            return;
        }
        let s = spec(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE","CAP_SETPCAP"],
                "effective":["CAP_CHOWN","CAP_KILL"],
                "inheritable":["CAP_KILL","CAP_NET_BIND_SERVICE"],
                "permitted":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],
                "ambient":["CAP_NET_BIND_SERVICE"]}"#,
        );
        let res = fork_child(move || {
            apply(&s).map_err(|e| e.to_string())?;
            status_caps()
        });
        use Capability::*;
        let want = format!(
            "CapInh={:x} CapPrm={:x} CapEff={:x} CapBnd={:x} CapAmb={:x}",
            mask(&[CAP_KILL, CAP_NET_BIND_SERVICE]),
            mask(&[CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE]),
            mask(&[CAP_CHOWN, CAP_KILL]),
            mask(&[CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_SETPCAP]),
            mask(&[CAP_NET_BIND_SERVICE]),
        );
        assert_eq!(res, ChildResult::Ok(want));
    }

    #[test]
    fn keepcaps_then_setuid_then_apply() {
        if !require_root("keepcaps_then_setuid_then_apply") {
            return;
        }
        // The documented order for a non-root container user.
        let s = spec(
            r#"{"bounding":["CAP_KILL","CAP_NET_BIND_SERVICE"],
                "effective":["CAP_KILL","CAP_NET_BIND_SERVICE"],
                "inheritable":["CAP_NET_BIND_SERVICE"],
                "permitted":["CAP_KILL","CAP_NET_BIND_SERVICE"],
                "ambient":["CAP_NET_BIND_SERVICE"]}"#,
        );
        let res = fork_child(move || {
            set_keep_caps(true).map_err(|e| e.to_string())?;
            let id = nix::unistd::Uid::from_raw(1000);
            nix::unistd::setresuid(id, id, id).map_err(|e| e.to_string())?;
            set_keep_caps(false).map_err(|e| e.to_string())?;
            apply(&s).map_err(|e| e.to_string())?;
            status_caps()
        });
        use Capability::*;
        let both = mask(&[CAP_KILL, CAP_NET_BIND_SERVICE]);
        let nbs = mask(&[CAP_NET_BIND_SERVICE]);
        let want = format!(
            "CapInh={nbs:x} CapPrm={both:x} CapEff={both:x} CapBnd={both:x} CapAmb={nbs:x}"
        );
        assert_eq!(res, ChildResult::Ok(want));
    }

    #[test]
    fn ambient_outside_inheritable_is_an_error() {
        if !require_root("ambient_outside_inheritable_is_an_error") {
            return;
        }
        let s = spec(
            r#"{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"],
                "ambient":["CAP_KILL"]}"#,
        );
        let res = fork_child(move || apply(&s).map(|_| String::new()).map_err(|e| e.to_string()));
        match res {
            ChildResult::Err(e) => assert!(e.contains("ambient"), "{e}"),
            other => panic!("expected error, got {other:?}"),
        }
    }
}
