//! The container events of a pod (`GetContainerEvents`), built where each transition happens
//! and handed to the hub (`crate::events`): the subject's id (a sandbox's own id for its
//! events, as containerd and cri-o do), the event type, when, and — what the kubelet's evented
//! PLEG turns into its pod cache entry — the pod's `PodSandboxStatus` and the statuses of its
//! listed containers.
//!
//! Built from the in-memory records only (a decode of the kept requests, a look at `/proc`, an
//! exit file read once): no runtime call, no fsync. With nobody subscribed nothing is built.
//! Here rather than in `sandbox/` because a container's events need the pod's status
//! (`pod::sandbox_status`, below both) and `container/` may not import `sandbox/`.

use std::time::Instant;

use super::status;
use crate::api::{self, ContainerEventType};
use crate::engine::{Container, Engine};
use crate::store::{SandboxRecord, now_nanos};

/// Publishes `kind` for container `container` of its pod. A container whose pod is gone
/// (never the case for a listed one) publishes nothing.
pub fn container_event(engine: &Engine, container: &Container, kind: ContainerEventType) {
    if !engine.events.wanted() {
        return;
    }
    let sandbox_id = container.record().sandbox_id;
    match engine.sandbox(&sandbox_id) {
        Ok(sandbox) => publish(
            engine,
            &sandbox.record(),
            &container.id,
            Some(container),
            kind,
        ),
        Err(e) => tracing::debug!(container = %container.id, "no event: {e}"),
    }
}

/// Publishes `kind` for the sandbox `pod` itself (also after its removal, from the last copy
/// of its record).
pub fn sandbox_event(engine: &Engine, pod: &SandboxRecord, kind: ContainerEventType) {
    if engine.events.wanted() {
        publish(engine, pod, &pod.id, None, kind);
    }
}

fn publish(
    engine: &Engine,
    pod: &SandboxRecord,
    subject: &str,
    container: Option<&Container>,
    kind: ContainerEventType,
) {
    let started = Instant::now();
    let pod_status = match crate::pod::sandbox_status(pod) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(sandbox = %pod.id, "no {kind:?} for {subject}: {e}");
            return;
        }
    };
    // The pod's listed containers; the subject too while it is being removed (a container
    // killed by its removal is stopped, then deleted).
    let containers_statuses = engine
        .containers_of(&pod.id)
        .iter()
        .filter(|c| status::visible(&c.record()) || container.is_some_and(|s| s.id == c.id))
        .filter_map(|c| match status::status(engine, c, false) {
            Ok(response) => response.status,
            Err(e) => {
                tracing::warn!(container = %c.id, "left out of a {kind:?} event: {e}");
                None
            }
        })
        .collect();
    engine.events.publish(api::ContainerEventResponse {
        container_id: subject.to_owned(),
        container_event_type: kind as i32,
        created_at: now_nanos(),
        pod_sandbox_status: Some(pod_status),
        containers_statuses,
    });
    // What the event added to the lifecycle call (measured by e2e/tests/container_events.rs).
    let cost_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(subject, ?kind, cost_us, "container event");
}
