//! `linux.timeOffsets`: clock offsets of a new time namespace. A new time namespace applies
//! only to children of the process that unshared it, and its offsets can only be written
//! (to that process's `/proc/self/timens_offsets`) before any process has entered it, so the
//! intermediate process writes them between its unshare and the fork of the init.

use std::collections::HashMap;

use oci_spec::runtime::{Linux, LinuxNamespaceType, LinuxTimeOffset};

#[derive(Debug, thiserror::Error)]
pub enum TimeNsError {
    #[error("linux.timeOffsets: unknown clock {0:?} (expected \"monotonic\" or \"boottime\")")]
    Clock(String),
    #[error("linux.timeOffsets: {0}.nanosecs {1} must be below 1000000000")]
    Nanosecs(String, u32),
    #[error("linux.timeOffsets needs a new time namespace (linux.namespaces has no \"time\")")]
    NoNamespace,
    #[error(
        "linux.timeOffsets cannot be applied to a joined time namespace (its offsets are fixed once a process is in it)"
    )]
    Joined,
    #[error("writing {path}: {source}")]
    Write {
        path: &'static str,
        source: std::io::Error,
    },
}

const OFFSETS: &str = "/proc/self/timens_offsets";

/// Offsets require a time namespace the runtime creates.
pub fn validate(linux: &Linux) -> Result<(), TimeNsError> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    let ns = linux.namespaces().iter().flatten();
    match ns.into_iter().find(|n| n.typ() == LinuxNamespaceType::Time) {
        None => return Err(TimeNsError::NoNamespace),
        Some(n) if n.path().as_ref().is_some_and(|p| !p.as_os_str().is_empty()) => {
            return Err(TimeNsError::Joined);
        }
        Some(_) => {}
    }
    offsets_text(offsets).map(|_| ())
}

/// The `timens_offsets` text: one `<clock> <secs> <nanosecs>` line per clock, sorted so the
/// result does not depend on map order.
pub fn offsets_text(offsets: &HashMap<String, LinuxTimeOffset>) -> Result<String, TimeNsError> {
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(TimeNsError::Clock(clock.clone()));
        }
        let ns = off.nanosecs().unwrap_or(0);
        if ns >= 1_000_000_000 {
            return Err(TimeNsError::Nanosecs(clock.clone(), ns));
        }
        out.push_str(&format!("{clock} {} {ns}\n", off.secs().unwrap_or(0)));
    }
    Ok(out)
}

/// Write the offsets for the time namespace this process just unshared (its children's).
pub fn write_offsets(offsets: &HashMap<String, LinuxTimeOffset>) -> Result<(), TimeNsError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let text = offsets_text(offsets)?;
    // After the uid change into a new user namespace this process is not dumpable, which makes
    // its /proc files owned by the host's root and unwritable to it; dumpable only for the write.
    let was = nix::sys::prctl::get_dumpable().unwrap_or(false);
    if !was {
        let _ = nix::sys::prctl::set_dumpable(true);
    }
    // One write: the kernel parses every line of a write and applies them together.
    let r = std::fs::write(OFFSETS, text).map_err(|source| TimeNsError::Write {
        path: OFFSETS,
        source,
    });
    if !was {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(v: serde_json::Value) -> Linux {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn offsets_render_sorted_with_defaults() {
        let l = linux(serde_json::json!({"timeOffsets": {
            "monotonic": {"secs": -5},
            "boottime": {"secs": 1000000, "nanosecs": 7}}}));
        let text = offsets_text(l.time_offsets().as_ref().unwrap()).unwrap();
        assert_eq!(text, "boottime 1000000 7\nmonotonic -5 0\n");
    }

    #[test]
    fn offsets_need_a_new_time_namespace_and_known_clocks() {
        let offs = serde_json::json!({"boottime": {"secs": 1}});
        let e = validate(&linux(serde_json::json!({"timeOffsets": offs}))).unwrap_err();
        assert!(matches!(e, TimeNsError::NoNamespace), "{e}");
        let e = validate(&linux(serde_json::json!({"timeOffsets": offs,
            "namespaces": [{"type": "time", "path": "/proc/1/ns/time"}]})))
        .unwrap_err();
        assert!(matches!(e, TimeNsError::Joined), "{e}");
        validate(&linux(
            serde_json::json!({"timeOffsets": offs, "namespaces": [{"type": "time"}]}),
        ))
        .unwrap();
        let e = validate(&linux(serde_json::json!({
            "timeOffsets": {"realtime": {"secs": 1}}, "namespaces": [{"type": "time"}]})))
        .unwrap_err();
        assert!(e.to_string().contains("realtime"), "{e}");
        let e = validate(&linux(serde_json::json!({
            "timeOffsets": {"boottime": {"nanosecs": 1000000000u32}},
            "namespaces": [{"type": "time"}]})))
        .unwrap_err();
        assert!(matches!(e, TimeNsError::Nanosecs(..)), "{e}");
        // A time namespace without offsets is fine, new or joined.
        validate(&linux(
            serde_json::json!({"namespaces": [{"type": "time"}]}),
        ))
        .unwrap();
    }
}
