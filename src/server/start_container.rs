//! `StartContainer`.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;

pub async fn handle(
    server: &CriServer,
    request: api::StartContainerRequest,
) -> Result<api::StartContainerResponse, Status> {
    let c = server.engine.container(&request.container_id)?;
    let _op = c.op.lock().await;
    container::start::start(&server.engine, &c).await?;
    Ok(api::StartContainerResponse {})
}
