//! `StopPodSandbox`: idempotent; an unknown id is already stopped (as cri-o answers).

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::engine::PodError;
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
    let _op = sandbox.op.lock().await;
    sandbox::teardown::stop(&server.engine, &sandbox).await?;
    Ok(api::StopPodSandboxResponse {})
}
