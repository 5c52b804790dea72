//! What a container looks like to the CRI: its state, exit status and the `Container` /
//! `ContainerStatus` messages.

use std::collections::HashMap;

use prost::Message;

use crate::api;
use crate::engine::{Container, Engine, PodError};
use crate::monitor::{self, ExitStatus};
use crate::pod::labels_match;
use crate::proc_info;
use crate::store::{ContainerPhase, ContainerRecord};

/// The request a container was made from.
pub fn container_config(record: &ContainerRecord) -> Result<api::ContainerConfig, PodError> {
    api::ContainerConfig::decode(record.config.as_slice())
        .map_err(|e| PodError::internal(format!("container {} record", record.id), e))
}

/// The exit status, once the monitor has written it (cached in memory after the first read).
pub fn exit_status(engine: &Engine, container: &Container) -> Option<ExitStatus> {
    let rec = container.record();
    if rec.exit.is_some() {
        return rec.exit;
    }
    let status = monitor::read_exit_file(&engine.paths.exit_file(&rec.id))
        .ok()
        .flatten()?;
    engine.cache_container(container, |r| r.exit = Some(status.clone()));
    if status.oom_killed {
        crate::telemetry::oom_killed(&rec.id);
    }
    Some(status)
}

/// The state and, for an exited container, its exit status. A started container whose process
/// is gone without an exit file (its monitor was killed) is exited with an unknown status.
pub fn state(engine: &Engine, container: &Container) -> (api::ContainerState, Option<ExitStatus>) {
    let rec = container.record();
    if let Some(exit) = exit_status(engine, container) {
        return (api::ContainerState::ContainerExited, Some(exit));
    }
    match (rec.phase, rec.process) {
        // A launch that failed (StartContainer).
        (ContainerPhase::Created, _) if rec.failure.is_some() => {
            (api::ContainerState::ContainerExited, None)
        }
        (ContainerPhase::Created, _) => (api::ContainerState::ContainerCreated, None),
        (ContainerPhase::Started, Some(p)) if proc_info::is_alive(p.pid, p.start_time) => {
            (api::ContainerState::ContainerRunning, None)
        }
        // Gone, but its monitor is still draining output before it writes the exit file: not
        // exited yet as far as the CRI goes (the exit code is not known).
        (ContainerPhase::Started, Some(p))
            if proc_info::is_named(p.monitor_pid, "crius-monitor") =>
        {
            (api::ContainerState::ContainerRunning, None)
        }
        (ContainerPhase::Started, _) => (api::ContainerState::ContainerExited, None),
        // A failed create or removal: whatever ran is gone or going.
        _ if rec.failure.is_some() => (api::ContainerState::ContainerExited, None),
        _ => (api::ContainerState::ContainerUnknown, None),
    }
}

/// As sandboxes: hidden while being made or removed, listed once that failed.
pub fn visible(record: &ContainerRecord) -> bool {
    matches!(
        record.phase,
        ContainerPhase::Created | ContainerPhase::Started
    ) || record.failure.is_some()
}

/// The image as the container reports it: the name chosen at creation (see `image_name`),
/// with the request's annotations, user-specified name and handler echoed.
fn image_spec(rec: &ContainerRecord, config: &api::ContainerConfig) -> api::ImageSpec {
    let requested = config.image.clone().unwrap_or_default();
    api::ImageSpec {
        image: rec.image_name.clone(),
        annotations: requested.annotations,
        user_specified_image: requested.user_specified_image,
        runtime_handler: requested.runtime_handler,
        image_ref: String::new(),
    }
}

/// The `Container` message; `state` as [`state`] found it (lists compute it once per container).
pub fn summary(
    container: &Container,
    state: api::ContainerState,
) -> Result<api::Container, PodError> {
    let rec = container.record();
    let config = container_config(&rec)?;
    Ok(api::Container {
        id: rec.id.clone(),
        pod_sandbox_id: rec.sandbox_id.clone(),
        metadata: config.metadata.clone(),
        image: Some(image_spec(&rec, &config)),
        image_ref: rec.image_ref.clone(),
        state: state as i32,
        created_at: rec.created_at,
        labels: config.labels,
        annotations: config.annotations,
        image_id: rec.image_id.clone(),
    })
}

pub fn status(
    engine: &Engine,
    container: &Container,
    verbose: bool,
) -> Result<api::ContainerStatusResponse, PodError> {
    let rec = container.record();
    let config = container_config(&rec)?;
    let (state, exit) = state(engine, container);
    let (exit_code, finished_at, reason, message) = match (&exit, state) {
        (Some(e), _) => {
            let reason = if e.oom_killed {
                "OOMKilled"
            } else if e.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            // A removal that failed after it ran says why.
            let message = rec.failure.clone().unwrap_or_default();
            (e.exit_code, e.finished_at_unix_nano, reason, message)
        }
        (None, api::ContainerState::ContainerExited) => match &rec.failure {
            // Never started: containerd's word and exit code for a failed start.
            Some(why) if rec.phase == ContainerPhase::Created => {
                (128, 0, "StartError", why.clone())
            }
            // Never created: the kubelet's own word for that.
            Some(why) if rec.process.is_none() => (255, 0, "CreateContainerError", why.clone()),
            Some(why) => (255, 0, "Error", why.clone()),
            None => (
                255,
                0,
                "Error",
                "the exit status is unknown: the container's monitor is gone".to_owned(),
            ),
        },
        _ => (0, 0, "", String::new()),
    };
    let mounts = config
        .mounts
        .iter()
        .map(|m| api::Mount {
            container_path: m.container_path.clone(),
            host_path: m.host_path.clone(),
            readonly: m.readonly,
            selinux_relabel: m.selinux_relabel,
            propagation: m.propagation,
            recursive_read_only: m.recursive_read_only,
            image: m.image.clone(),
            image_sub_path: m.image_sub_path.clone(),
            ..Default::default()
        })
        .collect();
    let status = api::ContainerStatus {
        id: rec.id.clone(),
        metadata: config.metadata.clone(),
        state: state as i32,
        created_at: rec.created_at,
        started_at: rec.started_at,
        finished_at,
        exit_code,
        image: Some(image_spec(&rec, &config)),
        image_ref: rec.image_ref.clone(),
        reason: reason.to_owned(),
        message,
        labels: config.labels.clone(),
        annotations: config.annotations.clone(),
        mounts,
        log_path: rec.log_path.display().to_string(),
        resources: config
            .linux
            .as_ref()
            .and_then(|l| l.resources.clone())
            .map(|r| api::ContainerResources {
                linux: Some(r),
                ..Default::default()
            }),
        image_id: rec.image_id.clone(),
        user: rec.user.as_ref().map(|u| api::ContainerUser {
            linux: Some(api::LinuxContainerUser {
                uid: i64::from(u.uid),
                gid: i64::from(u.gid),
                supplemental_groups: u
                    .supplemental_groups
                    .iter()
                    .map(|g| i64::from(*g))
                    .collect(),
            }),
        }),
        stop_signal: crate::oci::stop_signal_to_cri(rec.stop_signal) as i32,
    };
    let mut info = HashMap::new();
    if verbose {
        let spec = std::fs::read(engine.paths.container_run_dir(&rec.id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let value = serde_json::json!({
            "pid": rec.process.map(|p| p.pid).unwrap_or(0),
            "monitorPid": rec.process.map(|p| p.monitor_pid).unwrap_or(0),
            "sandboxID": rec.sandbox_id,
            "runtime": rec.runtime,
            "exit": exit,
            "failure": rec.failure,
            "runtimeSpec": spec,
        });
        info.insert("info".to_owned(), value.to_string());
    }
    Ok(api::ContainerStatusResponse {
        status: Some(status),
        info,
    })
}

/// Whether a container in `state` passes a `ContainerFilter`.
pub fn matches(
    container: &Container,
    state: api::ContainerState,
    filter: &api::ContainerFilter,
) -> bool {
    let rec = container.record();
    if !filter.id.is_empty() && !rec.id.starts_with(&filter.id) {
        return false;
    }
    if !filter.pod_sandbox_id.is_empty() && !rec.sandbox_id.starts_with(&filter.pod_sandbox_id) {
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
    container_config(&rec)
        .map(|c| labels_match(&c.labels, &filter.label_selector))
        .unwrap_or(false)
}
