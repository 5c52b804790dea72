//! `RunPodSandbox`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::sandbox;

pub async fn handle(
    server: &CriServer,
    request: api::RunPodSandboxRequest,
) -> Result<api::RunPodSandboxResponse, Status> {
    let config = request
        .config
        .ok_or_else(|| Status::invalid_argument("RunPodSandbox: config is required"))?;
    let id = sandbox::run::run(&server.engine, config, &request.runtime_handler).await?;
    Ok(api::RunPodSandboxResponse { pod_sandbox_id: id })
}
