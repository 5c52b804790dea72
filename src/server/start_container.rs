//! `StartContainer`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::lifecycle::detached;

pub async fn handle(
    server: &CriServer,
    request: api::StartContainerRequest,
) -> Result<api::StartContainerResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    let engine = server.engine.clone();
    detached(async move { container::start::start(&engine, &c).await }).await?;
    Ok(api::StartContainerResponse {})
}
