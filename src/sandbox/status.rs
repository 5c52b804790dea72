//! What a sandbox looks like to the CRI: its state and the `PodSandbox` / `PodSandboxStatus`
//! messages.

use std::collections::HashMap;

use crate::api;
use crate::engine::{Engine, PodError};
use crate::pod::{labels_match, pod_config};
use crate::store::{SandboxPhase, SandboxRecord};

/// READY while set up and (for a pod with one) the pause process lives; NOTREADY otherwise.
pub fn state(record: &SandboxRecord) -> api::PodSandboxState {
    crate::pod::sandbox_state(record)
}

/// Half-made and half-removed sandboxes are not shown while that work is under way; one whose
/// teardown failed is (NOTREADY), so that it can be removed.
pub fn visible(record: &SandboxRecord) -> bool {
    matches!(record.phase, SandboxPhase::Ready | SandboxPhase::Stopped) || record.failure.is_some()
}

/// The `PodSandbox` message; `state` as [`state`] found it (lists compute it once per pod).
pub fn summary(
    record: &SandboxRecord,
    state: api::PodSandboxState,
) -> Result<api::PodSandbox, PodError> {
    let config = pod_config(record)?;
    Ok(api::PodSandbox {
        id: record.id.clone(),
        metadata: config.metadata,
        state: state as i32,
        created_at: record.created_at,
        labels: config.labels,
        annotations: config.annotations,
        runtime_handler: record.runtime_handler.clone(),
    })
}

pub fn status(
    engine: &Engine,
    record: &SandboxRecord,
    verbose: bool,
) -> Result<api::PodSandboxStatusResponse, PodError> {
    let status = crate::pod::sandbox_status(record)?;
    let mut info = HashMap::new();
    if verbose {
        let spec = std::fs::read(
            crate::pod::PodFiles::new(engine, &record.id)
                .pause_bundle()
                .join("config.json"),
        )
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let value = serde_json::json!({
            "pid": record.pause.map(|p| p.pid).unwrap_or(0),
            "runtimeHandler": record.runtime_handler,
            "runtime": record.runtime,
            "cgroupParent": record.cgroup_parent,
            "namespaces": record.pinned,
            "network": record.network,
            "failure": record.failure,
            "runtimeSpec": spec,
        });
        info.insert("info".to_owned(), value.to_string());
    }
    Ok(api::PodSandboxStatusResponse {
        status: Some(status),
        info,
        ..Default::default()
    })
}

/// Whether a sandbox in `state` passes a `PodSandboxFilter`.
pub fn matches(
    record: &SandboxRecord,
    state: api::PodSandboxState,
    filter: &api::PodSandboxFilter,
) -> bool {
    if !filter.id.is_empty() && !record.id.starts_with(&filter.id) {
        return false;
    }
    if let Some(want) = &filter.state
        && state as i32 != want.state
    {
        return false;
    }
    if filter.label_selector.is_empty() {
        return true;
    }
    match pod_config(record) {
        Ok(config) => labels_match(&config.labels, &filter.label_selector),
        Err(_) => false,
    }
}
