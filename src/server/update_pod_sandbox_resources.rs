//! `UpdatePodSandboxResources`: records the pod-level resources and, for a pod with a cgroup of
//! its own, writes them there (see `sandbox::resources`).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::lifecycle::detached;
use crate::sandbox::resources::{self, CgroupUpdate};
use crate::validate;

pub async fn handle(
    server: &CriServer,
    request: api::UpdatePodSandboxResourcesRequest,
) -> Result<api::UpdatePodSandboxResourcesResponse, Status> {
    if request.pod_sandbox_id.is_empty() {
        return Err(Status::invalid_argument(
            "UpdatePodSandboxResources: pod_sandbox_id is required",
        ));
    }
    validate::id("pod_sandbox_id", &request.pod_sandbox_id)?;
    if let Some(r) = &request.resources {
        validate::container_resources("resources", r)?;
    }
    if let Some(r) = &request.overhead {
        validate::overhead("overhead", r)?;
    }
    let sandbox = server.engine.sandbox(&request.pod_sandbox_id)?;
    let engine = server.engine.clone();
    let pod = sandbox.clone();
    let outcome = detached(async move {
        resources::update(&engine, &pod, request.resources, request.overhead).await
    })
    .await?;
    match outcome {
        CgroupUpdate::SharedParent => tracing::debug!(
            sandbox = %sandbox.id,
            "pod under the shared cgroup parent: resources recorded only"
        ),
        CgroupUpdate::Missing(path) => tracing::info!(
            sandbox = %sandbox.id,
            "pod cgroup {path} is gone: resources recorded only"
        ),
        CgroupUpdate::Applied(path) => {
            tracing::debug!(sandbox = %sandbox.id, "pod resources written to {path}")
        }
    }
    Ok(api::UpdatePodSandboxResourcesResponse {})
}
