//! The OCI bundle's `config.json` of a pod's process — its pause or a container — as the
//! runtime's `create` reads it.

use std::path::Path;

use crate::engine::PodError;

/// Writes `<bundle>/config.json`, with `oomScoreAdj` clamped to what this host lets the runtime
/// set (see [`restrict_oom_score_adj`]).
pub fn write_spec(bundle: &Path, mut spec: oci_spec::runtime::Spec) -> Result<(), PodError> {
    restrict_oom_score_adj(&mut spec);
    let path = bundle.join("config.json");
    let bytes =
        serde_json::to_vec(&spec).map_err(|e| PodError::internal("encoding the OCI spec", e))?;
    std::fs::write(&path, bytes)
        .map_err(|e| PodError::internal(format!("writing {}", path.display()), e))
}

/// Without CAP_SYS_RESOURCE no process may lower its oom_score_adj below its current value, and
/// runc then fails the whole create. As containerd's `restrict_oom_score_adj` does, a lower request
/// is raised to the daemon's own value (which the runtime and container inherit), logged once.
fn restrict_oom_score_adj(spec: &mut oci_spec::runtime::Spec) {
    static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(process) = spec.process_mut() else {
        return;
    };
    let Some(requested) = process.oom_score_adj() else {
        return;
    };
    if caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
    {
        return;
    }
    let Ok(own) = crate::libcontainer::oom_score::read(None) else {
        return;
    };
    if requested < own {
        process.set_oom_score_adj(Some(own));
        if !LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "oom_score_adj {requested} needs CAP_SYS_RESOURCE, which crius lacks: using {own} instead (logged once)"
            );
        }
    }
}
