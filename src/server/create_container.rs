//! `CreateContainer`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::CreateContainerRequest,
) -> Result<api::CreateContainerResponse, Status> {
    let config = request
        .config
        .ok_or_else(|| Status::invalid_argument("CreateContainer: config is required"))?;
    let id = container::create::create(&server.engine, &request.pod_sandbox_id, config).await?;
    Ok(api::CreateContainerResponse { container_id: id })
}
