//! `RemoveContainer`: idempotent; kills a running container first; keeps its log.

use tonic::Status;

use super::CriServer;
use crate::api;
use crate::container;
use crate::engine::PodError;

pub async fn handle(
    server: &CriServer,
    request: api::RemoveContainerRequest,
) -> Result<api::RemoveContainerResponse, Status> {
    let c = match server.engine.container(&request.container_id) {
        Ok(c) => c,
        Err(PodError::NotFound(_)) => return Ok(api::RemoveContainerResponse {}),
        Err(e) => return Err(e.into()),
    };
    let _op = c.op.lock().await;
    container::remove::remove(&server.engine, &c).await?;
    Ok(api::RemoveContainerResponse {})
}
