//! `RemovePodSandbox`: idempotent; stops what still runs, then removes everything.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::engine::PodError;
use crate::lifecycle::detached;
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
    let engine = server.engine.clone();
    detached(async move { sandbox::teardown::destroy(&engine, &sandbox).await }).await?;
    Ok(api::RemovePodSandboxResponse {})
}
