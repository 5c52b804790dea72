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

/// A resource update for a container not launched yet: merged into its bundle's spec, which the
/// runtime's `create` then applies (as the runtime's `update` would have: what `update` leaves
/// unset keeps its value; the device rules stay).
pub fn update_spec_resources(
    bundle: &Path,
    update: &oci_spec::runtime::LinuxResources,
) -> Result<(), PodError> {
    let path = bundle.join("config.json");
    let mut spec = oci_spec::runtime::Spec::load(&path)
        .map_err(|e| PodError::internal(format!("reading {}", path.display()), e))?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources = linux.resources().clone().unwrap_or_default();
    if update.cpu().is_some() {
        resources.set_cpu(update.cpu().clone());
    }
    if update.memory().is_some() {
        resources.set_memory(*update.memory());
    }
    if update.pids().is_some() {
        resources.set_pids(*update.pids());
    }
    if update.hugepage_limits().is_some() {
        resources.set_hugepage_limits(update.hugepage_limits().clone());
    }
    if update.unified().is_some() {
        resources.set_unified(update.unified().clone());
    }
    if update.block_io().is_some() {
        resources.set_block_io(update.block_io().clone());
    }
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    write_spec(bundle, spec)
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, Spec,
    };

    use super::*;

    #[test]
    fn an_update_before_the_launch_lands_in_the_bundle_and_keeps_the_device_rules() {
        let dir = tempfile::tempdir().unwrap();
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        let before = LinuxResourcesBuilder::default()
            .devices(vec![deny_all.clone()])
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let mut spec = Spec::default();
        spec.set_linux(Some(
            LinuxBuilder::default().resources(before).build().unwrap(),
        ));
        write_spec(dir.path(), spec).unwrap();

        let update = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        update_spec_resources(dir.path(), &update).unwrap();

        let after = Spec::load(dir.path().join("config.json")).unwrap();
        let resources = after.linux().clone().unwrap().resources().clone().unwrap();
        assert_eq!(resources.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(resources.devices().clone().unwrap(), vec![deny_all]);
    }
}
