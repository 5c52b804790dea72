//! `RemovePodSandbox`: idempotent; stops what still runs, then removes everything.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::engine::PodError;
use crate::sandbox;

pub async fn handle(
    server: &CriServer,
    request: api::RemovePodSandboxRequest,
) -> Result<api::RemovePodSandboxResponse, Status> {
    let sandbox = match server.engine.sandbox(&request.pod_sandbox_id) {
        Ok(s) => s,
        Err(PodError::NotFound(_)) => return Ok(api::RemovePodSandboxResponse {}),
        Err(e) => return Err(e.into()),
    };
    let _op = sandbox.op.lock().await;
    sandbox::teardown::destroy(&server.engine, &sandbox).await?;
    Ok(api::RemovePodSandboxResponse {})
}
