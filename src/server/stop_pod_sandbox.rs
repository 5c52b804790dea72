//! `StopPodSandbox`: idempotent; an unknown id is already stopped (as cri-o answers).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::engine::PodError;
use crate::lifecycle::detached;
use crate::sandbox;

pub async fn handle(
    server: &CriServer,
    request: api::StopPodSandboxRequest,
) -> Result<api::StopPodSandboxResponse, Status> {
    let sandbox = match server.engine.sandbox(&request.pod_sandbox_id) {
        Ok(s) => s,
        Err(PodError::NotFound(_)) => return Ok(api::StopPodSandboxResponse {}),
        Err(e) => return Err(e.into()),
    };
    let engine = server.engine.clone();
    detached(async move { sandbox::teardown::stop(&engine, &sandbox).await }).await?;
    Ok(api::StopPodSandboxResponse {})
}
